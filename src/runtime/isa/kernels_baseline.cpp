// The kernels at the architecture's baseline: x86-64-v2 (SSE4.2) on x86-64, with the whole
// runtime; armv8-a (NEON) on arm64. Always present, and the fallback for every other level.
#if defined(__x86_64__) && defined(__AVX__)
#error "the baseline kernels must not be compiled with AVX (see src/runtime/CMakeLists.txt)"
#endif
#define EDGELOOP_ISA_NS isa_baseline
#define EDGELOOP_ISA_LEVEL kBaseline
#define EDGELOOP_ISA_NAME "baseline"
#define EDGELOOP_ISA_EIGEN edgeloop_eigen_baseline
#include "runtime/isa/kernels_impl.inc"
