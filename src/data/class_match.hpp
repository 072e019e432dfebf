// Matching a dataset's classes to a model's by name. Folders and CSV files name their
// classes in their own (sorted) order, which is rarely the model's order, so every command
// that scores a model on data maps the data's labels onto the model's class list first.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "data/dataset.hpp"

namespace edgeloop::data {

struct ClassMatch {
  Dataset data;           // labels are the model's class indices; class_names the model's
  bool by_index = false;  // the data's classes were unnamed ("0".."K-1") and kept by index
};

// True when the class names are "0".."K-1" in order: data that names no classes (IDX files
// without names, integer CSV labels); an empty list counts.
bool AreBareIndices(const std::vector<std::string>& names);

// The dataset with its labels renumbered to model_classes. Data classes the model does not
// know are an error (kMismatch, exit 3) that lists them. Data whose classes are the bare
// indices "0".."K-1" (IDX files without names, integer CSV labels) is matched by index, as is
// any data scored by a model that names no classes; by_index says so. The data's hash and
// source are kept: they identify the data, not its numbering.
Result<ClassMatch> MatchClassesByName(const Dataset& d,
                                      const std::vector<std::string>& model_classes,
                                      const std::string& model_name);

// The class names in an ONNX file's metadata ("edgeloop.class_names", a JSON array of
// strings), or an empty list when the file names none. A malformed entry is an error.
Result<std::vector<std::string>> ClassNamesFromOnnxMetadata(
    const std::map<std::string, std::string>& metadata, const std::string& origin);

}  // namespace edgeloop::data
