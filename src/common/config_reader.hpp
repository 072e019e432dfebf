// The strict reader for YAML configuration files (the agent's agent.yaml, the server's
// server.yaml): the document is parsed within the limits of every document (bounded_parse),
// its top level must be a mapping of known sections, every key in a section must be one the
// program reads, and numbers are checked against their ranges. Every error names the file and
// the line: "agent.yaml:5: spool: unknown key \"max_bm\"".
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <type_traits>

#include "common/result.hpp"

namespace edgeloop::config {

// The document's root node. Errors: kFormat (not YAML, over a parse limit, not a mapping),
// kInvalidArgument (a section not in `sections`).
Result<YAML::Node> LoadDocument(const std::string& yaml_text, const std::string& origin,
                                const std::set<std::string>& sections);

// One mapping section of a document, read key by key; CheckNoUnknownKeys then refuses every
// key that no Get asked for.
class Section {
 public:
  Section(const YAML::Node& root, std::string name, std::string origin)
      : node_(root[name]), name_(std::move(name)), origin_(std::move(origin)) {}
  // Constructed, never assigned: yaml-cpp's Node assignment copies content and throws for
  // a missing key's placeholder node. Access is const: operator[] on a non-const node inserts.

  bool present() const { return node_.IsDefined() && !node_.IsNull(); }
  // True when the section sets key (to something other than null).
  bool Has(const std::string& key) const {
    if (!present()) return false;
    YAML::Node v = Child(key);
    return v.IsDefined() && !v.IsNull();
  }

  Status CheckShape() const {
    if (present() && !node_.IsMap())
      return Error(Errc::kInvalidArgument, Where(node_) + name_ + ": expected a mapping");
    return Status::Ok();
  }

  // Leaves out unchanged when the key is absent.
  template <typename T>
  Status Get(const std::string& key, T& out) {
    known_.insert(key);
    if (!Has(key)) return Status::Ok();
    YAML::Node v = Child(key);
    try {
      out = v.as<T>();
    } catch (const YAML::Exception&) {
      return Error(Errc::kInvalidArgument, Where(v) + name_ + "." + key + ": cannot read \"" +
                                               Scalar(v) + "\" as " + TypeName<T>());
    }
    return Status::Ok();
  }

  // A number that must lie in [lo, hi].
  template <typename T>
  Status GetInRange(const std::string& key, T& out, T lo, T hi) {
    EDGELOOP_RETURN_IF_ERROR(Get(key, out));
    if (out < lo || out > hi)
      return Error(Errc::kInvalidArgument,
                   Where(Child(key)) + name_ + "." + key + ": " + std::to_string(out) +
                       " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return Status::Ok();
  }

  // Text that must be one of `allowed`.
  Status GetOneOf(const std::string& key, std::string& out, const std::set<std::string>& allowed);

  Status CheckNoUnknownKeys() const;

  // "origin:line: " of a node (without the line when yaml-cpp has none).
  std::string Where(const YAML::Node& n) const;

 private:
  YAML::Node Child(const std::string& key) const {
    const YAML::Node& n = node_;
    return n[key];
  }
  static std::string Scalar(const YAML::Node& v) {
    return v.IsScalar() ? v.Scalar() : "<non-scalar>";
  }
  template <typename T>
  static const char* TypeName() {
    if constexpr (std::is_same_v<T, bool>) return "true/false";
    if constexpr (std::is_integral_v<T>) return "an integer";
    if constexpr (std::is_floating_point_v<T>) return "a number";
    return "text";
  }

  YAML::Node node_;
  std::string name_, origin_;
  std::set<std::string> known_;
};

}  // namespace edgeloop::config
