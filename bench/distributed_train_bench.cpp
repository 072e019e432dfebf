// Data-parallel training on this machine: `edgeloop train` as 1 process at 1 and at 2 torch
// threads, and as 2 processes (--nproc 2) at 1 thread each, at the same global batch and seed
// on the same Fashion-MNIST images. Reports samples/s, scaling efficiency, validation and
// test accuracy (the 10,000 test images, through `edgeloop eval`), the gradient all-reduce's
// bytes per step and its share of the wall time. Each configuration runs --repeats times, in
// turn, so that other load on the machine spreads over all of them.
//
//   build/bench/distributed_train_bench [--train-samples 12000] [--epochs 3] [--repeats 2]
//                                       [--out bench/results/distributed-train.json]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"

using namespace edgeloop;
namespace fs = std::filesystem;

namespace {

struct Config {
  const char* name;
  int nproc, threads;
};

struct Row {
  std::string config;
  int nproc = 1, threads = 1, repeat = 0;
  double samples_per_s = 0, wall_s = 0, val_accuracy = 0, test_accuracy = 0;
  int64_t steps = 0, allreduce_bytes_per_step = 0;
  double allreduce_s = 0, allreduce_share = 0;
};

nlohmann::json Parse(const std::string& text, const std::string& what) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "distributed_train_bench: %s printed no JSON:\n%s\n", what.c_str(),
                 text.c_str());
    std::exit(1);
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Distributed training: 1 process vs 2 at the same global batch and seed"};
  int train_samples = 12000, epochs = 3, batch = 128, repeats = 2;
  uint64_t seed = 1;
  std::string out = "bench/results/distributed-train.json", work = "/tmp/edgeloop-dist-bench";
  app.add_option("--train-samples", train_samples, "the first N training images (10% held out)")
      ->capture_default_str();
  app.add_option("--epochs", epochs)->capture_default_str();
  app.add_option("--batch-size", batch, "the global batch")->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--repeats", repeats)->capture_default_str();
  app.add_option("--work", work, "scratch folder for the models")->capture_default_str();
  app.add_option("--out", out, "JSON results")->capture_default_str();
  std::string cli = EDGELOOP_CLI_BINARY;
  app.add_option("--cli", cli, "the edgeloop binary (a copy stays put while the tree rebuilds)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::vector<Config> configs = {{"1 process, 1 thread", 1, 1},
                                       {"1 process, 2 threads", 1, 2},
                                       {"2 processes, 1 thread each", 2, 1}};
  std::vector<Row> rows;
  for (int rep = 0; rep < repeats; ++rep)
    for (const auto& c : configs) {
      const std::string model =
          work + "/m" + std::to_string(c.nproc) + "x" + std::to_string(c.threads);
      fs::remove_all(model);
      const std::string cmd = cli + " train --data fashion-mnist:train --max-samples " +
                              std::to_string(train_samples) + " --epochs " +
                              std::to_string(epochs) + " --patience 0 --batch-size " +
                              std::to_string(batch) + " --seed " + std::to_string(seed) +
                              " --threads " + std::to_string(c.threads) + " --nproc " +
                              std::to_string(c.nproc) + " --out " + model + " --json 2>/dev/null";
      std::fprintf(stderr, "run %d: %s\n", rep + 1, c.name);
      auto t = Parse(bench::Capture(cmd), cmd)["training"];
      auto ev = Parse(bench::Capture(cli + " eval --model " + model +
                                     " --data fashion-mnist:test --json 2>/dev/null"),
                      "eval of " + model);
      Row r;
      r.config = c.name;
      r.nproc = c.nproc;
      r.threads = c.threads;
      r.repeat = rep + 1;
      r.samples_per_s = t["samples_per_s"];
      r.wall_s = t["wall_seconds"];
      r.val_accuracy = t["best_val_accuracy"];
      r.test_accuracy = ev["metrics"]["accuracy"];
      r.steps = t["distributed"]["steps"];
      r.allreduce_bytes_per_step = t["distributed"]["allreduce_bytes_per_step"];
      r.allreduce_s = t["distributed"]["allreduce_seconds"];
      r.allreduce_share = t["distributed"]["allreduce_share"];
      rows.push_back(r);
    }

  // Speed: the best run of each configuration, the one least slowed by other load on the
  // machine. Accuracy: the mean over runs (equal runs give equal accuracy anyway).
  auto best = [&](int nproc, int threads, double Row::*field) {
    double m = 0;
    for (const auto& r : rows)
      if (r.nproc == nproc && r.threads == threads) m = std::max(m, r.*field);
    return m;
  };
  auto mean = [&](int nproc, int threads, double Row::*field) {
    double s = 0;
    int n = 0;
    for (const auto& r : rows)
      if (r.nproc == nproc && r.threads == threads) s += r.*field, ++n;
    return n ? s / n : 0.0;
  };
  const double one1 = best(1, 1, &Row::samples_per_s), one2 = best(1, 2, &Row::samples_per_s),
               two = best(2, 1, &Row::samples_per_s);

  std::printf(
      "\n| configuration | run | samples/s | wall time | val acc | test acc | all-reduce per step "
      "| all-reduce share |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    char volume[32] = "-", share[32] = "-";
    if (r.nproc > 1) {
      std::snprintf(volume, sizeof volume, "%lld B",
                    static_cast<long long>(r.allreduce_bytes_per_step));
      std::snprintf(share, sizeof share, "%.1f %%", 100.0 * r.allreduce_share);
    }
    std::printf("| %s | %d | %.0f | %.1f s | %.4f | %.4f | %s | %s |\n", r.config.c_str(), r.repeat,
                r.samples_per_s, r.wall_s, r.val_accuracy, r.test_accuracy, volume, share);
  }
  std::printf(
      "\nbest runs: scaling efficiency, 2 processes (1 thread each) vs 2 x 1 process at 1 thread: "
      "%.0f %%\n"
      "speed-up of 2 processes over 1 process at 2 threads: %.2fx\n"
      "test accuracy, mean: 1 process %.4f (1 thread) / %.4f (2 threads), 2 processes %.4f\n",
      100.0 * two / (2.0 * one1), two / one2, mean(1, 1, &Row::test_accuracy),
      mean(1, 2, &Row::test_accuracy), mean(2, 1, &Row::test_accuracy));

  nlohmann::json runs = nlohmann::json::array();
  for (const auto& r : rows)
    runs.push_back({{"config", r.config},
                    {"nproc", r.nproc},
                    {"threads_per_process", r.threads},
                    {"repeat", r.repeat},
                    {"samples_per_s", r.samples_per_s},
                    {"wall_seconds", r.wall_s},
                    {"val_accuracy", r.val_accuracy},
                    {"test_accuracy", r.test_accuracy},
                    {"steps", r.steps},
                    {"allreduce_bytes_per_step", r.allreduce_bytes_per_step},
                    {"allreduce_seconds", r.allreduce_s},
                    {"allreduce_share", r.allreduce_share}});
  bench::WriteJson(
      out, {{"benchmark", "distributed_train"},
            {"machine", bench::MachineInfo()},
            {"command", "build/bench/distributed_train_bench --train-samples " +
                            std::to_string(train_samples) + " --epochs " + std::to_string(epochs) +
                            " --repeats " + std::to_string(repeats)},
            {"train_samples", train_samples},
            {"epochs", epochs},
            {"global_batch", batch},
            {"seed", seed},
            {"runs", runs},
            {"summary",
             {{"samples_per_s_1proc_1thread", one1},
              {"samples_per_s_1proc_2threads", one2},
              {"samples_per_s_2proc_1thread", two},
              {"scaling_efficiency_vs_1thread", two / (2.0 * one1)},
              {"speedup_vs_1proc_2threads", two / one2},
              {"test_accuracy_1proc_1thread", mean(1, 1, &Row::test_accuracy)},
              {"test_accuracy_1proc_2threads", mean(1, 2, &Row::test_accuracy)},
              {"test_accuracy_2proc", mean(2, 1, &Row::test_accuracy)},
              {"allreduce_bytes_per_step", rows.empty() ? 0 : rows.back().allreduce_bytes_per_step},
              {"allreduce_share_2proc", mean(2, 1, &Row::allreduce_share)}}}});
  fs::remove_all(work);
  return 0;
}
