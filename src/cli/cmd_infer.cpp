// edgeloop infer: runs an ONNX model with the edge runtime over a dataset or file (any form
// --data accepts elsewhere: fashion-mnist:test, idx:..., a CSV file, an image folder) and
// reports predictions, accuracy when labels are known, and per-batch latency.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/data_options.hpp"
#include "common/file.hpp"
#include "common/worker_protocol.hpp"
#include "data/class_match.hpp"
#include "data/dataset.hpp"
#include "edge/runtime_classifier.hpp"
#include "runtime/model.hpp"

namespace edgeloop::cli {
namespace {

struct InferArgs {
  InputSpecOptions convert;
  std::string model, input, out, backend = "fast";
  size_t limit = 0, show = 10, warmup = 0;
  int64_t batch = 1;
  bool json = false;
  RequestOption request;
};

// --request, when given: a pipeline's step, the request's settings in place of the flags.
int FromRequest(InferArgs& a) {
  if (int rc = a.request.Check(); rc != 0 || !a.request.given()) return rc;
  auto r = worker::ReadRequest(a.request.path, worker::ParseInferRequest);
  if (!r.ok()) return RequestError("infer", r.error());
  a.model = r->model;
  a.input = r->input;
  a.out = r->out;
  a.limit = static_cast<size_t>(r->limit);
  a.warmup = static_cast<size_t>(r->warmup);
  return 0;
}

int Run(InferArgs& a) {
  if (int rc = FromRequest(a); rc != 0) return rc;
  runtime::ModelOptions mo;
  mo.backend = a.backend == "reference" ? runtime::Backend::kReference : runtime::Backend::kFast;
  auto t0 = std::chrono::steady_clock::now();
  auto model = runtime::Model::Load(a.model, mo);
  if (!model.ok()) return ReportError("infer", model.error());
  double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // Images are converted to the model's input spec (its ONNX metadata), as on a device.
  auto spec = edge::ModelInputSpec(*model, a.model);
  if (!spec.ok()) return ReportError("infer", spec.error());
  auto input = a.convert.Load(a.input, *spec);
  if (!input.ok()) return ReportError("infer", input.error());
  // Predictions are named, and labels scored, by the model's classes.
  auto names = data::ClassNamesFromOnnxMetadata(model->graph().metadata, a.model);
  if (!names.ok()) return ReportError("infer", names.error());
  auto matched = data::MatchClassesByName(*input, *names, a.model);
  if (!matched.ok()) return ReportError("infer", matched.error());
  const data::Dataset* data = &matched->data;
  if (model->inputs().size() != 1 || model->inputs()[0].dtype != runtime::DType::kFloat32)
    return ReportError("infer", Error(Errc::kUnsupported,
                                      a.model + ": infer needs a model with one float32 input"));
  // A sample shape the model does not take is reported by Run, naming both shapes.
  std::vector<int64_t> sample(data->sample_shape);
  size_t n = a.limit ? std::min(a.limit, data->size()) : data->size();
  std::vector<int32_t> pred(n);
  std::vector<float> conf(n);
  std::vector<double> lat_us;
  size_t correct = 0, labelled = 0;
  // Untimed runs first, so the figures describe a warm model (caches, first-touch pages).
  runtime::Shape one{1};
  one.insert(one.end(), sample.begin(), sample.end());
  for (size_t i = 0; i < std::min(a.warmup, n); ++i) {
    runtime::Tensor in{runtime::DType::kFloat32, one, const_cast<float*>(data->sample(i))};
    auto out = model->Run({in});
    if (!out.ok()) return ReportError("infer", out.error());
  }
  auto wall0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; i += static_cast<size_t>(a.batch)) {
    int64_t b = static_cast<int64_t>(std::min(static_cast<size_t>(a.batch), n - i));
    runtime::Shape shape{b};
    shape.insert(shape.end(), sample.begin(), sample.end());
    runtime::Tensor in{runtime::DType::kFloat32, shape, const_cast<float*>(data->sample(i))};
    auto s = std::chrono::steady_clock::now();
    auto out = model->Run({in});
    lat_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count());
    if (!out.ok()) return ReportError("infer", out.error());
    // The last output holds the class scores (probabilities when the model exports them).
    const auto& scores = out->back();
    if (scores.dtype != runtime::DType::kFloat32 || scores.shape.size() != 2 ||
        scores.shape[0] != b)
      return ReportError("infer", Error(Errc::kUnsupported,
                                        "the model's last output is not [batch, classes] float32"));
    const int64_t k = scores.shape[1];
    for (int64_t j = 0; j < b; ++j) {
      const float* row = scores.as<float>() + j * k;
      int64_t best = std::max_element(row, row + k) - row;
      pred[i + static_cast<size_t>(j)] = static_cast<int32_t>(best);
      conf[i + static_cast<size_t>(j)] = row[best];
      int32_t label = data->y[i + static_cast<size_t>(j)];
      if (label >= 0) {
        ++labelled;
        correct += label == best;
      }
    }
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  std::vector<double> sorted = lat_us;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    return sorted.empty()
               ? 0.0
               : sorted[std::min(sorted.size() - 1,
                                 static_cast<size_t>(p * static_cast<double>(sorted.size())))];
  };
  auto name = [&](int32_t c) {
    return static_cast<size_t>(c) < data->class_names.size()
               ? data->class_names[static_cast<size_t>(c)]
               : std::to_string(c);
  };
  if (a.json || !a.out.empty()) {
    nlohmann::json j = {{"model", a.model},
                        {"input", a.input},
                        {"samples", n},
                        {"batch", a.batch},
                        {"backend", a.backend},
                        {"load_ms", load_ms},
                        {"warmup", std::min(a.warmup, n)},
                        {"latency_us", {{"p50", pct(0.5)}, {"p95", pct(0.95)}, {"p99", pct(0.99)}}},
                        {"throughput_per_s", static_cast<double>(n) / std::max(wall, 1e-9)}};
    if (labelled) j["accuracy"] = static_cast<double>(correct) / static_cast<double>(labelled);
    worker::Stamp(j);  // a worker report: the pipeline runner reads its latency
    nlohmann::json preds = nlohmann::json::array();
    for (size_t i = 0; i < n; ++i)
      preds.push_back({{"index", i}, {"class", name(pred[i])}, {"confidence", conf[i]}});
    j["predictions"] = preds;
    if (!a.out.empty()) {
      if (auto st = WriteFileAtomic(a.out, j.dump(2) + "\n"); !st.ok())
        return ReportError("infer", st.error());
    }
    if (a.json) {
      std::printf("%s\n", j.dump(2).c_str());
      return kExitOk;
    }
  }
  for (size_t i = 0; i < std::min(a.show, n); ++i)
    std::printf("%6zu  %-14s %.4f%s\n", i, name(pred[i]).c_str(), conf[i],
                data->y[i] >= 0 ? ("  (label " + name(data->y[i]) + ")").c_str() : "");
  if (n > a.show) std::printf("   ... %zu more (--show N, or --json for all)\n", n - a.show);
  std::printf(
      "%zu samples, batch %lld, %s backend: load %.1f ms, latency p50 %.1f us p99 %.1f us, %.0f "
      "samples/s",
      n, static_cast<long long>(a.batch), a.backend.c_str(), load_ms, pct(0.5), pct(0.99),
      static_cast<double>(n) / std::max(wall, 1e-9));
  if (labelled)
    std::printf(", accuracy %.4f", static_cast<double>(correct) / static_cast<double>(labelled));
  std::printf("\n");
  return kExitOk;
}

}  // namespace

void RegisterInfer(CLI::App& root) {
  auto a = std::make_shared<InferArgs>();
  auto* sub = root.add_subcommand("infer",
                                  "Run an ONNX model with the edge runtime over a dataset or file");
  sub->add_option("--model", a->model, "ONNX model file")->required();
  sub->add_option("--input", a->input,
                  "fashion-mnist[:train|:test], idx:IMAGES,LABELS, FILE.csv or an image folder")
      ->required();
  a->convert.AddTo(sub);
  sub->add_option("--batch", a->batch, "samples per run")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub->add_option("--limit", a->limit, "only the first N samples (0 = all)")->capture_default_str();
  sub->add_option("--show", a->show, "predictions to print")->capture_default_str();
  sub->add_option("--warmup", a->warmup, "untimed batch-1 runs before the timed ones")
      ->capture_default_str();
  sub->add_option("--backend", a->backend, "fast (Eigen) or reference")
      ->capture_default_str()
      ->check(CLI::IsMember({"fast", "reference"}));
  sub->add_flag("--json", a->json, "print everything as JSON");
  sub->add_option("--out", a->out, "also write the JSON report to this file");
  a->request.AddTo(sub);
  SetAction(sub, [a] { return Run(*a); });
}

}  // namespace edgeloop::cli
