// The lineage of a model just trained: what every trainer (train, finetune, the benchmarks)
// records the same way.
#pragma once

#include <string>

#include "data/dataset.hpp"
#include "ml/model_store.hpp"
#include "ml/train.hpp"

namespace edgeloop::ml {

// Dataset hash, source and size; the strategy ("scratch", "head", ...); the training options
// as hyperparameters; code version, seed and the time now. Parent fields are left empty for
// the caller (a fine-tune) to fill.
Lineage TrainingLineage(const data::Dataset& trained_on, const std::string& strategy,
                        const TrainOptions& options);

}  // namespace edgeloop::ml
