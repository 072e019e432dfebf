// Dataset options shared by the subcommands that read data: a spec, an optional input spec
// for images (size, channels, resize), an optional corruption (a shifted domain), and
// optional down-sampling.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "common/result.hpp"
#include "data/dataset.hpp"
#include "data/preprocess.hpp"

namespace edgeloop::cli {

// --input-size HxW, --channels N, --resize MODE: what images are converted to
// (data::Preprocess). Flags left out are taken from a base spec (a model's) when there is
// one; a spec needs a size, so --channels or --resize alone need a base or --input-size.
struct InputSpecOptions {
  std::string size;  // "HxW"
  int channels = 0;  // 0: from the base, else as the images are
  std::string resize;

  void AddTo(CLI::App* app);
  bool given() const { return !size.empty() || channels != 0 || !resize.empty(); }
  // The spec to convert to: the flags over `base`; nullopt when neither says anything.
  Result<std::optional<data::InputSpec>> Resolve(const std::optional<data::InputSpec>& base) const;
  // data::LoadDataset with the resolved spec. Feature data passes through unchanged, unless
  // these flags were given for it (a usage error).
  Result<data::Dataset> Load(const std::string& spec,
                             const std::optional<data::InputSpec>& base) const;
};

struct DataOptions {
  std::string spec;
  InputSpecOptions input;
  std::string corrupt;  // corruption name, empty = none
  int severity = 3;
  uint64_t seed = 0;
  int per_class = 0;       // > 0: at most this many samples per class
  size_t max_samples = 0;  // > 0: the first N samples (after per_class)

  void AddTo(CLI::App* app, const std::string& default_spec, bool required = false);
  // Loads the data, images converted to the input flags over `model_spec` (the model's input
  // spec, for eval and finetune), or as stored when there is neither.
  Result<data::Dataset> Load(const std::optional<data::InputSpec>& model_spec = std::nullopt) const;
};

}  // namespace edgeloop::cli
