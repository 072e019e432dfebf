// edgeloop eval: metrics and the robustness suite. A model directory is evaluated with
// libtorch; an .onnx file with the edge runtime (what devices run, and several times faster
// here), the same metrics and the same suite either way.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>

#include "cli/command.hpp"
#include "cli/data_options.hpp"
#include "common/file.hpp"
#include "common/worker_protocol.hpp"
#include "data/class_match.hpp"
#include "edge/runtime_classifier.hpp"
#include "ml/evaluate.hpp"
#include "runtime/model.hpp"

namespace edgeloop::cli {
namespace {

struct EvalArgs {
  DataOptions data;
  std::string model, out;
  bool robustness = false, json = false;
  std::vector<int> severities = {1, 2, 3, 4, 5};
  std::vector<std::string> corruptions;
  uint64_t seed = 0;
  RequestOption request;
};

// --request, when given: a pipeline's step, the request's settings in place of the flags.
int FromRequest(EvalArgs& a) {
  if (int rc = a.request.Check(); rc != 0 || !a.request.given()) return rc;
  auto r = worker::ReadRequest(a.request.path, worker::ParseEvalRequest);
  if (!r.ok()) return RequestError("eval", r.error());
  a.model = r->model;
  a.data.spec = r->data;
  a.out = r->out;
  a.data.corrupt = r->corrupt;
  a.data.severity = static_cast<int>(r->severity);
  a.robustness = r->robustness;
  return 0;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Class probabilities of every sample from an ONNX classifier on the edge runtime, in
// batches; a model whose scores are not probabilities gets a softmax.
Result<std::vector<float>> RuntimeProbabilities(runtime::Model& model, const data::Dataset& d,
                                                int64_t* classes) {
  if (model.inputs().size() != 1 || model.inputs()[0].dtype != runtime::DType::kFloat32)
    return Error(Errc::kUnsupported, "the model does not take one float32 input");
  const int64_t batch = 64;
  std::vector<float> probs;
  *classes = 0;
  for (size_t i = 0; i < d.size(); i += batch) {
    int64_t b = static_cast<int64_t>(std::min<size_t>(batch, d.size() - i));
    runtime::Shape shape{b};
    shape.insert(shape.end(), d.sample_shape.begin(), d.sample_shape.end());
    runtime::Tensor in{runtime::DType::kFloat32, shape, const_cast<float*>(d.sample(i))};
    EDGELOOP_ASSIGN_OR_RETURN(auto out, model.Run({in}));
    const auto& scores = out.back();
    if (scores.dtype != runtime::DType::kFloat32 || scores.shape.size() != 2 ||
        scores.shape[0] != b)
      return Error(Errc::kUnsupported, "the model's last output is not [batch, classes] float32");
    const int64_t k = scores.shape[1];
    *classes = k;
    for (int64_t j = 0; j < b; ++j) {
      const float* row = scores.as<float>() + j * k;
      double sum = 0;
      bool probabilities = true;
      for (int64_t c = 0; c < k; ++c) {
        sum += row[c];
        probabilities = probabilities && row[c] >= 0 && row[c] <= 1;
      }
      probabilities = probabilities && std::abs(sum - 1.0) < 1e-3;
      float top = *std::max_element(row, row + k);
      double z = 0;
      for (int64_t c = 0; c < k; ++c) z += std::exp(static_cast<double>(row[c] - top));
      for (int64_t c = 0; c < k; ++c)
        probs.push_back(probabilities
                            ? row[c]
                            : static_cast<float>(std::exp(static_cast<double>(row[c] - top)) / z));
    }
  }
  return probs;
}

// The corruptions --corruptions names (all when empty).
Result<std::vector<data::Corruption>> SuiteCorruptions(const EvalArgs& a) {
  if (a.corruptions.empty()) return data::AllCorruptions();
  std::vector<data::Corruption> cs;
  for (const auto& name : a.corruptions) {
    auto c = data::ParseCorruption(name);
    if (!c) return Error(Errc::kInvalidArgument, "unknown corruption '" + name + "'");
    cs.push_back(*c);
  }
  return cs;
}

// Runs the suite on the chosen corruptions with libtorch or the edge runtime.
using SuiteFn = std::function<Result<data::RobustnessResult>(const std::vector<data::Corruption>&)>;

// Adds the robustness suite to the report when --robustness asks for it.
Status AddRobustness(const EvalArgs& a, const SuiteFn& suite, nlohmann::json& j,
                     std::string& text) {
  if (!a.robustness) return Status::Ok();
  EDGELOOP_ASSIGN_OR_RETURN(auto cs, SuiteCorruptions(a));
  EDGELOOP_ASSIGN_OR_RETURN(auto r, suite(cs));
  j["robustness"] = r.ToJson();
  text += "\nrobustness (accuracy per corruption and severity)\n" + r.Table();
  return Status::Ok();
}

// The report is a worker report too (common/worker_protocol.hpp): the pipeline runner reads it.
Status Emit(const EvalArgs& a, nlohmann::json j, const std::string& text) {
  worker::Stamp(j);
  std::string body = a.json ? j.dump(2) + "\n" : text;
  std::fputs(body.c_str(), stdout);
  if (!a.out.empty()) return WriteFileAtomic(a.out, j.dump(2) + "\n");
  return Status::Ok();
}

// The data with its labels renumbered to the model's classes (by name).
Result<data::Dataset> MatchToModel(const data::Dataset& d,
                                   const std::vector<std::string>& model_classes,
                                   const std::string& model_name) {
  EDGELOOP_ASSIGN_OR_RETURN(auto m, data::MatchClassesByName(d, model_classes, model_name));
  if (m.by_index)
    std::fprintf(stderr,
                 "eval: note: %s names no classes; labels are taken as %s's class indices\n",
                 model_classes.empty() ? model_name.c_str() : d.source.c_str(), model_name.c_str());
  return std::move(m.data);
}

int RunOnnx(EvalArgs& a) {
  if (auto cs = SuiteCorruptions(a); !cs.ok()) return ReportError("eval", cs.error());
  auto model = runtime::Model::Load(a.model);
  if (!model.ok()) return ReportError("eval", model.error());
  // Images are converted to the model's input spec (its ONNX metadata), as on a device.
  auto spec = edge::ModelInputSpec(*model, a.model);
  if (!spec.ok()) return ReportError("eval", spec.error());
  auto loaded = a.data.Load(*spec);
  if (!loaded.ok()) return ReportError("eval", loaded.error());
  auto names = data::ClassNamesFromOnnxMetadata(model->graph().metadata, a.model);
  if (!names.ok()) return ReportError("eval", names.error());
  auto d = MatchToModel(*loaded, *names, a.model);
  if (!d.ok()) return ReportError("eval", d.error());
  int64_t classes = 0;
  auto probs = RuntimeProbabilities(*model, *d, &classes);
  if (!probs.ok()) return ReportError("eval", probs.error().WithContext(a.model));
  if (static_cast<size_t>(classes) < d->class_names.size())
    return ReportError("eval",
                       Error(Errc::kMismatch, a.model + " scores " + std::to_string(classes) +
                                                  " classes, the data has " +
                                                  std::to_string(d->class_names.size())));
  auto m = data::ComputeMetrics(d->y, *probs, static_cast<int>(classes));
  nlohmann::json j = {{"model", {{"path", a.model}, {"runtime", "edgeloop"}}},
                      {"data", {{"source", d->source}, {"hash", d->hash}, {"samples", d->size()}}},
                      {"metrics", m.ToJson(d->class_names)}};
  std::string text = "model " + a.model + " (edge runtime) on " + d->source + "\n" +
                     data::FormatMetricsTable(m, d->class_names);
  auto suite = [&](const std::vector<data::Corruption>& cs) {
    return data::RunRobustnessSuite(*d, cs, a.severities, a.seed,
                                    [&](const data::Dataset& shifted) {
                                      int64_t k = 0;
                                      return RuntimeProbabilities(*model, shifted, &k);
                                    });
  };
  if (auto st = AddRobustness(a, suite, j, text); !st.ok())
    return ReportError("eval", st.error().WithContext(a.model));
  if (auto st = Emit(a, j, text); !st.ok()) return ReportError("eval", st.error());
  return 0;
}

int Run(EvalArgs& a) {
  if (int rc = FromRequest(a); rc != 0) return rc;
  if (EndsWith(a.model, ".onnx")) return RunOnnx(a);
  auto model = ml::LoadModel(a.model);
  if (!model.ok()) return ReportError("eval", model.error());
  auto loaded = a.data.Load(model->info.ImageInputSpec());
  if (!loaded.ok()) return ReportError("eval", loaded.error());
  auto d = MatchToModel(*loaded, model->info.class_names,
                        "model " + model->info.name + " " + model->info.version);
  if (!d.ok()) return ReportError("eval", d.error());
  auto m = ml::EvaluateMetrics(*model, *d);
  if (!m.ok()) return ReportError("eval", m.error());
  nlohmann::json j = {{"model",
                       {{"name", model->info.name},
                        {"version", model->info.version},
                        {"hash", model->info.ModelHash()}}},
                      {"data", {{"source", d->source}, {"hash", d->hash}, {"samples", d->size()}}},
                      {"metrics", m->ToJson(model->info.class_names)}};
  std::string text = "model " + model->info.name + " " + model->info.version + " on " + d->source +
                     "\n" + data::FormatMetricsTable(*m, model->info.class_names);
  auto suite = [&](const std::vector<data::Corruption>& cs) {
    return ml::EvaluateRobustness(*model, *d, cs, a.severities, a.seed);
  };
  if (auto st = AddRobustness(a, suite, j, text); !st.ok()) return ReportError("eval", st.error());
  if (auto st = Emit(a, j, text); !st.ok()) return ReportError("eval", st.error());
  return 0;
}

}  // namespace

void RegisterEval(CLI::App& root) {
  auto a = std::make_shared<EvalArgs>();
  auto* sub = root.add_subcommand(
      "eval", "Evaluate a model: accuracy, precision, recall, F1, calibration, robustness");
  sub->add_option("--model", a->model,
                  "model directory (libtorch), or an .onnx file (the edge runtime)")
      ->required();
  a->data.AddTo(sub, "fashion-mnist:test");
  sub->add_flag("--robustness", a->robustness,
                "run the corruption suite (6 corruptions x severities)");
  sub->add_option("--severities", a->severities, "severities for the robustness suite")
      ->check(CLI::Range(1, 5));
  sub->add_option("--corruptions", a->corruptions,
                  "subset of corruptions for the robustness suite");
  sub->add_option("--seed", a->seed, "seed of the robustness suite's corruptions");
  sub->add_flag("--json", a->json, "print JSON instead of tables");
  sub->add_option("--out", a->out, "also write the JSON report to this file");
  a->request.AddTo(sub);
  SetAction(sub, [a] { return Run(*a); });
}

}  // namespace edgeloop::cli
