// QLinearConv and QLinearMatMul: 8-bit operands, 32-bit integer accumulation, requantized
// output:  y = saturate(round((sum (x - x_zp)(w - w_zp) + bias) * x_scale * w_scale / y_scale)
//                       + y_zp).
// x and y are uint8 or int8; w is int8 or uint8 with per-tensor or per-output-channel scale and
// zero point; bias is int32 at scale x_scale * w_scale. Reference: direct loops. Fast (Conv):
// the zero-point-shifted windows are unrolled into a [positions, window] int16 matrix so that
// each output is one contiguous int16 dot product, which compilers turn into multiply-add
// instructions over 16-bit lanes.
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/isa/kernels.hpp"
#include "runtime/kernels/broadcast.hpp"
#include "runtime/kernels/conv_geometry.hpp"
#include "runtime/kernels/depthwise.hpp"
#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

bool Is8Bit(DType t) {
  return t == DType::kUint8 || t == DType::kInt8;
}

int32_t Load8(const Tensor& t, int64_t i) {
  return t.dtype == DType::kUint8 ? static_cast<int32_t>(t.as<uint8_t>()[i])
                                  : static_cast<int32_t>(t.as<int8_t>()[i]);
}

void Store8(Tensor& t, int64_t i, float v, int32_t zp) {
  float q = std::nearbyint(v) + static_cast<float>(zp);
  if (t.dtype == DType::kUint8)
    t.as<uint8_t>()[i] = static_cast<uint8_t>(std::clamp(q, 0.0f, 255.0f));
  else
    t.as<int8_t>()[i] = static_cast<int8_t>(std::clamp(q, -128.0f, 127.0f));
}

// Per-channel parameter m of a scalar or 1-D tensor.
float ScaleAt(const Tensor& s, int64_t m) {
  return s.as<float>()[s.size() == 1 ? 0 : m];
}
int32_t ZeroAt(const Tensor* z, int64_t m) {
  if (!z) return 0;
  return Load8(*z, z->size() == 1 ? 0 : m);
}

Status CheckScalar(InferContext& c, size_t scale, size_t zp, const std::string& what) {
  if (c.in[scale]->dtype != DType::kFloat32 || NumElements(c.in[scale]->shape) != 1)
    return c.Fail(what + " scale must be a float32 scalar");
  const TensorInfo* z = zp < c.in.size() ? c.in[zp] : nullptr;  // optional, may be left out
  if (z && (!Is8Bit(z->dtype) || NumElements(z->shape) != 1))
    return c.Fail(what + " zero point must be an 8-bit scalar");
  return Status::Ok();
}

// A fully connected layer: a 1x1 convolution over a 1x1 input, one group.
bool IsFullyConnected(const ConvGeometry& g) {
  return g.out_size == 1 && g.k_size == 1 && g.group == 1;
}

// Whether qconv_u8s8 takes the convolution (2-D, not depthwise, a window of at most
// kQConvMaxTaps), and its geometry for one group.
bool FitsQConv(const ConvGeometry& g) {
  return g.w.rank() == 2 && !IsDepthwise(g) && g.k_size <= kQConvMaxTaps;
}

QConvArgs QConvArgsOf(const ConvGeometry& g) {
  QConvArgs a{};
  a.ih = g.w.in[0];
  a.iw = g.w.in[1];
  a.pt = g.w.pad_begin[0];
  a.pl = g.w.pad_begin[1];
  a.oh = g.w.out[0];
  a.ow = g.w.out[1];
  a.kh = g.w.kernel[0];
  a.kw = g.w.kernel[1];
  a.sh = g.w.stride[0];
  a.sw = g.w.stride[1];
  a.cg = g.cg;
  a.cq = (g.cg + 3) / 4;
  a.m = g.mg;
  const int64_t hp = a.ih + a.pt + g.w.pad_end[0], wp = a.iw + a.pl + g.w.pad_end[1];
  const int64_t hq = (hp + a.sh - 1) / a.sh;
  a.wq = (wp + a.sw - 1) / a.sw;
  a.wide = (a.oh * a.wq + 15) / 16 * 16;
  // Every tile reads [p, p + 16) at each tap's offset within its phase plane, p < wide.
  int64_t reach = 0;
  for (int64_t ky = 0; ky < a.kh; ++ky)
    for (int64_t kx = 0; kx < a.kw; ++kx) {
      const int64_t r = ky * g.w.dilation[0], col = kx * g.w.dilation[1];
      reach = std::max(reach, (r / a.sh) * a.wq + col / a.sw);
    }
  a.plane = (std::max(hq * a.wq, a.wide + reach) + 15) / 16 * 16;
  // Without padding, and with the plane a whole number of strides, the input fills every phase
  // plane's hq x wq lanes.
  const bool unpadded = hp == a.ih && wp == a.iw;
  a.covered = unpadded && a.ih % a.sh == 0 && a.iw % a.sw == 0 ? hq * a.wq : 0;
  if (g.k_size <= kQConvMaxTaps)
    for (int64_t ky = 0; ky < a.kh; ++ky)
      for (int64_t kx = 0; kx < a.kw; ++kx) {
        const int64_t r = ky * g.w.dilation[0], col = kx * g.w.dilation[1];
        a.tap_offset[ky * a.kw + kx] =
            ((r % a.sh) * a.sw + col % a.sw) * a.plane + (r / a.sh) * a.wq + col / a.sw;
      }
  return a;
}

// Bytes of qconv_u8s8's scratch: offsets and multipliers per output channel, the phase planes
// and the outputs on the phase width, each region 64-byte aligned.
size_t QConvScratchBytes(const QConvArgs& a) {
  auto round64 = [](int64_t v) { return (v + 63) / 64 * 64; };
  return static_cast<size_t>(round64(a.m * 8) + round64(a.cq * a.sh * a.sw * a.plane * 4) +
                             round64(8 * a.wide) + 64);
}

// Int32 lanes of qconv_u8s8's weights for one group: blocks of 8 output channels, each
// [cq][tap][8].
int64_t QConvWeightLanes(const ConvGeometry& g) {
  return (g.mg + 7) / 8 * ((g.cg + 3) / 4) * g.k_size * 8;
}

// --- QLinearConv -------------------------------------------------------------------------
// Inputs: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [B].
Status CheckQConv(const Node& n) {
  return CheckArity(n, 8, 9);
}

Status InferQConv(InferContext& c) {
  if (!Is8Bit(c.in[0]->dtype) || !Is8Bit(c.in[3]->dtype)) return c.Fail("x and w must be 8-bit");
  EDGELOOP_RETURN_IF_ERROR(CheckScalar(c, 1, 2, "x"));
  EDGELOOP_RETURN_IF_ERROR(CheckScalar(c, 6, 7, "y"));
  ConvGeometry g;
  EDGELOOP_RETURN_IF_ERROR(ConvGeometryOf(c.node, c.in[0]->shape, c.in[3]->shape, &g));
  int64_t ns = NumElements(c.in[4]->shape);
  if (c.in[4]->dtype != DType::kFloat32 || (ns != 1 && ns != g.m))
    return c.Fail("w scale must be a scalar or [M]");
  if (c.in[5] && NumElements(c.in[5]->shape) != ns)
    return c.Fail("w zero point must match w scale");
  if (c.in.size() > 8 && c.in[8] &&
      (c.in[8]->dtype != DType::kInt32 || c.in[8]->shape != Shape{g.m}))
    return c.Fail("bias must be int32 [M]");
  Shape out{g.n, g.m};
  out.insert(out.end(), g.w.out.begin(), g.w.out.end());
  c.out = {TensorInfo{c.in[7] ? c.in[7]->dtype : DType::kUint8, out}};
  if (c.backend == Backend::kFast) {
    const size_t kpad = static_cast<size_t>((g.cg * g.k_size + 63) / 64 * 64);
    const size_t s16 = static_cast<size_t>(g.cg * g.in_size + g.out_size * g.cg * g.k_size + 64) *
                           sizeof(int16_t) +
                       static_cast<size_t>(std::max(g.out_size, g.mg)) * sizeof(int32_t);
    const size_t opad = static_cast<size_t>((g.out_size + 15) / 16 * 16);
    const int64_t hp = g.w.in.size() == 2 ? g.w.in[0] + g.w.pad_begin[0] + g.w.pad_end[0] : 0;
    const int64_t wp = g.w.in.size() == 2 ? g.w.in[1] + g.w.pad_begin[1] + g.w.pad_end[1] : 0;
    const size_t s8 = opad * kpad + kpad + 64 + opad * sizeof(int32_t) + 64 +
                      static_cast<size_t>(g.cg * hp * wp) + 64;
    // Depthwise: the phase planes and the wide outputs, a channel's weights (float), its sums,
    // then every channel's offset and multiplier.
    size_t dw = 0;
    if (IsDepthwise(g))
      dw = static_cast<size_t>(DepthwiseScratchElements(DepthwiseArgsOf(g)) + g.k_size) *
               sizeof(float) +
           static_cast<size_t>(g.out_size + 2 * g.m) * sizeof(int32_t);
    const size_t qv = FitsQConv(g) ? QConvScratchBytes(QConvArgsOf(g)) : 0;
    const size_t fc = static_cast<size_t>(2 * g.m) * sizeof(int32_t);
    c.scratch_bytes = std::max({s16, s8, dw, qv, fc});
  }
  return Status::Ok();
}

// uint8 activations x int8 symmetric weights (the layout edgeloop quantize writes), 2-D:
// windows are unrolled as raw uint8 (padding takes the zero point's value), so each output is
// one uint8 x int8 dot product: with VNNI, in vpdpbusd's layout, four window bytes of 16
// positions per 64-byte load; otherwise in rows of kpad bytes, kpad a multiple of 64 with zero
// weights beyond the window, for the compiler to vectorise. The zero point is taken out
// afterwards: sum (x - zp) w = sum x w - zp sum w. The dot products and the requantisation
// y = saturate(round((acc + offset) * mult) + zp) run at the active instruction-set level.

// Per output channel: the window's int8 weights zero-padded to a multiple of 4 (read as int32
// groups by vpdpbusd), then every channel's weight sum, then (FitsQConv) the weights in
// qconv_u8s8's layout, group after group. Kept with the plan (RunContext::state) after the
// first run, since the weights are constants.
const std::vector<unsigned char>& PackedWeights(RunContext& c, const ConvGeometry& g,
                                                std::vector<unsigned char>& local) {
  std::vector<unsigned char>& st = c.state ? *c.state : local;
  if (!st.empty()) return st;
  const int64_t kdim = g.cg * g.k_size, kq = (kdim + 3) / 4;
  const bool fc = IsFullyConnected(g);
  const int64_t lanes = fc             ? (g.m + 15) / 16 * kq * 16
                        : FitsQConv(g) ? g.group * QConvWeightLanes(g)
                                       : 0;
  st.assign(static_cast<size_t>(g.m * kq * 4 + g.m * 4 + lanes * 4), 0);
  auto* w = reinterpret_cast<int8_t*>(st.data());
  auto* wsum = reinterpret_cast<int32_t*>(st.data() + g.m * kq * 4);
  const int8_t* src = c.in[3]->as<int8_t>();
  for (int64_t m = 0; m < g.m; ++m) {
    for (int64_t i = 0; i < kdim; ++i) {
      w[m * kq * 4 + i] = src[m * kdim + i];
      wsum[m] += src[m * kdim + i];
    }
  }
  if (fc) {
    // [m / 16][kq][16][4]: the bytes of output j's quad q at ((j / 16) * kq + q) * 64 + j % 16 * 4.
    auto* blocks = reinterpret_cast<int8_t*>(wsum + g.m);
    for (int64_t m = 0; m < g.m; ++m)
      for (int64_t i = 0; i < kdim; ++i)
        blocks[((m / 16) * kq + i / 4) * 64 + (m % 16) * 4 + i % 4] = src[m * kdim + i];
  } else if (lanes > 0) {
    auto* blocks = reinterpret_cast<int8_t*>(wsum + g.m);
    const int64_t cq = (g.cg + 3) / 4, per_group = QConvWeightLanes(g);
    for (int64_t m = 0; m < g.m; ++m) {
      const int64_t grp = m / g.mg, mi = m % g.mg;
      int8_t* block = blocks + (grp * per_group + (mi / 8) * cq * g.k_size * 8) * 4;
      for (int64_t ci = 0; ci < g.cg; ++ci)
        for (int64_t t = 0; t < g.k_size; ++t)
          block[(((ci / 4) * g.k_size + t) * 8 + mi % 8) * 4 + ci % 4] =
              src[(m * g.cg + ci) * g.k_size + t];
    }
  }
  return st;
}

// The convolution through qconv_u8s8, one image and group at a time.
void RunQConvVnni(RunContext& c, const ConvGeometry& g, const int32_t* wpacked,
                  const int32_t* wsums, int32_t xzp, int32_t yzp, float xs, float ys,
                  const int32_t* bias) {
  const IsaKernels& isa = ActiveKernels();
  const QConvArgs a = QConvArgsOf(g);
  auto round64 = [](int64_t v) { return (v + 63) / 64 * 64; };
  auto* base = static_cast<unsigned char*>(c.scratch);
  base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
  auto* offset = reinterpret_cast<int32_t*>(base);
  auto* mult = reinterpret_cast<float*>(base + a.m * 4);
  auto* phases = reinterpret_cast<uint32_t*>(base + round64(a.m * 8));
  auto* ywide = reinterpret_cast<uint8_t*>(phases) + round64(a.cq * a.sh * a.sw * a.plane * 4);
  const Tensor& x = *c.in[0];
  Tensor& y = *c.out[0];
  const bool s8 = y.dtype == DType::kInt8;
  const int64_t per_group = QConvWeightLanes(g);
  for (int64_t grp = 0; grp < g.group; ++grp) {
    for (int64_t mi = 0; mi < g.mg; ++mi) {
      const int64_t m = grp * g.mg + mi;
      offset[mi] = (bias ? bias[m] : 0) - xzp * wsums[m];
      mult[mi] = xs * ScaleAt(*c.in[4], m) / ys;
    }
    for (int64_t b = 0; b < g.n; ++b) {
      const uint8_t* xg = x.as<uint8_t>() + (b * g.c + grp * g.cg) * g.in_size;
      unsigned char* yg = static_cast<unsigned char*>(y.data) + (b * g.m + grp * g.mg) * g.out_size;
      isa.qconv_u8s8(a, xg, static_cast<uint8_t>(xzp), wpacked + grp * per_group, offset, mult,
                     static_cast<float>(yzp), s8, phases, ywide, yg);
    }
  }
}

// One group's windows as rows of kpad bytes, one per output position, zero beyond the window.
void UnrollRows(const ConvGeometry& g, const uint8_t* xg, uint8_t pad, int64_t kpad,
                uint8_t* cols) {
  const int64_t ih = g.w.in[0], iw = g.w.in[1], oh = g.w.out[0], ow = g.w.out[1];
  const int64_t kh = g.w.kernel[0], kw = g.w.kernel[1];
  const int64_t kdim = g.cg * g.k_size;
  for (int64_t oy = 0; oy < oh; ++oy) {
    for (int64_t ox = 0; ox < ow; ++ox) {
      uint8_t* row = cols + (oy * ow + ox) * kpad;
      int64_t k = 0;
      for (int64_t ci = 0; ci < g.cg; ++ci) {
        const uint8_t* plane = xg + ci * g.in_size;
        for (int64_t ky = 0; ky < kh; ++ky) {
          const int64_t yy = oy * g.w.stride[0] - g.w.pad_begin[0] + ky * g.w.dilation[0];
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t xx = ox * g.w.stride[1] - g.w.pad_begin[1] + kx * g.w.dilation[1];
            row[k++] = (yy < 0 || yy >= ih || xx < 0 || xx >= iw) ? pad : plane[yy * iw + xx];
          }
        }
      }
      std::fill(row + kdim, row + kpad, uint8_t{0});
    }
  }
}

Status RunQConvU8S8(RunContext& c, const ConvGeometry& g, int32_t xzp, int32_t yzp, float xs,
                    float ys, const int32_t* bias) {
  const IsaKernels& isa = ActiveKernels();
  std::vector<unsigned char> local;
  const auto& packed = PackedWeights(c, g, local);
  const int64_t kq4 = (g.cg * g.k_size + 3) / 4 * 4;
  const auto* wpacked = reinterpret_cast<const int8_t*>(packed.data());
  const auto* wsums = reinterpret_cast<const int32_t*>(packed.data() + g.m * kq4);
  if (IsDepthwise(g) && g.k_size < 512) {
    // Depthwise (kernels/depthwise.hpp), its sums exact in float: the phase planes' padding
    // holds the zero point, whose contribution -zp * sum(w) takes out again.
    const Tensor& x = *c.in[0];
    Tensor& y = *c.out[0];
    const DepthwiseArgs a = DepthwiseArgsOf(g);
    auto* padded = static_cast<float*>(c.scratch);
    float* wide = padded + a.sh * a.sw * a.plane;
    float* wf = wide + a.wide;
    auto* sums = reinterpret_cast<int32_t*>(wf + g.k_size);
    const int8_t* w8 = c.in[3]->as<int8_t>();
    std::fill(padded, wide, static_cast<float>(xzp));
    auto* offset = reinterpret_cast<int32_t*>(sums + g.out_size);
    auto* mult = reinterpret_cast<float*>(offset + g.m);
    for (int64_t ch = 0; ch < g.m; ++ch) {
      offset[ch] = (bias ? bias[ch] : 0) - xzp * wsums[ch];
      mult[ch] = xs * ScaleAt(*c.in[4], ch) / ys;
    }
    for (int64_t b = 0; b < g.n; ++b)
      isa.depthwise_u8(a, g.m, x.as<uint8_t>() + b * g.c * g.in_size, w8, offset, mult,
                       static_cast<float>(yzp), y.dtype == DType::kInt8, wf, padded, wide, sums,
                       static_cast<uint8_t*>(y.data) + b * g.m * g.out_size);
    return Status::Ok();
  }
  if (isa.fc_u8s8 && IsFullyConnected(g)) {
    auto* offset = reinterpret_cast<int32_t*>(c.scratch);
    auto* mult = reinterpret_cast<float*>(offset + g.m);
    for (int64_t m = 0; m < g.m; ++m) {
      offset[m] = (bias ? bias[m] : 0) - xzp * wsums[m];
      mult[m] = xs * ScaleAt(*c.in[4], m) / ys;
    }
    Tensor& y = *c.out[0];
    isa.fc_u8s8(g.n, g.c, g.m, c.in[0]->as<uint8_t>(),
                reinterpret_cast<const int32_t*>(packed.data() + g.m * kq4 + g.m * 4), offset, mult,
                static_cast<float>(yzp), y.dtype == DType::kInt8, y.data);
    return Status::Ok();
  }
  if (g.out_size == 1 && g.k_size == 1) {
    // A fully connected layer (1x1 over a 1x1 input): one uint8 x int8 dot product per output.
    Tensor& y = *c.out[0];
    auto* acc = reinterpret_cast<int32_t*>(c.scratch);
    const int64_t kdim = g.cg;
    for (int64_t b = 0; b < g.n; ++b) {
      for (int64_t grp = 0; grp < g.group; ++grp) {
        const uint8_t* xg = c.in[0]->as<uint8_t>() + (b * g.c + grp * g.cg);
        for (int64_t mi = 0; mi < g.mg; ++mi) {
          const int64_t m = grp * g.mg + mi;
          isa.dot_u8s8_rows(xg, 1, kdim, wpacked + m * kq4, kdim, acc);
          const int32_t offset = (bias ? bias[m] : 0) - xzp * wsums[m];
          const float mult = xs * ScaleAt(*c.in[4], m) / ys;
          if (y.dtype == DType::kUint8)
            isa.requantize_u8(acc, y.as<uint8_t>() + b * g.m + m, 1, offset, mult,
                              static_cast<float>(yzp));
          else
            isa.requantize_s8(acc, y.as<int8_t>() + b * g.m + m, 1, offset, mult,
                              static_cast<float>(yzp));
        }
      }
    }
    return Status::Ok();
  }
  if (isa.qconv_u8s8 && FitsQConv(g)) {
    const auto* blocks = reinterpret_cast<const int32_t*>(packed.data() + g.m * kq4 + g.m * 4);
    RunQConvVnni(c, g, blocks, wsums, xzp, yzp, xs, ys, bias);
    return Status::Ok();
  }
  const Tensor& x = *c.in[0];
  Tensor& y = *c.out[0];
  const int64_t kdim = g.cg * g.k_size, kpad = (kdim + 63) / 64 * 64, kq = (kdim + 3) / 4;
  const int64_t opad16 = (g.out_size + 15) / 16 * 16;
  auto* cols = static_cast<uint8_t*>(c.scratch);                        // window bytes
  auto* wpad = reinterpret_cast<int8_t*>(cols + opad16 * kpad);         // [kpad], rows layout
  auto* acc = reinterpret_cast<int32_t*>(cols + opad16 * kpad + kpad);  // [opad16], 64-aligned
  uint8_t* padded = reinterpret_cast<uint8_t*>(acc + opad16) + 64;      // quads layout
  const uint8_t pad = static_cast<uint8_t>(xzp);
  const int8_t* w8 = c.in[3]->as<int8_t>();
  const QuadArgs quad{
      g.w.in[0],      g.w.in[1],     g.w.pad_begin[0], g.w.pad_end[0],  g.w.pad_begin[1],
      g.w.pad_end[1], g.w.out[0],    g.w.out[1],       g.w.kernel[0],   g.w.kernel[1],
      g.w.stride[0],  g.w.stride[1], g.w.dilation[0],  g.w.dilation[1], g.cg,
      g.cg * g.k_size};
  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t grp = 0; grp < g.group; ++grp) {
      const uint8_t* xg = x.as<uint8_t>() + (b * g.c + grp * g.cg) * g.in_size;
      if (isa.dot_u8s8_quads)
        isa.unroll_quads(quad, xg, pad, padded, cols);
      else
        UnrollRows(g, xg, pad, kpad, cols);
      for (int64_t mi = 0; mi < g.mg; ++mi) {
        const int64_t m = grp * g.mg + mi;
        int32_t wsum = 0;
        if (isa.dot_u8s8_quads) {
          // Padded window bytes hold the zero point and meet zero weights: no contribution.
          wsum = wsums[m];
          isa.dot_u8s8_quads(cols, reinterpret_cast<const int32_t*>(wpacked + m * kq4), kq, opad16,
                             acc);
        } else {
          for (int64_t i = 0; i < kdim; ++i) {
            wpad[i] = w8[m * kdim + i];
            wsum += wpad[i];
          }
          std::fill(wpad + kdim, wpad + kpad, int8_t{0});
          isa.dot_u8s8_rows(cols, g.out_size, kpad, wpad, kpad, acc);
        }
        const int32_t offset = (bias ? bias[m] : 0) - xzp * wsum;
        const float mult = xs * ScaleAt(*c.in[4], m) / ys;
        const float zp = static_cast<float>(yzp);
        const int64_t ybase = (b * g.m + m) * g.out_size;
        if (y.dtype == DType::kUint8)
          isa.requantize_u8(acc, y.as<uint8_t>() + ybase, g.out_size, offset, mult, zp);
        else
          isa.requantize_s8(acc, y.as<int8_t>() + ybase, g.out_size, offset, mult, zp);
      }
    }
  }
  return Status::Ok();
}

Status RunQConv(RunContext& c) {
  ConvGeometry g;
  EDGELOOP_RETURN_IF_ERROR(ConvGeometryOf(c.node, c.in[0]->shape, c.in[3]->shape, &g));
  const Tensor& x = *c.in[0];
  const Tensor& w = *c.in[3];
  Tensor& y = *c.out[0];
  const int32_t xzp = ZeroAt(c.in[2], 0), yzp = ZeroAt(c.in[7], 0);
  const float xs = ScaleAt(*c.in[1], 0), ys = ScaleAt(*c.in[6], 0);
  const int32_t* bias = c.in.size() > 8 && c.in[8] ? c.in[8]->as<int32_t>() : nullptr;
  const size_t r = g.w.rank();
  const int64_t kdim = g.cg * g.k_size;
  std::vector<int64_t> o(r), k(r), pos(r);

  bool symmetric_int8 = w.dtype == DType::kInt8;
  for (int64_t m = 0; symmetric_int8 && m < g.m; ++m) symmetric_int8 = ZeroAt(c.in[5], m) == 0;
  if (c.backend == Backend::kFast && r == 2 && symmetric_int8 && x.dtype == DType::kUint8)
    return RunQConvU8S8(c, g, xzp, yzp, xs, ys, bias);
  if (c.backend == Backend::kFast && r == 2 && symmetric_int8) {
    // Scratch: the group's input shifted by its zero point as int16, then the windows
    // unrolled one row of kdim values per output position.
    int16_t* xs16 = static_cast<int16_t*>(c.scratch);
    // Each region starts on a 64-byte boundary (32 int16 values).
    auto round32 = [](int64_t v) { return (v + 31) / 32 * 32; };
    int16_t* cols = xs16 + round32(g.cg * g.in_size);
    int32_t* accs = reinterpret_cast<int32_t*>(cols + round32(g.out_size * kdim));
    const int64_t ih = g.w.in[0], iw = g.w.in[1], oh = g.w.out[0], ow = g.w.out[1];
    const int64_t kh = g.w.kernel[0], kw = g.w.kernel[1];
    const int8_t* w8 = w.as<int8_t>();
    for (int64_t b = 0; b < g.n; ++b) {
      for (int64_t grp = 0; grp < g.group; ++grp) {
        const int64_t xbase = (b * g.c + grp * g.cg) * g.in_size;
        for (int64_t i = 0; i < g.cg * g.in_size; ++i)
          xs16[i] = static_cast<int16_t>(Load8(x, xbase + i) - xzp);
        if (g.out_size == 1 && g.k_size == 1) {
          // A fully connected layer (1x1 over a 1x1 input): one dot product per output.
          for (int64_t mi = 0; mi < g.mg; ++mi) {
            const int64_t m = grp * g.mg + mi;
            const int8_t* wr = w8 + m * kdim;
            int32_t acc = bias ? bias[m] : 0;
            for (int64_t i = 0; i < kdim; ++i)
              acc += static_cast<int32_t>(wr[i]) * static_cast<int32_t>(xs16[i]);
            accs[mi] = acc;
          }
        } else {
          // Unroll windows into rows of positions ([kdim, out_size]) and accumulate each
          // output channel as a weighted sum of rows: vectorised across positions.
          int16_t* row = cols;
          for (int64_t ci = 0; ci < g.cg; ++ci) {
            const int16_t* plane = xs16 + ci * g.in_size;
            for (int64_t ky = 0; ky < kh; ++ky) {
              for (int64_t kx = 0; kx < kw; ++kx) {
                for (int64_t oy = 0; oy < oh; ++oy) {
                  const int64_t yy = oy * g.w.stride[0] - g.w.pad_begin[0] + ky * g.w.dilation[0];
                  for (int64_t ox = 0; ox < ow; ++ox) {
                    const int64_t xx = ox * g.w.stride[1] - g.w.pad_begin[1] + kx * g.w.dilation[1];
                    *row++ = (yy < 0 || yy >= ih || xx < 0 || xx >= iw) ? int16_t{0}
                                                                        : plane[yy * iw + xx];
                  }
                }
              }
            }
          }
        }
        for (int64_t mi = 0; mi < g.mg; ++mi) {
          const int64_t m = grp * g.mg + mi;
          const float mult = xs * ScaleAt(*c.in[4], m) / ys;
          const int64_t ybase = (b * g.m + m) * g.out_size;
          int32_t* acc = accs;
          if (g.out_size > 1) {
            const int8_t* wr = w8 + m * kdim;
            std::fill(acc, acc + g.out_size, bias ? bias[m] : 0);
            for (int64_t kk = 0; kk < kdim; ++kk) {
              const int32_t wv = wr[kk];
              if (wv == 0) continue;
              const int16_t* cr = cols + kk * g.out_size;
              for (int64_t op = 0; op < g.out_size; ++op)
                acc[op] += wv * static_cast<int32_t>(cr[op]);
            }
          } else {
            acc = accs + mi;
          }
          const float lo = y.dtype == DType::kUint8 ? 0.0f : -128.0f,
                      hi = y.dtype == DType::kUint8 ? 255.0f : 127.0f;
          const float zp = static_cast<float>(yzp);
          if (y.dtype == DType::kUint8) {
            uint8_t* yo = y.as<uint8_t>() + ybase;
            for (int64_t op = 0; op < g.out_size; ++op)
              yo[op] = static_cast<uint8_t>(
                  std::clamp(std::nearbyint(static_cast<float>(acc[op]) * mult) + zp, lo, hi));
          } else {
            int8_t* yo = y.as<int8_t>() + ybase;
            for (int64_t op = 0; op < g.out_size; ++op)
              yo[op] = static_cast<int8_t>(
                  std::clamp(std::nearbyint(static_cast<float>(acc[op]) * mult) + zp, lo, hi));
          }
        }
      }
    }
    return Status::Ok();
  }

  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t m = 0; m < g.m; ++m) {
      const int64_t grp = m / g.mg;
      const int32_t wzp = ZeroAt(c.in[5], m);
      const float mult = xs * ScaleAt(*c.in[4], m) / ys;
      std::fill(o.begin(), o.end(), 0);
      for (int64_t op = 0; op < g.out_size; ++op) {
        int64_t acc = bias ? bias[m] : 0;
        for (int64_t ci = 0; ci < g.cg; ++ci) {
          const int64_t xbase = (b * g.c + grp * g.cg + ci) * g.in_size;
          const int64_t wbase = (m * g.cg + ci) * g.k_size;
          std::fill(k.begin(), k.end(), 0);
          for (int64_t kp = 0; kp < g.k_size; ++kp) {
            int64_t off = 0;
            if (WindowOffset(g.w, o, k, pos, &off))
              acc +=
                  static_cast<int64_t>(Load8(x, xbase + off) - xzp) * (Load8(w, wbase + kp) - wzp);
            NextIndex(k, g.w.kernel);
          }
        }
        Store8(y, (b * g.m + m) * g.out_size + op, static_cast<float>(acc) * mult, yzp);
        NextIndex(o, g.w.out);
      }
    }
  }
  return Status::Ok();
}

// --- QLinearMatMul -----------------------------------------------------------------------
// Inputs: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp; 2-D operands (per-tensor a,
// per-tensor or per-column b).
Status CheckQMatMul(const Node& n) {
  return CheckArity(n, 8, 8);
}

Status InferQMatMul(InferContext& c) {
  if (!Is8Bit(c.in[0]->dtype) || !Is8Bit(c.in[3]->dtype)) return c.Fail("a and b must be 8-bit");
  EDGELOOP_RETURN_IF_ERROR(CheckScalar(c, 1, 2, "a"));
  EDGELOOP_RETURN_IF_ERROR(CheckScalar(c, 6, 7, "y"));
  const Shape& a = c.in[0]->shape;
  const Shape& b = c.in[3]->shape;
  // [M,K] x [K,N], or a batch of them: [B,M,K] x [B,K,N] or [B,M,K] x [K,N].
  const bool ok = a.size() >= 2 && a.size() <= 3 && b.size() >= 2 && b.size() <= a.size() &&
                  a.back() == b[b.size() - 2] && (b.size() == 2 || a[0] == b[0]);
  if (!ok)
    return NodeError(c.node, Errc::kUnsupported,
                     "operands " + ShapeString(a) + " x " + ShapeString(b) +
                         " (2-D, or 3-D with the same batch)");
  int64_t ns = NumElements(c.in[4]->shape);
  if (ns != 1 && ns != b.back()) return c.Fail("b scale must be a scalar or one per column");
  Shape out(a.begin(), a.end() - 1);
  out.push_back(b.back());
  c.out = {TensorInfo{c.in[7] ? c.in[7]->dtype : DType::kUint8, out}};
  return Status::Ok();
}

Status RunQMatMul(RunContext& c) {
  const Tensor& a = *c.in[0];
  const Tensor& b = *c.in[3];
  Tensor& y = *c.out[0];
  const size_t r = a.shape.size();
  const int64_t batches = r == 3 ? a.shape[0] : 1;
  const int64_t m = a.shape[r - 2], k = a.shape[r - 1], n = b.shape.back();
  const int64_t b_stride = b.shape.size() == 3 ? k * n : 0;
  const int32_t azp = ZeroAt(c.in[2], 0), yzp = ZeroAt(c.in[7], 0);
  const float as = ScaleAt(*c.in[1], 0), ys = ScaleAt(*c.in[6], 0);
  for (int64_t bt = 0; bt < batches; ++bt) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        const int32_t bzp = ZeroAt(c.in[5], j);
        int64_t acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += static_cast<int64_t>(Load8(a, (bt * m + i) * k + p) - azp) *
                 (Load8(b, bt * b_stride + p * n + j) - bzp);
        Store8(y, (bt * m + i) * n + j, static_cast<float>(acc) * as * ScaleAt(*c.in[4], j) / ys,
               yzp);
      }
    }
  }
  return Status::Ok();
}

// --- QLinearAdd ----------------------------------------------------------------------------
// ONNX Runtime's contrib op, which the QDQ fusion also makes from DequantizeLinear -> Add ->
// QuantizeLinear (qdq.cpp): inputs a, a_scale, a_zp, b, b_scale, b_zp, y_scale, [y_zp]; numpy
// broadcasting;
//   y = saturate(round(((a - a_zp) * a_scale + (b - b_zp) * b_scale) / y_scale) + y_zp),
// the float path's arithmetic step for step, so fused and unfused graphs agree exactly.
Status CheckQAdd(const Node& n) {
  return CheckArity(n, 7, 8);
}

Status InferQAdd(InferContext& c) {
  if (!Is8Bit(c.in[0]->dtype) || !Is8Bit(c.in[3]->dtype)) return c.Fail("a and b must be 8-bit");
  EDGELOOP_RETURN_IF_ERROR(CheckScalar(c, 1, 2, "a"));
  EDGELOOP_RETURN_IF_ERROR(CheckScalar(c, 4, 5, "b"));
  EDGELOOP_RETURN_IF_ERROR(CheckScalar(c, 6, 7, "y"));
  Shape out;
  if (!BroadcastShapes(c.in[0]->shape, c.in[3]->shape, &out))
    return c.Fail("shapes " + ShapeString(c.in[0]->shape) + " and " + ShapeString(c.in[3]->shape) +
                  " do not broadcast");
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, out));
  c.out = {TensorInfo{c.in.size() > 7 && c.in[7] ? c.in[7]->dtype : DType::kUint8, out}};
  return Status::Ok();
}

template <typename A, typename B, typename Y>
void QAdd(const A* a, const B* b, Y* y, int64_t n, float az, float as, float bz, float bs, float ys,
          float yz, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) {
    const float v =
        std::nearbyint(
            ((static_cast<float>(a[i]) - az) * as + (static_cast<float>(b[i]) - bz) * bs) / ys) +
        yz;
    y[i] = static_cast<Y>(std::clamp(v, lo, hi));
  }
}

Status RunQAdd(RunContext& c) {
  const Tensor& a = *c.in[0];
  const Tensor& b = *c.in[3];
  Tensor& y = *c.out[0];
  const float az = static_cast<float>(ZeroAt(c.in[2], 0)), as = ScaleAt(*c.in[1], 0);
  const float bz = static_cast<float>(ZeroAt(c.in[5], 0)), bs = ScaleAt(*c.in[4], 0);
  const float yz = static_cast<float>(c.in.size() > 7 ? ZeroAt(c.in[7], 0) : 0);
  const float ys = ScaleAt(*c.in[6], 0);
  const float lo = y.dtype == DType::kUint8 ? 0.0f : -128.0f,
              hi = y.dtype == DType::kUint8 ? 255.0f : 127.0f;
  if (a.shape == b.shape && a.dtype == DType::kUint8 && b.dtype == DType::kUint8 &&
      y.dtype == DType::kUint8) {
    // The residual connections of int8 ResNets and MobileNets.
    QAdd(a.as<uint8_t>(), b.as<uint8_t>(), y.as<uint8_t>(), a.size(), az, as, bz, bs, ys, yz, lo,
         hi);
    return Status::Ok();
  }
  ForEachBroadcast<2>(
      y.shape, {&a.shape, &b.shape}, [&](int64_t i, const std::array<int64_t, 2>& off) {
        const float v = std::nearbyint(((static_cast<float>(Load8(a, off[0])) - az) * as +
                                        (static_cast<float>(Load8(b, off[1])) - bz) * bs) /
                                       ys) +
                        yz;
        Store8(y, i, std::clamp(v, lo, hi) - yz, static_cast<int32_t>(yz));
      });
  return Status::Ok();
}

}  // namespace

const OpKernel kQLinearAdd{"QLinearAdd", CheckQAdd, InferQAdd, RunQAdd};
const OpKernel kQLinearConv{"QLinearConv", CheckQConv, InferQConv, RunQConv};
const OpKernel kQLinearMatMul{"QLinearMatMul", CheckQMatMul, InferQMatMul, RunQMatMul};

}  // namespace edgeloop::runtime::kernels
