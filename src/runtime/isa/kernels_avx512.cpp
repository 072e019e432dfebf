// The kernels at x86-64-v4 (AVX-512 F/BW/CD/DQ/VL): compiled with -march=x86-64-v4
// (CMakeLists.txt): Eigen on 16-float vectors, and the register-blocked convolution kernels.
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "kernels_avx512.cpp must be compiled with -march=x86-64-v4 (see src/runtime/CMakeLists.txt)"
#endif
#define EDGELOOP_ISA_NS isa_avx512
#define EDGELOOP_ISA_LEVEL kAvx512
#define EDGELOOP_ISA_NAME "avx512"
#define EDGELOOP_ISA_EIGEN edgeloop_eigen_avx512
#include "runtime/isa/kernels_impl.inc"
