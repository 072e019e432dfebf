// Transfer learning on a shifted domain. The Fashion-MNIST test images are corrupted (the
// domain shift) and split in two stratified halves: a pool to draw labelled samples from and
// an evaluation half. For 10, 50, 100 and 500 labelled samples per class, each fine-tune
// strategy (head, last-k, full) starts from the base model, and a model of the same
// architecture is trained from scratch; all are scored on the evaluation half.
//
//   build/bench/transfer_bench --parent models/base [--corrupt contrast --severity 4]
#include <CLI/CLI.hpp>

#include <cstdio>

#include "bench/bench_util.hpp"
#include "data/corruptions.hpp"
#include "ml/evaluate.hpp"
#include "ml/finetune.hpp"

using namespace edgeloop;

int main(int argc, char** argv) {
  CLI::App app{"Fine-tune strategies against training from scratch on a shifted domain"};
  std::string parent_dir, corrupt = "contrast", out = "bench/results/transfer.json";
  int severity = 4, k = 2, epochs = 20, patience = 5;
  int64_t min_epoch_samples = 2048;
  double lr = 1e-3, backbone_lr_scale = 0.1;
  std::vector<int> sizes = {10, 50, 100, 500};
  uint64_t seed = 0;
  app.add_option("--parent", parent_dir, "base model directory")->required();
  app.add_option("--corrupt", corrupt, "the domain shift")->capture_default_str();
  app.add_option("--severity", severity)->capture_default_str();
  app.add_option("--sizes", sizes, "labelled samples per class")->capture_default_str();
  app.add_option("--k", k, "blocks unfrozen by last-k")->capture_default_str();
  app.add_option("--epochs", epochs)->capture_default_str();
  app.add_option("--patience", patience)->capture_default_str();
  app.add_option("--min-epoch-samples", min_epoch_samples)->capture_default_str();
  app.add_option("--lr", lr)->capture_default_str();
  app.add_option("--backbone-lr-scale", backbone_lr_scale, "full fine-tune")->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--out", out)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto parent = ml::LoadModel(parent_dir);
  auto test = data::LoadDataset("fashion-mnist:test");
  auto c = data::ParseCorruption(corrupt);
  if (!parent.ok() || !test.ok() || !c) {
    std::fprintf(stderr, "cannot load the parent model, the test set, or the corruption\n");
    return 3;
  }
  auto shifted = data::Corrupt(*test, *c, severity, seed + 100);
  auto halves = data::SplitDataset(shifted, 0.0, 0.5, seed);
  const data::Dataset& pool = halves.train;
  const data::Dataset& eval = halves.test;

  auto base_metrics = ml::EvaluateMetrics(*parent, eval);
  auto clean_metrics = ml::EvaluateMetrics(*parent, data::SplitDataset(*test, 0.0, 0.5, seed).test);
  std::printf("domain: %s severity %d; base model accuracy: clean %.4f, shifted %.4f\n",
              corrupt.c_str(), severity, clean_metrics->accuracy, base_metrics->accuracy);

  struct Row {
    int n;
    std::string method;
    double accuracy, seconds;
    size_t epochs;
  };
  std::vector<Row> rows;
  nlohmann::json jrows = nlohmann::json::array();
  for (int n : sizes) {
    auto labelled = data::SamplePerClass(pool, n, seed + static_cast<uint64_t>(n));
    auto split = data::SplitDataset(labelled, 0.2, 0.0, seed);
    for (const std::string method : {"head", "last-k", "full", "scratch"}) {
      ml::TrainOptions topt;
      topt.epochs = epochs;
      topt.patience = patience;
      topt.batch_size = 64;
      topt.min_epoch_samples = min_epoch_samples;
      topt.lr = lr;
      topt.seed = seed;
      topt.quiet = true;
      double acc = 0, secs = 0;
      size_t ep = 0;
      if (method == "scratch") {
        ml::SeedEverything(seed);
        ml::LoadedModel m{parent->info, ml::Classifier(parent->info.spec)};
        auto r = ml::Train(m.model, split.train, split.val, topt);
        if (!r.ok()) return 1;
        acc = ml::EvaluateMetrics(m, eval)->accuracy;
        secs = r->wall_seconds;
        ep = r->epochs.size();
      } else {
        ml::FinetuneOptions fo;
        fo.strategy = *ml::ParseStrategy(method);
        fo.k = k;
        fo.backbone_lr_scale = backbone_lr_scale;
        fo.train = topt;
        auto r = ml::Finetune(*parent, split.train, split.val, fo);
        if (!r.ok()) {
          std::fprintf(stderr, "%s\n", r.error().message.c_str());
          return 1;
        }
        ml::LoadedModel m{r->info, r->model};
        acc = ml::EvaluateMetrics(m, eval)->accuracy;
        secs = r->report.wall_seconds;
        ep = r->report.epochs.size();
      }
      rows.push_back({n, method, acc, secs, ep});
      jrows.push_back({{"samples_per_class", n},
                       {"method", method},
                       {"accuracy", acc},
                       {"wall_seconds", secs},
                       {"epochs", ep}});
      std::fprintf(stderr, "  %3d/class %-8s accuracy %.4f in %.1fs (%zu epochs)\n", n,
                   method.c_str(), acc, secs, ep);
    }
  }

  std::printf("\nshifted domain: %s severity %d; evaluation on %zu held-out shifted images\n",
              corrupt.c_str(), severity, eval.size());
  std::printf("base model, no adaptation: %.4f (clean: %.4f)\n\n", base_metrics->accuracy,
              clean_metrics->accuracy);
  std::printf("| labelled/class | head | last-%d | full | scratch |\n|---|---|---|---|---|\n", k);
  for (size_t i = 0; i < rows.size(); i += 4) {
    std::printf("| %d |", rows[i].n);
    for (size_t j = i; j < i + 4; ++j)
      std::printf(" %.4f (%.1fs) |", rows[j].accuracy, rows[j].seconds);
    std::printf("\n");
  }
  bench::WriteJson(out, {{"benchmark", "transfer"},
                         {"machine", bench::MachineInfo()},
                         {"domain", {{"corruption", corrupt}, {"severity", severity}}},
                         {"parent", parent_dir},
                         {"parent_hash", parent->info.ModelHash()},
                         {"base_accuracy_shifted", base_metrics->accuracy},
                         {"base_accuracy_clean", clean_metrics->accuracy},
                         {"eval_samples", eval.size()},
                         {"last_k", k},
                         {"rows", jrows}});
  return 0;
}
