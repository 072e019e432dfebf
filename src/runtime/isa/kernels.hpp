// The kernels that are compiled once per instruction-set level (../isa.hpp): a table of plain
// functions per level, each defined by isa/kernels_<level>.cpp from the same source
// (kernels_impl.inc). Internal to the runtime: kernels call the table of the active level,
// through gemm.hpp's functions or ActiveKernels().
#pragma once

#include <cstdint>

#include "runtime/isa.hpp"

namespace edgeloop::runtime {

// The geometry of a depthwise convolution, for the kernels below (kernels/depthwise.hpp
// computes it).
inline constexpr int64_t kDepthwiseTapOffsets = 25;
struct DepthwiseArgs {
  int64_t ih, iw, pt, pl;  // input plane and leading pads
  int64_t hp, wp;          // padded plane
  int64_t oh, ow, kh, kw;  // output plane and kernel
  int64_t sh, sw, dh, dw;  // strides and dilations
  int64_t hq, wq;          // a stride phase's plane: ceil(hp / sh) x ceil(wp / sw)
  int64_t plane;           // floats per phase plane, with room for the last block's reads
  int64_t wide;            // floats of the outputs on the phase width, oh * wq rounded up to 16
  // Where each window tap (ky * kw + kx) reads for the output at phase position 0, for
  // kernels of up to kDepthwiseTapOffsets taps.
  int64_t tap_offset[kDepthwiseTapOffsets];
  float lo, hi;  // the activation folded into the layer: outputs are clamped to [lo, hi]
};

// The geometry of a 2-D int8 convolution's window unrolling (kernels/qlinear.cpp).
struct QuadArgs {
  int64_t ih, iw, pt, pb, pl, pr;  // one group's input plane and its pads
  int64_t oh, ow, kh, kw;          // output plane and kernel
  int64_t sh, sw, dh, dw;          // strides and dilations
  int64_t cg, kdim;                // channels per group; cg * kh * kw
};

// The geometry of a 2-D uint8 x int8 convolution of one group for qconv_u8s8
// (kernels/qlinear.cpp): its input as channel quads (four channels' bytes of one pixel in
// one 32-bit lane) padded and split into stride phases, outputs computed on the phase width.
inline constexpr int64_t kQConvMaxTaps = 49;  // kernels up to 7x7
struct QConvArgs {
  int64_t ih, iw, pt, pl;  // input plane and leading pads
  int64_t oh, ow, kh, kw;  // output plane and kernel
  int64_t sh, sw;          // strides
  int64_t cg, cq, m;       // input channels, their quads (cg / 4 rounded up), output channels
  int64_t wq;              // a phase plane's width: the padded width / sw rounded up
  int64_t plane;           // lanes per phase plane, with room for the last tile's reads
  int64_t covered;         // lanes at the start of each phase plane that the input fills
  int64_t wide;            // outputs on the phase width, oh * wq rounded up to 16
  // Where each tap (ky * kw + kx) reads, in lanes from its quad's first phase plane, for the
  // output at phase position 0.
  int64_t tap_offset[kQConvMaxTaps];
};

struct IsaKernels {
  Isa isa;
  const char* name;  // the level and the optional features used, e.g. "avx512+vnni"

  // The fast halves of gemm.hpp's functions (Sgemm with k > 0).
  void (*sgemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc);
  void (*conv_gemm)(int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                    const float* bias, float lo, float hi, float* c);
  void (*conv_gemm_rows)(int64_t m, int64_t n, int64_t k, const float* a, const float* const* rows,
                         const float* bias, float lo, float hi, float* c);
  void (*dot_rows)(const float* x, const float* w, int64_t n, int64_t k, float* y);

  // int8 (kernels/qlinear.cpp). acc[r] = sum_i a[r * stride + i] * b[i] for r < rows, i < n.
  void (*dot_u8s8_rows)(const uint8_t* a, int64_t rows, int64_t stride, const int8_t* b, int64_t n,
                        int32_t* acc);
  // acc[p] = sum_q sum_j cols[(q * positions + p) * 4 + j] * w_q[j] for p < positions (a
  // multiple of 16), w_q the four int8 weights in w[q]: the layout of VNNI's vpdpbusd.
  // nullptr where that instruction is missing; the caller then uses dot_u8s8_rows.
  void (*dot_u8s8_quads)(const uint8_t* cols, const int32_t* w, int64_t kq, int64_t positions,
                         int32_t* acc);
  // Depthwise convolution of one channel plane (kernels/depthwise.hpp): copies x (ih x iw)
  // into the sh * sw phase planes of `padded`, whose padding the caller filled (it is never
  // written here), sums every output's kh * kw window taps with w ([kh * kw]) and bias into
  // `wide` ([oh][wq]) and copies the oh x ow outputs to y.
  void (*depthwise_f32)(const DepthwiseArgs& a, const float* x, const float* w, float bias,
                        float* padded, float* wide, float* y);
  // The uint8 variant, requantised, for `channels` planes one after another (x: [channels][ih]
  // [iw], w: [channels][kh * kw] int8, y: [channels][oh][ow]): y = saturate(round((sum +
  // offset[ch]) * mult[ch]) + zp), uint8 or (signed_out) int8. It converts the inputs to float:
  // products of 8-bit values summed over fewer than 2^24 / (255 * 128) = 514 taps are exact in
  // float, so its sums are the integer sums. Scratch as depthwise_f32's, and `wf` (kh * kw
  // floats) and `sums` (oh * ow int32).
  void (*depthwise_u8)(const DepthwiseArgs& a, int64_t channels, const uint8_t* x, const int8_t* w,
                       const int32_t* offset, const float* mult, float zp, bool signed_out,
                       float* wf, float* padded, float* wide, int32_t* sums, uint8_t* y);
  // One group's windows in dot_u8s8_quads' layout: [kq][position (padded to 16)][4] bytes
  // from x padded with `pad` into `padded` (cg * hp * wp bytes).
  void (*unroll_quads)(const QuadArgs& a, const uint8_t* xg, uint8_t pad, uint8_t* padded,
                       uint8_t* cols);
  // y[i] = saturate(round((acc[i] + offset) * mult) + zp), i < n.
  void (*requantize_u8)(const int32_t* acc, uint8_t* y, int64_t n, int32_t offset, float mult,
                        float zp);
  void (*requantize_s8)(const int32_t* acc, int8_t* y, int64_t n, int32_t offset, float mult,
                        float zp);
  // One group's convolution y[m][oh * ow] = saturate(round((sum x w + offset[m]) * mult[m]) +
  // zp), uint8 or (signed_out) int8, from xg ([cg][ih][iw] uint8) padded with `pad`. w: the
  // weights packed once per plan, blocks of 8 output channels as [block][cq][tap][8] int32,
  // each int32 the four int8 weights of a channel quad, zero past cg and m. Scratch: `phases`
  // (cq * sh * sw * plane lanes) and `ywide` (8 * wide bytes). nullptr where VNNI is missing;
  // the caller then unrolls windows.
  void (*qconv_u8s8)(const QConvArgs& a, const uint8_t* xg, uint8_t pad, const int32_t* w,
                     const int32_t* offset, const float* mult, float zp, bool signed_out,
                     uint32_t* phases, uint8_t* ywide, void* y);
  // A fully connected layer: y[b][j] = saturate(round((sum_i x[b][i] w[j][i] + offset[j]) *
  // mult[j]) + zp) for b < n, j < m, i < k, uint8 or (signed_out) int8. w: packed once per
  // plan, blocks of 16 outputs as [block][k / 4 rounded up][16] int32, each int32 four int8
  // weights of consecutive inputs, zero past k and m. nullptr where VNNI is missing.
  void (*fc_u8s8)(int64_t n, int64_t k, int64_t m, const uint8_t* x, const int32_t* w,
                  const int32_t* offset, const float* mult, float zp, bool signed_out, void* y);
};

// The table of the active level; the first call makes the choice (see isa.hpp).
const IsaKernels& ActiveKernels();

namespace isa_baseline {
extern const IsaKernels kKernels;
}
#if EDGELOOP_RUNTIME_X86_LEVELS
namespace isa_avx2 {
extern const IsaKernels kKernels;
}
namespace isa_avx512 {
extern const IsaKernels kKernels;
}
namespace isa_avx512vnni {
void DotU8S8Quads(const uint8_t* cols, const int32_t* w, int64_t kq, int64_t positions,
                  int32_t* acc);
void QConvU8S8(const QConvArgs& a, const uint8_t* xg, uint8_t pad, const int32_t* w,
               const int32_t* offset, const float* mult, float zp, bool signed_out,
               uint32_t* phases, uint8_t* ywide, void* y);
void FcU8S8(int64_t n, int64_t k, int64_t m, const uint8_t* x, const int32_t* w,
            const int32_t* offset, const float* mult, float zp, bool signed_out, void* y);
}  // namespace isa_avx512vnni
#endif

}  // namespace edgeloop::runtime
