#include "data/metrics.hpp"

#include <gtest/gtest.h>

namespace edgeloop::data {

// Three classes, six samples; expected values worked out by hand (and matching
// scikit-learn's precision_recall_fscore_support(average='macro')).
TEST(Metrics, PrecisionRecallF1AndConfusionMatchHandComputedValues) {
  std::vector<int32_t> labels = {0, 0, 1, 1, 2, 2};
  // predictions: 0, 1, 1, 1, 2, 0
  std::vector<float> probs = {0.9f, 0.05f, 0.05f, 0.2f, 0.7f, 0.1f, 0.1f, 0.8f, 0.1f,
                              0.3f, 0.6f,  0.1f,  0.1f, 0.1f, 0.8f, 0.5f, 0.2f, 0.3f};
  auto m = ComputeMetrics(labels, probs, 3);
  EXPECT_EQ(m.samples, 6);
  EXPECT_NEAR(m.accuracy, 4.0 / 6, 1e-12);
  EXPECT_EQ(m.confusion[0][0], 1);
  EXPECT_EQ(m.confusion[0][1], 1);
  EXPECT_EQ(m.confusion[2][0], 1);
  EXPECT_NEAR(m.per_class[0].precision, 0.5, 1e-12);
  EXPECT_NEAR(m.per_class[1].precision, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.per_class[1].recall, 1.0, 1e-12);
  EXPECT_NEAR(m.per_class[2].f1, 2 * 1.0 * 0.5 / 1.5, 1e-12);
  EXPECT_NEAR(m.macro_precision, (0.5 + 2.0 / 3 + 1.0) / 3, 1e-12);
  EXPECT_NEAR(m.macro_recall, (0.5 + 1.0 + 0.5) / 3, 1e-12);
}

TEST(Metrics, CalibrationErrorIsZeroForPerfectlyCalibratedAndLargeForOverconfident) {
  // Confidence 1.0 and always right: ECE 0.
  auto good = ComputeMetrics({0, 1}, {1.f, 0.f, 0.f, 1.f}, 2);
  EXPECT_NEAR(good.ece, 0.0, 1e-9);
  // Confidence 0.99 and always wrong: ECE 0.99.
  auto bad = ComputeMetrics({1, 0}, {0.99f, 0.01f, 0.01f, 0.99f}, 2);
  EXPECT_NEAR(bad.ece, 0.99, 1e-6);
}

TEST(Metrics, UnlabelledSamplesAreSkipped) {
  auto m = ComputeMetrics({-1, 0}, {0.f, 1.f, 1.f, 0.f}, 2);
  EXPECT_EQ(m.samples, 1);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
}

}  // namespace edgeloop::data
