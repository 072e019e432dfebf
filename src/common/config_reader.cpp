#include "common/config_reader.hpp"

#include "common/bounded_parse.hpp"

namespace edgeloop::config {

Result<YAML::Node> LoadDocument(const std::string& yaml_text, const std::string& origin,
                                const std::set<std::string>& sections) {
  // The same limits as every other document: alias bombs and deep nesting are refused before
  // yaml-cpp builds its node tree.
  EDGELOOP_RETURN_IF_ERROR(ParseYamlBounded(yaml_text, origin));
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Error(Errc::kFormat, origin + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return Error(Errc::kFormat, origin + ": expected a YAML mapping at the top");
  for (const auto& kv : root) {
    if (!kv.first.IsScalar())
      return Error(Errc::kInvalidArgument, origin + ":" + std::to_string(kv.first.Mark().line + 1) +
                                               ": a section name must be text");
    const std::string key = kv.first.Scalar();
    if (!sections.count(key))
      return Error(Errc::kInvalidArgument, origin + ":" + std::to_string(kv.first.Mark().line + 1) +
                                               ": unknown section \"" + key + "\"");
  }
  return root;
}

Status Section::GetOneOf(const std::string& key, std::string& out,
                         const std::set<std::string>& allowed) {
  EDGELOOP_RETURN_IF_ERROR(Get(key, out));
  if (Has(key) && !allowed.count(out)) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return Error(Errc::kInvalidArgument,
                 Where(Child(key)) + name_ + "." + key + ": \"" + out + "\" is not one of " + list);
  }
  return Status::Ok();
}

Status Section::CheckNoUnknownKeys() const {
  if (!present()) return Status::Ok();
  for (const auto& kv : node_) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "<non-scalar>";
    if (!known_.count(key))
      return Error(Errc::kInvalidArgument,
                   Where(kv.first) + name_ + ": unknown key \"" + key + "\"");
  }
  return Status::Ok();
}

std::string Section::Where(const YAML::Node& n) const {
  const int line = n.Mark().line;
  return origin_ + (line >= 0 ? ":" + std::to_string(line + 1) : "") + ": ";
}

}  // namespace edgeloop::config
