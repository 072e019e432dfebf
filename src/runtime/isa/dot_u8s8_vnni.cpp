// The int8 dot products of QLinearConv with AVX-512 VNNI (vpdpbusd: four uint8 x int8 products
// summed into each 32-bit lane), compiled with -march=x86-64-v4 -mavx512vnni (CMakeLists.txt).
// Not every AVX-512 CPU has VNNI (Skylake-SP does not), so the avx512 table uses this only
// when the CPU reports it (isa.cpp). No Eigen and no library templates here: nothing that the
// linker could share with another object.
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__)
#error "dot_u8s8_vnni.cpp must be compiled with -march=x86-64-v4 -mavx512vnni"
#endif
#include <immintrin.h>

#include "runtime/isa/kernels.hpp"

namespace edgeloop::runtime::isa_avx512vnni {

void DotU8S8Quads(const uint8_t* cols, const int32_t* w, int64_t kq, int64_t positions,
                  int32_t* acc) {
  // Four blocks of 16 positions at a time: four independent accumulation chains.
  int64_t op0 = 0;
  for (; op0 + 64 <= positions; op0 += 64) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t q = 0; q < kq; ++q) {
      const __m512i wv = _mm512_set1_epi32(w[q]);
      const uint8_t* p = cols + (q * positions + op0) * 4;
      a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(p), wv);
      a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(p + 64), wv);
      a2 = _mm512_dpbusd_epi32(a2, _mm512_loadu_si512(p + 128), wv);
      a3 = _mm512_dpbusd_epi32(a3, _mm512_loadu_si512(p + 192), wv);
    }
    _mm512_storeu_si512(acc + op0, a0);
    _mm512_storeu_si512(acc + op0 + 16, a1);
    _mm512_storeu_si512(acc + op0 + 32, a2);
    _mm512_storeu_si512(acc + op0 + 48, a3);
  }
  for (; op0 < positions; op0 += 16) {
    __m512i a = _mm512_setzero_si512();
    for (int64_t q = 0; q < kq; ++q)
      a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512(cols + (q * positions + op0) * 4),
                              _mm512_set1_epi32(w[q]));
    _mm512_storeu_si512(acc + op0, a);
  }
}

}  // namespace edgeloop::runtime::isa_avx512vnni
