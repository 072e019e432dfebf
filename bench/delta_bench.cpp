// Delta update benchmark: what a model update costs on the wire as a full download, as a
// zstd-compressed file, and as a zstd patch-from delta against the installed version
// (common/delta.hpp, what the server sends for ?delta_from=). Takes pairs of real model
// files: --base a.onnx --target b.onnx, repeated; each delta is applied back and checked
// byte-identical by sha256.
#include <zstd.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench/bench_util.hpp"
#include "common/delta.hpp"
#include "common/file.hpp"
#include "common/hash.hpp"

using namespace edgeloop;

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

size_t ZstdSize(const std::string& data, int level) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  return ZSTD_isError(n) ? 0 : n;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sizes of model updates: full, zstd-compressed, and zstd patch-from delta"};
  std::vector<std::string> bases, targets;
  int level = 19;
  std::string json_out = "bench/results/delta.json";
  app.add_option("--base", bases, "installed model (repeat, paired with --target)")->required();
  app.add_option("--target", targets, "new model (repeat, one per --base)")->required();
  app.add_option("--level", level, "zstd level for both compression and delta")
      ->capture_default_str();
  app.add_option("--json", json_out, "where to write the JSON results")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (bases.size() != targets.size()) {
    std::fprintf(stderr, "delta_bench: give as many --target as --base\n");
    return 2;
  }
  nlohmann::json rows = nlohmann::json::array();
  std::printf("%-22s %-22s %10s %10s %10s %8s %8s %9s %9s\n", "base", "target", "full", "zstd",
              "delta", "zstd %", "delta %", "make ms", "apply ms");
  for (size_t i = 0; i < bases.size(); ++i) {
    auto base = ReadFile(bases[i]);
    auto target = ReadFile(targets[i]);
    if (!base.ok() || !target.ok()) {
      std::fprintf(stderr, "delta_bench: %s\n",
                   (!base.ok() ? base.error() : target.error()).message.c_str());
      return 3;
    }
    size_t zstd = ZstdSize(*target, level);
    auto t0 = Clock::now();
    auto delta = CreateDelta(*base, *target, level);
    double make_ms = MsSince(t0);
    if (!delta.ok()) {
      std::fprintf(stderr, "delta_bench: %s\n", delta.error().message.c_str());
      return 1;
    }
    t0 = Clock::now();
    auto applied = ApplyDelta(*base, *delta, target->size());
    double apply_ms = MsSince(t0);
    bool identical = applied.ok() && Sha256Hex(*applied) == Sha256Hex(*target);
    if (!identical) {
      std::fprintf(stderr, "delta_bench: %s -> %s did not reproduce the target\n", bases[i].c_str(),
                   targets[i].c_str());
      return 1;
    }
    double full = static_cast<double>(target->size());
    std::string b = std::filesystem::path(bases[i]).filename().string();
    std::string t = std::filesystem::path(targets[i]).filename().string();
    std::printf("%-22s %-22s %10zu %10zu %10zu %7.1f%% %7.2f%% %9.1f %9.2f\n", b.c_str(), t.c_str(),
                target->size(), zstd, delta->size(), 100.0 * zstd / full,
                100.0 * delta->size() / full, make_ms, apply_ms);
    rows.push_back({{"base", bases[i]},
                    {"target", targets[i]},
                    {"base_bytes", base->size()},
                    {"full_bytes", target->size()},
                    {"zstd_bytes", zstd},
                    {"delta_bytes", delta->size()},
                    {"delta_fraction_of_full", delta->size() / full},
                    {"create_ms", make_ms},
                    {"apply_ms", apply_ms},
                    {"byte_identical", identical}});
  }
  bench::WriteJson(json_out, {{"benchmark", "delta"},
                              {"zstd_level", level},
                              {"zstd_version", ZSTD_versionString()},
                              {"machine", bench::MachineInfo()},
                              {"pairs", rows}});
  return 0;
}
