// Edge inference, side by side in one run: the edgeloop runtime (fp32, and int8 in QOperator
// and QDQ form), ONNX Runtime (onnxruntime-node, one intra-op thread, fp32 and the same two
// int8 files) and libtorch (one thread) on the same models. Each engine runs in its own process so
// that peak RSS and load time are its own. Reports batch-1 latency p50/p99, batch-64 throughput,
// load-to-first-result, peak RSS and what a device must ship (engine libraries + model file).
//
//   build/bench/runtime_bench --model models/base [--model models/wide] [--runs 2000]
//
// Ends with the goals per model, each a ratio to ONNX Runtime fp32 in the same run:
// batch-1 p50 <= 0.9x, batch-64 throughput >= 1x, int8 batch-1 p50 <= 0.6x.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <sstream>

#include "bench/bench_util.hpp"
#include "data/dataset.hpp"
#include "ml/export_onnx.hpp"
#include "ml/model_store.hpp"
#include "runtime/isa.hpp"
#include "runtime/model.hpp"
#include "runtime/quantizer.hpp"

using namespace edgeloop;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// libtorch, one thread, in this process (the edgeloop runtime is timed by runtime_bench_min,
// which links nothing else).
int Worker(const std::string& path, int runs, int batch_runs) {
  auto t0 = Clock::now();
  nlohmann::json r;
  {
    at::set_num_threads(1);
    auto m = ml::LoadModel(path);
    if (!m.ok()) {
      std::fprintf(stderr, "%s\n", m.error().message.c_str());
      return 1;
    }
    torch::NoGradGuard no_grad;
    m->model->eval();
    std::vector<int64_t> s1 = {1}, s64 = {64};
    for (int64_t d : m->info.spec.input_shape) {
      s1.push_back(d);
      s64.push_back(d);
    }
    const auto per = static_cast<size_t>(
        std::accumulate(s1.begin(), s1.end(), int64_t{1}, std::multiplies<int64_t>()));
    auto p1 = bench::Pattern(per), p64 = bench::Pattern(64 * per);
    auto x1 = torch::from_blob(p1.data(), s1).clone();
    auto x64 = torch::from_blob(p64.data(), s64).clone();
    r = bench::TimeEngine(t0, runs, batch_runs, [&](int64_t b) {
      auto y = torch::softmax(m->model->forward(b == 1 ? x1 : x64), 1);
      (void)y.data_ptr<float>();
    });
  }
  std::printf("%s\n", r.dump().c_str());
  return 0;
}

nlohmann::json RunWorker(const std::string& cmd) {
  std::string out = bench::Capture(cmd);
  auto pos = out.rfind('{');
  if (pos == std::string::npos) {
    std::fprintf(stderr, "benchmark worker failed: %s\n", cmd.c_str());
    return nullptr;
  }
  return nlohmann::json::parse(out.substr(pos), nullptr, false);
}

// Sum of the sizes of the shared libraries `binary` loads whose path matches one of `keys`.
size_t LibrariesSize(const std::string& binary, const std::vector<std::string>& keys) {
  std::istringstream ldd(bench::Capture("ldd '" + binary + "' 2>/dev/null"));
  std::string line;
  size_t total = 0;
  while (std::getline(ldd, line)) {
    auto arrow = line.find("=> ");
    if (arrow == std::string::npos) continue;
    std::string path = line.substr(arrow + 3, line.find(" (") - arrow - 3);
    for (const auto& k : keys)
      if (path.find(k) != std::string::npos && fs::exists(path))
        total += fs::file_size(fs::canonical(path));
  }
  return total;
}

size_t StrippedSize(const std::string& binary) {
  std::string tmp = (fs::temp_directory_path() / "edgeloop_stripped").string();
  if (std::system(("strip -o '" + tmp + "' '" + binary + "'").c_str()) != 0)
    return fs::file_size(binary);
  size_t n = fs::file_size(tmp);
  fs::remove(tmp);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Edge inference engines side by side"};
  std::vector<std::string> models;
  std::string worker, file, out = "bench/results/runtime.json", src = ".";
  int runs = 2000, batch_runs = 30;
  app.add_option("--model", models, "model directories (edgeloop train/finetune output)");
  app.add_option("--runs", runs, "batch-1 runs per engine")->capture_default_str();
  app.add_option("--batch-runs", batch_runs, "batch-64 runs per engine")->capture_default_str();
  app.add_option("--source-dir", src, "edgeloop source tree (for tools/ort)")
      ->capture_default_str();
  app.add_option("--out", out)->capture_default_str();
  app.add_option("--worker", worker)->group("");
  app.add_option("--file", file)->group("");
  CLI11_PARSE(app, argc, argv);
  if (!worker.empty()) return Worker(file, runs, batch_runs);
  if (models.empty()) {
    std::fprintf(stderr, "give at least one --model DIR\n");
    return 2;
  }
  const std::string self = fs::canonical("/proc/self/exe").string();
  const fs::path ort_dir = fs::path(src) / "tools" / "ort";
  if (!fs::exists(ort_dir / "node_modules" / "onnxruntime-node")) {
    std::fprintf(stderr, "ONNX Runtime is missing: run scripts/ort-install\n");
    return 3;
  }
  // What a device ships besides the model: the engine's own code.
  const size_t edgeloop_engine =
      StrippedSize(self + "_min") + LibrariesSize(self + "_min", {"protobuf"});
  size_t ort_engine = 0;
  for (const auto& e :
       fs::recursive_directory_iterator(ort_dir / "node_modules" / "onnxruntime-node" / "bin"))
    if (e.path().string().find("linux/x64") != std::string::npos && e.is_regular_file())
      ort_engine += e.file_size();
  const size_t torch_engine =
      LibrariesSize(self, {"libtorch", "libc10", "libgomp", "libopenblas", "libsleef", "libdnnl",
                           "libprotobuf", "libgloo", "libtensorpipe"});

  nlohmann::json results = nlohmann::json::array();
  std::printf(
      "\n| model | engine | batch-1 p50 | p99 | batch-64 samples/s | load→first result | peak RSS "
      "| ships (engine + model) |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const auto& dir : models) {
    auto loaded = ml::LoadModel(dir);
    if (!loaded.ok()) {
      std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
      return 3;
    }
    // Calibration images for int8 as the model sees them (its input spec: size, channels).
    const data::InputSpec* input = loaded->info.input_spec ? &*loaded->info.input_spec : nullptr;
    auto calib_set = data::LoadDataset("fashion-mnist:train", input);
    if (!calib_set.ok()) {
      std::fprintf(stderr, "%s\n", calib_set.error().message.c_str());
      return 3;
    }
    auto calib_small = data::SamplePerClass(*calib_set, 50, 0);
    const size_t per = calib_small.sample_numel();
    std::vector<runtime::OwnedTensor> calib;
    for (size_t i = 0; i < calib_small.size(); i += 100) {
      runtime::OwnedTensor t;
      t.dtype = runtime::DType::kFloat32;
      size_t b = std::min<size_t>(100, calib_small.size() - i);
      t.shape = {static_cast<int64_t>(b)};
      for (int64_t d : calib_small.sample_shape) t.shape.push_back(d);
      const auto* p = reinterpret_cast<const unsigned char*>(calib_small.sample(i));
      t.bytes.assign(p, p + b * per * sizeof(float));
      calib.push_back(std::move(t));
    }
    std::string dims = "1";
    for (int64_t d : calib_small.sample_shape) dims += "," + std::to_string(d);
    fs::path tmp = fs::temp_directory_path() / ("edgeloop_rtbench_" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    const std::string fp32 = (tmp / "fp32.onnx").string(), int8 = (tmp / "int8.onnx").string(),
                      qdq = (tmp / "int8-qdq.onnx").string();
    if (!ml::ExportOnnxFile(*loaded, fp32).ok()) return 1;
    auto q = runtime::QuantizeModel(fp32, calib, int8);
    auto qd = runtime::QuantizeModel(fp32, calib, qdq, runtime::QuantFormat::kQdq);
    if (!q.ok() || !qd.ok()) {
      std::fprintf(stderr, "%s\n", (q.ok() ? qd.error() : q.error()).message.c_str());
      return 1;
    }
    const std::string name = fs::path(dir).filename().string() + " (" +
                             std::to_string(ml::ParameterCount(loaded->model)) + " params)";
    const std::string r = std::to_string(runs), br = std::to_string(batch_runs);
    struct Engine {
      std::string label, cmd;
      size_t ships;
    };
    std::vector<Engine> engines = {
        {"edgeloop fp32", "'" + self + "_min' '" + fp32 + "' " + r + " " + br,
         edgeloop_engine + fs::file_size(fp32)},
        {"edgeloop int8", "'" + self + "_min' '" + int8 + "' " + r + " " + br,
         edgeloop_engine + fs::file_size(int8)},
        {"edgeloop int8 QDQ", "'" + self + "_min' '" + qdq + "' " + r + " " + br,
         edgeloop_engine + fs::file_size(qdq)},
        {"onnxruntime fp32",
         "node '" + (ort_dir / "bench.js").string() + "' '" + fp32 + "' " + dims + " " + r + " " +
             br,
         ort_engine + fs::file_size(fp32)},
        {"onnxruntime int8",
         "node '" + (ort_dir / "bench.js").string() + "' '" + int8 + "' " + dims + " " + r + " " +
             br,
         ort_engine + fs::file_size(int8)},
        {"onnxruntime int8 QDQ",
         "node '" + (ort_dir / "bench.js").string() + "' '" + qdq + "' " + dims + " " + r + " " +
             br,
         ort_engine + fs::file_size(qdq)},
        {"libtorch fp32",
         "'" + self + "' --worker libtorch --file '" + dir + "' --runs " + r + " --batch-runs " +
             br,
         torch_engine + fs::file_size(fs::path(dir) / "weights.pt")},
    };
    double ort_p50 = 0, ort_b64 = 0;
    for (const auto& e : engines) {
      nlohmann::json m = RunWorker(e.cmd);
      if (m.is_null() || m.is_discarded()) return 1;
      m["engine"] = e.label;
      m["model"] = name;
      m["ships_bytes"] = e.ships;
      if (e.label == "onnxruntime fp32") {
        ort_p50 = m["p50_us"].get<double>();
        ort_b64 = m["batch64_per_s"].get<double>();
      }
      results.push_back(m);
      std::printf("| %s | %s | %.1f µs | %.1f µs | %.0f | %.1f ms | %.1f MiB | %.1f MiB |\n",
                  name.c_str(), e.label.c_str(), m["p50_us"].get<double>(),
                  m["p99_us"].get<double>(), m["batch64_per_s"].get<double>(),
                  m["first_result_ms"].get<double>(), m["peak_rss_bytes"].get<double>() / 1048576.0,
                  static_cast<double>(e.ships) / 1048576.0);
      std::fflush(stdout);
    }
    for (auto& m : results)
      if (m["model"] == name && ort_p50 > 0 && ort_b64 > 0) {
        m["p50_vs_onnxruntime_fp32"] = m["p50_us"].get<double>() / ort_p50;
        m["batch64_vs_onnxruntime_fp32"] = m["batch64_per_s"].get<double>() / ort_b64;
      }
    std::printf("| %s | int8 model file | %zu → %zu bytes (%.2f× smaller) | | | | | |\n",
                name.c_str(), q->fp32_bytes, q->int8_bytes,
                static_cast<double>(q->fp32_bytes) / static_cast<double>(q->int8_bytes));
    fs::remove_all(tmp);
  }
  // The goals, per model: each a ratio to ONNX Runtime fp32 measured in this run.
  auto find = [&](const nlohmann::json& model, const std::string& engine) -> const nlohmann::json* {
    for (const auto& m : results)
      if (m["model"] == model && m["engine"] == engine) return &m;
    return nullptr;
  };
  nlohmann::json goals = nlohmann::json::array();
  std::printf(
      "\nGoals, as ratios to ONNX Runtime fp32 in this run (edgeloop kernels: %s):\n\n"
      "| model | fp32 batch-1 p50 (≤ 0.90) | fp32 batch-64 throughput (≥ 1.00) | int8 batch-1 p50 "
      "(≤ 0.60) | int8 QDQ batch-1 p50 (≤ 0.60) | ONNX Runtime int8 batch-1 p50 |\n"
      "|---|---|---|---|---|---|\n",
      runtime::ActiveIsaName());
  for (const auto& m : results) {
    if (m["engine"] != "edgeloop fp32" || !m.contains("p50_vs_onnxruntime_fp32")) continue;
    const auto* i8 = find(m["model"], "edgeloop int8");
    const auto* qd = find(m["model"], "edgeloop int8 QDQ");
    const auto* oi = find(m["model"], "onnxruntime int8");
    if (!i8 || !qd || !oi) continue;
    const double p50 = m["p50_vs_onnxruntime_fp32"], b64 = m["batch64_vs_onnxruntime_fp32"],
                 int8_p50 = (*i8)["p50_vs_onnxruntime_fp32"],
                 qdq_p50 = (*qd)["p50_vs_onnxruntime_fp32"],
                 ort_int8 = (*oi)["p50_vs_onnxruntime_fp32"];
    auto mark = [](bool met) { return met ? "met" : "not met"; };
    std::printf("| %s | %.2f (%s) | %.2f (%s) | %.2f (%s) | %.2f (%s) | %.2f |\n",
                m["model"].get<std::string>().c_str(), p50, mark(p50 <= 0.9), b64, mark(b64 >= 1.0),
                int8_p50, mark(int8_p50 <= 0.6), qdq_p50, mark(qdq_p50 <= 0.6), ort_int8);
    goals.push_back({{"model", m["model"]},
                     {"fp32_p50_vs_ort_fp32", p50},
                     {"fp32_batch64_vs_ort_fp32", b64},
                     {"int8_p50_vs_ort_fp32", int8_p50},
                     {"int8_qdq_p50_vs_ort_fp32", qdq_p50},
                     {"ort_int8_p50_vs_ort_fp32", ort_int8},
                     {"met", p50 <= 0.9 && b64 >= 1.0 && int8_p50 <= 0.6}});
  }
  nlohmann::json machine = bench::MachineInfo();
  machine["edgeloop_isa"] = runtime::ActiveIsaName();
  std::ifstream ort_package(ort_dir / "node_modules" / "onnxruntime-node" / "package.json");
  auto ort_meta = nlohmann::json::parse(ort_package, nullptr, /*allow_exceptions=*/false);
  machine["onnxruntime"] = ort_meta.is_object() ? ort_meta.value("version", "") : "";
  bench::WriteJson(
      out,
      {{"benchmark", "runtime"}, {"machine", machine}, {"results", results}, {"goals", goals}});
  return 0;
}
