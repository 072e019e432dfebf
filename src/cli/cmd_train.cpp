// edgeloop train: a model from scratch.
#include <cmath>
#include <cstdio>
#include <optional>

#include "cli/command.hpp"
#include "cli/data_options.hpp"
#include "cli/distributed_options.hpp"
#include "common/worker_protocol.hpp"
#include "ml/lineage.hpp"
#include "ml/model_store.hpp"
#include "ml/train.hpp"

namespace edgeloop::cli {
namespace {

struct TrainArgs {
  DataOptions data;
  std::string out, name = "model", version = "1", arch, checkpoint_dir;
  std::vector<int64_t> widths;
  int64_t embed = 128;
  std::optional<double> width_mult;  // mobilenet_v2, resnet
  std::optional<int64_t> depth;      // resnet
  double val_fraction = 0.1, dropout = 0.2;
  bool json = false;
  ml::TrainOptions train;
  DistributedOptions dist;
  RequestOption request;
};

// --request, when given: a pipeline's step, the request's settings in place of the flags.
int FromRequest(TrainArgs& a) {
  if (int rc = a.request.Check(); rc != 0 || !a.request.given()) return rc;
  auto r = worker::ReadRequest(a.request.path, worker::ParseTrainRequest);
  if (!r.ok()) return RequestError("train", r.error());
  const worker::TrainingSettings& t = r->training;
  a.name = r->name;
  a.data.spec = t.data;
  a.out = t.out;
  a.train.epochs = static_cast<int>(t.epochs);
  a.train.batch_size = static_cast<int>(t.batch_size);
  a.train.lr = t.lr;
  a.train.patience = static_cast<int>(t.patience);
  a.train.seed = t.seed;
  a.train.threads = static_cast<int>(t.threads);
  // The ranks --nproc starts get the request and --rendezvous: they do not start more.
  if (a.dist.rendezvous.empty() && a.dist.nproc == 1) a.dist.nproc = static_cast<int>(t.nproc);
  return 0;
}

// Per-channel (images) or per-feature mean and std of the training data.
void Normalization(const data::Dataset& d, ml::ModelSpec& spec) {
  size_t groups = static_cast<size_t>(d.sample_shape[0]);
  size_t per = d.sample_numel() / groups;
  std::vector<double> sum(groups, 0), sq(groups, 0);
  for (size_t i = 0; i < d.size(); ++i) {
    const float* s = d.sample(i);
    for (size_t g = 0; g < groups; ++g) {
      if (d.is_image()) {
        for (size_t j = 0; j < per; ++j) {
          double v = s[g * per + j];
          sum[g] += v;
          sq[g] += v * v;
        }
      } else {
        sum[g] += s[g];
        sq[g] += static_cast<double>(s[g]) * s[g];
      }
    }
  }
  double n = static_cast<double>(d.size()) * static_cast<double>(d.is_image() ? per : 1);
  spec.input_mean.clear();
  spec.input_std.clear();
  for (size_t g = 0; g < groups; ++g) {
    double mean = sum[g] / n;
    double var = std::max(0.0, sq[g] / n - mean * mean);
    spec.input_mean.push_back(static_cast<float>(mean));
    spec.input_std.push_back(static_cast<float>(var > 1e-12 ? std::sqrt(var) : 1.0));
  }
}

// One rank's run (the only one without a group). Only rank 0 prints and writes the model.
Status TrainRank(TrainArgs& a, ml::DistributedGroup* group) {
  const bool lead = !group || group->rank() == 0;
  a.train.group = group;
  auto loaded = a.data.Load();
  if (!loaded.ok()) return loaded.error();
  data::Dataset& d = *loaded;
  auto split = data::SplitDataset(d, a.val_fraction, 0.0, a.train.seed);

  ml::ModelSpec spec;
  spec.arch = a.arch.empty() ? (d.is_image() ? "cnn" : "mlp") : a.arch;
  spec.input_shape = d.sample_shape;
  spec.num_classes = static_cast<int64_t>(d.class_names.size());
  if (!a.widths.empty())
    spec.widths = a.widths;
  else if (spec.arch == "mlp")
    spec.widths = {128, 64};
  spec.embed = a.embed;
  spec.dropout = a.dropout;
  if (a.width_mult && spec.arch != "mobilenet_v2" && spec.arch != "resnet")
    return Error(Errc::kInvalidArgument,
                 "--width-mult applies to mobilenet_v2 and resnet, not " + spec.arch);
  if (a.depth && spec.arch != "resnet")
    return Error(Errc::kInvalidArgument, "--depth applies to resnet, not " + spec.arch);
  spec.width_mult = a.width_mult.value_or(spec.width_mult);
  spec.depth = a.depth.value_or(spec.depth);
  Normalization(split.train, spec);
  if (auto st = spec.Validate(); !st.ok()) return st.error().WithContext(d.source);

  ml::SeedEverything(a.train.seed);
  ml::Classifier model(spec);
  if (lead)
    std::fprintf(stderr, "training %s on %s: %zu train / %zu val samples, %lld parameters%s\n",
                 spec.arch.c_str(), d.source.c_str(), split.train.size(), split.val.size(),
                 static_cast<long long>(ml::ParameterCount(model)),
                 group ? (", " + std::to_string(group->world_size()) + " ranks").c_str() : "");
  auto report = ml::Train(model, split.train, split.val, a.train);
  if (!report.ok()) return report.error();
  if (!lead) return Status::Ok();

  ml::ModelInfo info;
  info.name = a.name;
  info.version = a.version;
  info.spec = spec;
  info.class_names = d.class_names;
  // The flags' input spec, so that eval, infer and devices convert images as training did.
  if (auto input = a.data.input.Resolve(std::nullopt); input.ok() && *input)
    info.input_spec = **input;
  info.lineage = ml::TrainingLineage(d, "scratch", a.train);
  info.lineage.hyperparameters["val_fraction"] = a.val_fraction;
  info.metrics = {{"val_accuracy", report->best_val_accuracy}};
  info.training = report->ToJson();
  if (auto st = ml::SaveModel(a.out, info, model); !st.ok()) return st.error();
  if (a.json) {
    std::printf("%s\n",
                nlohmann::json({{"model", a.out}, {"training", report->ToJson()}}).dump(2).c_str());
  } else {
    std::printf("saved %s: best epoch %d of %zu, val accuracy %.4f, %.1fs, %.0f samples/s\n",
                a.out.c_str(), report->best_epoch, report->epochs.size(), report->best_val_accuracy,
                report->wall_seconds, report->samples_per_s);
  }
  return Status::Ok();
}

int Run(TrainArgs& a) {
  if (int rc = FromRequest(a); rc != 0) return rc;
  return a.dist.Run("train", a.train.batch_size,
                    [&](ml::DistributedGroup* g) { return TrainRank(a, g); });
}

}  // namespace

void RegisterTrain(CLI::App& root) {
  auto a = std::make_shared<TrainArgs>();
  auto* sub =
      root.add_subcommand("train",
                          "Train a model from scratch (cnn, mobilenet_v2 or resnet for images, mlp "
                          "for features)");
  a->data.AddTo(sub, "fashion-mnist:train");
  sub->add_option("--out", a->out, "model directory to write")->required();
  sub->add_option("--name", a->name, "model name")->capture_default_str();
  sub->add_option("--version", a->version, "model version")->capture_default_str();
  sub->add_option("--arch", a->arch,
                  "cnn, mlp, mobilenet_v2 or resnet (default: cnn for images, mlp for features)")
      ->check(CLI::IsMember({"cnn", "mlp", "mobilenet_v2", "resnet"}));
  sub->add_option("--widths", a->widths, "cnn: conv channels per block; mlp: hidden sizes");
  sub->add_option("--embed", a->embed, "cnn: width of the embedding layer")->capture_default_str();
  sub->add_option("--width-mult", a->width_mult,
                  "mobilenet_v2, resnet: channel width multiplier in [0.1, 4] (default 1)");
  sub->add_option("--depth", a->depth,
                  "resnet: weighted layers, 6n + 2: 8, 14, 20 (default), 26, ... 110");
  sub->add_option("--dropout", a->dropout)->capture_default_str();
  sub->add_option("--epochs", a->train.epochs)->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--batch-size", a->train.batch_size,
                  "the global batch: with several ranks each takes batch-size / ranks per step")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--lr", a->train.lr, "learning rate (AdamW, cosine decay)")
      ->capture_default_str();
  sub->add_option("--weight-decay", a->train.weight_decay)->capture_default_str();
  sub->add_option("--patience", a->train.patience, "early stopping: epochs without improvement")
      ->capture_default_str();
  sub->add_option("--min-epoch-samples", a->train.min_epoch_samples,
                  "an epoch covers at least this many samples (small sets are repeated)")
      ->capture_default_str();
  sub->add_option("--val-fraction", a->val_fraction, "held out for validation")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  sub->add_option("--seed", a->train.seed)->capture_default_str();
  sub->add_option("--threads", a->train.threads, "0 = all cores")->capture_default_str();
  sub->add_option("--checkpoint-dir", a->train.checkpoint_dir,
                  "write last.pt and best.pt every epoch");
  sub->add_flag("--json", a->json, "print the training report as JSON");
  a->dist.AddTo(sub);
  a->request.AddTo(sub);
  SetAction(sub, [a] { return Run(*a); });
}

}  // namespace edgeloop::cli
