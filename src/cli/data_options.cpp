#include "cli/data_options.hpp"

#include <numeric>

#include "data/corruptions.hpp"

namespace edgeloop::cli {

void InputSpecOptions::AddTo(CLI::App* app) {
  app->add_option("--input-size", size,
                  "convert images to HxW (e.g. 96x96); default: the model's input, or the "
                  "images' own size");
  app->add_option("--channels", channels, "convert images to 1 (grayscale) or 3 (RGB) channels")
      ->check(CLI::IsMember({1, 3}));
  app->add_option("--resize", resize,
                  "how images reach --input-size: stretch, center-crop (scale the short side, "
                  "crop the centre) or pad (letterbox with black)")
      ->check(CLI::IsMember({"stretch", "center-crop", "pad"}));
}

Result<std::optional<data::InputSpec>> InputSpecOptions::Resolve(
    const std::optional<data::InputSpec>& base) const {
  if (!given()) return base;
  data::InputSpec s;
  if (base) {
    s = *base;
  } else if (size.empty()) {
    return Error(Errc::kInvalidArgument, "--channels and --resize need --input-size HxW");
  }
  if (!size.empty()) {
    const size_t x = size.find('x');
    try {
      size_t end_h = 0, end_w = 0;
      if (x == std::string::npos) throw std::invalid_argument("no x");
      s.height = std::stoi(size.substr(0, x), &end_h);
      s.width = std::stoi(size.substr(x + 1), &end_w);
      if (end_h != x || end_w != size.size() - x - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      return Error(Errc::kInvalidArgument,
                   "--input-size '" + size + "': expected HEIGHTxWIDTH, e.g. 96x96");
    }
  }
  if (channels != 0 && channels != s.channels) {
    s.channels = channels;
    // Per-channel statistics of another channel count do not carry over.
    s.mean.assign(static_cast<size_t>(channels), 0.f);
    s.std.assign(static_cast<size_t>(channels), 1.f);
  }
  if (!resize.empty()) {
    EDGELOOP_ASSIGN_OR_RETURN(s.resize, data::ParseResizeMode(resize));
  }
  if (auto st = s.Validate(); !st.ok()) return st.error();
  return std::optional<data::InputSpec>(s);
}

Result<data::Dataset> InputSpecOptions::Load(const std::string& spec,
                                             const std::optional<data::InputSpec>& base) const {
  EDGELOOP_ASSIGN_OR_RETURN(auto to, Resolve(base));
  EDGELOOP_ASSIGN_OR_RETURN(data::Dataset d, data::LoadDataset(spec, to ? &*to : nullptr));
  if (given() && !d.is_image())
    return Error(Errc::kInvalidArgument,
                 d.source + ": --input-size, --channels and --resize apply to images, not features");
  return d;
}

void DataOptions::AddTo(CLI::App* app, const std::string& default_spec, bool required) {
  spec = default_spec;
  auto* o = app->add_option("--data", spec,
                            "dataset: fashion-mnist[:train|:test], idx:IMAGES,LABELS, FILE.csv, "
                            "or an image folder (one subfolder per class, PNG or JPEG)");
  if (required) o->required();
  input.AddTo(app);
  app->add_option("--corrupt", corrupt,
                  "apply a corruption to every sample (gaussian_noise, blur, brightness, "
                  "contrast, rotation, occlusion): a shifted domain");
  app->add_option("--severity", severity, "corruption severity")->check(CLI::Range(1, 5));
  app->add_option("--data-seed", seed, "seed for corruption and sampling");
  app->add_option("--samples-per-class", per_class, "use at most N samples of each class")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--max-samples", max_samples, "use at most the first N samples");
}

Result<data::Dataset> DataOptions::Load(const std::optional<data::InputSpec>& model_spec) const {
  EDGELOOP_ASSIGN_OR_RETURN(data::Dataset d, input.Load(spec, model_spec));
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
