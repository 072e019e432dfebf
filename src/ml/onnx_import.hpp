// Models trained elsewhere, as fine-tuning parents: an ONNX file becomes a trainable libtorch
// Classifier (arch "onnx") with the file's weights.
//
// The head is the last Gemm or MatMul (with constant weights) before the graph's first output,
// or the node named by OnnxImportOptions::head_node; it becomes the Classifier's Linear head,
// and nodes after it (Softmax, ...) are dropped: the Classifier outputs logits. A leading
// Sub/Div by per-channel constants (how edgeloop's own exports normalize) becomes the model's
// input normalization. Everything in between becomes backbone blocks (ml/onnx_import_block.hpp),
// which export their nodes again with the current weights, so an imported model fine-tunes
// with the usual strategies and exports to ONNX the edge runtime runs.
//
// Supported ops: ml/onnx_import_ops.hpp's registry (SupportedOps()). Anything else is refused
// with "<file>: node '<name>' (<Op>): op not supported by the importer".
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "ml/model_store.hpp"
#include "ml/onnx_import_graph.hpp"

namespace edgeloop::ml {

struct OnnxImportOptions {
  std::string head_node;                 // default: the last Gemm/MatMul before the output
  std::vector<std::string> class_names;  // default: edgeloop.class_names metadata, else "0".."K-1"
  onnx_import::ImportLimits limits;
};

// An ONNX file as a ready fine-tuning parent: name, version and lineage from edgeloop's
// metadata when present (else the graph's name, version "1"), the graph bytes in the spec.
// Errors: unreadable or hostile files, unsupported ops, no head, class names that do not
// match the head's outputs.
Result<LoadedModel> ImportOnnxModel(const std::string& path, const OnnxImportOptions& options = {});
Result<LoadedModel> ImportOnnxModelBytes(std::shared_ptr<const std::string> bytes,
                                         const std::string& origin,
                                         const OnnxImportOptions& options = {});
// A model directory (LoadModel) or an ONNX file (ImportOnnxModel).
Result<LoadedModel> LoadOrImportModel(const std::string& path,
                                      const OnnxImportOptions& options = {});

// For ModelSpec and ClassifierImpl (arch "onnx"): the checks a spec passes without its graph,
// and the backbone built from spec.onnx_graph (throws std::runtime_error when the graph does
// not build; ImportOnnxModel and LoadModel check it first). Returns the embedding width.
Status ValidateOnnxSpec(const ModelSpec& spec);
int64_t BuildOnnxBackbone(const ModelSpec& spec, torch::nn::ModuleList& backbone);

}  // namespace edgeloop::ml
