// edgeloop profile: the drift reference profile of a model (input mean, input std and
// top-class confidence histograms over data like its training data), the JSON an agent's
// model.profile points at.
#include <cstdio>
#include <memory>

#include "cli/command.hpp"
#include "cli/data_options.hpp"
#include "common/file.hpp"
#include "edge/inference_loop.hpp"
#include "edge/runtime_classifier.hpp"

namespace edgeloop::cli {
namespace {

struct ProfileArgs {
  std::string model, out = "profile.json";
  DataOptions data;
  int bins = 10;
};

int Run(const ProfileArgs& a) {
  auto model = edge::RuntimeClassifier::Load(a.model);
  if (!model.ok()) return ReportError("profile", model.error().WithContext(a.model));
  // Images are converted to the model's input spec, as the device converts what it sees.
  auto ds = a.data.Load((*model)->input_spec());
  if (!ds.ok()) return ReportError("profile", ds.error());
  std::vector<edge::Sample> samples(ds->size());
  for (size_t i = 0; i < ds->size(); ++i) {
    samples[i].shape = ds->sample_shape;
    samples[i].data.assign(ds->sample(i), ds->sample(i) + ds->sample_numel());
  }
  auto profile = edge::BuildReferenceProfile(**model, samples, a.bins);
  if (!profile.ok()) return ReportError("profile", profile.error());
  Status st = WriteFileAtomic(a.out, profile->ToJson() + "\n");
  if (!st.ok()) return ReportError("profile", st.error());
  std::printf("profile of %s over %zu samples (%d bins): %s\n", a.model.c_str(), samples.size(),
              a.bins, a.out.c_str());
  return kExitOk;
}

}  // namespace

void RegisterProfile(CLI::App& root) {
  auto a = std::make_shared<ProfileArgs>();
  a->data.max_samples = 2000;
  auto* sub = root.add_subcommand(
      "profile", "Build a model's drift reference profile (for an agent's model.profile)");
  sub->add_option("--model", a->model, "ONNX model")->required();
  a->data.AddTo(sub, "fashion-mnist:test");
  sub->add_option("--bins", a->bins, "histogram bins per quantity")
      ->check(CLI::Range(2, 100))
      ->capture_default_str();
  sub->add_option("--out", a->out, "profile JSON to write")->capture_default_str();
  SetAction(sub, [a] { return Run(*a); });
}

}  // namespace edgeloop::cli
