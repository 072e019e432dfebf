// `edgeloop datasets snapshot|snapshots|show-snapshot|export-snapshot`: dataset snapshots of
// the samples on a running server, and their export as IDX or CSV files.
#include <cstdio>

#include "cli/command.hpp"
#include "cli/server_client.hpp"
#include "common/file.hpp"

namespace edgeloop::cli {
namespace {

using Json = nlohmann::json;

struct SnapshotArgs {
  std::vector<std::string> devices, groups, label_sources, class_names;
  std::vector<int> labels;
  int64_t from_ms = -1, to_ms = -1;
  bool labelled_only = false;
  double train = 1.0, val = 0.0, test = 0.0;
  uint64_t seed = 0;
};

Json SpecOf(const SnapshotArgs& a) {
  Json spec = {{"devices", a.devices},
               {"groups", a.groups},
               {"labels", a.labels},
               {"label_sources", a.label_sources},
               {"class_names", a.class_names},
               {"labelled_only", a.labelled_only},
               {"split", {{"train", a.train}, {"val", a.val}, {"test", a.test}, {"seed", a.seed}}}};
  if (a.from_ms >= 0) spec["from_ms"] = a.from_ms;
  if (a.to_ms >= 0) spec["to_ms"] = a.to_ms;
  return spec;
}

void PrintCounts(const char* title, const Json& counts) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, n] : counts.items()) rows.push_back({key, Cell(n)});
  std::printf("\n");
  PrintTable({title, "SAMPLES"}, rows);
}

void PrintSnapshot(const Json& j) {
  std::printf("snapshot %s\n", j["id"].get<std::string>().c_str());
  std::printf("samples  %s\n", Cell(j["samples"]).c_str());
  std::printf("read by  %s[:train|:val|:test]\n", j["dataset"].get<std::string>().c_str());
  PrintCounts("SPLIT", j["splits"]);
  PrintCounts("LABEL", j["labels"]);
  PrintCounts("DEVICE", j["devices"]);
}

struct ExportArgs {
  std::string id, format = "idx", out, split;
};

Result<Json> Export(const cloud::OperatorClient& c, const ExportArgs& a) {
  std::string path = "/v1/datasets/snapshots/" + a.id + "/export?format=" + a.format +
                     (a.split.empty() ? "" : "&split=" + a.split);
  Json written = Json::array();
  if (a.format == "csv") {
    EDGELOOP_ASSIGN_OR_RETURN(std::string csv, c.GetBytes(path));
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(a.out, csv));
    written.push_back(a.out);
  } else {
    // Both parts are fetched before either file is written: no half export on failure.
    EDGELOOP_ASSIGN_OR_RETURN(std::string images, c.GetBytes(path + "&part=images"));
    EDGELOOP_ASSIGN_OR_RETURN(std::string labels, c.GetBytes(path + "&part=labels"));
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(a.out + "-images-idx3-ubyte", images));
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(a.out + "-labels-idx1-ubyte", labels));
    written.push_back(a.out + "-images-idx3-ubyte");
    written.push_back(a.out + "-labels-idx1-ubyte");
  }
  return Json{{"snapshot", a.id}, {"split", a.split}, {"format", a.format}, {"files", written}};
}

}  // namespace

void AddSnapshotCommands(CLI::App& datasets) {
  auto* snap = datasets.add_subcommand(
      "snapshot", "Snapshot the server's samples: a filter and a seeded train/val/test split");
  auto sf = AddServerFlags(snap);
  auto sa = std::make_shared<SnapshotArgs>();
  snap->add_option("--device", sa->devices, "only these devices (repeatable)");
  snap->add_option("--group", sa->groups, "only devices of these groups (repeatable)");
  snap->add_option("--from-ms", sa->from_ms, "samples at or after this time (Unix ms)");
  snap->add_option("--to-ms", sa->to_ms, "samples before this time (Unix ms)");
  snap->add_option("--label", sa->labels, "only these labels (repeatable)");
  snap->add_option("--label-source", sa->label_sources, "human, device, model or unspecified")
      ->check(CLI::IsMember({"human", "device", "model", "unspecified"}));
  snap->add_flag("--labelled-only", sa->labelled_only, "leave out unlabelled samples");
  snap->add_option("--train", sa->train, "train fraction")->capture_default_str();
  snap->add_option("--val", sa->val, "validation fraction")->capture_default_str();
  snap->add_option("--test", sa->test, "test fraction")->capture_default_str();
  snap->add_option("--seed", sa->seed, "split seed")->capture_default_str();
  snap->add_option("--class-name", sa->class_names, "class names in label order (repeatable)");
  SetAction(snap, [sf, sa] {
    return RunServerRequest(
        "datasets snapshot", *sf,
        [&](const auto& c) { return c.PostJson("/v1/datasets/snapshots", SpecOf(*sa)); },
        PrintSnapshot);
  });

  auto* list = datasets.add_subcommand("snapshots", "List the server's dataset snapshots");
  auto lf = AddServerFlags(list);
  SetAction(list, [lf] {
    return RunServerRequest(
        "datasets snapshots", *lf,
        [](const auto& c) { return c.GetJson("/v1/datasets/snapshots"); },
        [](const Json& j) {
          std::vector<std::vector<std::string>> rows;
          for (const auto& s : j["snapshots"])
            rows.push_back({s["id"], Cell(s["samples"]), Cell(s["splits"]["train"]),
                            Cell(s["splits"]["val"]), Cell(s["splits"]["test"])});
          PrintTable({"ID", "SAMPLES", "TRAIN", "VAL", "TEST"}, rows);
        });
  });

  auto* show = datasets.add_subcommand("show-snapshot",
                                       "Show a snapshot's counts per split, label and device");
  auto shf = AddServerFlags(show);
  auto id = std::make_shared<std::string>();
  show->add_option("id", *id, "snapshot id (sha256)")->required();
  SetAction(show, [shf, id] {
    return RunServerRequest(
        "datasets show-snapshot", *shf,
        [&](const auto& c) { return c.GetJson("/v1/datasets/snapshots/" + *id); }, PrintSnapshot);
  });

  auto* exp = datasets.add_subcommand("export-snapshot",
                                      "Download a snapshot (or one split) as IDX files or CSV");
  auto ef = AddServerFlags(exp);
  auto ea = std::make_shared<ExportArgs>();
  exp->add_option("id", ea->id, "snapshot id (sha256)")->required();
  exp->add_option("--format", ea->format, "idx or csv")
      ->check(CLI::IsMember({"idx", "csv"}))
      ->capture_default_str();
  exp->add_option("--out", ea->out, "output path (for idx: the prefix of the two files)")
      ->required();
  exp->add_option("--split", ea->split, "train, val or test (default: all samples)")
      ->check(CLI::IsMember({"train", "val", "test"}));
  SetAction(exp, [ef, ea] {
    return RunServerRequest(
        "datasets export-snapshot", *ef, [&](const auto& c) { return Export(c, *ea); },
        [](const Json& j) {
          for (const auto& f : j["files"]) std::printf("wrote %s\n", f.get<std::string>().c_str());
        });
  });
}

}  // namespace edgeloop::cli
