// edgeloop eval: metrics and the robustness suite.
#include <cstdio>
#include <sstream>

#include "cli/command.hpp"
#include "cli/data_options.hpp"
#include "common/file.hpp"
#include "ml/evaluate.hpp"

namespace edgeloop::cli {
namespace {

struct EvalArgs {
  DataOptions data;
  std::string model, out;
  bool robustness = false, json = false;
  std::vector<int> severities = {1, 2, 3, 4, 5};
  std::vector<std::string> corruptions;
  uint64_t seed = 0;
};

int Run(EvalArgs& a) {
  auto model = ml::LoadModel(a.model);
  if (!model.ok()) return ReportError("eval", model.error());
  auto d = a.data.Load();
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
  if (a.robustness) {
    std::vector<data::Corruption> cs;
    if (a.corruptions.empty()) cs = data::AllCorruptions();
    for (const auto& name : a.corruptions) {
      auto c = data::ParseCorruption(name);
      if (!c)
        return ReportError("eval",
                           Error(Errc::kInvalidArgument, "unknown corruption '" + name + "'"));
      cs.push_back(*c);
    }
    auto r = ml::EvaluateRobustness(*model, *d, cs, a.severities, a.seed);
    if (!r.ok()) return ReportError("eval", r.error());
    j["robustness"] = r->ToJson();
    text += "\nrobustness (accuracy per corruption and severity)\n" + r->Table();
  }
  std::string body = a.json ? j.dump(2) + "\n" : text;
  std::fputs(body.c_str(), stdout);
  if (!a.out.empty()) {
    if (auto st = WriteFileAtomic(a.out, j.dump(2) + "\n"); !st.ok())
      return ReportError("eval", st.error());
  }
  return 0;
}

}  // namespace

void RegisterEval(CLI::App& root) {
  auto a = std::make_shared<EvalArgs>();
  auto* sub = root.add_subcommand(
      "eval", "Evaluate a model: accuracy, precision, recall, F1, calibration, robustness");
  sub->add_option("--model", a->model, "model directory")->required();
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
  SetAction(sub, [a] { return Run(*a); });
}

}  // namespace edgeloop::cli
