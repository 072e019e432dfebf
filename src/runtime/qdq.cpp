#include "runtime/qdq.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include "runtime/kernel.hpp"

namespace edgeloop::runtime {
namespace {

bool Is8Bit(DType t) {
  return t == DType::kUint8 || t == DType::kInt8;
}

int32_t IntAt(const OwnedTensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::kUint8:
      return t.as<uint8_t>()[i];
    case DType::kInt8:
      return t.as<int8_t>()[i];
    case DType::kInt32:
      return t.as<int32_t>()[i];
    default:
      return 0;
  }
}

// Quantization parameters read from constant scale and zero-point tensors: one entry for
// the tensor, or one per channel along `axis`.
struct QParams {
  std::vector<float> scale;
  std::vector<int32_t> zero;  // as many as scale; zeros when the zero point is omitted
  DType dtype = DType::kUint8;
  int64_t axis = 1;
  bool per_channel() const { return scale.size() > 1; }
  bool operator==(const QParams& o) const {
    return scale == o.scale && zero == o.zero && dtype == o.dtype &&
           (!per_channel() || axis == o.axis);
  }
};

// A constant 8-bit weight tensor and its parameters, with the channel axis normalised.
struct Weight {
  OwnedTensor q;
  QParams p;
};

// A fused layer's output activation: Relu, or Clip with its bounds.
struct Activation {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
};

OwnedTensor MakeTensor(DType dtype, Shape shape) {
  OwnedTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.assign(static_cast<size_t>(NumElements(t.shape)) * DTypeSize(dtype), 0);
  return t;
}

OwnedTensor Int64s(const std::vector<int64_t>& v) {
  OwnedTensor t = MakeTensor(DType::kInt64, {static_cast<int64_t>(v.size())});
  std::memcpy(t.bytes.data(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

Attribute IntAttr(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  return a;
}

class Fuser {
 public:
  explicit Fuser(Graph& g) : g_(g) {
    const size_t values = g.value_names.size();
    producer_.assign(values, -1);
    readers_.assign(values, {});
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (int id : g.nodes[i].outputs)
        if (id >= 0) producer_[static_cast<size_t>(id)] = static_cast<int>(i);
      for (int id : g.nodes[i].inputs)
        if (id >= 0) readers_[static_cast<size_t>(id)].push_back(static_cast<int>(i));
    }
    for (int id : g.outputs) graph_outputs_.insert(id);
  }

  std::vector<QdqPattern> Run() {
    std::vector<QdqPattern> report;
    const size_t count = g_.nodes.size();
    for (size_t i = 0; i < count; ++i) {
      const Node& n = g_.nodes[i];
      if (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear") continue;
      bool fed = false;
      for (int id : n.inputs) fed = fed || IsOp(Producer(id), "DequantizeLinear");
      if (!fed) continue;
      QdqPattern p{n.name, n.op_type, "", ""};
      if (n.op_type == "Conv" || n.op_type == "Gemm" || n.op_type == "MatMul")
        p.reason = FuseLinear(i);
      else if (n.op_type == "MaxPool" || n.op_type == "Reshape" || n.op_type == "Flatten")
        p.reason = FusePassThrough(i);
      else if (n.op_type == "Add")
        p.reason = FuseAdd(i);
      else
        p.reason = "no integer kernel for " + n.op_type + ": it runs in float";
      if (p.reason.empty()) p.fused_into = fused_into_;
      report.push_back(std::move(p));
    }
    Rebuild();
    return report;
  }

 private:
  const Node* Producer(int id) const {
    if (id < 0 || static_cast<size_t>(id) >= producer_.size()) return nullptr;
    int p = producer_[static_cast<size_t>(id)];
    return p < 0 ? nullptr : &g_.nodes[static_cast<size_t>(p)];
  }
  static bool IsOp(const Node* n, const char* op) { return n && n->op_type == op; }

  // The value's only reader, when it has exactly one and is not a graph output.
  int OnlyReader(int id) const {
    if (id < 0 || graph_outputs_.count(id)) return -1;
    const auto& r = readers_[static_cast<size_t>(id)];
    return r.size() == 1 ? r[0] : -1;
  }

  // A constant: an initializer, or the value of a Constant node.
  const OwnedTensor* Const(int id) const {
    if (id < 0) return nullptr;
    auto it = g_.initializers.find(id);
    if (it != g_.initializers.end()) return &it->second;
    const Node* p = Producer(id);
    if (IsOp(p, "Constant")) {
      auto a = p->attrs.find("value");
      if (a != p->attrs.end() && a->second.kind == Attribute::Kind::kTensor)
        return &a->second.tensor;
    }
    return nullptr;
  }

  std::optional<QParams> Params(const Node& qdq, std::string* why) const {
    const OwnedTensor* s = Const(qdq.Input(1));
    if (!s || s->dtype != DType::kFloat32 || s->shape.size() > 1) {
      *why = "the scale of '" + qdq.name + "' is not a constant float scalar or vector";
      return std::nullopt;
    }
    QParams p;
    const int64_t n = NumElements(s->shape);
    p.scale.assign(s->as<float>(), s->as<float>() + n);
    p.zero.assign(static_cast<size_t>(n), 0);
    p.axis = qdq.Int("axis", 1);
    if (qdq.Has("output_dtype") || qdq.Has("block_size")) {
      *why = "'" + qdq.name + "' uses attributes of a newer opset";
      return std::nullopt;
    }
    if (qdq.Input(2) >= 0) {
      const OwnedTensor* z = Const(qdq.Input(2));
      if (!z || NumElements(z->shape) != n) {
        *why = "the zero point of '" + qdq.name + "' is not a constant matching its scale";
        return std::nullopt;
      }
      p.dtype = z->dtype;
      for (int64_t i = 0; i < n; ++i) p.zero[static_cast<size_t>(i)] = IntAt(*z, i);
    }
    for (float v : p.scale)
      if (!(v > 0) || !std::isfinite(v)) {
        *why = "a scale of '" + qdq.name + "' is not positive and finite";
        return std::nullopt;
      }
    return p;
  }

  // Normalises p.axis for a tensor of `shape`; false when per-channel parameters do not fit.
  static bool FitAxis(QParams& p, const Shape& shape) {
    if (!p.per_channel()) return true;
    int64_t axis;
    if (!NormalizeAxis(p.axis, static_cast<int64_t>(shape.size()), &axis)) return false;
    p.axis = axis;
    return shape[static_cast<size_t>(axis)] == static_cast<int64_t>(p.scale.size());
  }

  // Channel of flat element i of `shape` along p.axis (0 for per-tensor parameters).
  static size_t ChannelOf(const QParams& p, const Shape& shape, int64_t i) {
    if (!p.per_channel()) return 0;
    int64_t inner = 1;
    for (size_t d = static_cast<size_t>(p.axis) + 1; d < shape.size(); ++d) inner *= shape[d];
    return static_cast<size_t>((i / inner) % shape[static_cast<size_t>(p.axis)]);
  }

  // Constant weights behind a DequantizeLinear: stored 8-bit, or float quantized by a
  // QuantizeLinear with the same parameters (the fake-quantized form of QAT exports).
  std::optional<Weight> ConstWeight(int id, std::string* why) const {
    const Node* dq = Producer(id);
    if (!IsOp(dq, "DequantizeLinear")) {
      *why = "its weights are float, not dequantized";
      return std::nullopt;
    }
    auto p = Params(*dq, why);
    if (!p) return std::nullopt;
    Weight w;
    w.p = *p;
    if (!Is8Bit(p->dtype)) {
      *why = "its weights are not 8-bit";
      return std::nullopt;
    }
    if (const OwnedTensor* q = Const(dq->Input(0))) {
      if (q->dtype != p->dtype) {
        *why = "its weights and their zero point differ in type";
        return std::nullopt;
      }
      w.q = *q;
    } else if (const Node* qn = Producer(dq->Input(0)); IsOp(qn, "QuantizeLinear")) {
      const OwnedTensor* f = Const(qn->Input(0));
      auto qp = Params(*qn, why);
      if (!f || f->dtype != DType::kFloat32) {
        *why = "its weights are not constant";
        return std::nullopt;
      }
      if (!qp) return std::nullopt;
      QParams a = *qp, b = *p;
      if (!FitAxis(a, f->shape) || !FitAxis(b, f->shape) || !(a == b)) {
        *why = "its weights are quantized and dequantized with different parameters";
        return std::nullopt;
      }
      w.q = MakeTensor(p->dtype, f->shape);
      const float lo = p->dtype == DType::kUint8 ? 0.0f : -128.0f;
      const float hi = p->dtype == DType::kUint8 ? 255.0f : 127.0f;
      for (int64_t i = 0; i < NumElements(f->shape); ++i) {
        const size_t c = ChannelOf(b, f->shape, i);
        const float v = std::clamp(
            std::nearbyint(f->as<float>()[i] / b.scale[c]) + static_cast<float>(b.zero[c]), lo, hi);
        if (p->dtype == DType::kUint8)
          w.q.as<uint8_t>()[i] = static_cast<uint8_t>(v);
        else
          w.q.as<int8_t>()[i] = static_cast<int8_t>(v);
      }
    } else {
      *why = "its weights are not constant";
      return std::nullopt;
    }
    if (!FitAxis(w.p, w.q.shape)) {
      *why = "its weights' per-channel parameters do not match their shape";
      return std::nullopt;
    }
    return w;
  }

  // A constant bias as float: stored float, or dequantized from int32 or 8-bit.
  std::optional<std::vector<float>> ConstBias(int id, std::string* why) const {
    if (const OwnedTensor* b = Const(id)) {
      if (b->dtype != DType::kFloat32) {
        *why = "its bias is not float";
        return std::nullopt;
      }
      return std::vector<float>(b->as<float>(), b->as<float>() + NumElements(b->shape));
    }
    const Node* dq = Producer(id);
    const OwnedTensor* q = IsOp(dq, "DequantizeLinear") ? Const(dq->Input(0)) : nullptr;
    if (!q) {
      *why = "its bias is not constant";
      return std::nullopt;
    }
    auto p = Params(*dq, why);
    if (!p) return std::nullopt;
    if (!FitAxis(*p, q->shape)) {
      *why = "its bias's per-channel parameters do not match its shape";
      return std::nullopt;
    }
    std::vector<float> out(static_cast<size_t>(NumElements(q->shape)));
    for (size_t i = 0; i < out.size(); ++i) {
      const size_t c = ChannelOf(*p, q->shape, static_cast<int64_t>(i));
      out[i] = static_cast<float>(IntAt(*q, static_cast<int64_t>(i)) - p->zero[c]) * p->scale[c];
    }
    return out;
  }

  // The activation of node `act` (Relu or Clip), or nullopt when its bounds are not constant.
  std::optional<Activation> ActivationOf(const Node& act) const {
    Activation a;
    if (act.op_type == "Relu") {
      a.lo = 0;
      return a;
    }
    if (act.opset < 11) {
      a.lo = act.Float("min", a.lo);
      a.hi = act.Float("max", a.hi);
      return a;
    }
    for (size_t k = 1; k <= 2; ++k) {
      if (act.Input(k) < 0) continue;
      const OwnedTensor* t = Const(act.Input(k));
      if (!t || t->dtype != DType::kFloat32 || NumElements(t->shape) != 1) return std::nullopt;
      (k == 1 ? a.lo : a.hi) = t->as<float>()[0];
    }
    return a;
  }

  // Output chain of a layer: [Relu|Clip ->] QuantizeLinear. Sets *q_index (and *act_index,
  // or -1) and returns "" when it fits.
  std::string OutputChain(const Node& layer, int* act_index, int* q_index, QParams* yp) const {
    if (layer.outputs.size() != 1) return "it has more than one output";
    int r = OnlyReader(layer.Output(0));
    if (r < 0) return "its float output is read by more than one node, or is a graph output";
    *act_index = -1;
    const Node* next = &g_.nodes[static_cast<size_t>(r)];
    std::optional<Activation> act;
    if (next->op_type == "Relu" || next->op_type == "Clip") {
      act = ActivationOf(*next);
      if (!act) return "its " + next->op_type + " has bounds that are not constant";
      *act_index = r;
      r = OnlyReader(next->Output(0));
      if (r < 0) return "its " + next->op_type + "'s output is read by more than one node";
      next = &g_.nodes[static_cast<size_t>(r)];
    }
    if (next->op_type != "QuantizeLinear") return "its output is not quantized";
    std::string why;
    auto p = Params(*next, &why);
    if (!p) return why;
    if (p->per_channel()) return "its output has per-channel parameters";
    if (!Is8Bit(p->dtype)) return "its output is not quantized to 8 bits";
    if (act) {
      // The activation is implied when the output's saturation already clamps there.
      const float lo = p->dtype == DType::kUint8 ? 0.0f : -128.0f;
      const float hi = p->dtype == DType::kUint8 ? 255.0f : 127.0f;
      const float zp = static_cast<float>(p->zero[0]), s = p->scale[0];
      const bool lo_ok = std::isinf(act->lo) || std::nearbyint(act->lo / s) + zp <= lo;
      const bool hi_ok = std::isinf(act->hi) || std::nearbyint(act->hi / s) + zp >= hi;
      if (!lo_ok || !hi_ok)
        return "its " + g_.nodes[static_cast<size_t>(*act_index)].op_type +
               " is not implied by the output's quantization range";
    }
    *q_index = r;
    *yp = *p;
    return "";
  }

  int AddConst(OwnedTensor t, const std::string& name) {
    const int id = AddValue(name);
    g_.initializers[id] = std::move(t);
    return id;
  }
  int AddValue(const std::string& name) {
    g_.value_names.push_back(name);
    return static_cast<int>(g_.value_names.size() - 1);
  }
  Node MakeNode(const Node& like, const std::string& op, const std::string& suffix,
                std::vector<int> in, std::vector<int> out) const {
    Node n;
    n.name = like.name + suffix;
    n.op_type = op;
    n.opset = like.opset;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    return n;
  }

  // Conv, Gemm or MatMul between DequantizeLinear and QuantizeLinear -> QLinearConv.
  std::string FuseLinear(size_t i) {
    const Node& L = g_.nodes[i];
    const Node* dqx = Producer(L.Input(0));
    if (!IsOp(dqx, "DequantizeLinear")) return "its input is float, not dequantized";
    std::string why;
    auto xp = Params(*dqx, &why);
    if (!xp) return why;
    if (xp->per_channel()) return "its input has per-channel parameters";
    if (!Is8Bit(xp->dtype)) return "its input is not 8-bit";
    auto w = ConstWeight(L.Input(1), &why);
    if (!w) return why;

    // The weights as [M, ...] rows, one row per output channel, with per-row parameters.
    const bool conv = L.op_type == "Conv";
    OwnedTensor rows;
    int64_t m = 0, k = 0;
    if (conv) {
      if (w->q.shape.size() < 3) return "its weights are not a convolution kernel";
      if (w->p.per_channel() && w->p.axis != 0) return "its weight scales are not per output";
      m = w->q.shape[0];
      k = NumElements(w->q.shape) / std::max<int64_t>(m, 1);
      rows = w->q;
    } else {
      if (w->q.shape.size() != 2) return "its weights are not a matrix";
      bool trans_b = false;
      if (L.op_type == "Gemm") {
        if (L.Int("transA", 0) != 0) return "it transposes its input (transA)";
        if (L.Float("alpha", 1.0f) != 1.0f) return "alpha is not 1";
        if (L.Input(2) >= 0 && L.Float("beta", 1.0f) != 1.0f) return "beta is not 1";
        trans_b = L.Int("transB", 0) != 0;
      }
      // [K, N] (or [N, K] with transB) -> [N, K]: output channels on axis 0.
      k = trans_b ? w->q.shape[1] : w->q.shape[0];
      m = trans_b ? w->q.shape[0] : w->q.shape[1];
      if (w->p.per_channel() && w->p.axis != (trans_b ? 0 : 1))
        return "its weight scales are not per output";
      rows = MakeTensor(w->q.dtype, {m, k, 1, 1});
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < k; ++c)
          rows.bytes[static_cast<size_t>(r * k + c)] =
              w->q.bytes[static_cast<size_t>(trans_b ? r * k + c : c * m + r)];
    }
    if (m <= 0 || k <= 0) return "its weights are empty";

    std::vector<int32_t> bias;
    const int b_id = L.op_type == "MatMul" ? -1 : L.Input(2);
    if (b_id >= 0) {
      auto b = ConstBias(b_id, &why);
      if (!b) return why;
      if (static_cast<int64_t>(b->size()) != m) return "its bias is not one value per output";
      bias.resize(static_cast<size_t>(m));
      for (int64_t c = 0; c < m; ++c) {
        const double s = static_cast<double>(xp->scale[0]) *
                         w->p.scale[w->p.per_channel() ? static_cast<size_t>(c) : 0];
        const double v = std::nearbyint((*b)[static_cast<size_t>(c)] / s);
        if (!(std::fabs(v) < 2147483647.0)) return "its bias does not fit in int32";
        bias[static_cast<size_t>(c)] = static_cast<int32_t>(v);
      }
    }
    int act = -1, qi = -1;
    QParams yp;
    if (auto r = OutputChain(L, &act, &qi, &yp); !r.empty()) return r;

    // The rewrite.
    const Node& q = g_.nodes[static_cast<size_t>(qi)];
    const std::string base = g_.value_names[static_cast<size_t>(L.Output(0))];
    OwnedTensor ws = MakeTensor(DType::kFloat32, {static_cast<int64_t>(w->p.scale.size())});
    std::memcpy(ws.bytes.data(), w->p.scale.data(), w->p.scale.size() * sizeof(float));
    OwnedTensor wz = MakeTensor(w->q.dtype, {static_cast<int64_t>(w->p.zero.size())});
    for (size_t c = 0; c < w->p.zero.size(); ++c)
      wz.bytes[c] = static_cast<unsigned char>(w->p.zero[c] & 0xff);
    const int w_id = AddConst(std::move(rows), base + ":w_q");
    const int ws_id = AddConst(std::move(ws), base + ":w_scale");
    const int wz_id = AddConst(std::move(wz), base + ":w_zero_point");
    int bias_id = -1;
    if (!bias.empty()) {
      OwnedTensor bt = MakeTensor(DType::kInt32, {m});
      std::memcpy(bt.bytes.data(), bias.data(), bias.size() * sizeof(int32_t));
      bias_id = AddConst(std::move(bt), base + ":bias_q");
    }
    std::vector<Node> out;
    int x_in = dqx->Input(0), y_out = q.Output(0);
    const bool fc = !conv;
    if (fc) {
      const int x4 = AddValue(base + ":x_4d");
      out.push_back(MakeNode(L, "Reshape", "/qdq_in",
                             {x_in, AddConst(Int64s({-1, k, 1, 1}), base + ":shape_4d")}, {x4}));
      x_in = x4;
      y_out = AddValue(base + ":y_4d");
    }
    Node qc = MakeNode(
        L, "QLinearConv", "",
        {x_in, dqx->Input(1), dqx->Input(2), w_id, ws_id, wz_id, q.Input(1), q.Input(2)}, {y_out});
    if (bias_id >= 0) qc.inputs.push_back(bias_id);
    if (conv) qc.attrs = L.attrs;
    out.push_back(std::move(qc));
    if (L.op_type == "Gemm") {
      out.push_back(MakeNode(L, "Reshape", "/qdq_out",
                             {y_out, AddConst(Int64s({-1, m}), base + ":shape_2d")},
                             {q.Output(0)}));
    } else if (L.op_type == "MatMul") {
      // Back to the input's leading dimensions and N: a Shape chain, folded at planning.
      const int shape = AddValue(base + ":x_shape"), lead = AddValue(base + ":lead"),
                target = AddValue(base + ":y_shape");
      out.push_back(MakeNode(L, "Shape", "/qdq_shape", {dqx->Input(0)}, {shape}));
      out.push_back(MakeNode(L, "Slice", "/qdq_lead",
                             {shape, AddConst(Int64s({0}), base + ":zero"),
                              AddConst(Int64s({-1}), base + ":minus_one")},
                             {lead}));
      Node cat = MakeNode(L, "Concat", "/qdq_target", {lead, AddConst(Int64s({m}), base + ":n")},
                          {target});
      cat.attrs["axis"] = IntAttr(0);
      out.push_back(std::move(cat));
      out.push_back(MakeNode(L, "Reshape", "/qdq_out", {y_out, target}, {q.Output(0)}));
    }
    return Fused(i, std::move(out), act, qi, "QLinearConv");
  }

  // Records a fusion: node i becomes `nodes`; its activation (or -1) and QuantizeLinear go.
  std::string Fused(size_t i, std::vector<Node> nodes, int act, int qi, const char* into) {
    replace_[i] = std::move(nodes);
    if (act >= 0) drop_.insert(static_cast<size_t>(act));
    drop_.insert(static_cast<size_t>(qi));
    fused_into_ = into;
    return "";
  }

  // Add of two dequantized tensors, quantized (through an implied Relu or Clip) ->
  // QLinearAdd: the residual connections of int8 ResNets and MobileNets.
  std::string FuseAdd(size_t i) {
    const Node& add = g_.nodes[i];
    const Node* da = Producer(add.Input(0));
    const Node* db = Producer(add.Input(1));
    if (!IsOp(da, "DequantizeLinear") || !IsOp(db, "DequantizeLinear"))
      return "one of its inputs is float, not dequantized";
    std::string why;
    auto ap = Params(*da, &why);
    if (!ap) return why;
    auto bp = Params(*db, &why);
    if (!bp) return why;
    if (ap->per_channel() || bp->per_channel() || !Is8Bit(ap->dtype) || !Is8Bit(bp->dtype))
      return "its inputs are not 8-bit per tensor";
    int act = -1, qi = -1;
    QParams yp;
    if (auto r = OutputChain(add, &act, &qi, &yp); !r.empty()) return r;
    const Node& q = g_.nodes[static_cast<size_t>(qi)];
    return Fused(i,
                 {MakeNode(add, "QLinearAdd", "",
                           {da->Input(0), da->Input(1), da->Input(2), db->Input(0), db->Input(1),
                            db->Input(2), q.Input(1), q.Input(2)},
                           {q.Output(0)})},
                 act, qi, "QLinearAdd");
  }

  // MaxPool, Reshape or Flatten between DequantizeLinear and QuantizeLinear with the same
  // parameters: the op runs on the quantized values (max and reshaping commute with them).
  std::string FusePassThrough(size_t i) {
    const Node& P = g_.nodes[i];
    const Node* dq = Producer(P.Input(0));
    if (!IsOp(dq, "DequantizeLinear")) return "its data input is float, not dequantized";
    if (P.outputs.size() != 1) return "it has more than one output";
    std::string why;
    auto xp = Params(*dq, &why);
    if (!xp) return why;
    if (xp->per_channel() || !Is8Bit(xp->dtype)) return "its input is not 8-bit per tensor";
    const int r = OnlyReader(P.Output(0));
    if (r < 0 || g_.nodes[static_cast<size_t>(r)].op_type != "QuantizeLinear")
      return "its output is not quantized, or has other readers";
    const Node& q = g_.nodes[static_cast<size_t>(r)];
    auto yp = Params(q, &why);
    if (!yp) return why;
    if (!(*yp == *xp)) return "its input and output are quantized differently";
    Node copy = P;
    copy.inputs[0] = dq->Input(0);
    copy.outputs[0] = q.Output(0);
    return Fused(i, {std::move(copy)}, -1, r, P.op_type.c_str());
  }

  // The new node list; then Q/DQ nodes and initializers that nothing reads any more go.
  void Rebuild() {
    if (replace_.empty()) return;
    std::set<int> read_before;
    for (const Node& n : g_.nodes)
      for (int id : n.inputs)
        if (id >= 0) read_before.insert(id);
    std::vector<Node> nodes;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (drop_.count(i)) continue;
      auto it = replace_.find(i);
      if (it == replace_.end()) {
        nodes.push_back(std::move(g_.nodes[i]));
        continue;
      }
      for (Node& n : it->second) nodes.push_back(std::move(n));
    }
    for (bool changed = true; changed;) {
      changed = false;
      std::vector<int> readers(g_.value_names.size(), 0);
      for (const Node& n : nodes)
        for (int id : n.inputs)
          if (id >= 0) ++readers[static_cast<size_t>(id)];
      for (int id : g_.outputs) ++readers[static_cast<size_t>(id)];
      std::vector<Node> kept;
      for (Node& n : nodes) {
        bool dead = n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear";
        for (int id : n.outputs) dead = dead && (id < 0 || readers[static_cast<size_t>(id)] == 0);
        if (dead)
          changed = true;
        else
          kept.push_back(std::move(n));
      }
      nodes = std::move(kept);
    }
    std::set<int> read_after(g_.outputs.begin(), g_.outputs.end());
    for (const Node& n : nodes)
      for (int id : n.inputs)
        if (id >= 0) read_after.insert(id);
    for (auto it = g_.initializers.begin(); it != g_.initializers.end();) {
      if (read_before.count(it->first) && !read_after.count(it->first))
        it = g_.initializers.erase(it);
      else
        ++it;
    }
    g_.nodes = std::move(nodes);
  }

  Graph& g_;
  std::vector<int> producer_;
  std::vector<std::vector<int>> readers_;
  std::set<int> graph_outputs_;
  std::map<size_t, std::vector<Node>> replace_;
  std::set<size_t> drop_;
  std::string fused_into_;
};

}  // namespace

std::vector<QdqPattern> FuseQdq(Graph& graph, bool apply) {
  // Most graphs have no DequantizeLinear at all: nothing to index, and no copy to report on.
  if (std::none_of(graph.nodes.begin(), graph.nodes.end(),
                   [](const Node& n) { return n.op_type == "DequantizeLinear"; }))
    return {};
  if (apply) return Fuser(graph).Run();
  Graph copy = graph;
  return Fuser(copy).Run();
}

}  // namespace edgeloop::runtime
