// The recurrent layers of keyword-spotting and voice-activity models: RNN, GRU and LSTM, as
// ONNX defines them, with the default activations (the `activations` list is not read; a
// model that sets it is refused at load by the attribute reader).
//   X [seq, batch, input] (layout 1: [batch, seq, input]); W [dirs, G*H, input];
//   R [dirs, G*H, H]; B [dirs, 2*G*H] (W's bias, then R's); sequence_lens [batch];
//   initial_h (and for LSTM initial_c) [dirs, batch, H]; LSTM's P [dirs, 3*H] (i, o, f).
//   Outputs Y [seq, dirs, batch, H] (layout 1: [batch, seq, dirs, H]), Y_h, LSTM's Y_c.
// Gates per direction: RNN one (tanh), GRU three (z, r, h), LSTM four (i, o, f, c). Steps past
// a batch entry's sequence length give zeros in Y and keep its state. `clip` bounds the gate
// inputs. One implementation for both backends; scratch holds one sequence's gates and state.
#include <algorithm>
#include <cmath>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

enum class Cell { kRnn, kGru, kLstm };

Cell CellOf(const Node& n) {
  return n.op_type == "LSTM" ? Cell::kLstm : n.op_type == "GRU" ? Cell::kGru : Cell::kRnn;
}

int64_t Gates(Cell c) {
  return c == Cell::kLstm ? 4 : c == Cell::kGru ? 3 : 1;
}

struct Dims {
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, dirs = 1;
  bool batch_first = false;
};

const TensorInfo* In(const InferContext& c, size_t i) {
  return i < c.in.size() ? c.in[i] : nullptr;
}

Status CheckRecurrent(const Node& n) {
  const Cell cell = CellOf(n);
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 3, cell == Cell::kLstm ? 8 : 6, 0));
  const std::string dir = n.String("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional")
    return NodeError(n, Errc::kFormat, "direction '" + dir + "' is not an ONNX value");
  if (n.Has("activations") || n.Has("activation_alpha") || n.Has("activation_beta"))
    return NodeError(n, Errc::kUnsupported, "only the default activations are supported");
  if (cell == Cell::kLstm && n.Int("input_forget", 0) != 0)
    return NodeError(n, Errc::kUnsupported, "input_forget = 1 is not supported");
  if (n.Int("hidden_size", 1) < 1) return NodeError(n, Errc::kFormat, "hidden_size must be >= 1");
  return Status::Ok();
}

Status InferRecurrent(InferContext& c) {
  const Cell cell = CellOf(c.node);
  const int64_t g = Gates(cell);
  for (size_t i = 0; i < 3; ++i) EDGELOOP_RETURN_IF_ERROR(RequireType(c, i, {DType::kFloat32}));
  const Shape &x = c.in[0]->shape, &w = c.in[1]->shape, &r = c.in[2]->shape;
  if (x.size() != 3 || w.size() != 3 || r.size() != 3) return c.Fail("X, W and R must be 3-D");
  Dims d;
  d.batch_first = c.node.Int("layout", 0) != 0;
  d.seq = d.batch_first ? x[1] : x[0];
  d.batch = d.batch_first ? x[0] : x[1];
  d.input = x[2];
  d.dirs = c.node.String("direction", "forward") == "bidirectional" ? 2 : 1;
  d.hidden = c.node.Int("hidden_size", r[2]);
  const int64_t h = d.hidden;
  if (w != Shape{d.dirs, g * h, d.input} || r != Shape{d.dirs, g * h, h})
    return c.Fail("W must be [" + std::to_string(d.dirs) + ", " + std::to_string(g * h) + ", " +
                  std::to_string(d.input) + "] and R [" + std::to_string(d.dirs) + ", " +
                  std::to_string(g * h) + ", " + std::to_string(h) + "]");
  auto optional = [&](size_t i, const Shape& want, DType type) -> Status {
    const TensorInfo* t = In(c, i);
    if (t == nullptr) return Status::Ok();
    if (t->dtype != type || t->shape != want)
      return c.Fail("input " + std::to_string(i) + " must be " + ShapeString(want));
    return Status::Ok();
  };
  const Shape state = d.batch_first ? Shape{d.batch, d.dirs, h} : Shape{d.dirs, d.batch, h};
  EDGELOOP_RETURN_IF_ERROR(optional(3, {d.dirs, 2 * g * h}, DType::kFloat32));
  if (In(c, 4) != nullptr && In(c, 4)->dtype != DType::kInt32 && In(c, 4)->dtype != DType::kInt64)
    return c.Fail("sequence_lens must be int32");
  if (In(c, 4) != nullptr && In(c, 4)->shape != Shape{d.batch})
    return c.Fail("sequence_lens must be [batch]");
  EDGELOOP_RETURN_IF_ERROR(optional(5, state, DType::kFloat32));
  if (cell == Cell::kLstm) {
    EDGELOOP_RETURN_IF_ERROR(optional(6, state, DType::kFloat32));
    EDGELOOP_RETURN_IF_ERROR(optional(7, {d.dirs, 3 * h}, DType::kFloat32));
  }
  const Shape y =
      d.batch_first ? Shape{d.batch, d.seq, d.dirs, h} : Shape{d.seq, d.dirs, d.batch, h};
  c.out = {TensorInfo{DType::kFloat32, y}, TensorInfo{DType::kFloat32, state}};
  if (cell == Cell::kLstm) c.out.push_back(TensorInfo{DType::kFloat32, state});
  c.scratch_bytes = static_cast<size_t>((g + 3) * h) * sizeof(float);
  return Status::Ok();
}

float Sigmoid(float v) {
  return 1.0f / (1.0f + std::exp(-v));
}

Status RunRecurrent(RunContext& c) {
  const Cell cell = CellOf(c.node);
  const int64_t g = Gates(cell);
  const Shape& xs = c.in[0]->shape;
  Dims d;
  d.batch_first = c.node.Int("layout", 0) != 0;
  d.seq = d.batch_first ? xs[1] : xs[0];
  d.batch = d.batch_first ? xs[0] : xs[1];
  d.input = xs[2];
  const std::string direction = c.node.String("direction", "forward");
  d.dirs = direction == "bidirectional" ? 2 : 1;
  d.hidden = c.in[2]->shape[2];
  const int64_t h = d.hidden, gh = g * h;
  auto in = [&](size_t i) -> const Tensor* { return i < c.in.size() ? c.in[i] : nullptr; };
  auto out = [&](size_t i) -> Tensor* { return i < c.out.size() ? c.out[i] : nullptr; };
  const float *x = c.in[0]->as<float>(), *w = c.in[1]->as<float>(), *r = c.in[2]->as<float>();
  const float* bias = in(3) ? in(3)->as<float>() : nullptr;
  const float* h0 = in(5) ? in(5)->as<float>() : nullptr;
  const float* c0 = cell == Cell::kLstm && in(6) ? in(6)->as<float>() : nullptr;
  const float* peep = cell == Cell::kLstm && in(7) ? in(7)->as<float>() : nullptr;
  const float clip = c.node.Has("clip") ? c.node.Float("clip", 0) : 0;
  const bool linear_before_reset = c.node.Int("linear_before_reset", 0) != 0;
  float* gates = static_cast<float*>(c.scratch);
  float *hs = gates + gh, *cs = hs + h, *tmp = cs + h;
  auto bound = [&](float v) { return clip > 0 ? std::clamp(v, -clip, clip) : v; };
  // Offsets in the [dirs, batch, H] (or [batch, dirs, H]) state tensors and in Y.
  auto state_at = [&](int64_t dir, int64_t b) {
    return (d.batch_first ? b * d.dirs + dir : dir * d.batch + b) * h;
  };
  auto y_at = [&](int64_t t, int64_t dir, int64_t b) {
    return (d.batch_first ? (b * d.seq + t) * d.dirs + dir : (t * d.dirs + dir) * d.batch + b) * h;
  };
  auto x_at = [&](int64_t t, int64_t b) {
    return (d.batch_first ? b * d.seq + t : t * d.batch + b) * d.input;
  };
  Tensor* y = out(0);
  if (y) std::fill(y->as<float>(), y->as<float>() + y->size(), 0.0f);
  for (int64_t dir = 0; dir < d.dirs; ++dir) {
    const bool reverse = direction == "reverse" || dir == 1;
    const float *wd = w + dir * gh * d.input, *rd = r + dir * gh * h;
    const float* wb = bias ? bias + dir * 2 * gh : nullptr;
    const float* rb = bias ? wb + gh : nullptr;
    for (int64_t b = 0; b < d.batch; ++b) {
      int64_t len = d.seq;
      if (in(4)) {
        len = in(4)->dtype == DType::kInt32 ? in(4)->as<int32_t>()[b] : in(4)->as<int64_t>()[b];
        if (len < 0 || len > d.seq)
          return NodeError(c.node, Errc::kInvalidArgument,
                           "sequence_lens[" + std::to_string(b) + "] = " + std::to_string(len) +
                               " is outside [0, " + std::to_string(d.seq) + "]");
      }
      for (int64_t j = 0; j < h; ++j) {
        hs[j] = h0 ? h0[state_at(dir, b) + j] : 0.0f;
        cs[j] = c0 ? c0[state_at(dir, b) + j] : 0.0f;
      }
      for (int64_t s = 0; s < len; ++s) {
        const int64_t t = reverse ? len - 1 - s : s;
        const float* xt = x + x_at(t, b);
        // Every gate's input part: X W^T + Wb, and (but for GRU's h gate) H R^T + Rb.
        for (int64_t k = 0; k < gh; ++k) {
          float acc = wb ? wb[k] : 0.0f;
          const float* wk = wd + k * d.input;
          for (int64_t i = 0; i < d.input; ++i) acc += xt[i] * wk[i];
          const bool gru_h = cell == Cell::kGru && k >= 2 * h;
          if (!gru_h || linear_before_reset) {
            float rec = rb ? rb[k] : 0.0f;
            const float* rk = rd + k * h;
            for (int64_t j = 0; j < h; ++j) rec += hs[j] * rk[j];
            if (gru_h)
              tmp[k - 2 * h] = rec;  // H R_h^T + Rb_h, multiplied by r below
            else
              acc += rec;
          }
          gates[k] = acc;
        }
        if (cell == Cell::kRnn) {
          for (int64_t j = 0; j < h; ++j) hs[j] = std::tanh(bound(gates[j]));
        } else if (cell == Cell::kGru) {
          float *z = gates, *rg = gates + h, *hh = gates + 2 * h;
          for (int64_t j = 0; j < h; ++j) {
            z[j] = Sigmoid(bound(z[j]));
            rg[j] = Sigmoid(bound(rg[j]));
          }
          if (!linear_before_reset) {
            // (r . H) R_h^T + Rb_h
            for (int64_t j = 0; j < h; ++j) cs[j] = rg[j] * hs[j];  // cs is free for GRU
            for (int64_t k = 0; k < h; ++k) {
              float rec = rb ? rb[2 * h + k] : 0.0f;
              const float* rk = rd + (2 * h + k) * h;
              for (int64_t j = 0; j < h; ++j) rec += cs[j] * rk[j];
              hh[k] += rec;
            }
          } else {
            for (int64_t k = 0; k < h; ++k) hh[k] += rg[k] * tmp[k];
          }
          for (int64_t j = 0; j < h; ++j)
            hs[j] = (1 - z[j]) * std::tanh(bound(hh[j])) + z[j] * hs[j];
        } else {
          float *ig = gates, *og = gates + h, *fg = gates + 2 * h, *cg = gates + 3 * h;
          for (int64_t j = 0; j < h; ++j) {
            const float pi = peep ? peep[dir * 3 * h + j] : 0.0f;
            const float pf = peep ? peep[dir * 3 * h + 2 * h + j] : 0.0f;
            const float i_t = Sigmoid(bound(ig[j] + pi * cs[j]));
            const float f_t = Sigmoid(bound(fg[j] + pf * cs[j]));
            const float c_t = std::tanh(bound(cg[j]));
            cs[j] = f_t * cs[j] + i_t * c_t;
            const float po = peep ? peep[dir * 3 * h + h + j] : 0.0f;
            const float o_t = Sigmoid(bound(og[j] + po * cs[j]));
            hs[j] = o_t * std::tanh(cs[j]);
          }
        }
        if (y) std::copy(hs, hs + h, y->as<float>() + y_at(t, dir, b));
      }
      if (out(1)) std::copy(hs, hs + h, out(1)->as<float>() + state_at(dir, b));
      if (cell == Cell::kLstm && out(2))
        std::copy(cs, cs + h, out(2)->as<float>() + state_at(dir, b));
    }
  }
  return Status::Ok();
}

}  // namespace

const OpKernel kRNN{"RNN", CheckRecurrent, InferRecurrent, RunRecurrent};
const OpKernel kGRU{"GRU", CheckRecurrent, InferRecurrent, RunRecurrent};
const OpKernel kLSTM{"LSTM", CheckRecurrent, InferRecurrent, RunRecurrent};

}  // namespace edgeloop::runtime::kernels
