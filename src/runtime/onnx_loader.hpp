// Turns ONNX protobuf bytes into the runtime's Graph. Everything read from the file is
// checked before it is used: tensor sizes against their shapes (before allocating), value
// references against what is defined earlier in the graph, element types against what the
// runtime computes with. Errors name the file, the node or initializer, and the problem.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "runtime/graph.hpp"

namespace edgeloop::runtime {

struct LoadLimits {
  size_t max_file_bytes = size_t{1} << 30;    // a model file larger than this is refused
  size_t max_tensor_bytes = size_t{1} << 30;  // any single tensor (initializer or planned)
};

Result<Graph> ParseOnnxModel(std::string_view bytes, const std::string& origin,
                             const LoadLimits& limits = {});

// A serialized onnx.TensorProto (as in the ONNX backend test data's *.pb files).
Result<OwnedTensor> ParseOnnxTensor(std::string_view bytes, const std::string& origin,
                                    const LoadLimits& limits = {});

}  // namespace edgeloop::runtime
