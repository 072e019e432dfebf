#include "runtime/isa.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "common/log.hpp"
#include "runtime/isa/kernels.hpp"

namespace edgeloop::runtime {
namespace {

#if EDGELOOP_RUNTIME_X86_LEVELS
bool CpuHasVnni() {
  return __builtin_cpu_supports("avx512vnni");
}

// The avx512 table with the VNNI dot product, for CPUs that have it. Built at first use, so
// it reads isa_avx512::kKernels after that object's (constant) initialisation.
const IsaKernels& Avx512VnniKernels() {
  static const IsaKernels table = [] {
    IsaKernels t = isa_avx512::kKernels;
    t.name = "avx512+vnni";
    t.dot_u8s8_quads = isa_avx512vnni::DotU8S8Quads;
    t.qconv_u8s8 = isa_avx512vnni::QConvU8S8;
    t.fc_u8s8 = isa_avx512vnni::FcU8S8;
    return t;
  }();
  return table;
}
#endif

// The table for a level; the caller has checked CpuSupports(isa).
const IsaKernels& KernelsFor(Isa isa) {
#if EDGELOOP_RUNTIME_X86_LEVELS
  if (isa == Isa::kAvx512) return CpuHasVnni() ? Avx512VnniKernels() : isa_avx512::kKernels;
  if (isa == Isa::kAvx2) return isa_avx2::kKernels;
#endif
  return isa_baseline::kKernels;
}

bool Compiled(Isa isa) {
  const auto all = CompiledIsas();
  return std::find(all.begin(), all.end(), isa) != all.end();
}

const IsaKernels* InitialKernels() {
  const char* env = std::getenv("EDGELOOP_RUNTIME_ISA");
  IsaChoice choice = ChooseIsa(env ? env : "", SupportedIsas());
  if (!choice.warning.empty())
    log::Warn("runtime_isa_refused", {{"requested", env ? env : ""},
                                      {"using", IsaName(choice.isa)},
                                      {"reason", choice.warning}});
  return &KernelsFor(choice.isa);
}

// The one piece of process state the runtime keeps: which table the kernels call. The CPU
// does not change under a process, so neither does this, except through UseIsa.
std::atomic<const IsaKernels*>& Active() {
  static std::atomic<const IsaKernels*> active{InitialKernels()};
  return active;
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kBaseline:
      return "baseline";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

std::optional<Isa> ParseIsa(std::string_view name) {
  for (Isa isa : {Isa::kBaseline, Isa::kAvx2, Isa::kAvx512})
    if (name == IsaName(isa)) return isa;
  return std::nullopt;
}

std::vector<Isa> CompiledIsas() {
#if EDGELOOP_RUNTIME_X86_LEVELS
  return {Isa::kBaseline, Isa::kAvx2, Isa::kAvx512};
#else
  return {Isa::kBaseline};
#endif
}

bool CpuSupports(Isa isa) {
#if defined(__x86_64__)
  switch (isa) {
    case Isa::kBaseline:
      return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt");
    case Isa::kAvx2:
#if defined(__clang__)
      // clang (14) knows neither the level names nor f16c, lzcnt and movbe; every CPU with
      // AVX2, FMA and BMI2 has those.
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
#else
      return __builtin_cpu_supports("x86-64-v3");
#endif
    case Isa::kAvx512:
#if defined(__clang__)
      return CpuSupports(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
      return __builtin_cpu_supports("x86-64-v4");
#endif
  }
  return false;
#else
  return isa == Isa::kBaseline;
#endif
}

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : CompiledIsas())
    if (CpuSupports(isa)) out.push_back(isa);
  // A CPU below this binary's baseline could not have started it; keep the table usable.
  if (out.empty()) out.push_back(Isa::kBaseline);
  return out;
}

IsaChoice ChooseIsa(std::string_view requested, const std::vector<Isa>& available) {
  const Isa best = available.back();
  if (requested.empty()) return {best, ""};
  auto isa = ParseIsa(requested);
  if (!isa)
    return {best, "EDGELOOP_RUNTIME_ISA='" + std::string(requested) +
                      "' is not a level (baseline, avx2, avx512)"};
  if (std::find(available.begin(), available.end(), *isa) == available.end())
    return {best, std::string(Compiled(*isa) ? "this CPU lacks " : "this build does not carry ") +
                      IsaName(*isa)};
  return {*isa, ""};
}

const IsaKernels& ActiveKernels() {
  return *Active().load(std::memory_order_acquire);
}

Isa ActiveIsa() {
  return ActiveKernels().isa;
}

const char* ActiveIsaName() {
  return ActiveKernels().name;
}

Status UseIsa(Isa isa) {
  if (!Compiled(isa))
    return Error(Errc::kUnsupported, std::string("this build does not carry ") + IsaName(isa));
  if (!CpuSupports(isa))
    return Error(Errc::kUnsupported, std::string("this CPU lacks ") + IsaName(isa));
  Active().store(&KernelsFor(isa), std::memory_order_release);
  return Status::Ok();
}

}  // namespace edgeloop::runtime
