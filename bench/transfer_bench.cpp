// Transfer learning on a shifted domain. The Fashion-MNIST test images are corrupted (the
// domain shift) and split in two stratified halves: a pool to draw labelled samples from and
// an evaluation half. For 10, 50, 100 and 500 labelled samples per class, each fine-tune
// strategy (head, last-k, full) starts from the base model, and a model of the same
// architecture is trained from scratch; all are scored on the evaluation half.
//
// The parent may be an ONNX file (imported as a trainable model, ml/onnx_import.hpp), and the
// shift may be a camera instead of a corruption: the test images are filmed by one of the
// camera demo's cameras (64x64 RGB, its colour cast, zoom, noise and JPEG quality: encoded and
// decoded as the device would read the file) and converted to the parent's input spec.
// Training "from scratch" needs an architecture: a model directory's, or --scratch-model's
// (the architecture an ONNX file came from, freshly initialised).
//
//   build/bench/transfer_bench --parent models/base [--corrupt contrast --severity 4]
//   build/bench/transfer_bench --parent model.onnx --camera tungsten --scratch-model DIR
#include <CLI/CLI.hpp>

#include <cstdio>
#include <optional>

#include "bench/bench_util.hpp"
#include "cli/demo_camera.hpp"
#include "data/corruptions.hpp"
#include "data/image.hpp"
#include "data/preprocess.hpp"
#include "ml/evaluate.hpp"
#include "ml/finetune.hpp"
#include "ml/onnx_import.hpp"

namespace {

using namespace edgeloop;

// The images as the camera films them, read back from its JPEG files, in the model's spec.
edgeloop::Result<data::Dataset> Film(const data::Dataset& scenes, const std::string& camera,
                                     const data::InputSpec& spec, uint64_t seed) {
  std::optional<cli::demo::CameraDomain> cam;
  if (camera == "clean") cam = cli::demo::CleanCamera();
  for (const auto& d : cli::demo::CameraDomains())
    if (d.name == camera) cam = d;
  if (!cam) return Error(Errc::kInvalidArgument, "--camera " + camera + ": no such camera");
  data::Dataset out;
  out.class_names = scenes.class_names;
  out.y = scenes.y;
  out.source = "camera:" + camera + ":" + scenes.source;
  out.sample_shape = {spec.channels, spec.height, spec.width};
  for (size_t i = 0; i < scenes.size(); ++i) {
    auto frame = cli::demo::RenderFrame(scenes, i, *cam, seed);
    EDGELOOP_ASSIGN_OR_RETURN(std::string jpeg, data::EncodeJpeg(frame, cam->jpeg_quality));
    EDGELOOP_ASSIGN_OR_RETURN(data::Image img, data::DecodeImage(jpeg, "frame"));
    EDGELOOP_ASSIGN_OR_RETURN(std::vector<float> x, data::Preprocess(img, spec));
    out.x.insert(out.x.end(), x.begin(), x.end());
  }
  out.hash = data::ComputeHash(out);
  return out;
}

}  // namespace

using namespace edgeloop;

int main(int argc, char** argv) {
  CLI::App app{"Fine-tune strategies against training from scratch on a shifted domain"};
  std::string parent_dir, corrupt = "contrast", camera, scratch_dir,
                          out = "bench/results/transfer.json";
  int severity = 4, k = 2, epochs = 20, patience = 5;
  int64_t min_epoch_samples = 2048;
  double lr = 1e-3, backbone_lr_scale = 0.1;
  std::vector<int> sizes = {10, 50, 100, 500};
  uint64_t seed = 0;
  app.add_option("--parent", parent_dir, "base model directory or ONNX file")->required();
  app.add_option("--camera", camera, "shift by this demo camera instead of a corruption");
  app.add_option("--scratch-model", scratch_dir,
                 "model directory whose architecture is trained from scratch (default: the "
                 "parent's; required for an ONNX parent)");
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
  int test_images = 0;
  app.add_option("--test-images", test_images,
                 "use this many of the test images, stratified (0 = all; for short runs)")
      ->capture_default_str();
  app.add_option("--out", out)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  // A stratified subset of the test images, before any shift, for shortened runs.
  auto limit = [&](data::Dataset d) {
    if (test_images <= 0 || d.class_names.empty()) return d;
    return data::SamplePerClass(d, test_images / static_cast<int>(d.class_names.size()), seed);
  };

  auto parent = ml::LoadOrImportModel(parent_dir);
  if (!parent.ok()) {
    std::fprintf(stderr, "%s\n", parent.error().message.c_str());
    return 3;
  }
  const bool imported = parent->info.spec.arch == "onnx";
  if (imported && scratch_dir.empty()) {
    std::fprintf(stderr,
                 "an ONNX parent needs --scratch-model DIR: the architecture to train "
                 "from scratch\n");
    return 2;
  }
  std::optional<ml::LoadedModel> scratch_like;
  if (!scratch_dir.empty()) {
    auto s = ml::LoadModel(scratch_dir);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.error().message.c_str());
      return 3;
    }
    scratch_like.emplace(std::move(*s));
  }
  const ml::LoadedModel& arch_of_scratch = scratch_like ? *scratch_like : *parent;
  auto input = parent->info.ImageInputSpec();
  auto grey_test = data::LoadDataset("fashion-mnist:test");
  if (grey_test.ok()) *grey_test = limit(std::move(*grey_test));
  if (!grey_test.ok() || !input) {
    std::fprintf(stderr, "cannot load the test set, or the parent takes no images\n");
    return 3;
  }
  data::Dataset shifted, clean_set;
  std::string domain;
  if (!camera.empty()) {
    auto filmed = Film(*grey_test, camera, *input, seed + 100);
    auto clean = Film(*grey_test, "clean", *input, seed + 100);
    if (!filmed.ok() || !clean.ok()) {
      std::fprintf(stderr, "%s\n", (!filmed.ok() ? filmed.error() : clean.error()).message.c_str());
      return 3;
    }
    shifted = std::move(*filmed);
    clean_set = std::move(*clean);
    domain = "camera " + camera;
  } else {
    auto c = data::ParseCorruption(corrupt);
    auto test = data::LoadDataset("fashion-mnist:test", &*input);
    if (!c || !test.ok()) {
      std::fprintf(stderr, "unknown corruption %s, or the test set does not load\n",
                   corrupt.c_str());
      return 3;
    }
    *test = limit(std::move(*test));
    shifted = data::Corrupt(*test, *c, severity, seed + 100);
    clean_set = *test;
    domain = corrupt + " severity " + std::to_string(severity);
  }
  auto halves = data::SplitDataset(shifted, 0.0, 0.5, seed);
  const data::Dataset& pool = halves.train;
  const data::Dataset& eval = halves.test;

  auto base_metrics = ml::EvaluateMetrics(*parent, eval);
  auto clean_metrics =
      ml::EvaluateMetrics(*parent, data::SplitDataset(clean_set, 0.0, 0.5, seed).test);
  if (!base_metrics.ok() || !clean_metrics.ok()) {
    std::fprintf(
        stderr, "%s\n",
        (!base_metrics.ok() ? base_metrics.error() : clean_metrics.error()).message.c_str());
    return 1;
  }
  std::printf("parent %s (%s); domain: %s; base model accuracy: clean %.4f, shifted %.4f\n",
              parent_dir.c_str(), imported ? "imported ONNX" : "model directory", domain.c_str(),
              clean_metrics->accuracy, base_metrics->accuracy);

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
        ml::LoadedModel m{arch_of_scratch.info, ml::Classifier(arch_of_scratch.info.spec)};
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

  std::printf("\nshifted domain: %s; evaluation on %zu held-out shifted images\n", domain.c_str(),
              eval.size());
  std::printf("base model, no adaptation: %.4f (clean: %.4f)\n\n", base_metrics->accuracy,
              clean_metrics->accuracy);
  std::printf("| labelled/class | head | last-%d | full | scratch |\n|---|---|---|---|---|\n", k);
  for (size_t i = 0; i < rows.size(); i += 4) {
    std::printf("| %d |", rows[i].n);
    for (size_t j = i; j < i + 4; ++j)
      std::printf(" %.4f (%.1fs) |", rows[j].accuracy, rows[j].seconds);
    std::printf("\n");
  }
  bench::WriteJson(
      out,
      {{"benchmark", "transfer"},
       {"machine", bench::MachineInfo()},
       {"domain", camera.empty() ? nlohmann::json{{"corruption", corrupt}, {"severity", severity}}
                                 : nlohmann::json{{"camera", camera}}},
       {"parent", parent_dir},
       {"parent_imported_onnx", imported},
       {"scratch_architecture", arch_of_scratch.info.spec.ToJson()},
       {"parent_hash", parent->info.ModelHash()},
       {"base_accuracy_shifted", base_metrics->accuracy},
       {"base_accuracy_clean", clean_metrics->accuracy},
       {"eval_samples", eval.size()},
       {"last_k", k},
       {"rows", jrows}});
  return 0;
}
