// Evaluation of a trained model: classification metrics on a dataset and the robustness
// suite (every corruption at every severity, plus the mean corruption accuracy).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "data/corruptions.hpp"
#include "data/dataset.hpp"
#include "data/metrics.hpp"
#include "ml/model_store.hpp"

namespace edgeloop::ml {

Result<data::ClassificationMetrics> EvaluateMetrics(LoadedModel& model, const data::Dataset& d);

struct RobustnessResult {
  // accuracy[corruption][severity-1]
  std::vector<data::Corruption> corruptions;
  std::vector<int> severities;
  std::vector<std::vector<double>> accuracy;
  double clean_accuracy = 0;
  double mean_corruption_accuracy = 0;  // mean over all corruptions and severities
  nlohmann::json ToJson() const;
  std::string Table() const;
};

Result<RobustnessResult> EvaluateRobustness(LoadedModel& model, const data::Dataset& d,
                                            const std::vector<data::Corruption>& corruptions,
                                            const std::vector<int>& severities, uint64_t seed);

}  // namespace edgeloop::ml
