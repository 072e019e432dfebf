#include "ml/finetune.hpp"

#include <algorithm>
#include <sstream>

#include "data/class_match.hpp"
#include "ml/lineage.hpp"

namespace edgeloop::ml {

Result<Strategy> ParseStrategy(const std::string& s) {
  if (s == "head") return Strategy::kHead;
  if (s == "last-k") return Strategy::kLastK;
  if (s == "full") return Strategy::kFull;
  return Error(Errc::kInvalidArgument, "unknown strategy '" + s + "' (head, last-k or full)");
}

std::string StrategyName(Strategy s) {
  switch (s) {
    case Strategy::kHead:
      return "head";
    case Strategy::kLastK:
      return "last-k";
    case Strategy::kFull:
      return "full";
  }
  return "?";
}

Result<size_t> ApplyStrategy(Classifier& model, Strategy strategy, int k) {
  size_t blocks = model->num_blocks();
  size_t frozen = 0;
  switch (strategy) {
    case Strategy::kHead:
      frozen = blocks;
      break;
    case Strategy::kFull:
      frozen = 0;
      break;
    case Strategy::kLastK:
      if (k < 1 || static_cast<size_t>(k) > blocks)
        return Error(Errc::kInvalidArgument, "--k must be between 1 and " + std::to_string(blocks) +
                                                 " (the backbone's blocks)");
      frozen = blocks - static_cast<size_t>(k);
      break;
  }
  for (auto& p : model->parameters()) p.set_requires_grad(true);
  for (size_t i = 0; i < frozen; ++i)
    for (auto& p : model->backbone()[i]->parameters()) p.set_requires_grad(false);
  return frozen;
}

namespace {

// A deep copy of a model through serialization (parameters and buffers).
Classifier CloneModel(const LoadedModel& parent) {
  Classifier copy(parent.info.spec);
  std::stringstream buf;
  torch::save(parent.model, buf);
  torch::load(copy, buf);
  return copy;
}

// The data's class names that the parent does not know, in the data's order. Bare
// indices ("0".."K-1", unnamed data) are the parent's own classes.
std::vector<std::string> NewClassNames(const std::vector<std::string>& parent,
                                       const std::vector<std::string>& data) {
  if ((data::AreBareIndices(data) && data.size() <= parent.size()) || data == parent) return {};
  std::vector<std::string> added;
  for (const auto& name : data)
    if (std::find(parent.begin(), parent.end(), name) == parent.end()) added.push_back(name);
  return added;
}

// A head with num_classes rows whose first rows are the current head's (the parent's
// classes keep what they learned); the rows for new classes start freshly initialized.
void GrowHead(Classifier& model, int64_t num_classes) {
  torch::Tensor w = model->head()->weight.detach().clone();
  torch::Tensor b = model->head()->bias.detach().clone();
  model->ResetHead(num_classes);
  torch::NoGradGuard no_grad;
  model->head()->weight.narrow(0, 0, w.size(0)).copy_(w);
  model->head()->bias.narrow(0, 0, b.size(0)).copy_(b);
}

}  // namespace

Result<FinetuneResult> Finetune(const LoadedModel& parent, const data::Dataset& train,
                                const data::Dataset& val, const FinetuneOptions& opt) {
  const auto& spec = parent.info.spec;
  if (train.sample_shape != spec.input_shape) {
    auto fmt = [](const std::vector<int64_t>& s) {
      std::string o;
      for (size_t i = 0; i < s.size(); ++i) o += (i ? "x" : "") + std::to_string(s[i]);
      return o;
    };
    return Error(Errc::kMismatch, "parent model '" + parent.info.name + "' takes inputs " +
                                      fmt(spec.input_shape) + " but the data's samples are " +
                                      fmt(train.sample_shape));
  }
  FinetuneResult out;
  SeedEverything(opt.train.seed);
  out.model = CloneModel(parent);
  std::vector<std::string> classes = parent.info.class_names;
  if (opt.fresh_head) {
    classes = train.class_names;
    out.model->ResetHead(static_cast<int64_t>(classes.size()));
    out.fresh_head = true;
  } else {
    out.added_classes = NewClassNames(parent.info.class_names, train.class_names);
    classes.insert(classes.end(), out.added_classes.begin(), out.added_classes.end());
    if (!out.added_classes.empty()) GrowHead(out.model, static_cast<int64_t>(classes.size()));
  }
  const std::string who = "parent model '" + parent.info.name + "'";
  EDGELOOP_ASSIGN_OR_RETURN(auto train_m, data::MatchClassesByName(train, classes, who));
  EDGELOOP_ASSIGN_OR_RETURN(auto val_m, data::MatchClassesByName(val, classes, who));
  EDGELOOP_ASSIGN_OR_RETURN(size_t frozen, ApplyStrategy(out.model, opt.strategy, opt.k));
  TrainOptions topt = opt.train;
  topt.backbone_lr_scale = opt.strategy == Strategy::kFull ? opt.backbone_lr_scale : 1.0;
  EDGELOOP_ASSIGN_OR_RETURN(out.report, Train(out.model, train_m.data, val_m.data, topt));
  for (auto& p : out.model->parameters()) p.set_requires_grad(true);

  out.info.name = parent.info.name;
  out.info.spec = out.model->spec();
  out.info.class_names = classes;
  out.info.lineage = TrainingLineage(train, StrategyName(opt.strategy), topt);
  out.info.lineage.parent_name = parent.info.name;
  out.info.lineage.parent_version = parent.info.version;
  out.info.lineage.parent_hash = parent.info.ModelHash();
  out.info.lineage.hyperparameters["frozen_blocks"] = frozen;
  out.info.lineage.hyperparameters["fresh_head"] = out.fresh_head;
  out.info.lineage.hyperparameters["added_classes"] = out.added_classes;
  if (opt.strategy == Strategy::kLastK) out.info.lineage.hyperparameters["k"] = opt.k;
  out.info.metrics = {{"val_accuracy", out.report.best_val_accuracy}};
  out.info.training = out.report.ToJson();
  return out;
}

}  // namespace edgeloop::ml
