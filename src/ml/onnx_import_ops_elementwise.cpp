// Elementwise ops: activations, Clip, Dropout, Identity and the four binary arithmetic ops.
// HardSigmoid and HardSwish export as Mul/Add/Clip, which the edge runtime runs.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <limits>

#include "ml/onnx_import_ops.hpp"

namespace edgeloop::ml::onnx_import {
namespace {

// A scalar constant input (Clip bounds, Dropout ratio), as a float.
Result<float> ScalarInput(const NodeContext& c, size_t i) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireConstant(i));
  const torch::Tensor& t = c.in(i).constant;
  if (t.numel() != 1)
    return c.Fail(Errc::kMismatch, "input " + std::to_string(i) + " must be a scalar, it has " +
                                       std::to_string(t.numel()) + " elements");
  return t.to(torch::kFloat64).item<float>();
}

enum class UnaryKind { kRelu, kSigmoid, kTanh, kIdentity };

class UnaryOp : public NodeOp {
 public:
  UnaryOp(UnaryKind kind, std::string onnx_op) : kind_(kind), onnx_op_(std::move(onnx_op)) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    switch (kind_) {
      case UnaryKind::kRelu:
        return torch::relu(in[0]);
      case UnaryKind::kSigmoid:
        return torch::sigmoid(in[0]);
      case UnaryKind::kTanh:
        return torch::tanh(in[0]);
      case UnaryKind::kIdentity:
        break;
    }
    return in[0];
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    if (kind_ == UnaryKind::kIdentity) return in[0];
    std::string out = w.Fresh(prefix);
    w.Node(onnx_op_, {in[0]}, out);
    return out;
  }

 private:
  UnaryKind kind_;
  std::string onnx_op_;
};

template <UnaryKind kKind>
Result<OpBuild> BuildUnary(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  return OpBuild{std::make_shared<UnaryOp>(kKind, c.op_type()), c.in(0).dims, {}};
}

std::string WriteClip(OnnxGraphWriter& w, const std::string& x, std::optional<float> lo,
                      std::optional<float> hi, const std::string& prefix) {
  if (!lo && !hi) return x;
  std::string out = w.Fresh(prefix);
  w.Node("Clip",
         {x, lo ? w.Initializer(prefix + ".min", torch::tensor(*lo)) : "",
          hi ? w.Initializer(prefix + ".max", torch::tensor(*hi)) : ""},
         out);
  return out;
}

// max(0, min(1, alpha * x + beta)) as Mul, Add, Clip.
std::string WriteHardSigmoid(OnnxGraphWriter& w, const std::string& x, float alpha, float beta,
                             const std::string& prefix) {
  std::string scaled = w.Fresh(prefix + "_scaled");
  w.Node("Mul", {x, w.Initializer(prefix + ".alpha", torch::tensor(alpha))}, scaled);
  std::string shifted = w.Fresh(prefix + "_shifted");
  w.Node("Add", {scaled, w.Initializer(prefix + ".beta", torch::tensor(beta))}, shifted);
  return WriteClip(w, shifted, 0.f, 1.f, prefix + "_clip");
}

class ClipOp : public NodeOp {
 public:
  ClipOp(std::optional<float> lo, std::optional<float> hi) : lo_(lo), hi_(hi) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    if (!lo_ && !hi_) return in[0];
    c10::optional<c10::Scalar> lo, hi;
    if (lo_) lo = *lo_;
    if (hi_) hi = *hi_;
    return torch::clamp(in[0], lo, hi);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    return WriteClip(w, in[0], lo_, hi_, prefix);
  }

 private:
  std::optional<float> lo_, hi_;
};

Result<OpBuild> BuildClip(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  std::optional<float> lo, hi;
  std::vector<size_t> absorbed;
  if (c.opset() < 11) {
    // Bounds are attributes before opset 11; absent means unbounded.
    if (c.Has("min")) lo = c.Float("min", 0);
    if (c.Has("max")) hi = c.Float("max", 0);
  } else {
    if (c.in(1).present) {
      EDGELOOP_ASSIGN_OR_RETURN(lo, ScalarInput(c, 1));
      absorbed.push_back(1);
    }
    if (c.in(2).present) {
      EDGELOOP_ASSIGN_OR_RETURN(hi, ScalarInput(c, 2));
      absorbed.push_back(2);
    }
  }
  if ((lo && std::isnan(*lo)) || (hi && std::isnan(*hi)))
    return c.Fail(Errc::kFormat, "a bound is NaN");
  return OpBuild{std::make_shared<ClipOp>(lo, hi), c.in(0).dims, absorbed};
}

class HardSigmoidOp : public NodeOp {
 public:
  HardSigmoidOp(float alpha, float beta) : alpha_(alpha), beta_(beta) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    return torch::clamp(in[0] * alpha_ + beta_, 0.0, 1.0);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    return WriteHardSigmoid(w, in[0], alpha_, beta_, prefix);
  }

 private:
  float alpha_, beta_;
};

Result<OpBuild> BuildHardSigmoid(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  return OpBuild{std::make_shared<HardSigmoidOp>(c.Float("alpha", 0.2f), c.Float("beta", 0.5f)),
                 c.in(0).dims,
                 {}};
}

class HardSwishOp : public NodeOp {
 public:
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    return torch::hardswish(in[0]);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    // x * HardSigmoid(x) with alpha 1/6, beta 1/2, as ONNX defines HardSwish.
    std::string gate = WriteHardSigmoid(w, in[0], 1.f / 6.f, 0.5f, prefix + "_gate");
    std::string out = w.Fresh(prefix);
    w.Node("Mul", {in[0], gate}, out);
    return out;
  }
};

Result<OpBuild> BuildHardSwish(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  return OpBuild{std::make_shared<HardSwishOp>(), c.in(0).dims, {}};
}

class DropoutOp : public NodeOp {
 public:
  explicit DropoutOp(float ratio) : ratio_(ratio) {}
  // The file's dropout applies while training, as in the framework that exported it.
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool training) const override {
    if (!training || ratio_ <= 0) return in[0];
    return torch::dropout(in[0], ratio_, true);
  }
  std::string Export(OnnxGraphWriter&, const std::vector<std::string>& in,
                     const std::string&) const override {
    return in[0];  // the identity at inference
  }

 private:
  float ratio_;
};

Result<OpBuild> BuildDropout(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  float ratio = 0.5f;
  std::vector<size_t> absorbed;
  if (c.opset() < 12) {
    ratio = c.Float("ratio", 0.5f);
  } else {
    if (c.in(1).present) {
      EDGELOOP_ASSIGN_OR_RETURN(ratio, ScalarInput(c, 1));
      absorbed.push_back(1);
    }
    // training_mode: edgeloop decides when the model trains.
    if (c.in(2).present) {
      EDGELOOP_RETURN_IF_ERROR(c.RequireConstant(2));
      absorbed.push_back(2);
    }
  }
  if (!(ratio >= 0 && ratio < 1)) return c.Fail(Errc::kFormat, "ratio must be in [0, 1)");
  return OpBuild{std::make_shared<DropoutOp>(ratio), c.in(0).dims, absorbed};
}

enum class BinaryKind { kAdd, kSub, kMul, kDiv };

class BinaryOp : public NodeOp {
 public:
  // b_aligned: the second input, when it is a constant the op re-shaped at build (opset < 7
  // broadcasting along an axis); undefined otherwise.
  BinaryOp(BinaryKind kind, std::string onnx_op, torch::Tensor b_aligned)
      : kind_(kind), onnx_op_(std::move(onnx_op)), b_aligned_(std::move(b_aligned)) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    const torch::Tensor& b = b_aligned_.defined() ? b_aligned_ : in[1];
    switch (kind_) {
      case BinaryKind::kAdd:
        return in[0] + b;
      case BinaryKind::kSub:
        return in[0] - b;
      case BinaryKind::kMul:
        return in[0] * b;
      case BinaryKind::kDiv:
        break;
    }
    return in[0] / b;
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string b = b_aligned_.defined() ? w.Initializer(prefix + ".b", b_aligned_) : in[1];
    std::string out = w.Fresh(prefix);
    w.Node(onnx_op_, {in[0], b}, out);
    return out;
  }

 private:
  BinaryKind kind_;
  std::string onnx_op_;
  torch::Tensor b_aligned_;
};

template <BinaryKind kKind>
Result<OpBuild> BuildBinary(const NodeContext& c) {
  for (size_t i = 0; i < 2; ++i)
    if (!c.in(i).present)
      return c.Fail(Errc::kFormat, "input " + std::to_string(i) + " is missing");
  Dims a = c.in(0).dims, b = c.in(1).dims;
  torch::Tensor b_aligned;
  std::vector<size_t> absorbed;
  // Before opset 7 broadcasting was opt-in and B lined up with A starting at `axis`.
  if (c.opset() < 7 && c.Int("broadcast", 0) != 0 && c.Has("axis") && b.size() < a.size()) {
    int64_t axis = c.Int("axis", 0);
    if (axis < 0) axis += static_cast<int64_t>(a.size());
    if (axis < 0 || axis + static_cast<int64_t>(b.size()) > static_cast<int64_t>(a.size()))
      return c.Fail(Errc::kFormat, "broadcast axis " + std::to_string(axis) + " is out of range");
    if (!c.in(1).is_constant())
      return c.Fail(Errc::kUnsupported, "axis broadcasting of a non-constant input");
    b.resize(a.size() - static_cast<size_t>(axis), 1);
    b_aligned = c.in(1).constant.reshape(b);
    absorbed.push_back(1);
  }
  Dims out;
  if (!BroadcastShapes(a, b, &out))
    return c.Fail(Errc::kMismatch,
                  "shapes " + DimsString(a) + " and " + DimsString(b) + " do not broadcast");
  for (size_t i = 0; i < 2; ++i)
    if (!c.in(i).is_constant() && out.size() != c.in(i).dims.size())
      return c.Fail(Errc::kMismatch,
                    "broadcasting with a higher-rank constant would move the "
                    "batch dimension");
  const char* names[] = {"Add", "Sub", "Mul", "Div"};
  return OpBuild{std::make_shared<BinaryOp>(kKind, names[static_cast<int>(kKind)], b_aligned), out,
                 absorbed};
}

}  // namespace

std::vector<OpEntry> ElementwiseOps() {
  return {{"Relu", BuildUnary<UnaryKind::kRelu>},
          {"Sigmoid", BuildUnary<UnaryKind::kSigmoid>},
          {"Tanh", BuildUnary<UnaryKind::kTanh>},
          {"Identity", BuildUnary<UnaryKind::kIdentity>},
          {"Clip", BuildClip},
          {"HardSigmoid", BuildHardSigmoid},
          {"HardSwish", BuildHardSwish},
          {"Dropout", BuildDropout},
          {"Add", BuildBinary<BinaryKind::kAdd>},
          {"Sub", BuildBinary<BinaryKind::kSub>},
          {"Mul", BuildBinary<BinaryKind::kMul>},
          {"Div", BuildBinary<BinaryKind::kDiv>}};
}

}  // namespace edgeloop::ml::onnx_import
