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
#include "data/robustness.hpp"
#include "ml/model_store.hpp"

namespace edgeloop::ml {

Result<data::ClassificationMetrics> EvaluateMetrics(LoadedModel& model, const data::Dataset& d);

// The suite itself is data::RunRobustnessSuite; this runs it with libtorch.
using RobustnessResult = data::RobustnessResult;

Result<RobustnessResult> EvaluateRobustness(LoadedModel& model, const data::Dataset& d,
                                            const std::vector<data::Corruption>& corruptions,
                                            const std::vector<int>& severities, uint64_t seed);

}  // namespace edgeloop::ml
