// Classification metrics from labels and predicted probabilities: accuracy, per-class and
// macro precision/recall/F1, confusion matrix, expected calibration error. Plain C++, so the
// cloud (libtorch) and the edge runtime report numbers computed the same way.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgeloop::data {

struct ClassMetrics {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

struct ClassificationMetrics {
  int64_t samples = 0;
  double accuracy = 0;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double ece = 0;  // expected calibration error, 15 equal-width confidence bins
  std::vector<ClassMetrics> per_class;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]

  nlohmann::json ToJson(const std::vector<std::string>& class_names) const;
};

// labels: n true classes in [0, k); probs: n*k row-major probabilities (rows sum to ~1).
// Samples with label < 0 (unlabelled) are skipped.
ClassificationMetrics ComputeMetrics(const std::vector<int32_t>& labels,
                                     const std::vector<float>& probs, int num_classes,
                                     int calibration_bins = 15);

// A fixed-width text table of the metrics (overall, then per class, then the confusion matrix).
std::string FormatMetricsTable(const ClassificationMetrics& m,
                               const std::vector<std::string>& class_names);

}  // namespace edgeloop::data
