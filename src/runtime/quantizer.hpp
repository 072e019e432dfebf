// Post-training static quantization of an fp32 ONNX model to standard ONNX int8 (QOperator
// form: QuantizeLinear, QLinearConv, DequantizeLinear), so that any ONNX runtime can run it.
//
// Calibration runs the fp32 model with the edge runtime over the given batches and records
// every activation's range. Then:
//   - Conv with constant weights becomes QLinearConv: weights int8, symmetric, one scale per
//     output channel; bias int32 at scale x_scale * w_scale; activations uint8, asymmetric;
//   - Gemm with constant weights (a fully connected layer) becomes a 1x1 QLinearConv between
//     two Reshapes, which keeps its bias in the integer domain;
//   - a Relu, or a Clip with constant bounds around 0 (Relu6), that alone consumes such a
//     layer's output is folded into it (its calibrated range lies within the activation's
//     bounds, so saturation does the clamping);
//   - MaxPool, Flatten and Reshape pass quantized values through unchanged;
//   - an Add of two activations (a residual connection, with a Relu that alone follows it)
//     reads them through DequantizeLinear and is quantized again, so the sum stays 8-bit
//     (the runtime fuses the pattern into QLinearAdd, qdq.hpp);
//   - every other op stays fp32, with DequantizeLinear/QuantizeLinear inserted at the borders.
// The graph's inputs and outputs stay fp32, so callers do not change.
//
// With QuantFormat::kQdq the same quantization is written in QDQ form instead, as ONNX
// Runtime's quantizer writes it: each layer stays a float Conv or Gemm (and its Relu) between
// DequantizeLinear of its 8-bit input, weights (per output channel, axis 0) and int32 bias,
// and a QuantizeLinear of its output; MaxPool, Flatten and Reshape sit between a
// DequantizeLinear and a QuantizeLinear with equal parameters. Runtimes fuse these patterns
// back into integer kernels (qdq.hpp).
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"
#include "runtime/tensor.hpp"

namespace edgeloop::runtime {

struct QuantizeReport {
  size_t calibration_samples = 0;
  size_t quantized_layers = 0;            // Conv and Gemm nodes now in int8
  size_t fp32_bytes = 0, int8_bytes = 0;  // serialized model sizes
  std::vector<std::string> float_ops;     // op types left in fp32 (besides Q/DQ)
};

enum class QuantFormat { kQOperator, kQdq };

// calibration: input batches for the model's single input, fp32 with the model's layout.
Result<QuantizeReport> QuantizeModel(const std::string& fp32_path,
                                     const std::vector<OwnedTensor>& calibration,
                                     const std::string& int8_path,
                                     QuantFormat format = QuantFormat::kQOperator);

}  // namespace edgeloop::runtime
