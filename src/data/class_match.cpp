#include "data/class_match.hpp"

#include <unordered_map>

#include "common/bounded_parse.hpp"

namespace edgeloop::data {
bool AreBareIndices(const std::vector<std::string>& names) {
  for (size_t k = 0; k < names.size(); ++k)
    if (names[k] != std::to_string(k)) return false;
  return true;
}

namespace {

std::string JoinNames(const std::vector<std::string>& names, size_t most) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < most; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > most) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

}  // namespace

Result<ClassMatch> MatchClassesByName(const Dataset& d,
                                      const std::vector<std::string>& model_classes,
                                      const std::string& model_name) {
  ClassMatch m;
  if (model_classes.empty() || d.class_names == model_classes ||
      (AreBareIndices(d.class_names) && d.class_names.size() <= model_classes.size())) {
    m.by_index = d.class_names != model_classes;
    m.data = d;
    if (!model_classes.empty()) m.data.class_names = model_classes;
    return m;
  }
  std::unordered_map<std::string, int32_t> index;
  for (size_t k = 0; k < model_classes.size(); ++k)
    index.emplace(model_classes[k], static_cast<int32_t>(k));
  std::vector<int32_t> to_model(d.class_names.size(), -1);
  std::vector<std::string> unknown;
  for (size_t k = 0; k < d.class_names.size(); ++k) {
    auto it = index.find(d.class_names[k]);
    if (it == index.end())
      unknown.push_back(d.class_names[k]);
    else
      to_model[k] = it->second;
  }
  if (!unknown.empty())
    return Error(Errc::kMismatch,
                 d.source + " has " + std::to_string(unknown.size()) + " class(es) that " +
                     model_name + " does not know: " + JoinNames(unknown, 20) +
                     " (the model's classes: " + JoinNames(model_classes, 20) + ")");
  m.data = d;
  m.data.class_names = model_classes;
  for (auto& y : m.data.y)
    if (y >= 0) {
      if (static_cast<size_t>(y) >= to_model.size())
        return Error(Errc::kFormat, d.source + ": label " + std::to_string(y) + " is outside its " +
                                        std::to_string(d.class_names.size()) + " classes");
      y = to_model[static_cast<size_t>(y)];
    }
  return m;
}

Result<std::vector<std::string>> ClassNamesFromOnnxMetadata(
    const std::map<std::string, std::string>& metadata, const std::string& origin) {
  auto it = metadata.find("edgeloop.class_names");
  if (it == metadata.end()) return std::vector<std::string>{};
  auto j = ParseJsonBounded(it->second, origin + ": metadata edgeloop.class_names");
  if (!j.ok()) return j.error();
  std::vector<std::string> names;
  if (!j->is_array())
    return Error(Errc::kFormat, origin + ": metadata edgeloop.class_names is not a JSON array");
  for (const auto& n : *j) {
    if (!n.is_string())
      return Error(Errc::kFormat,
                   origin + ": metadata edgeloop.class_names holds a value that is not a string");
    names.push_back(n.get<std::string>());
  }
  return names;
}

}  // namespace edgeloop::data
