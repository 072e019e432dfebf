#include "runtime/quantizer.hpp"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "common/file.hpp"
#include "runtime/model.hpp"

namespace edgeloop::runtime {
namespace {

struct Range {
  float lo = 0, hi = 0;
};

struct QParams {
  std::string value;              // name of the uint8 tensor
  std::string scale, zero_point;  // initializer names
};

// uint8 asymmetric parameters covering [min(lo, 0), max(hi, 0)].
std::pair<float, uint8_t> ActivationParams(Range r) {
  float lo = std::min(r.lo, 0.0f), hi = std::max(r.hi, 0.0f);
  float scale = (hi - lo) / 255.0f;
  if (scale <= 0) scale = 1.0f;
  float zp = std::nearbyint(-lo / scale);
  return {scale, static_cast<uint8_t>(std::clamp(zp, 0.0f, 255.0f))};
}

class Rewriter {
 public:
  Rewriter(const onnx::ModelProto& in, std::map<std::string, Range> ranges, bool qdq)
      : in_(in), ranges_(std::move(ranges)), qdq_(qdq) {
    for (const auto& t : in.graph().initializer()) inits_[t.name()] = &t;
    for (const auto& n : in.graph().node())
      for (const auto& i : n.input()) ++consumers_[i];
    for (const auto& o : in.graph().output()) ++consumers_[o.name()];
  }

  Result<onnx::ModelProto> Run(QuantizeReport* report) {
    out_ = in_;
    auto* g = out_.mutable_graph();
    g->clear_node();
    g->clear_initializer();
    for (const auto& in : in_.graph().input()) float_.insert(in.name());
    for (const auto& kv : inits_) float_.insert(kv.first);
    const auto& nodes = in_.graph().node();
    std::set<int> skip;
    for (int i = 0; i < nodes.size(); ++i) {
      if (skip.count(i)) continue;
      const auto& n = nodes[i];
      // A single Relu consumer, or a Clip whose bounds hold 0 (Relu6), is folded into the
      // quantized layer: the output's calibrated range lies within the activation's bounds,
      // so saturation does the clamping.
      int relu = -1;
      if (n.output_size() == 1 && consumers_[n.output(0)] == 1)
        for (int j = i + 1; j < nodes.size(); ++j)
          if (nodes[j].input_size() > 0 && nodes[j].input(0) == n.output(0) &&
              (nodes[j].op_type() == "Relu" || FoldableClip(nodes[j])))
            relu = j;
      const std::string out_name = relu >= 0         ? nodes[relu].output(0)
                                   : n.output_size() ? n.output(0)
                                                     : "";
      if (n.op_type() == "Conv" && Quantizable(n, 1, n.input_size() > 2 ? 2 : -1)) {
        EDGELOOP_RETURN_IF_ERROR(EmitQConv(n, n.input(0), n.input(1),
                                           n.input_size() > 2 ? n.input(2) : "", out_name, false, 0,
                                           relu >= 0 ? &nodes[relu] : nullptr));
        if (relu >= 0) skip.insert(relu);
        ++report->quantized_layers;
        continue;
      }
      if (n.op_type() == "Gemm" && IsGemmLayer(n)) {
        EDGELOOP_RETURN_IF_ERROR(EmitQConv(n, n.input(0), n.input(1),
                                           n.input_size() > 2 ? n.input(2) : "", out_name, true,
                                           Attr(n, "transB"), relu >= 0 ? &nodes[relu] : nullptr));
        if (relu >= 0) skip.insert(relu);
        ++report->quantized_layers;
        continue;
      }
      if ((n.op_type() == "MaxPool" || n.op_type() == "Flatten" ||
           (n.op_type() == "Reshape" && inits_.count(n.input(1)))) &&
          quant_.count(n.input(0)) && !float_.count(n.input(0)) && n.output_size() == 1) {
        onnx::NodeProto copy = n;
        QParams p = quant_[n.input(0)];
        if (n.op_type() == "Reshape") KeepInitializer(n.input(1));
        if (qdq_) {
          // DequantizeLinear -> op -> QuantizeLinear with the input's parameters.
          copy.set_input(0, Dequantized(p));
          copy.set_output(0, n.output(0) + "_f");
          *g->add_node() = copy;
          AddQdqNode("QuantizeLinear", copy.output(0), p.scale, p.zero_point, n.output(0) + "_q",
                     -1);
        } else {
          copy.set_input(0, p.value);
          copy.set_output(0, n.output(0) + "_q");
          *g->add_node() = copy;
        }
        p.value = n.output(0) + "_q";
        quant_[n.output(0)] = p;
        continue;
      }
      // A residual Add of two activations: DequantizeLinear -> Add [-> Relu] -> QuantizeLinear,
      // so the sum travels quantized like the layers' outputs (runtimes fuse the pattern into
      // an integer add).
      if (n.op_type() == "Add" && n.input_size() == 2 && n.output_size() == 1 &&
          !inits_.count(n.input(0)) && !inits_.count(n.input(1)) && ranges_.count(n.input(0)) &&
          ranges_.count(n.input(1)) && ranges_.count(out_name)) {
        EDGELOOP_RETURN_IF_ERROR(EmitQdqAdd(n, out_name, relu >= 0 ? &nodes[relu] : nullptr));
        if (relu >= 0) skip.insert(relu);
        continue;
      }
      // Anything else runs in fp32.
      onnx::NodeProto copy = n;
      for (int k = 0; k < n.input_size(); ++k) {
        if (n.input(k).empty()) continue;
        EDGELOOP_RETURN_IF_ERROR(RequireFloat(n.input(k)));
      }
      for (const auto& o : n.output()) float_.insert(o);
      if (n.op_type() != "QuantizeLinear" && n.op_type() != "DequantizeLinear")
        report->float_ops.push_back(n.op_type());
      *g->add_node() = copy;
    }
    for (const auto& o : in_.graph().output()) EDGELOOP_RETURN_IF_ERROR(RequireFloat(o.name()));
    for (const auto& t : new_inits_) *g->add_initializer() = t;
    auto* meta = out_.add_metadata_props();
    meta->set_key("edgeloop.quantization");
    meta->set_value(
        std::string("{\"format\":\"") + (qdq_ ? "QDQ" : "QOperator") +
        "\","
        "\"activations\":\"uint8 asymmetric, per tensor\","
        "\"weights\":\"int8 symmetric, per output channel\",\"calibration\":\"min/max\"}");
    return out_;
  }

 private:
  static int64_t Attr(const onnx::NodeProto& n, const std::string& name, int64_t dflt = 0) {
    for (const auto& a : n.attribute())
      if (a.name() == name) return a.i();
    return dflt;
  }

  // A Clip with constant bounds min <= 0 <= max (Relu6 and friends).
  bool FoldableClip(const onnx::NodeProto& n) const {
    if (n.op_type() != "Clip" || n.output_size() != 1) return false;
    float lo = -std::numeric_limits<float>::infinity(), hi = -lo;
    for (const auto& a : n.attribute()) {  // opset < 11
      if (a.name() == "min") lo = a.f();
      if (a.name() == "max") hi = a.f();
    }
    for (int k = 1; k < n.input_size() && k <= 2; ++k) {
      if (n.input(k).empty()) continue;
      auto it = inits_.find(n.input(k));
      if (it == inits_.end() || it->second->data_type() != onnx::TensorProto::FLOAT) return false;
      std::vector<float> v = Floats(*it->second);
      if (v.size() != 1) return false;
      (k == 1 ? lo : hi) = v[0];
    }
    return lo <= 0 && hi >= 0;
  }

  bool Quantizable(const onnx::NodeProto& n, int w, int b) const {
    auto is_float_init = [&](int i) {
      auto it = inits_.find(n.input(i));
      return it != inits_.end() && it->second->data_type() == onnx::TensorProto::FLOAT;
    };
    return n.input_size() > w && is_float_init(w) && (b < 0 || is_float_init(b)) &&
           ranges_.count(n.input(0)) && n.output_size() == 1;
  }

  bool IsGemmLayer(const onnx::NodeProto& n) const {
    if (Attr(n, "transA") != 0) return false;
    for (const auto& a : n.attribute())
      if ((a.name() == "alpha" || a.name() == "beta") && a.f() != 1.0f) return false;
    if (!Quantizable(n, 1, n.input_size() > 2 ? 2 : -1)) return false;
    if (n.input_size() > 2) {
      auto* c = inits_.at(n.input(2));
      if (c->dims_size() != 1) return false;  // a per-output bias only
    }
    return inits_.at(n.input(1))->dims_size() == 2;
  }

  void KeepInitializer(const std::string& name) {
    if (kept_.insert(name).second) new_inits_.push_back(*inits_.at(name));
  }

  std::string AddScalar(const std::string& name, float v) {
    onnx::TensorProto t;
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_float_data(v);
    new_inits_.push_back(t);
    return name;
  }
  std::string AddZeroPoint(const std::string& name, uint8_t v) {
    onnx::TensorProto t;
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::UINT8);
    t.set_raw_data(std::string(1, static_cast<char>(v)));
    new_inits_.push_back(t);
    return name;
  }
  std::string AddInt64s(const std::string& name, const std::vector<int64_t>& v) {
    onnx::TensorProto t;
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_dims(static_cast<int64_t>(v.size()));
    for (int64_t x : v) t.add_int64_data(x);
    new_inits_.push_back(t);
    return name;
  }

  static std::vector<float> Floats(const onnx::TensorProto& t) {
    if (t.has_raw_data()) {
      std::vector<float> v(t.raw_data().size() / 4);
      std::memcpy(v.data(), t.raw_data().data(), v.size() * 4);
      return v;
    }
    return std::vector<float>(t.float_data().begin(), t.float_data().end());
  }

  // The quantized version of a float value, inserting QuantizeLinear on first use.
  Result<QParams> Quantized(const std::string& value) {
    auto it = quant_.find(value);
    if (it != quant_.end()) return it->second;
    auto r = ranges_.find(value);
    if (r == ranges_.end())
      return Error(Errc::kInternal, "no calibration range for '" + value + "'");
    auto [scale, zp] = ActivationParams(r->second);
    QParams p{value + "_q", AddScalar(value + "_scale", scale),
              AddZeroPoint(value + "_zero_point", zp)};
    auto* q = out_.mutable_graph()->add_node();
    q->set_op_type("QuantizeLinear");
    q->set_name(value + "_quantize");
    q->add_input(value);
    q->add_input(p.scale);
    q->add_input(p.zero_point);
    q->add_output(p.value);
    quant_[value] = p;
    return p;
  }

  // Makes the float value available, inserting DequantizeLinear when only the quantized
  // version exists.
  Status RequireFloat(const std::string& value) {
    if (float_.count(value)) {
      if (inits_.count(value)) KeepInitializer(value);
      return Status::Ok();
    }
    auto it = quant_.find(value);
    if (it == quant_.end()) return Error(Errc::kInternal, "value '" + value + "' is not produced");
    auto* d = out_.mutable_graph()->add_node();
    d->set_op_type("DequantizeLinear");
    d->set_name(value + "_dequantize");
    d->add_input(it->second.value);
    d->add_input(it->second.scale);
    d->add_input(it->second.zero_point);
    d->add_output(value);
    float_.insert(value);
    return Status::Ok();
  }

  // Conv (or a Gemm as a 1x1 conv) -> QLinearConv producing `out` (quantized).
  Status EmitQConv(const onnx::NodeProto& n, const std::string& x, const std::string& w_name,
                   const std::string& b_name, const std::string& out, bool gemm, int64_t trans_b,
                   const onnx::NodeProto* act) {
    auto* g = out_.mutable_graph();
    EDGELOOP_ASSIGN_OR_RETURN(QParams xq, Quantized(x));
    const onnx::TensorProto& wt = *inits_.at(w_name);
    std::vector<float> w = Floats(wt);
    std::vector<int64_t> dims(wt.dims().begin(), wt.dims().end());
    if (gemm) {
      // Gemm weights [K, N] (or [N, K] with transB) -> conv weights [N, K, 1, 1].
      int64_t k = trans_b ? dims[1] : dims[0], nout = trans_b ? dims[0] : dims[1];
      if (!trans_b) {
        std::vector<float> t(w.size());
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < nout; ++j)
            t[static_cast<size_t>(j * k + i)] = w[static_cast<size_t>(i * nout + j)];
        w.swap(t);
      }
      dims = {nout, k, 1, 1};
    }
    const int64_t m = dims[0];
    const size_t per = w.size() / static_cast<size_t>(m);
    onnx::TensorProto wq, ws, wz;
    wq.set_name(w_name + "_q");
    wq.set_data_type(onnx::TensorProto::INT8);
    // QDQ keeps a Gemm a Gemm: its weights stay [N, K], with transB.
    for (size_t d = 0; d < (qdq_ && gemm ? 2 : dims.size()); ++d) wq.add_dims(dims[d]);
    ws.set_name(w_name + "_scale");
    ws.set_data_type(onnx::TensorProto::FLOAT);
    ws.add_dims(m);
    wz.set_name(w_name + "_zero_point");
    wz.set_data_type(onnx::TensorProto::INT8);
    wz.add_dims(m);
    std::string wbytes(w.size(), '\0');
    std::vector<float> scales(static_cast<size_t>(m));
    for (int64_t c = 0; c < m; ++c) {
      float mx = 0;
      for (size_t i = 0; i < per; ++i)
        mx = std::max(mx, std::fabs(w[static_cast<size_t>(c) * per + i]));
      float s = mx > 0 ? mx / 127.0f : 1.0f;
      scales[static_cast<size_t>(c)] = s;
      ws.add_float_data(s);
      for (size_t i = 0; i < per; ++i) {
        float q =
            std::clamp(std::nearbyint(w[static_cast<size_t>(c) * per + i] / s), -127.0f, 127.0f);
        wbytes[static_cast<size_t>(c) * per + i] = static_cast<char>(static_cast<int8_t>(q));
      }
    }
    wz.set_raw_data(std::string(static_cast<size_t>(m), '\0'));
    wq.set_raw_data(wbytes);
    new_inits_.push_back(wq);
    new_inits_.push_back(ws);
    new_inits_.push_back(wz);

    const float xs = [&] {
      for (const auto& t : new_inits_)
        if (t.name() == xq.scale) return t.float_data(0);
      return 1.0f;
    }();
    std::string bq_name;
    if (!b_name.empty()) {
      std::vector<float> b = Floats(*inits_.at(b_name));
      onnx::TensorProto bq;
      bq.set_name(b_name + "_q");
      bq.set_data_type(onnx::TensorProto::INT32);
      bq.add_dims(m);
      for (int64_t c = 0; c < m; ++c)
        bq.add_int32_data(static_cast<int32_t>(
            std::nearbyint(b[static_cast<size_t>(c)] / (xs * scales[static_cast<size_t>(c)]))));
      new_inits_.push_back(bq);
      bq_name = bq.name();
    }
    auto r = ranges_.find(out);
    if (r == ranges_.end()) return Error(Errc::kInternal, "no calibration range for '" + out + "'");
    auto [ys, yzp] = ActivationParams(r->second);
    QParams yq{out + "_q", AddScalar(out + "_scale", ys), AddZeroPoint(out + "_zero_point", yzp)};

    if (qdq_)
      return EmitQdqLayer(n, xq, wq.name(), ws.name(), wz.name(), b_name, bq_name, xs, scales, yq,
                          out, gemm, act);

    std::string conv_in = xq.value, conv_out = yq.value;
    if (gemm) {
      conv_in = n.name() + "_in_q4d";
      auto* rs = g->add_node();
      rs->set_op_type("Reshape");
      rs->set_name(n.name() + "_to_4d");
      rs->add_input(xq.value);
      rs->add_input(AddInt64s(n.name() + "_shape4d", {0, dims[1], 1, 1}));
      rs->add_output(conv_in);
      conv_out = n.name() + "_out_q4d";
    }
    auto* q = g->add_node();
    q->set_op_type("QLinearConv");
    q->set_name(n.name() + "_quant");
    for (const std::string& s : {conv_in, xq.scale, xq.zero_point, wq.name(), ws.name(), wz.name(),
                                 yq.scale, yq.zero_point})
      q->add_input(s);
    if (!bq_name.empty()) q->add_input(bq_name);
    q->add_output(conv_out);
    if (!gemm)
      for (const auto& a : n.attribute()) *q->add_attribute() = a;
    if (gemm) {
      auto* rs = g->add_node();
      rs->set_op_type("Reshape");
      rs->set_name(n.name() + "_to_2d");
      rs->add_input(conv_out);
      rs->add_input(AddInt64s(n.name() + "_shape2d", {0, m}));
      rs->add_output(yq.value);
    }
    quant_[out] = yq;
    return Status::Ok();
  }

  onnx::NodeProto* AddQdqNode(const std::string& op, const std::string& in,
                              const std::string& scale, const std::string& zero_point,
                              const std::string& out, int64_t axis) {
    auto* d = out_.mutable_graph()->add_node();
    d->set_op_type(op);
    d->set_name(out + (op == "QuantizeLinear" ? "_quantize" : "_dequantize"));
    d->add_input(in);
    d->add_input(scale);
    d->add_input(zero_point);
    d->add_output(out);
    if (axis >= 0) {
      auto* a = d->add_attribute();
      a->set_name("axis");
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(axis);
    }
    return d;
  }

  // The float version of a quantized value for a QDQ layer: DequantizeLinear, once per value.
  std::string Dequantized(const QParams& p) {
    auto it = dequantized_.find(p.value);
    if (it != dequantized_.end()) return it->second;
    const std::string name = p.value + "_dq";
    AddQdqNode("DequantizeLinear", p.value, p.scale, p.zero_point, name, -1);
    dequantized_[p.value] = name;
    return name;
  }

  // QDQ form of a quantized Conv or Gemm: DequantizeLinear of input, weights and bias, the
  // float layer (and its Relu), QuantizeLinear of the output.
  Status EmitQdqLayer(const onnx::NodeProto& n, const QParams& xq, const std::string& wq,
                      const std::string& ws, const std::string& wz, const std::string& b_name,
                      const std::string& bq, float xs, const std::vector<float>& scales,
                      const QParams& yq, const std::string& out, bool gemm,
                      const onnx::NodeProto* act) {
    int64_t opset = 0;
    for (const auto& o : in_.opset_import())
      if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
    if (opset < 13)
      return Error(Errc::kUnsupported,
                   "QDQ form needs opset 13 or later (per-channel DequantizeLinear); the model "
                   "has opset " +
                       std::to_string(opset));
    auto* g = out_.mutable_graph();
    const std::string xf = Dequantized(xq);
    const std::string wf = wq + "_dq";
    AddQdqNode("DequantizeLinear", wq, ws, wz, wf, 0);
    std::string bf;
    if (!bq.empty()) {
      onnx::TensorProto bs, bz;
      bs.set_name(bq + "_scale");
      bs.set_data_type(onnx::TensorProto::FLOAT);
      bs.add_dims(static_cast<int64_t>(scales.size()));
      for (float s : scales) bs.add_float_data(xs * s);
      bz.set_name(bq + "_zero_point");
      bz.set_data_type(onnx::TensorProto::INT32);
      bz.add_dims(static_cast<int64_t>(scales.size()));
      for (size_t i = 0; i < scales.size(); ++i) bz.add_int32_data(0);
      new_inits_.push_back(bs);
      new_inits_.push_back(bz);
      bf = b_name + "_dq";
      AddQdqNode("DequantizeLinear", bq, bs.name(), bz.name(), bf, 0);
    }
    auto* layer = g->add_node();
    layer->set_op_type(gemm ? "Gemm" : "Conv");
    layer->set_name(n.name());
    layer->add_input(xf);
    layer->add_input(wf);
    if (!bf.empty()) layer->add_input(bf);
    const std::string f = out + "_f";
    layer->add_output(act ? out + "_pre" : f);
    if (gemm) {
      auto* a = layer->add_attribute();
      a->set_name("transB");
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(1);
    } else {
      for (const auto& a : n.attribute()) *layer->add_attribute() = a;
    }
    if (act) {
      // The folded activation stays in the file, between the layer and its QuantizeLinear.
      auto* r = g->add_node();
      *r = *act;
      r->set_input(0, out + "_pre");
      r->set_output(0, f);
      for (int k = 1; k < act->input_size(); ++k)
        if (!act->input(k).empty()) KeepInitializer(act->input(k));
    }
    AddQdqNode("QuantizeLinear", f, yq.scale, yq.zero_point, yq.value, -1);
    quant_[out] = yq;
    return Status::Ok();
  }

  Status EmitQdqAdd(const onnx::NodeProto& n, const std::string& out, const onnx::NodeProto* act) {
    EDGELOOP_ASSIGN_OR_RETURN(QParams a, Quantized(n.input(0)));
    EDGELOOP_ASSIGN_OR_RETURN(QParams b, Quantized(n.input(1)));
    const std::string fa = Dequantized(a), fb = Dequantized(b);  // before the Add
    auto* g = out_.mutable_graph();
    auto* add = g->add_node();
    *add = n;
    add->set_input(0, fa);
    add->set_input(1, fb);
    const std::string f = out + "_f";
    add->set_output(0, act ? out + "_pre" : f);
    if (act) {
      auto* r = g->add_node();
      *r = *act;
      r->set_input(0, out + "_pre");
      r->set_output(0, f);
    }
    auto [ys, yzp] = ActivationParams(ranges_.at(out));
    QParams yq{out + "_q", AddScalar(out + "_scale", ys), AddZeroPoint(out + "_zero_point", yzp)};
    AddQdqNode("QuantizeLinear", f, yq.scale, yq.zero_point, yq.value, -1);
    quant_[out] = yq;
    return Status::Ok();
  }

  const onnx::ModelProto& in_;
  std::map<std::string, Range> ranges_;
  std::map<std::string, const onnx::TensorProto*> inits_;
  std::map<std::string, int> consumers_;
  onnx::ModelProto out_;
  std::vector<onnx::TensorProto> new_inits_;
  std::set<std::string> kept_, float_;
  std::map<std::string, QParams> quant_;
  bool qdq_ = false;
  std::map<std::string, std::string> dequantized_;  // quantized value -> its DequantizeLinear
};

}  // namespace

Result<QuantizeReport> QuantizeModel(const std::string& fp32_path,
                                     const std::vector<OwnedTensor>& calibration,
                                     const std::string& int8_path, QuantFormat format) {
  if (calibration.empty()) return Error(Errc::kInvalidArgument, "no calibration data");
  EDGELOOP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(fp32_path));
  ModelOptions calibrating;
  calibrating.fold_residual_adds = false;  // every Add's operands are observed
  EDGELOOP_ASSIGN_OR_RETURN(Model model, Model::LoadFromBytes(bytes, fp32_path, calibrating));
  if (model.inputs().size() != 1)
    return Error(Errc::kUnsupported, fp32_path + ": quantization needs a model with one input");
  QuantizeReport report;
  std::map<std::string, Range> ranges;
  for (const OwnedTensor& batch : calibration) {
    auto r = model.Run({batch.view()}, [&](const std::string& name, const Tensor& t) {
      if (t.dtype != DType::kFloat32 || t.size() == 0) return;
      auto [lo, hi] = std::minmax_element(t.as<float>(), t.as<float>() + t.size());
      auto it = ranges.find(name);
      if (it == ranges.end())
        ranges[name] = {*lo, *hi};
      else
        it->second = {std::min(it->second.lo, *lo), std::max(it->second.hi, *hi)};
    });
    if (!r.ok()) return r.error().WithContext("calibration");
    report.calibration_samples += static_cast<size_t>(batch.shape.empty() ? 0 : batch.shape[0]);
  }
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) return Error(Errc::kFormat, fp32_path + ": not an ONNX model");
  Rewriter rw(proto, std::move(ranges), format == QuantFormat::kQdq);
  EDGELOOP_ASSIGN_OR_RETURN(onnx::ModelProto q, rw.Run(&report));
  std::string out = q.SerializeAsString();
  // The result must load and run in the runtime before it is written.
  EDGELOOP_ASSIGN_OR_RETURN(Model check, Model::LoadFromBytes(out, int8_path));
  auto probe = check.Run({calibration.front().view()});
  if (!probe.ok()) return probe.error().WithContext("the quantized model does not run");
  EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(int8_path, out));
  report.fp32_bytes = bytes.size();
  report.int8_bytes = out.size();
  return report;
}

}  // namespace edgeloop::runtime
