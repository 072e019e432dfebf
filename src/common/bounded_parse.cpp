#include "common/bounded_parse.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <cstdlib>
#include <map>
#include <sstream>
#include <vector>

namespace edgeloop {
namespace {

using Json = nlohmann::json;

// Thrown from inside a parser's callbacks to stop it at once; caught below.
struct LimitExceeded {
  std::string what;
};

std::string SizeLimitText(size_t size, const ParseLimits& limits) {
  return "document is " + std::to_string(size) + " bytes, over the limit of " +
         std::to_string(limits.max_bytes) + " bytes (max_bytes)";
}

std::string DepthLimitText(const ParseLimits& limits) {
  return "nesting deeper than the limit of " + std::to_string(limits.max_depth) +
         " levels (max_depth)";
}

std::string NodeLimitText(const ParseLimits& limits) {
  return "more than the limit of " + std::to_string(limits.max_nodes) +
         " values (max_nodes, aliases counted as what they expand to)";
}

std::string StringLimitText(const ParseLimits& limits) {
  return "a string longer than the limit of " + std::to_string(limits.max_string) +
         " bytes (max_string)";
}

// Builds JSON from yaml-cpp's parse events, counting every value it creates.
class YamlToJson : public YAML::EventHandler {
 public:
  explicit YamlToJson(const ParseLimits& limits) : limits_(limits) {}

  Json Take() { return std::move(root_); }
  bool done() const { return done_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override { done_ = true; }
  void OnNull(const YAML::Mark& m, YAML::anchor_t anchor) override {
    Attach(m, Json(nullptr), anchor, 1);
  }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) Fail(m, "alias to an unknown anchor");
    Count(m, it->second.nodes);
    Attach(m, it->second.value, 0, it->second.nodes);
  }
  void OnScalar(const YAML::Mark& m, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    if (value.size() > limits_.max_string) Fail(m, StringLimitText(limits_));
    Count(m, 1);
    Attach(m, Scalar(tag, value), anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(m, Json::array(), anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(m, Json::object(), anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    Json value;
    YAML::anchor_t anchor = 0;
    size_t nodes = 1;  // values inside, this container included
    bool have_key = false;
    std::string key;
    YAML::Mark mark;
  };
  struct Anchored {
    Json value;
    size_t nodes = 0;
  };

  [[noreturn]] void Fail(const YAML::Mark& m, const std::string& what) {
    throw LimitExceeded{"line " + std::to_string(m.line + 1) + ": " + what};
  }

  void Count(const YAML::Mark& m, size_t n) {
    total_ += n;
    if (total_ > limits_.max_nodes) Fail(m, NodeLimitText(limits_));
  }

  static Json Scalar(const std::string& tag, const std::string& s) {
    if (tag == "!") return s;  // quoted
    if (s.empty() || s == "~" || s == "null") return nullptr;
    if (s == "true" || s == "yes") return true;
    if (s == "false" || s == "no") return false;
    char* end = nullptr;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (*end == '\0') return i;
    double d = std::strtod(s.c_str(), &end);
    if (*end == '\0') return d;
    return s;
  }

  void Open(const YAML::Mark& m, Json container, YAML::anchor_t anchor) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) Fail(m, DepthLimitText(limits_));
    Count(m, 1);
    stack_.push_back(Frame{std::move(container), anchor, 1, false, {}, m});
  }

  void Close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.have_key) Fail(f.mark, "mapping key without a value");
    Attach(f.mark, std::move(f.value), f.anchor, f.nodes);
  }

  // Puts a finished value into its parent (or makes it the document) and remembers it under
  // its anchor. `nodes` is how many values it holds, for the parent's and the anchor's count.
  void Attach(const YAML::Mark& m, Json v, YAML::anchor_t anchor, size_t nodes) {
    if (anchor != 0) anchors_[anchor] = Anchored{v, nodes};
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& top = stack_.back();
    top.nodes += nodes;
    if (top.value.is_array()) {
      top.value.push_back(std::move(v));
    } else if (!top.have_key) {
      if (!v.is_string() && !v.is_number() && !v.is_boolean())
        Fail(m, "a mapping key must be a plain value");
      top.key = v.is_string() ? v.get<std::string>() : v.dump();
      top.have_key = true;
    } else {
      if (top.value.contains(top.key)) Fail(m, "duplicate key '" + top.key + "'");
      top.value[top.key] = std::move(v);
      top.have_key = false;
    }
  }

  const ParseLimits& limits_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, Anchored> anchors_;
  Json root_;
  size_t total_ = 0;
  bool done_ = false;
};

}  // namespace

Result<Json> ParseJsonBounded(std::string_view text, const std::string& origin,
                              const ParseLimits& limits) {
  if (text.size() > limits.max_bytes)
    return Error(Errc::kFormat, origin + ": " + SizeLimitText(text.size(), limits));
  size_t nodes = 0;
  auto check = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) {
      if (depth >= limits.max_depth) throw LimitExceeded{DepthLimitText(limits)};
      if (++nodes > limits.max_nodes) throw LimitExceeded{NodeLimitText(limits)};
    } else if (event == Json::parse_event_t::value) {
      if (++nodes > limits.max_nodes) throw LimitExceeded{NodeLimitText(limits)};
      if (parsed.is_string() && parsed.get_ref<const std::string&>().size() > limits.max_string)
        throw LimitExceeded{StringLimitText(limits)};
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), check);
  } catch (const LimitExceeded& e) {
    return Error(Errc::kFormat, origin + ": " + e.what);
  } catch (const Json::exception& e) {
    return Error(Errc::kFormat, origin + ": not valid JSON: " + e.what());
  }
}

Result<Json> ParseYamlBounded(std::string_view text, const std::string& origin,
                              const ParseLimits& limits) {
  if (text.size() > limits.max_bytes)
    return Error(Errc::kFormat, origin + ": " + SizeLimitText(text.size(), limits));
  std::istringstream in{std::string(text)};
  YamlToJson handler(limits);
  try {
    YAML::Parser parser(in);
    parser.HandleNextDocument(handler);
  } catch (const LimitExceeded& e) {
    return Error(Errc::kFormat, origin + ": " + e.what);
  } catch (const YAML::Exception& e) {
    return Error(Errc::kFormat,
                 origin + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return handler.Take();
}

}  // namespace edgeloop
