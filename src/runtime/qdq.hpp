// int8 models in QDQ form (QuantizeLinear/DequantizeLinear around float ops, as ONNX
// Runtime's and PyTorch's quantizers write them) run on the integer kernels: at load, the fast
// backend rewrites
//   DequantizeLinear -> Conv | Gemm | MatMul [-> Relu | Clip] -> QuantizeLinear
// into QLinearConv (a fully connected layer as a 1x1 QLinearConv between Reshapes, the form
// edgeloop's own quantizer writes), with constant 8-bit weights (or float weights behind a
// QuantizeLinear, which are quantized here), a float or int32 bias, per-tensor or per-channel
// weight scales; and
//   DequantizeLinear -> MaxPool | Reshape | Flatten -> QuantizeLinear with the same parameters
// into the op on the quantized values; and two DequantizeLinear -> Add [-> Relu] ->
// QuantizeLinear into QLinearAdd (ONNX Runtime's contrib op, the residual connections). DequantizeLinear and QuantizeLinear nodes left unread
// are removed. A pattern that cannot be fused stays as written, in float, and is reported
// with the reason.
#pragma once

#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace edgeloop::runtime {

// A node fed by a DequantizeLinear (Q/DQ nodes themselves excluded).
struct QdqPattern {
  std::string node;        // the node's name
  std::string op_type;     // its op
  std::string fused_into;  // the integer op it became ("QLinearConv", "MaxPool", ...), or ""
  std::string reason;      // why it runs in float, when not fused
};

// Rewrites `graph` in place when `apply`; otherwise only reports what it would do.
std::vector<QdqPattern> FuseQdq(Graph& graph, bool apply);

}  // namespace edgeloop::runtime
