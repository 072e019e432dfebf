// QLinearConv's uint8 x int8 convolution with AVX-512 VNNI, without unrolled windows
// (isa/kernels.hpp, qconv_u8s8): the group's input is interleaved once into channel quads (the
// four bytes vpdpbusd sums into one 32-bit lane are four input channels at one pixel), padded
// with the zero point and split into stride phases, so every window tap of 16 consecutive
// outputs is one 64-byte load at a fixed offset. A register-blocked kernel then runs 8 output
// channels x 48 positions per step (24 accumulators, three loads feeding 24 vpdpbusd), and
// requantises the sums in registers: the int32 sums are never stored. Compiled with
// -march=x86-64-v4 -mavx512vnni (CMakeLists.txt); used only when the CPU reports VNNI
// (isa.cpp). No library templates here: nothing the linker could share with another object.
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__)
#error "qconv_vnni.cpp must be compiled with -march=x86-64-v4 -mavx512vnni"
#endif
#include <immintrin.h>

#include <cstring>

#include "runtime/isa/kernels.hpp"

namespace edgeloop::runtime::isa_avx512vnni {
namespace {

// Sixteen pixels of four channel rows as 16 quads: bytes interleaved by unpacking.
inline void InterleaveQuads(const uint8_t* s0, const uint8_t* s1, const uint8_t* s2,
                            const uint8_t* s3, __mmask16 m, uint32_t* d) {
  const __m128i a = _mm_maskz_loadu_epi8(m, s0), b = _mm_maskz_loadu_epi8(m, s1),
                c = _mm_maskz_loadu_epi8(m, s2), e = _mm_maskz_loadu_epi8(m, s3);
  const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
  const __m128i ce_lo = _mm_unpacklo_epi8(c, e), ce_hi = _mm_unpackhi_epi8(c, e);
  __m512i v = _mm512_castsi128_si512(_mm_unpacklo_epi16(ab_lo, ce_lo));
  v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(ab_lo, ce_lo), 1);
  v = _mm512_inserti32x4(v, _mm_unpacklo_epi16(ab_hi, ce_hi), 2);
  v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(ab_hi, ce_hi), 3);
  _mm512_mask_storeu_epi32(d, m, v);
}

// The group's cg channel planes into a.cq quads of a.sh * a.sw phase planes of a.plane lanes,
// everything outside the input holding `pad` (channels past cg too: their weights are zero).
// Lanes [0, a.covered) of every phase plane are all written from the input; the rest is
// filled first.
void PackInput(const QConvArgs& a, const uint8_t* xg, uint8_t pad, uint32_t* __restrict phases) {
  const uint32_t pad4 = uint32_t{pad} * 0x01010101u;
  const int64_t nph = a.sh * a.sw, in_plane = a.ih * a.iw;
  for (int64_t p = 0; p < a.cq * nph; ++p)
    for (int64_t i = a.covered; i < a.plane; ++i) phases[p * a.plane + i] = pad4;
  for (int64_t q = 0; q < a.cq; ++q) {
    uint32_t* base = phases + q * nph * a.plane;
    const bool whole = q * 4 + 4 <= a.cg;
    for (int64_t y = 0; y < a.ih; ++y) {
      const int64_t r = y + a.pt;
      uint32_t* __restrict row = base + (r % a.sh) * a.sw * a.plane + (r / a.sh) * a.wq;
      if (whole && a.sw == 1) {
        const uint8_t* s0 = xg + (q * 4) * in_plane + y * a.iw;
        for (int64_t x = 0; x < a.iw; x += 16) {
          const __mmask16 m =
              a.iw - x >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (a.iw - x)) - 1);
          InterleaveQuads(s0 + x, s0 + in_plane + x, s0 + 2 * in_plane + x, s0 + 3 * in_plane + x,
                          m, row + a.pl + x);
        }
        continue;
      }
      for (int64_t x = 0; x < a.iw; ++x) {
        uint32_t v = 0;
        for (int64_t j = 0; j < 4; ++j) {
          const int64_t ch = q * 4 + j;
          const uint32_t b = ch < a.cg ? xg[ch * in_plane + y * a.iw + x] : pad;
          v |= b << (8 * j);
        }
        const int64_t c = x + a.pl;
        row[(c % a.sw) * a.plane + c / a.sw] = v;
      }
    }
  }
}

// Output channels [0, 8) of a block (rows of them stored) at positions [p0, p0 + 16 V) of the
// phase width: sums over every quad and tap, then y = saturate(round((sum + offset) * mult) +
// zp) into out ([8][stride] bytes). w is the block's weights, [cq][tap][8] int32.
template <int V, bool kSigned>
inline void Tile(const QConvArgs& a, const uint32_t* phases, const int32_t* w,
                 const int32_t* offset, const float* mult, float zp, int64_t rows, int64_t p0,
                 uint8_t* out, int64_t stride) {
  __m512i acc[8][V];
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_si512();
  const int64_t taps = a.kh * a.kw, quad_stride = a.sh * a.sw * a.plane;
  for (int64_t q = 0; q < a.cq; ++q) {
    const uint32_t* src = phases + q * quad_stride + p0;
    const int32_t* wq = w + q * taps * 8;
    for (int64_t t = 0; t < taps; ++t) {
      const uint32_t* s = src + a.tap_offset[t];
      __m512i x[V];
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) x[v] = _mm512_loadu_si512(s + 16 * v);
      const int32_t* wt = wq + t * 8;
#pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) {
        const __m512i wv = _mm512_set1_epi32(wt[r]);
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x[v], wv);
      }
    }
  }
  // The rounding is to nearest even, as the reference's nearbyint; the masked forms with every
  // lane set avoid GCC 12's warning that the plain ones read an undefined vector.
  const __m512 vzp = _mm512_set1_ps(zp), lo = _mm512_set1_ps(kSigned ? -128.0f : 0.0f),
               hi = _mm512_set1_ps(kSigned ? 127.0f : 255.0f);
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) {
    if (r >= rows) break;
    const __m512i off = _mm512_set1_epi32(offset[r]);
    const __m512 m = _mm512_set1_ps(mult[r]);
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) {
      __m512 f =
          _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_add_epi32(acc[r][v], off)), m);
      f = _mm512_add_ps(
          _mm512_maskz_roundscale_ps(0xFFFF, f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
          vzp);
      f = _mm512_mask_max_ps(f, 0xFFFF, f, lo);
      f = _mm512_mask_min_ps(f, 0xFFFF, f, hi);
      const __m512i i = _mm512_maskz_cvtps_epi32(0xFFFF, f);
      const __m128i b = kSigned ? _mm512_maskz_cvtsepi32_epi8(0xFFFF, i)
                                : _mm512_maskz_cvtusepi32_epi8(0xFFFF, i);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r * stride + p0 + 16 * v), b);
    }
  }
}

template <bool kSigned>
void Run(const QConvArgs& a, const uint32_t* phases, const int32_t* w, const int32_t* offset,
         const float* mult, float zp, uint8_t* ywide, uint8_t* y) {
  const int64_t taps = a.kh * a.kw, out_plane = a.oh * a.ow;
  // Outputs on the phase width that are the output plane, whole vectors of it, are stored
  // where they belong; others go through ywide.
  const bool direct = a.wq == a.ow && out_plane == a.wide;
  for (int64_t m0 = 0; m0 < a.m; m0 += 8) {
    const int64_t rows = a.m - m0 < 8 ? a.m - m0 : 8;
    const int32_t* wb = w + (m0 / 8) * a.cq * taps * 8;
    uint8_t* out = direct ? y + m0 * out_plane : ywide;
    const int64_t stride = direct ? out_plane : a.wide;
    int64_t p0 = 0;
    for (; a.wide - p0 >= 48; p0 += 48)
      Tile<3, kSigned>(a, phases, wb, offset + m0, mult + m0, zp, rows, p0, out, stride);
    if (a.wide - p0 == 32)
      Tile<2, kSigned>(a, phases, wb, offset + m0, mult + m0, zp, rows, p0, out, stride);
    else if (a.wide - p0 == 16)
      Tile<1, kSigned>(a, phases, wb, offset + m0, mult + m0, zp, rows, p0, out, stride);
    if (direct) continue;
    // The outputs on the phase width to the output plane: the columns past ow dropped.
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* dst = y + (m0 + r) * out_plane;
      const uint8_t* src = ywide + r * a.wide;
      if (a.wq == a.ow) {
        std::memcpy(dst, src, static_cast<size_t>(out_plane));
        continue;
      }
      for (int64_t oy = 0; oy < a.oh; ++oy)
        std::memcpy(dst + oy * a.ow, src + oy * a.wq, static_cast<size_t>(a.ow));
    }
  }
}

// Requantised bytes of 16 sums (lanes of `mask`) at y.
template <bool kSigned>
inline void StoreRequantized(__m512i acc, __m512i offset, __m512 mult, __m512 zp, __mmask16 mask,
                             uint8_t* y) {
  __m512 f = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_add_epi32(acc, offset)), mult);
  f = _mm512_add_ps(
      _mm512_maskz_roundscale_ps(0xFFFF, f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zp);
  f = _mm512_mask_max_ps(f, 0xFFFF, f, _mm512_set1_ps(kSigned ? -128.0f : 0.0f));
  f = _mm512_mask_min_ps(f, 0xFFFF, f, _mm512_set1_ps(kSigned ? 127.0f : 255.0f));
  const __m512i i = _mm512_maskz_cvtps_epi32(0xFFFF, f);
  if (kSigned)
    _mm512_mask_cvtsepi32_storeu_epi8(y, mask, i);
  else
    _mm512_mask_cvtusepi32_storeu_epi8(y, mask, i);
}

// Up to four samples (S) against one block of 16 output channels: each weight vector loaded
// feeds S vpdpbusd, each with one sample's four input bytes broadcast.
template <int S, bool kSigned>
void FcBlock(int64_t k, int64_t m, const uint8_t* x, const int32_t* w, int64_t m0,
             const int32_t* offset, const float* mult, float zp, uint8_t* y) {
  const int64_t kq = (k + 3) / 4, full = k / 4;
  __m512i acc[S];
#pragma GCC unroll 4
  for (int s = 0; s < S; ++s) acc[s] = _mm512_setzero_si512();
  for (int64_t q = 0; q < full; ++q) {
    const __m512i wv = _mm512_loadu_si512(w + q * 16);
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) {
      int32_t quad;
      __builtin_memcpy(&quad, x + s * k + q * 4, 4);
      acc[s] = _mm512_dpbusd_epi32(acc[s], _mm512_set1_epi32(quad), wv);
    }
  }
  if (full < kq) {  // the last bytes of each row, zero past k (their weights are zero too)
    const __m512i wv = _mm512_loadu_si512(w + full * 16);
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) {
      uint32_t quad = 0;
      for (int64_t j = full * 4; j < k; ++j) quad |= uint32_t{x[s * k + j]} << (8 * (j - full * 4));
      acc[s] = _mm512_dpbusd_epi32(acc[s], _mm512_set1_epi32(static_cast<int32_t>(quad)), wv);
    }
  }
  const int64_t left = m - m0;
  const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
  const __m512i off = _mm512_maskz_loadu_epi32(mask, offset + m0);
  const __m512 mu = _mm512_maskz_loadu_ps(mask, mult + m0), vzp = _mm512_set1_ps(zp);
#pragma GCC unroll 4
  for (int s = 0; s < S; ++s) StoreRequantized<kSigned>(acc[s], off, mu, vzp, mask, y + s * m + m0);
}

template <bool kSigned>
void Fc(int64_t n, int64_t k, int64_t m, const uint8_t* x, const int32_t* w, const int32_t* offset,
        const float* mult, float zp, uint8_t* y) {
  const int64_t kq = (k + 3) / 4;
  int64_t b = 0;
  for (; b + 4 <= n; b += 4)
    for (int64_t m0 = 0; m0 < m; m0 += 16)
      FcBlock<4, kSigned>(k, m, x + b * k, w + (m0 / 16) * kq * 16, m0, offset, mult, zp,
                          y + b * m);
  for (; b < n; ++b)
    for (int64_t m0 = 0; m0 < m; m0 += 16)
      FcBlock<1, kSigned>(k, m, x + b * k, w + (m0 / 16) * kq * 16, m0, offset, mult, zp,
                          y + b * m);
}

}  // namespace

void FcU8S8(int64_t n, int64_t k, int64_t m, const uint8_t* x, const int32_t* w,
            const int32_t* offset, const float* mult, float zp, bool signed_out, void* y) {
  if (signed_out)
    Fc<true>(n, k, m, x, w, offset, mult, zp, static_cast<uint8_t*>(y));
  else
    Fc<false>(n, k, m, x, w, offset, mult, zp, static_cast<uint8_t*>(y));
}

void QConvU8S8(const QConvArgs& a, const uint8_t* xg, uint8_t pad, const int32_t* w,
               const int32_t* offset, const float* mult, float zp, bool signed_out,
               uint32_t* phases, uint8_t* ywide, void* y) {
  PackInput(a, xg, pad, phases);
  if (signed_out)
    Run<true>(a, phases, w, offset, mult, zp, ywide, static_cast<uint8_t*>(y));
  else
    Run<false>(a, phases, w, offset, mult, zp, ywide, static_cast<uint8_t*>(y));
}

}  // namespace edgeloop::runtime::isa_avx512vnni
