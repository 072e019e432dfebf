// edgeloop finetune: transfer learning from a parent model.
#include <cstdio>
#include <sstream>

#include "cli/command.hpp"
#include "cli/data_options.hpp"
#include "cli/distributed_options.hpp"
#include "common/worker_protocol.hpp"
#include "ml/finetune.hpp"
#include "ml/onnx_import.hpp"

namespace edgeloop::cli {
namespace {

struct FinetuneArgs {
  DataOptions data;
  std::string parent, out, strategy = "head", version;
  double val_fraction = 0.2;
  bool json = false;
  ml::FinetuneOptions ft;
  ml::OnnxImportOptions onnx;  // a parent given as an ONNX file
  std::string class_names;     // comma-separated, for an ONNX parent
  DistributedOptions dist;
  RequestOption request;
};

// --request, when given: a pipeline's step, the request's settings in place of the flags.
int FromRequest(FinetuneArgs& a) {
  if (int rc = a.request.Check(); rc != 0 || !a.request.given()) return rc;
  auto r = worker::ReadRequest(a.request.path, worker::ParseFinetuneRequest);
  if (!r.ok()) return RequestError("finetune", r.error());
  const worker::TrainingSettings& t = r->training;
  a.parent = r->parent;
  a.strategy = r->strategy;
  a.ft.k = static_cast<int>(r->k);
  a.ft.backbone_lr_scale = r->backbone_lr_scale;
  a.ft.train.min_epoch_samples = r->min_epoch_samples;
  a.data.spec = t.data;
  a.out = t.out;
  a.ft.train.epochs = static_cast<int>(t.epochs);
  a.ft.train.batch_size = static_cast<int>(t.batch_size);
  a.ft.train.lr = t.lr;
  a.ft.train.patience = static_cast<int>(t.patience);
  a.ft.train.seed = t.seed;
  a.ft.train.threads = static_cast<int>(t.threads);
  // The ranks --nproc starts get the request and --rendezvous: they do not start more.
  if (a.dist.rendezvous.empty() && a.dist.nproc == 1) a.dist.nproc = static_cast<int>(t.nproc);
  return 0;
}

std::string NextVersion(const std::string& v) {
  try {
    return std::to_string(std::stoll(v) + 1);
  } catch (...) {
    return v + ".1";
  }
}

// One rank's run (the only one without a group). Only rank 0 prints and writes the model.
Status FinetuneRank(FinetuneArgs& a, ml::DistributedGroup* group) {
  const bool lead = !group || group->rank() == 0;
  a.ft.train.group = group;
  if (!a.class_names.empty()) {
    std::stringstream names(a.class_names);
    for (std::string name; std::getline(names, name, ',');) a.onnx.class_names.push_back(name);
  }
  auto parent = ml::LoadOrImportModel(a.parent, a.onnx);
  if (!parent.ok()) return parent.error();
  // The new data is converted to the parent's input spec, which the child keeps.
  auto loaded = a.data.Load(parent->info.ImageInputSpec());
  if (!loaded.ok()) return loaded.error();
  auto split = data::SplitDataset(*loaded, a.val_fraction, 0.0, a.ft.train.seed);
  if (lead)
    std::fprintf(stderr, "fine-tuning %s (%s) on %s: strategy %s, %zu train / %zu val samples%s\n",
                 parent->info.name.c_str(), a.parent.c_str(), loaded->source.c_str(),
                 a.strategy.c_str(), split.train.size(), split.val.size(),
                 group ? (", " + std::to_string(group->world_size()) + " ranks").c_str() : "");
  a.ft.train.label = "finetune";
  auto r = ml::Finetune(*parent, split.train, split.val, a.ft);
  if (!r.ok()) return r.error().WithContext(a.data.spec);
  if (!lead) return Status::Ok();
  // Lineage names the whole dataset the split came from.
  r->info.lineage.dataset_hash = loaded->hash;
  r->info.lineage.dataset_source = loaded->source;
  r->info.lineage.dataset_samples = static_cast<int64_t>(loaded->size());
  r->info.lineage.hyperparameters["val_fraction"] = a.val_fraction;
  if (auto input = a.data.input.Resolve(parent->info.ImageInputSpec()); input.ok())
    r->info.input_spec = *input;
  r->info.version = a.version.empty() ? NextVersion(parent->info.version) : a.version;
  if (auto st = ml::SaveModel(a.out, r->info, r->model); !st.ok()) return st.error();
  if (a.json) {
    std::printf("%s\n", nlohmann::json({{"model", a.out},
                                        {"fresh_head", r->fresh_head},
                                        {"added_classes", r->added_classes},
                                        {"class_names", r->info.class_names},
                                        {"training", r->report.ToJson()}})
                            .dump(2)
                            .c_str());
  } else {
    std::printf("saved %s (version %s%s): val accuracy %.4f, %zu epochs, %.1fs\n", a.out.c_str(),
                r->info.version.c_str(), r->fresh_head ? ", fresh head" : "",
                r->report.best_val_accuracy, r->report.epochs.size(), r->report.wall_seconds);
  }
  return Status::Ok();
}

int Run(FinetuneArgs& a) {
  if (int rc = FromRequest(a); rc != 0) return rc;
  auto strategy = ml::ParseStrategy(a.strategy);
  if (!strategy.ok()) return ReportError("finetune", strategy.error());
  a.ft.strategy = *strategy;
  return a.dist.Run("finetune", a.ft.train.batch_size,
                    [&](ml::DistributedGroup* g) { return FinetuneRank(a, g); });
}

}  // namespace

void RegisterFinetune(CLI::App& root) {
  auto a = std::make_shared<FinetuneArgs>();
  a->ft.train.epochs = 15;
  a->ft.train.patience = 4;
  a->ft.train.batch_size = 64;
  a->ft.train.min_epoch_samples = 2048;
  auto* sub =
      root.add_subcommand("finetune", "Fine-tune a parent model on new data (transfer learning)");
  sub->add_option("--parent", a->parent, "parent model: a model directory or an ONNX file")
      ->required();
  sub->add_option("--head-node", a->onnx.head_node,
                  "ONNX parent: the Gemm/MatMul node that is the classifier head (default: the "
                  "last one before the output)");
  sub->add_option("--class-names", a->class_names,
                  "ONNX parent: its class names, comma-separated (default: from edgeloop's "
                  "metadata, else 0..K-1)");
  a->data.AddTo(sub, "", true);
  sub->add_option("--out", a->out, "model directory to write")->required();
  sub->add_flag("--fresh-head", a->ft.fresh_head,
                "replace the parent's head with a fresh one for the data's classes (default: keep "
                "its rows for shared class names and add rows for new names)");
  sub->add_option(
         "--strategy", a->strategy,
         "head: backbone frozen; last-k: last k blocks + head; full: all, backbone at a lower lr")
      ->capture_default_str()
      ->check(CLI::IsMember({"head", "last-k", "full"}));
  sub->add_option("--k", a->ft.k, "blocks to unfreeze for last-k")->capture_default_str();
  sub->add_option("--backbone-lr-scale", a->ft.backbone_lr_scale, "full: backbone lr = lr * scale")
      ->capture_default_str();
  sub->add_option("--version", a->version, "version of the new model (default: parent's + 1)");
  sub->add_option("--epochs", a->ft.train.epochs)
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--batch-size", a->ft.train.batch_size,
                  "the global batch: with several ranks each takes batch-size / ranks per step")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--lr", a->ft.train.lr)->capture_default_str();
  sub->add_option("--patience", a->ft.train.patience)->capture_default_str();
  sub->add_option("--min-epoch-samples", a->ft.train.min_epoch_samples,
                  "an epoch covers at least this many samples (small sets are repeated)")
      ->capture_default_str();
  sub->add_option("--val-fraction", a->val_fraction)
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  sub->add_option("--seed", a->ft.train.seed)->capture_default_str();
  sub->add_option("--threads", a->ft.train.threads, "0 = all cores")->capture_default_str();
  sub->add_option("--checkpoint-dir", a->ft.train.checkpoint_dir);
  sub->add_flag("--json", a->json, "print the training report as JSON");
  a->dist.AddTo(sub);
  a->request.AddTo(sub);
  SetAction(sub, [a] { return Run(*a); });
}

}  // namespace edgeloop::cli
