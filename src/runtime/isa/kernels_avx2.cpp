// The kernels at x86-64-v3 (AVX2, FMA): compiled with -march=x86-64-v3 (CMakeLists.txt), so
// Eigen works on 8-float vectors with fused multiply-adds.
#if !defined(__AVX2__) || !defined(__FMA__) || defined(__AVX512F__)
#error "kernels_avx2.cpp must be compiled with -march=x86-64-v3 (see src/runtime/CMakeLists.txt)"
#endif
#define EDGELOOP_ISA_NS isa_avx2
#define EDGELOOP_ISA_LEVEL kAvx2
#define EDGELOOP_ISA_NAME "avx2"
#define EDGELOOP_ISA_EIGEN edgeloop_eigen_avx2
#include "runtime/isa/kernels_impl.inc"
