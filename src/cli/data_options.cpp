#include "cli/data_options.hpp"

#include <numeric>

#include "data/corruptions.hpp"

namespace edgeloop::cli {

void DataOptions::AddTo(CLI::App* app, const std::string& default_spec, bool required) {
  spec = default_spec;
  auto* o = app->add_option("--data", spec,
                            "dataset: fashion-mnist[:train|:test], idx:IMAGES,LABELS, FILE.csv, "
                            "or an image folder (one subfolder per class)");
  if (required) o->required();
  app->add_option("--corrupt", corrupt,
                  "apply a corruption to every sample (gaussian_noise, blur, brightness, "
                  "contrast, rotation, occlusion): a shifted domain");
  app->add_option("--severity", severity, "corruption severity")->check(CLI::Range(1, 5));
  app->add_option("--data-seed", seed, "seed for corruption and sampling");
  app->add_option("--samples-per-class", per_class, "use at most N samples of each class")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--max-samples", max_samples, "use at most the first N samples");
}

Result<data::Dataset> DataOptions::Load() const {
  EDGELOOP_ASSIGN_OR_RETURN(data::Dataset d, data::LoadDataset(spec));
  if (per_class > 0) d = data::SamplePerClass(d, per_class, seed);
  if (max_samples > 0 && max_samples < d.size()) {
    std::vector<size_t> idx(max_samples);
    std::iota(idx.begin(), idx.end(), size_t{0});
    d = d.Subset(idx);
  }
  if (!corrupt.empty()) {
    auto c = data::ParseCorruption(corrupt);
    if (!c) return Error(Errc::kInvalidArgument, "unknown corruption '" + corrupt + "'");
    if (!d.is_image())
      return Error(Errc::kInvalidArgument, spec + ": corruptions apply to images only");
    d = data::Corrupt(d, *c, severity, seed);
  }
  if (d.size() == 0) return Error(Errc::kInvalidArgument, spec + ": dataset is empty");
  return d;
}

}  // namespace edgeloop::cli
