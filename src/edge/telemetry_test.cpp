#include "edge/telemetry.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace edgeloop::edge {
namespace {

TEST(HistogramTest, CountsIntoBinsAndEstimatesQuantiles) {
  Histogram h({1, 2, 3});
  for (double v : {0.5, 1.0, 1.5, 2.5, 2.9, 7.0}) h.Add(v);
  EXPECT_EQ(h.counts(), (std::vector<uint64_t>{1, 2, 2, 1}));
  EXPECT_EQ(h.total(), 6u);
  EXPECT_DOUBLE_EQ(h.Quantile(0.5), 2.0);    // 3 of 6 below 2
  EXPECT_DOUBLE_EQ(h.Quantile(0.75), 2.75);  // three quarters into [2, 3)
  EXPECT_DOUBLE_EQ(h.Quantile(0.0), 0.0);
  EXPECT_DOUBLE_EQ(h.Quantile(1.0), 3.0);  // the open top bin: its lower edge
}

TEST(TelemetryTest, SnapshotReportsWhatWasRecordedAndResetsThePeriod) {
  Telemetry t;
  t.SetModelVersion("4");
  t.SetSpool(12, 3400, 2);
  t.RecordInference(3.0, 0.95, 0.2, 0.1, true);
  t.RecordInference(4.0, 0.55, 0.4, 0.3, false);
  t.RecordInference(4.0, 0.97, 0.3, 0.2, std::nullopt);
  t.SetDrift({{"confidence", DriftScore{0.3, 0.2, 500, true}}});
  auto j = nlohmann::json::parse(t.SnapshotJson(1000));
  EXPECT_EQ(j["model_version"], "4");
  EXPECT_EQ(j["n"], 3);
  EXPECT_EQ(j["labelled"], 2);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 0.5);
  EXPECT_NEAR(j["input"]["mean"].get<double>(), 0.3, 1e-9);
  EXPECT_EQ(j["input"]["mean_min"], 0.2);
  EXPECT_EQ(j["spool"]["dropped"], 2);
  EXPECT_EQ(j["drift"]["confidence"]["alarm"], true);
  uint64_t conf_total = 0;
  for (auto c : j["confidence"]["counts"]) conf_total += c.get<uint64_t>();
  EXPECT_EQ(conf_total, 3u);
  EXPECT_GT(j["rss_kb"].get<uint64_t>(), 0u);
  EXPECT_LT(j.dump().size(), 1500u);  // compact enough to send every period

  auto next = nlohmann::json::parse(t.SnapshotJson(1060));
  EXPECT_EQ(next["n"], 0);
  EXPECT_EQ(next["n_total"], 3);
  EXPECT_FALSE(next.contains("accuracy"));
  EXPECT_EQ(next["model_version"], "4");
}

TEST(TelemetryTest, ANewModelStartsANewPeriod) {
  // A period that names a model holds only that model's inferences: a rollout judges the
  // new model on it, not on what the previous model did before the swap.
  Telemetry t;
  t.SetModelVersion("m:1");
  t.RecordInference(2.0, 0.9, 0.2, 0.1, true);
  t.RecordInference(2.0, 0.9, 0.2, 0.1, true);
  t.RecordError();
  t.SetModelVersion("m:1");  // the same model again: the period goes on
  t.RecordInference(2.0, 0.9, 0.2, 0.1, true);
  t.SetModelVersion("m:2");
  t.RecordInference(9.0, 0.4, 0.2, 0.1, false);
  auto j = nlohmann::json::parse(t.SnapshotJson(1000));
  EXPECT_EQ(j["model_version"], "m:2");
  EXPECT_EQ(j["n"], 1);
  EXPECT_EQ(j["n_total"], 4);  // lifetime counts are kept
  EXPECT_EQ(j["labelled"], 1);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 0.0);
  EXPECT_EQ(j["errors"], 0);
  uint64_t latency_total = 0;
  for (auto c : j["latency_ms"]["counts"]) latency_total += c.get<uint64_t>();
  EXPECT_EQ(latency_total, 1u);
}

TEST(TelemetryTest, ReadsProcessUsage) {
  volatile double x = 0;
  for (int i = 0; i < 20000000; ++i) x = x + i * 0.5;
  ProcessUsage u = ReadProcessUsage();
  EXPECT_GT(u.cpu_user_s + u.cpu_system_s, 0.0);
  EXPECT_GT(u.rss_kb, 100u);
  EXPECT_GE(u.peak_rss_kb, u.rss_kb);
}

}  // namespace
}  // namespace edgeloop::edge
