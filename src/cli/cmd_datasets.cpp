// `edgeloop datasets`: look at a dataset (inspect) and write it out in a standard format
// (export), optionally through a corruption so a shifted-domain copy can be shared.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "cli/data_options.hpp"
#include "data/corruptions.hpp"
#include "data/dataset.hpp"

namespace edgeloop::cli {
namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s.push_back('x');
    s += std::to_string(shape[i]);
  }
  return s;
}

std::vector<int64_t> ClassCounts(const data::Dataset& d, int64_t* unlabelled) {
  std::vector<int64_t> counts(d.class_names.size());
  *unlabelled = 0;
  for (int32_t y : d.y) {
    if (y >= 0 && static_cast<size_t>(y) < counts.size()) {
      ++counts[y];
    } else {
      ++*unlabelled;
    }
  }
  return counts;
}

int Inspect(const std::string& spec, const InputSpecOptions& input, bool json) {
  auto d = input.Load(spec, std::nullopt);
  if (!d.ok()) return ReportError("datasets inspect", d.error());
  int64_t unlabelled = 0;
  auto counts = ClassCounts(*d, &unlabelled);
  if (json) {
    nlohmann::json classes = nlohmann::json::array();
    for (size_t k = 0; k < counts.size(); ++k)
      classes.push_back({{"index", k}, {"name", d->class_names[k]}, {"count", counts[k]}});
    nlohmann::json j = {{"source", d->source},
                        {"samples", d->size()},
                        {"sample_shape", d->sample_shape},
                        {"kind", d->is_image() ? "images" : "features"},
                        {"classes", classes},
                        {"unlabelled", unlabelled},
                        {"hash", d->hash}};
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  std::printf("source:       %s\n", d->source.c_str());
  std::printf("samples:      %zu\n", d->size());
  std::printf("sample shape: %s (%s)\n", ShapeText(d->sample_shape).c_str(),
              d->is_image() ? "channels x height x width" : "features");
  std::printf("classes:      %zu\n", counts.size());
  for (size_t k = 0; k < counts.size(); ++k)
    std::printf("  %3zu  %-20s %8lld\n", k, d->class_names[k].c_str(),
                static_cast<long long>(counts[k]));
  if (unlabelled > 0) std::printf("  unlabelled: %lld\n", static_cast<long long>(unlabelled));
  std::printf("hash:         sha256:%s\n", d->hash.c_str());
  return kExitOk;
}

struct ExportArgs {
  std::string spec, format = "idx", out, corrupt;
  int severity = 3;
  uint64_t seed = 0;
};

int Export(const ExportArgs& a) {
  const std::string cmd = "datasets export";
  std::optional<data::Corruption> corruption;
  if (!a.corrupt.empty()) {
    corruption = data::ParseCorruption(a.corrupt);
    if (!corruption)
      return ReportError(cmd, Error(Errc::kInvalidArgument, "unknown corruption '" + a.corrupt +
                                                                "' (gaussian_noise, blur, "
                                                                "brightness, contrast, rotation, "
                                                                "occlusion)"));
  }
  auto d = data::LoadDataset(a.spec);
  if (!d.ok()) return ReportError(cmd, d.error());
  data::Dataset ds = std::move(d).value();
  if (corruption) {
    if (!ds.is_image())
      return ReportError(cmd, Error(Errc::kInvalidArgument,
                                    a.spec + ": corruptions apply to image datasets only"));
    ds = data::Corrupt(ds, *corruption, a.severity, a.seed);
  }
  Status st;
  std::string written;
  if (a.format == "idx") {
    const std::string images = a.out + "-images-idx3-ubyte";
    const std::string labels = a.out + "-labels-idx1-ubyte";
    st = data::WriteIdx(ds, images, labels);
    written = images + ", " + labels;
  } else {
    st = data::WriteCsv(ds, a.out);
    written = a.out;
  }
  if (!st.ok()) return ReportError(cmd, st.error());
  std::printf("wrote %zu samples (%s, sha256:%s) to %s\n", ds.size(), ds.source.c_str(),
              ds.hash.c_str(), written.c_str());
  return kExitOk;
}

}  // namespace

void RegisterDatasets(CLI::App& root) {
  auto* cmd = root.add_subcommand(
      "datasets", "Inspect and export datasets; snapshot the server's samples into datasets");
  cmd->require_subcommand(1);
  const std::string spec_help =
      "dataset: fashion-mnist[:train|:test], idx:IMAGES,LABELS, idx:PREFIX, csv:FILE, FILE.csv, "
      "images:DIR, or a folder of IDX files or class subfolders";

  auto* inspect =
      cmd->add_subcommand("inspect", "Print a dataset's source, size, classes and hash");
  auto spec = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  inspect->add_option("spec", *spec, spec_help)->required();
  inspect->add_flag("--json", *json, "print JSON instead of a table");
  auto input = std::make_shared<InputSpecOptions>();
  input->AddTo(inspect);
  SetAction(inspect, [spec, input, json] { return Inspect(*spec, *input, *json); });

  auto* exp = cmd->add_subcommand(
      "export", "Write a dataset as IDX (PATH-images-idx3-ubyte, PATH-labels-idx1-ubyte) or CSV");
  auto args = std::make_shared<ExportArgs>();
  exp->add_option("spec", args->spec, spec_help)->required();
  exp->add_option("--format", args->format, "idx or csv")
      ->check(CLI::IsMember({"idx", "csv"}))
      ->capture_default_str();
  exp->add_option("--out", args->out, "output path (for idx: the prefix of the two files)")
      ->required();
  exp->add_option("--corrupt", args->corrupt,
                  "apply a corruption first (gaussian_noise, blur, brightness, contrast, "
                  "rotation, occlusion): a shifted-domain copy");
  exp->add_option("--severity", args->severity, "corruption severity")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  exp->add_option("--seed", args->seed, "corruption seed")->capture_default_str();
  SetAction(exp, [args] { return Export(*args); });
  AddSnapshotCommands(*cmd);
}

}  // namespace edgeloop::cli
