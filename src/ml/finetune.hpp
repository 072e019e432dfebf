// Transfer learning from a parent model: which blocks train, at what learning rate, and a
// fresh head when the classes differ from the parent's.
#pragma once

#include <string>

#include "common/result.hpp"
#include "data/dataset.hpp"
#include "ml/model_store.hpp"
#include "ml/train.hpp"

namespace edgeloop::ml {

enum class Strategy {
  kHead,   // backbone frozen, head trained
  kLastK,  // last k backbone blocks and the head trained
  kFull,   // everything trained, backbone at a lower learning rate
};

Result<Strategy> ParseStrategy(const std::string& s);
std::string StrategyName(Strategy s);

struct FinetuneOptions {
  Strategy strategy = Strategy::kHead;
  int k = 1;                       // for kLastK
  double backbone_lr_scale = 0.1;  // for kFull
  // Replace the parent's head with a fresh one for the data's classes, instead of keeping
  // its rows for the class names both share and adding rows for new names.
  bool fresh_head = false;
  TrainOptions train;
};

struct FinetuneResult {
  ModelInfo info;  // lineage filled in; metrics from validation
  Classifier model{nullptr};
  TrainReport report;
  bool fresh_head = false;
  std::vector<std::string> added_classes;  // names the parent did not know, appended to its classes
};

// Fine-tunes a copy of `parent` on train (early stopping on val). The parent's input shape
// must fit the data's. Classes are matched by name (class-incremental): the model keeps the
// parent's classes in their order with their head rows, and names the parent does not know
// are appended with new rows; the data's labels are renumbered to that list. Data whose
// classes are the bare indices "0".."K-1" is taken in the parent's numbering. With
// options.fresh_head the head is replaced and the classes are the data's.
Result<FinetuneResult> Finetune(const LoadedModel& parent, const data::Dataset& train,
                                const data::Dataset& val, const FinetuneOptions& options);

// Marks which parameters train under the strategy (requires_grad) and returns how many
// backbone blocks were frozen.
Result<size_t> ApplyStrategy(Classifier& model, Strategy strategy, int k);

}  // namespace edgeloop::ml
