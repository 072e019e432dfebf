// Dataset options shared by the subcommands that read data: a spec, an optional corruption
// (a shifted domain), and optional down-sampling.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "common/result.hpp"
#include "data/dataset.hpp"

namespace edgeloop::cli {

struct DataOptions {
  std::string spec;
  std::string corrupt;  // corruption name, empty = none
  int severity = 3;
  uint64_t seed = 0;
  int per_class = 0;       // > 0: at most this many samples per class
  size_t max_samples = 0;  // > 0: the first N samples (after per_class)

  void AddTo(CLI::App* app, const std::string& default_spec, bool required = false);
  Result<data::Dataset> Load() const;
};

}  // namespace edgeloop::cli
