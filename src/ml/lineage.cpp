#include "ml/lineage.hpp"

namespace edgeloop::ml {

Lineage TrainingLineage(const data::Dataset& trained_on, const std::string& strategy,
                        const TrainOptions& options) {
  Lineage l;
  l.dataset_hash = trained_on.hash;
  l.dataset_source = trained_on.source;
  l.dataset_samples = static_cast<int64_t>(trained_on.size());
  l.strategy = strategy;
  l.hyperparameters = options.ToJson();
  l.code_version = CodeVersion();
  l.seed = options.seed;
  l.created_at = NowIso8601();
  return l;
}

}  // namespace edgeloop::ml
