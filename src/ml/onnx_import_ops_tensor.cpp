// Matrix products and the ops that move data around: Gemm, MatMul, Flatten, Reshape,
// Transpose, Concat, Softmax. Each refuses what would mix the batch into other dimensions,
// since the imported model must run with any batch size.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <numeric>

#include "ml/onnx_import_ops.hpp"

namespace edgeloop::ml::onnx_import {
namespace {

// axis in [-rank, rank) (or [-rank, rank] when `inclusive`) to [0, rank).
bool NormalizeAxis(int64_t axis, int64_t rank, bool inclusive, int64_t* out) {
  int64_t hi = inclusive ? rank : rank - 1;
  if (axis < -rank || axis > hi) return false;
  *out = axis < 0 ? axis + rank : axis;
  return true;
}

bool IsData(const NodeContext& c, size_t i) {
  return c.in(i).present && !c.in(i).is_constant();
}

class GemmOp : public NodeOp {
 public:
  GemmOp(float alpha, float beta, bool trans_a, bool trans_b)
      : alpha_(alpha), beta_(beta), trans_a_(trans_a), trans_b_(trans_b) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    auto a = trans_a_ ? in[0].t() : in[0];
    auto b = trans_b_ ? in[1].t() : in[1];
    auto y = torch::mm(a, b);
    if (alpha_ != 1.f) y = y * alpha_;
    if (in.size() > 2 && in[2].defined()) y = y + (beta_ != 1.f ? in[2] * beta_ : in[2]);
    return y;
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    std::vector<std::string> inputs = {in[0], in[1]};
    if (in.size() > 2 && !in[2].empty()) inputs.push_back(in[2]);
    auto* n = w.Node("Gemm", inputs, out);
    if (alpha_ != 1.f) OnnxGraphWriter::FloatAttr(n, "alpha", alpha_);
    if (beta_ != 1.f) OnnxGraphWriter::FloatAttr(n, "beta", beta_);
    if (trans_a_) OnnxGraphWriter::IntAttr(n, "transA", 1);
    if (trans_b_) OnnxGraphWriter::IntAttr(n, "transB", 1);
    return out;
  }
  std::vector<size_t> WeightInputs() const override { return {1, 2}; }
  std::optional<MatrixProduct> AsMatrixProduct() const override {
    return MatrixProduct{alpha_, beta_, trans_a_, trans_b_};
  }

 private:
  float alpha_, beta_;
  bool trans_a_, trans_b_;
};

Result<OpBuild> BuildGemm(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  EDGELOOP_RETURN_IF_ERROR(c.RequireRank(0, 2, 2));
  if (!c.in(1).present) return c.Fail(Errc::kFormat, "input 1 is missing");
  EDGELOOP_RETURN_IF_ERROR(c.RequireRank(1, 2, 2));
  const bool ta = c.Int("transA", 0) != 0, tb = c.Int("transB", 0) != 0;
  if (IsData(c, 0) && ta) return c.Fail(Errc::kUnsupported, "transA = 1 on data (the batch)");
  if (IsData(c, 1)) return c.Fail(Errc::kUnsupported, "input B must be a constant (weights)");
  const Dims& a = c.in(0).dims;
  const Dims& b = c.in(1).dims;
  int64_t m = ta ? a[1] : a[0], k = ta ? a[0] : a[1];
  int64_t kb = tb ? b[1] : b[0], n = tb ? b[0] : b[1];
  if (k != kb)
    return c.Fail(Errc::kMismatch, "A " + DimsString(a) + " and B " + DimsString(b) +
                                       " do not multiply (transA " + std::to_string(ta) +
                                       ", transB " + std::to_string(tb) + ")");
  Dims out = {m, n};
  if (c.in(2).present) {
    Dims bc;
    if (!BroadcastShapes(out, c.in(2).dims, &bc) || bc != out)
      return c.Fail(Errc::kMismatch,
                    "C " + DimsString(c.in(2).dims) + " does not broadcast to " +
                        (IsData(c, 0) ? "[N," + std::to_string(n) + "] for every batch size N"
                                      : DimsString(out)));
    if (IsData(c, 2) && c.in(2).dims.size() != 2)
      return c.Fail(Errc::kUnsupported, "C is data without the batch dimension");
  }
  return OpBuild{
      std::make_shared<GemmOp>(c.Float("alpha", 1.f), c.Float("beta", 1.f), ta, tb), out, {}};
}

class MatMulOp : public NodeOp {
 public:
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    return torch::matmul(in[0], in[1]);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    w.Node("MatMul", {in[0], in[1]}, out);
    return out;
  }
  std::vector<size_t> WeightInputs() const override { return {1}; }
  std::optional<MatrixProduct> AsMatrixProduct() const override { return MatrixProduct{}; }
};

Result<OpBuild> BuildMatMul(const NodeContext& c) {
  for (size_t i = 0; i < 2; ++i) {
    if (!c.in(i).present)
      return c.Fail(Errc::kFormat, "input " + std::to_string(i) + " is missing");
    EDGELOOP_RETURN_IF_ERROR(c.RequireRank(i, 2, 8));
  }
  const Dims& a = c.in(0).dims;
  const Dims& b = c.in(1).dims;
  if (a.back() != b[b.size() - 2])
    return c.Fail(Errc::kMismatch, DimsString(a) + " and " + DimsString(b) + " do not multiply");
  Dims lead;
  if (!BroadcastShapes(Dims(a.begin(), a.end() - 2), Dims(b.begin(), b.end() - 2), &lead))
    return c.Fail(Errc::kMismatch, "the leading dimensions of " + DimsString(a) + " and " +
                                       DimsString(b) + " do not broadcast");
  Dims out = lead;
  out.push_back(a[a.size() - 2]);
  out.push_back(b.back());
  // The batch must stay the first dimension: A's rows, or a leading dimension of B.
  if (IsData(c, 1) && (b.size() < 3 || out.size() != b.size()))
    return c.Fail(Errc::kUnsupported, "B is data whose batch would not stay the first dimension");
  if (IsData(c, 0) && out.size() != a.size())
    return c.Fail(Errc::kUnsupported, "broadcasting with B would move the batch dimension");
  return OpBuild{std::make_shared<MatMulOp>(), out, {}};
}

class FlattenOp : public NodeOp {
 public:
  explicit FlattenOp(int64_t axis) : axis_(axis) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    int64_t rows = 1, cols = 1;
    for (int64_t d = 0; d < in[0].dim(); ++d) (d < axis_ ? rows : cols) *= in[0].size(d);
    return in[0].reshape({rows, cols});
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    OnnxGraphWriter::IntAttr(w.Node("Flatten", {in[0]}, out), "axis", axis_);
    return out;
  }

 private:
  int64_t axis_;
};

Result<OpBuild> BuildFlatten(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  const Dims& x = c.in(0).dims;
  int64_t axis;
  if (!NormalizeAxis(c.Int("axis", 1), static_cast<int64_t>(x.size()), true, &axis))
    return c.Fail(Errc::kFormat, "axis is out of range for " + DimsString(x));
  if (IsData(c, 0) && axis == 0)
    return c.Fail(Errc::kUnsupported, "axis 0 flattens the batch dimension");
  Dims out = {1, 1};
  for (size_t d = 0; d < x.size(); ++d) out[static_cast<int64_t>(d) < axis ? 0 : 1] *= x[d];
  return OpBuild{std::make_shared<FlattenOp>(axis), out, {}};
}

class ReshapeOp : public NodeOp {
 public:
  // shape: the target with the batch (when the input is data) as -1 and every other
  // dimension resolved, so any batch size reshapes the same way.
  explicit ReshapeOp(Dims shape) : shape_(std::move(shape)) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    return in[0].reshape(shape_);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    w.Node("Reshape", {in[0], w.IntInitializer(prefix + ".shape", shape_)}, out);
    return out;
  }

 private:
  Dims shape_;
};

Result<OpBuild> BuildReshape(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  Dims target;
  std::vector<size_t> absorbed;
  if (c.opset() < 5) {
    target = c.Ints("shape", {});
  } else {
    EDGELOOP_RETURN_IF_ERROR(c.RequireConstant(1));
    const torch::Tensor& t = c.in(1).constant;
    if (t.dim() != 1 || (t.scalar_type() != torch::kInt64 && t.scalar_type() != torch::kInt32))
      return c.Fail(Errc::kFormat, "the shape must be a 1-D integer tensor");
    auto t64 = t.to(torch::kInt64).contiguous();
    target.assign(t64.data_ptr<int64_t>(), t64.data_ptr<int64_t>() + t64.numel());
    absorbed.push_back(1);
  }
  const Dims& x = c.in(0).dims;
  if (target.empty() || target.size() > 8)
    return c.Fail(Errc::kFormat, "target shape " + DimsString(target) + " has rank 0 or over 8");
  const bool allow_zero = c.opset() >= 14 && c.Int("allowzero", 0) != 0;
  Dims out(target.size());
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t v = target[i];
    if (v == 0 && !allow_zero) {
      if (i >= x.size()) return c.Fail(Errc::kFormat, "0 copies a dimension the input lacks");
      v = x[i];
    }
    if (v == -1) {
      if (infer_at >= 0) return c.Fail(Errc::kFormat, "more than one -1 in the target shape");
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    if (v == 0)
      return c.Fail(Errc::kUnsupported, "target shape " + DimsString(target) +
                                            " has a zero dimension (allowzero): empty tensors "
                                            "are not supported");
    if (v < 1) return c.Fail(Errc::kFormat, "target shape " + DimsString(target) + " is invalid");
    out[i] = v;
    known = NumElements({known, v});
    if (known < 0) return c.Fail(Errc::kFormat, "target shape overflows");
  }
  const int64_t total = NumElements(x);
  auto cannot = [&] {
    if (!IsData(c, 0))
      return c.Fail(Errc::kMismatch,
                    "cannot reshape " + DimsString(x) + " to " + DimsString(target));
    std::string from = "[N";
    for (size_t i = 1; i < x.size(); ++i) from += "," + std::to_string(x[i]);
    return c.Fail(Errc::kMismatch, "cannot reshape " + from + "] to " + DimsString(target) +
                                       " for every batch size N");
  };
  if (infer_at >= 0) {
    if (total % known != 0) return cannot();
    out[static_cast<size_t>(infer_at)] = total / known;
  }
  if (NumElements(out) != total) return cannot();
  Dims run = out;
  // Exported with a fixed batch of 1, the target spells the batch as 1; any batch fits the
  // model only when the first dimension follows it.
  if (IsData(c, 0) && out[0] == 1) run[0] = -1;
  return OpBuild{std::make_shared<ReshapeOp>(run), out, absorbed};
}

class TransposeOp : public NodeOp {
 public:
  explicit TransposeOp(Dims perm) : perm_(std::move(perm)) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    return in[0].permute(perm_);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    OnnxGraphWriter::IntsAttr(w.Node("Transpose", {in[0]}, out), "perm", perm_);
    return out;
  }

 private:
  Dims perm_;
};

Result<OpBuild> BuildTranspose(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  const Dims& x = c.in(0).dims;
  Dims reversed(x.size());
  std::iota(reversed.rbegin(), reversed.rend(), 0);
  Dims perm = c.Ints("perm", reversed);
  Dims sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  Dims identity(x.size());
  std::iota(identity.begin(), identity.end(), 0);
  if (sorted != identity)
    return c.Fail(Errc::kFormat, "perm " + DimsString(perm) + " is not a permutation of the " +
                                     std::to_string(x.size()) + " axes");
  if (IsData(c, 0) && perm[0] != 0) return c.Fail(Errc::kUnsupported, "moves the batch dimension");
  Dims out(x.size());
  for (size_t i = 0; i < perm.size(); ++i) out[i] = x[static_cast<size_t>(perm[i])];
  return OpBuild{std::make_shared<TransposeOp>(perm), out, {}};
}

class ConcatOp : public NodeOp {
 public:
  explicit ConcatOp(int64_t axis) : axis_(axis) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    return torch::cat(in, axis_);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    OnnxGraphWriter::IntAttr(w.Node("Concat", in, out), "axis", axis_);
    return out;
  }

 private:
  int64_t axis_;
};

Result<OpBuild> BuildConcat(const NodeContext& c) {
  if (c.num_inputs() == 0) return c.Fail(Errc::kFormat, "has no inputs");
  for (size_t i = 0; i < c.num_inputs(); ++i) EDGELOOP_RETURN_IF_ERROR(c.RequireData(i));
  const Dims& first = c.in(0).dims;
  if (c.opset() >= 4 && !c.Has("axis")) return c.Fail(Errc::kFormat, "needs an 'axis' attribute");
  int64_t axis;
  if (first.empty() ||
      !NormalizeAxis(c.Int("axis", 1), static_cast<int64_t>(first.size()), false, &axis))
    return c.Fail(Errc::kFormat, "axis is out of range for " + DimsString(first));
  if (IsData(c, 0) && axis == 0)
    return c.Fail(Errc::kUnsupported, "concatenates along the batch dimension");
  Dims out = first;
  out[static_cast<size_t>(axis)] = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    const Dims& d = c.in(i).dims;
    bool fits = d.size() == first.size();
    for (size_t j = 0; fits && j < d.size(); ++j)
      fits = static_cast<int64_t>(j) == axis || d[j] == first[j];
    if (!fits)
      return c.Fail(Errc::kMismatch, "input " + std::to_string(i) + " " + DimsString(d) +
                                         " does not fit " + DimsString(first) + " on axis " +
                                         std::to_string(axis));
    out[static_cast<size_t>(axis)] += d[static_cast<size_t>(axis)];
  }
  return OpBuild{std::make_shared<ConcatOp>(axis), out, {}};
}

class SoftmaxOp : public NodeOp {
 public:
  // coerced: the opset < 13 meaning, one softmax over all axes from `axis` on.
  SoftmaxOp(int64_t axis, bool coerced, Dims dims)
      : axis_(axis), coerced_(coerced), dims_(std::move(dims)) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    if (!coerced_) return torch::softmax(in[0], axis_);
    auto sizes = in[0].sizes().vec();
    int64_t rows = 1;
    for (int64_t d = 0; d < axis_; ++d) rows *= sizes[static_cast<size_t>(d)];
    return torch::softmax(in[0].reshape({rows, -1}), 1).reshape(sizes);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    if (!coerced_) {
      OnnxGraphWriter::IntAttr(w.Node("Softmax", {in[0]}, out), "axis", axis_);
      return out;
    }
    std::string flat = w.Fresh(prefix + "_rows");
    OnnxGraphWriter::IntAttr(w.Node("Flatten", {in[0]}, flat), "axis", axis_);
    std::string soft = w.Fresh(prefix + "_soft");
    OnnxGraphWriter::IntAttr(w.Node("Softmax", {flat}, soft), "axis", 1);
    Dims back = dims_;
    back[0] = -1;
    w.Node("Reshape", {soft, w.IntInitializer(prefix + ".shape", back)}, out);
    return out;
  }

 private:
  int64_t axis_;
  bool coerced_;
  Dims dims_;
};

Result<OpBuild> BuildSoftmax(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  const Dims& x = c.in(0).dims;
  const int64_t r = static_cast<int64_t>(x.size());
  int64_t axis;
  if (r == 0 || !NormalizeAxis(c.Int("axis", c.opset() >= 13 ? -1 : 1), r, false, &axis))
    return c.Fail(Errc::kFormat, "axis is out of range for " + DimsString(x));
  if (IsData(c, 0) && axis == 0)
    return c.Fail(Errc::kUnsupported, "normalizes across the batch dimension");
  const bool coerced = c.opset() < 13 && axis != r - 1;
  return OpBuild{std::make_shared<SoftmaxOp>(axis, coerced, x), x, {}};
}

}  // namespace

std::vector<OpEntry> TensorOps() {
  return {{"Gemm", BuildGemm},       {"MatMul", BuildMatMul},       {"Flatten", BuildFlatten},
          {"Reshape", BuildReshape}, {"Transpose", BuildTranspose}, {"Concat", BuildConcat},
          {"Softmax", BuildSoftmax}};
}

}  // namespace edgeloop::ml::onnx_import
