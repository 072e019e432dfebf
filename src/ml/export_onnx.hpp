// ONNX export of a trained classifier through libonnx: batch-norm folded into the preceding
// convolution, normalization as Sub/Div nodes (so the file takes raw inputs), two outputs
// ("logits" and "probabilities"), opset 13, and the model's identity in metadata_props:
// edgeloop.name, edgeloop.version, edgeloop.class_names, edgeloop.preprocessing,
// edgeloop.model_hash, edgeloop.lineage. The result passes onnx::checker before it is written.
#pragma once

#include <string>

#include "common/result.hpp"
#include "ml/model_store.hpp"

namespace edgeloop::ml {

inline constexpr int kOnnxOpset = 13;

// Serialized ModelProto bytes, checked.
Result<std::string> ExportOnnx(LoadedModel& model);
// ExportOnnx + atomic write to path.
Status ExportOnnxFile(LoadedModel& model, const std::string& path);

}  // namespace edgeloop::ml
