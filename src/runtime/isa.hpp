// The instruction-set level the fast kernels run at. The runtime is compiled for a baseline
// every CPU of the architecture has (x86-64-v2 on x86-64; armv8-a, with NEON, on arm64); the
// matrix and int8 kernels are compiled once more per higher x86-64 level, and one of them is
// chosen at run time from what the CPU reports. So one binary starts on any x86-64 machine
// of the last fifteen years and still uses AVX-512 where there is AVX-512.
//
// The choice is made once, at the first kernel call (or the first call below): the best level
// this binary carries and the CPU supports, unless the environment variable
// EDGELOOP_RUNTIME_ISA names a level (baseline, avx2, avx512). A level the CPU lacks, or one
// this binary does not carry, is refused with a warning in the log and the best level is used.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::runtime {

// Nested: each level includes the ones before it.
enum class Isa {
  kBaseline,  // x86-64-v2 (SSE4.2) on x86-64; the architecture's baseline elsewhere
  kAvx2,      // x86-64-v3: AVX2, FMA, BMI2
  kAvx512,    // x86-64-v4: AVX-512 F/BW/CD/DQ/VL; the int8 kernel also uses VNNI when present
};

const char* IsaName(Isa isa);  // "baseline", "avx2", "avx512"
std::optional<Isa> ParseIsa(std::string_view name);

// The levels compiled into this binary, lowest first (only kBaseline off x86-64).
std::vector<Isa> CompiledIsas();
// Whether this CPU (and its OS, which must save the wider registers) can run the level.
bool CpuSupports(Isa isa);
// CompiledIsas() that CpuSupports(), lowest first; never empty.
std::vector<Isa> SupportedIsas();

struct IsaChoice {
  Isa isa;
  std::string warning;  // empty unless the request was refused
};
// The level for a request (the value of EDGELOOP_RUNTIME_ISA; empty: none) given the levels
// available, lowest first and non-empty: the requested one if available, else the best one.
IsaChoice ChooseIsa(std::string_view requested, const std::vector<Isa>& available);

// The level in use, and its name with the optional features the kernels use
// (e.g. "avx512+vnni").
Isa ActiveIsa();
const char* ActiveIsaName();

// Switches the whole process to a level, for tests and benchmarks. Errors: kUnsupported when
// the CPU lacks the level or this binary does not carry it. Safe while other threads run
// models: every kernel call runs at one level throughout, either the old or the new one.
Status UseIsa(Isa isa);

}  // namespace edgeloop::runtime
