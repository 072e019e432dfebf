#include "edge/drift.hpp"

#include <gtest/gtest.h>

#include <random>

namespace edgeloop::edge {
namespace {

std::vector<double> Normal(double mean, double sd, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(mean, sd);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

ReferenceProfile Reference() {
  ReferenceProfile p;
  p.features["mean"] = BuildFeatureProfile(Normal(0.3, 0.05, 5000, 1), 10);
  return p;
}

TEST(DriftTest, ProfileHasEqualFrequencyBinsAndRoundTripsThroughJson) {
  ReferenceProfile p = Reference();
  const auto& f = p.features.at("mean");
  ASSERT_EQ(f.proportions.size(), 10u);
  for (double v : f.proportions) EXPECT_NEAR(v, 0.1, 0.01);
  auto back = ReferenceProfile::FromJson(p.ToJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->features.at("mean").edges, f.edges);
}

TEST(DriftTest, RejectsMalformedProfiles) {
  EXPECT_FALSE(ReferenceProfile::FromJson("[]").ok());
  auto r =
      ReferenceProfile::FromJson(R"({"features":{"c":{"edges":[0,1,2],"proportions":[0.5,0.2]}}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("sum"), std::string::npos);
}

DriftScore ScoreLive(double mean, uint64_t seed) {
  DriftMonitor m(Reference(), DriftConfig{});
  for (double v : Normal(mean, 0.05, 1000, seed)) m.Add("mean", v);
  return m.Scores().at("mean");
}

TEST(DriftTest, SameDistributionScoresLowShiftedScoresHigh) {
  DriftScore s = ScoreLive(0.3, 2);
  EXPECT_LT(s.psi, 0.05);
  EXPECT_LT(s.ks, 0.06);
  EXPECT_FALSE(s.alarm);
  DriftScore d = ScoreLive(0.4, 3);
  EXPECT_GT(d.psi, 1.0);
  EXPECT_GT(d.ks, 0.5);
  EXPECT_TRUE(d.alarm);
}

TEST(DriftTest, NoScoreBeforeMinSamples) {
  DriftMonitor m(Reference(), DriftConfig{});
  for (int i = 0; i < 50; ++i) m.Add("mean", 0.9);
  EXPECT_TRUE(m.Scores().empty());
}

// Two bins of 0.5 each; a live share p in the upper bin gives PSI 0.416 at p = 0.8, 0.169 at
// p = 0.7 (between clear 0.1 and raise 0.25) and 0 at p = 0.5.
void Feed(DriftMonitor& m, int upper_of_100) {
  for (int i = 0; i < 100; ++i) m.Add("c", i < upper_of_100 ? 0.75 : 0.25);
}

TEST(DriftTest, AlarmHasHysteresis) {
  ReferenceProfile p;
  p.features["c"] = FeatureProfile{{0.0, 0.5, 1.0}, {0.5, 0.5}};
  DriftConfig cfg;
  cfg.window = 100;
  cfg.min_samples = 100;
  DriftMonitor m(p, cfg);
  Feed(m, 70);
  EXPECT_NEAR(m.Scores().at("c").psi, 0.169, 0.001);
  EXPECT_FALSE(m.Scores().at("c").alarm);  // below the raise threshold from the start
  Feed(m, 80);
  EXPECT_TRUE(m.Scores().at("c").alarm);
  Feed(m, 70);
  EXPECT_TRUE(m.Scores().at("c").alarm);  // same score as before, but now it stays raised
  Feed(m, 50);
  EXPECT_FALSE(m.Scores().at("c").alarm);
  EXPECT_FALSE(m.AnyAlarm());
}


TEST(DriftTest, NoNoiseAlarmsAfterRebaseliningOnAStationaryInput) {
  // The demo's settings: a reference re-learned from one window after a model update, then
  // scored on windows of as few as min_samples values. Its PSI noise alone (about
  // (bins-1) * (1/live + 1/reference)) used to cross the raise threshold now and then.
  DriftConfig cfg;
  cfg.window = 300;
  cfg.min_samples = 100;
  int alarms = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    DriftMonitor m(Reference(), cfg);
    m.Rebaseline(cfg.window);
    auto values = Normal(0.4, 0.07, 3000, 100 + seed);
    for (size_t i = 0; i < values.size(); ++i) {
      m.Add("mean", values[i]);
      if (i % 25 == 0 && !m.Scores().empty() && m.AnyAlarm()) ++alarms;
    }
  }
  EXPECT_EQ(alarms, 0);
}

TEST(DriftTest, RebaselinedMonitorStillAlarmsOnARealShift) {
  DriftConfig cfg;
  cfg.window = 300;
  cfg.min_samples = 100;
  DriftMonitor m(Reference(), cfg);
  m.Rebaseline(cfg.window);
  for (double v : Normal(0.4, 0.07, 300, 7)) m.Add("mean", v);  // learned
  for (double v : Normal(0.6, 0.07, 300, 8)) m.Add("mean", v);  // shifted by three sd
  EXPECT_FALSE(m.Scores().empty());
  EXPECT_TRUE(m.AnyAlarm());
}

}  // namespace
}  // namespace edgeloop::edge
