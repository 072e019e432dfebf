// The robustness suite: a classifier's accuracy on a dataset under every corruption at every
// severity, and the mean over all of them. Plain C++ over a prediction function, so libtorch
// (src/ml) and the edge runtime (edgeloop eval --model X.onnx) run the same suite on the same
// corrupted images and report it in one format.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "data/corruptions.hpp"
#include "data/dataset.hpp"

namespace edgeloop::data {

struct RobustnessResult {
  // accuracy[corruption][i]: the accuracy at severities[i]
  std::vector<Corruption> corruptions;
  std::vector<int> severities;
  std::vector<std::vector<double>> accuracy;
  double clean_accuracy = 0;
  double mean_corruption_accuracy = 0;  // mean over all corruptions and severities
  nlohmann::json ToJson() const;
  std::string Table() const;
};

// Class probabilities (or any scores whose argmax is the prediction) of every sample of a
// dataset, row-major [samples x classes].
using PredictFn = std::function<Result<std::vector<float>>(const Dataset&)>;

// Runs predict on d and on each corrupted copy (Corrupt(d, c, severity, seed)), with a
// progress bar. Errors: kUnsupported for non-image data, kInvalidArgument for an empty or
// unlabelled dataset or an empty suite, and whatever predict returns.
Result<RobustnessResult> RunRobustnessSuite(const Dataset& d,
                                            const std::vector<Corruption>& corruptions,
                                            const std::vector<int>& severities, uint64_t seed,
                                            const PredictFn& predict);

}  // namespace edgeloop::data
