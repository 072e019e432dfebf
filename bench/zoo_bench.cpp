// The backbone zoo on Fashion-MNIST, each architecture at its own input size: parameters,
// training time on this machine, test accuracy (all 10,000 test images), ONNX size, and
// batch-1 latency on the edge runtime next to ONNX Runtime, measured in the same run by
// runtime_bench (which this program runs on the models it trained).
//
//   build/bench/zoo_bench [--train-samples 6000] [--epochs 3] [--out bench/results/zoo.json]
//                         [--models-dir DIR] [--zoo NAME:ARCH:CxHxW[:WIDTH_MULT|DEPTH] ...]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "bench/bench_util.hpp"
#include "data/preprocess.hpp"
#include "ml/evaluate.hpp"
#include "ml/export_onnx.hpp"
#include "ml/lineage.hpp"
#include "ml/model_store.hpp"
#include "ml/train.hpp"

using namespace edgeloop;
namespace fs = std::filesystem;

namespace {

struct ZooEntry {
  std::string name, arch;
  int64_t c = 1, h = 28, w = 28;
  double width_mult = 1.0;
  int64_t depth = 20;
};

// NAME:ARCH:CxHxW[:X], X the width multiplier (mobilenet_v2) or depth (resnet).
bool ParseEntry(const std::string& text, ZooEntry& e) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
  if (parts.size() < 3 || parts.size() > 4) return false;
  e.name = parts[0];
  e.arch = parts[1];
  long long c = 0, h = 0, w = 0;
  if (std::sscanf(parts[2].c_str(), "%lldx%lldx%lld", &c, &h, &w) != 3 || c <= 0 || h <= 0 ||
      w <= 0)
    return false;
  e.c = c;
  e.h = h;
  e.w = w;
  if (parts.size() == 4) {
    // The whole field must be a number (std::stoll and std::stod throw, or stop early).
    char* end = nullptr;
    if (e.arch == "resnet")
      e.depth = std::strtoll(parts[3].c_str(), &end, 10);
    else
      e.width_mult = std::strtod(parts[3].c_str(), &end);
    if (end == parts[3].c_str() || *end != '\0') return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The backbone zoo on Fashion-MNIST: size, training time, accuracy, latency"};
  std::vector<std::string> zoo = {"cnn:cnn:1x28x28", "resnet8:resnet:1x32x32:8",
                                  "resnet20:resnet:1x32x32:20",
                                  "mobilenet_v2_w05:mobilenet_v2:1x32x32:0.5",
                                  "mobilenet_v2_w025_rgb32:mobilenet_v2:3x32x32:0.25"};
  size_t train_samples = 6000;
  int runs = 500;
  ml::TrainOptions opt;
  opt.epochs = 3;
  opt.lr = 2e-3;
  opt.batch_size = 64;
  opt.quiet = true;
  std::string out = "bench/results/zoo.json", models_dir = "models/zoo", src = ".";
  app.add_option("--zoo", zoo, "NAME:ARCH:CxHxW[:WIDTH_MULT|DEPTH]")->capture_default_str();
  app.add_option("--train-samples", train_samples, "training images (the first N; 0 = all)")
      ->capture_default_str();
  app.add_option("--epochs", opt.epochs)->capture_default_str();
  app.add_option("--lr", opt.lr)->capture_default_str();
  app.add_option("--batch-size", opt.batch_size)->capture_default_str();
  app.add_option("--seed", opt.seed)->capture_default_str();
  app.add_option("--threads", opt.threads, "0 = all cores")->capture_default_str();
  app.add_option("--runs", runs, "batch-1 runs per engine (runtime_bench)")->capture_default_str();
  app.add_option("--models-dir", models_dir, "where the trained models are saved")
      ->capture_default_str();
  bool reuse = false;
  app.add_flag("--reuse", reuse,
               "models already in --models-dir are measured again, not retrained (their "
               "training time is the one recorded in their model.json)");
  app.add_option("--source-dir", src, "edgeloop source tree (for tools/ort)")
      ->capture_default_str();
  app.add_option("--out", out, "JSON results")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<ZooEntry> entries;
  for (const auto& z : zoo) {
    ZooEntry e;
    if (!ParseEntry(z, e)) {
      std::fprintf(stderr, "--zoo %s: expected NAME:ARCH:CxHxW[:WIDTH_MULT|DEPTH]\n", z.c_str());
      return 2;
    }
    entries.push_back(e);
  }
  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::string> dirs;
  for (const auto& e : entries) {
    data::InputSpec input;
    input.channels = static_cast<int>(e.c);
    input.height = static_cast<int>(e.h);
    input.width = static_cast<int>(e.w);
    input.mean.assign(static_cast<size_t>(e.c), 0.0f);
    input.std.assign(static_cast<size_t>(e.c), 1.0f);
    auto train = data::LoadDataset("fashion-mnist:train", &input);
    auto test = data::LoadDataset("fashion-mnist:test", &input);
    if (!train.ok() || !test.ok()) {
      std::fprintf(stderr, "%s\n", (!train.ok() ? train.error() : test.error()).message.c_str());
      return 3;
    }
    data::Dataset pool = *train;
    if (train_samples > 0 && train_samples < pool.size()) {
      std::vector<size_t> idx(train_samples);
      for (size_t i = 0; i < train_samples; ++i) idx[i] = i;
      pool = pool.Subset(idx);
    }
    auto split = data::SplitDataset(pool, 0.1, 0.0, opt.seed);
    ml::ModelSpec spec;
    spec.arch = e.arch;
    spec.input_shape = {e.c, e.h, e.w};
    spec.width_mult = e.width_mult;
    spec.depth = e.depth;
    // Fashion-MNIST's mean and std, the same in every channel of a grey image made RGB.
    spec.input_mean.assign(static_cast<size_t>(e.c), 0.2860f);
    spec.input_std.assign(static_cast<size_t>(e.c), 0.3530f);
    if (auto st = spec.Validate(); !st.ok()) {
      std::fprintf(stderr, "%s: %s\n", e.name.c_str(), st.error().message.c_str());
      return 2;
    }
    const std::string dir = models_dir + "/" + e.name;
    nlohmann::json training;
    std::optional<ml::LoadedModel> reused;
    if (reuse && fs::exists(dir + "/model.json")) {
      auto loaded = ml::LoadModel(dir);
      if (!loaded.ok()) {
        std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
        return 3;
      }
      reused.emplace(std::move(*loaded));
      training = reused->info.training;
      std::fprintf(stderr, "%s: reusing %s (trained earlier)\n", e.name.c_str(), dir.c_str());
    }
    ml::SeedEverything(opt.seed);
    ml::LoadedModel lm =
        reused ? std::move(*reused) : ml::LoadedModel{ml::ModelInfo{}, ml::Classifier(spec)};
    if (training.is_null()) {
      std::fprintf(stderr, "%s: training %s %lldx%lldx%lld on %zu images, %d epochs\n",
                   e.name.c_str(), e.arch.c_str(), static_cast<long long>(e.c),
                   static_cast<long long>(e.h), static_cast<long long>(e.w), split.train.size(),
                   opt.epochs);
      auto report = ml::Train(lm.model, split.train, split.val, opt);
      if (!report.ok()) {
        std::fprintf(stderr, "%s: %s\n", e.name.c_str(), report.error().message.c_str());
        return 1;
      }
      training = report->ToJson();
      lm.info.name = e.name;
      lm.info.spec = spec;
      lm.info.class_names = train->class_names;
      lm.info.input_spec = input;
      lm.info.lineage = ml::TrainingLineage(pool, "scratch", opt);
      lm.info.training = training;
    }
    auto metrics = ml::EvaluateMetrics(lm, *test);
    if (!metrics.ok()) return 1;
    if (auto st = ml::SaveModel(dir, lm.info, lm.model); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 4;
    }
    const std::string onnx = dir + ".onnx";
    if (auto st = ml::ExportOnnxFile(lm, onnx); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 4;
    }
    dirs.push_back(dir);
    rows.push_back({{"name", e.name},
                    {"arch", e.arch},
                    {"input", {e.c, e.h, e.w}},
                    {"width_mult", e.width_mult},
                    {"depth", e.depth},
                    {"parameters", ml::ParameterCount(lm.model)},
                    {"train_images", split.train.size()},
                    {"epochs", training.value("epochs_run", size_t{0})},
                    {"train_seconds", training.value("wall_seconds", 0.0)},
                    {"train_samples_per_s", training.value("samples_per_s", 0.0)},
                    {"test_accuracy", metrics->accuracy},
                    {"test_macro_f1", metrics->macro_f1},
                    {"onnx_bytes", fs::file_size(onnx)},
                    {"model_dir", dir}});
    std::fprintf(stderr, "%s: test accuracy %.4f, trained in %.1f s\n", e.name.c_str(),
                 metrics->accuracy, training.value("wall_seconds", 0.0));
  }

  // Latency, edge runtime next to ONNX Runtime, in one run over every model.
  const fs::path self = fs::canonical("/proc/self/exe");
  const std::string runtime_json = out + ".runtime.json";
  std::string cmd = "'" + (self.parent_path() / "runtime_bench").string() + "' --runs " +
                    std::to_string(runs) + " --batch-runs 10 --source-dir '" + src + "' --out '" +
                    runtime_json + "'";
  for (const auto& d : dirs) cmd += " --model '" + d + "'";
  std::fprintf(stderr, "latency: %s\n", cmd.c_str());
  if (std::system((cmd + " >&2").c_str()) != 0) {
    std::fprintf(stderr, "runtime_bench failed\n");
    return 1;
  }
  std::ifstream rin(runtime_json);
  nlohmann::json rt = nlohmann::json::parse(rin, nullptr, false);
  if (rt.is_discarded()) return 1;
  for (auto& row : rows)
    for (const auto& r : rt["results"]) {
      const std::string model = r["model"];
      if (model.rfind(row["name"].get<std::string>() + " (", 0) != 0) continue;
      const std::string engine = r["engine"];
      if (engine == "edgeloop fp32") row["edgeloop_p50_us"] = r["p50_us"];
      if (engine == "edgeloop int8") row["edgeloop_int8_p50_us"] = r["p50_us"];
      if (engine == "onnxruntime fp32") row["onnxruntime_p50_us"] = r["p50_us"];
    }
  std::printf(
      "\n| model | input | params | train images × epochs | train time | test accuracy | ONNX "
      "size | edgeloop p50 | ONNX Runtime p50 | ratio "
      "|\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (auto& row : rows) {
    const double el = row.value("edgeloop_p50_us", 0.0), ort = row.value("onnxruntime_p50_us", 0.0);
    if (ort > 0) row["p50_vs_onnxruntime"] = el / ort;
    std::printf(
        "| %s | %lldx%lldx%lld | %lld | %zu × %zu | %.0f s | %.4f | %.0f KiB | %.0f µs | %.0f "
        "µs | %.2f |\n",
        row["name"].get<std::string>().c_str(), row["input"][0].get<long long>(),
        row["input"][1].get<long long>(), row["input"][2].get<long long>(),
        row["parameters"].get<long long>(), row["train_images"].get<size_t>(),
        row["epochs"].get<size_t>(), row["train_seconds"].get<double>(),
        row["test_accuracy"].get<double>(), row["onnx_bytes"].get<double>() / 1024.0, el, ort,
        ort > 0 ? el / ort : 0.0);
  }
  bench::WriteJson(out, {{"benchmark", "zoo"},
                         {"machine", bench::MachineInfo()},
                         {"threads", opt.threads},
                         {"training", opt.ToJson()},
                         {"rows", rows},
                         {"runtime", rt["results"]}});
  return 0;
}
