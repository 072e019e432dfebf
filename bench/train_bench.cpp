// Base CNN on Fashion-MNIST: trains on the training set (10% held out for validation and
// early stopping), evaluates on the 10,000 test images, and reports epochs, wall time,
// throughput and test accuracy. Also saves the model, so later benchmarks can reuse it.
//
//   build/bench/train_bench [--epochs 8] [--out bench/results/train.json] [--model-out DIR]
//                           [--train-samples N]
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>

#include "bench/bench_util.hpp"
#include "ml/evaluate.hpp"
#include "ml/lineage.hpp"
#include "ml/model_store.hpp"
#include "ml/train.hpp"

using namespace edgeloop;

int main(int argc, char** argv) {
  CLI::App app{"Train the base Fashion-MNIST CNN and measure time, throughput and accuracy"};
  ml::TrainOptions opt;
  opt.epochs = 8;
  opt.lr = 2e-3;
  opt.batch_size = 128;
  std::vector<int64_t> widths = {16, 32};
  int64_t embed = 128;
  std::string out = "bench/results/train.json", model_out;
  app.add_option("--epochs", opt.epochs)->capture_default_str();
  app.add_option("--lr", opt.lr)->capture_default_str();
  app.add_option("--batch-size", opt.batch_size)->capture_default_str();
  app.add_option("--widths", widths)->capture_default_str();
  app.add_option("--embed", embed)->capture_default_str();
  app.add_option("--seed", opt.seed)->capture_default_str();
  app.add_option("--threads", opt.threads, "0 = all cores")->capture_default_str();
  app.add_option("--out", out, "JSON results")->capture_default_str();
  app.add_option("--model-out", model_out, "also save the trained model here");
  int train_samples = 0;
  app.add_option("--train-samples", train_samples,
                 "training images, stratified (0 = all 60000; for short runs)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto train = data::LoadDataset("fashion-mnist:train");
  auto test = data::LoadDataset("fashion-mnist:test");
  if (!train.ok() || !test.ok()) {
    std::fprintf(stderr, "%s\n", (!train.ok() ? train.error() : test.error()).message.c_str());
    return 3;
  }
  if (train_samples > 0 && !train->class_names.empty())
    *train = data::SamplePerClass(
        *train, train_samples / static_cast<int>(train->class_names.size()), opt.seed);
  auto split = data::SplitDataset(*train, 0.1, 0.0, opt.seed);
  ml::ModelSpec spec;
  spec.input_shape = {1, 28, 28};
  spec.widths = widths;
  spec.embed = embed;
  spec.input_mean = {0.2860f};
  spec.input_std = {0.3530f};
  ml::SeedEverything(opt.seed);
  ml::Classifier model(spec);
  auto report = ml::Train(model, split.train, split.val, opt);
  if (!report.ok()) {
    std::fprintf(stderr, "%s\n", report.error().message.c_str());
    return 1;
  }
  ml::LoadedModel lm{ml::ModelInfo{}, model};
  lm.info.name = "fashion-cnn";
  lm.info.spec = spec;
  lm.info.class_names = train->class_names;
  lm.info.lineage = ml::TrainingLineage(*train, "scratch", opt);
  lm.info.training = report->ToJson();
  auto metrics = ml::EvaluateMetrics(lm, *test);
  if (!metrics.ok()) return 1;
  lm.info.metrics = {{"val_accuracy", report->best_val_accuracy},
                     {"test_accuracy", metrics->accuracy}};
  if (!model_out.empty()) {
    auto st = ml::SaveModel(model_out, lm.info, lm.model);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 4;
    }
  }

  std::printf(
      "\n| model | params | epochs run (best) | wall time | samples/s | val acc | test acc | test "
      "macro F1 |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::printf(
      "| cnn %lldx%lld fc%lld | %lld | %zu (%d) | %.1f s | %.0f | %.4f | %.4f | %.4f |\n",
      static_cast<long long>(widths[0]), static_cast<long long>(widths.size() > 1 ? widths[1] : 0),
      static_cast<long long>(embed), static_cast<long long>(ml::ParameterCount(model)),
      report->epochs.size(), report->best_epoch, report->wall_seconds, report->samples_per_s,
      report->best_val_accuracy, metrics->accuracy, metrics->macro_f1);
  bench::WriteJson(out, {{"benchmark", "train"},
                         {"machine", bench::MachineInfo()},
                         {"threads", opt.threads},
                         {"train_images", train->size()},
                         {"spec", spec.ToJson()},
                         {"parameters", ml::ParameterCount(model)},
                         {"training", report->ToJson()},
                         {"test", metrics->ToJson(train->class_names)}});
  return 0;
}
