#include "edge/sampler.hpp"

#include <gtest/gtest.h>

namespace edgeloop::edge {
namespace {

const std::vector<float> kConfident = {0.97f, 0.01f, 0.01f, 0.01f};
const std::vector<float> kUnsure = {0.4f, 0.35f, 0.15f, 0.1f};

TEST(SamplerTest, AllPolicyUploadsEverything) {
  Sampler s({SamplingPolicy::kAll});
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(s.Decide(kConfident, false, 100, i).upload);
  EXPECT_EQ(s.stats().uploaded, 100u);
}

TEST(SamplerTest, UniformPolicyKeepsAboutTheRate) {
  SamplerConfig c;
  c.policy = SamplingPolicy::kUniform;
  c.rate = 0.25;
  Sampler s(c);
  int kept = 0;
  for (int i = 0; i < 10000; ++i) kept += s.Decide(kConfident, false, 10, i).upload;
  EXPECT_NEAR(kept / 10000.0, 0.25, 0.03);
}

TEST(SamplerTest, SwitchesToItsDriftPolicyOnlyWhileDrifting) {
  SamplerConfig c;
  c.policy = SamplingPolicy::kUncertainty;
  c.random_fraction = 0;  // confident samples are never picked by the usual policy
  c.on_drift = SamplingPolicy::kUniform;
  c.on_drift_rate = 0.3;
  Sampler s(c);
  int calm = 0, drifting = 0;
  for (int i = 0; i < 10000; ++i) calm += s.Decide(kConfident, false, 10, i, false).upload;
  for (int i = 0; i < 10000; ++i) {
    auto d = s.Decide(kConfident, false, 10, i, true);
    drifting += d.upload;
    if (d.upload) {
      EXPECT_STREQ(d.reason, "drift_uniform");
    }
  }
  EXPECT_EQ(calm, 0);
  EXPECT_NEAR(drifting / 10000.0, 0.3, 0.03);
  EXPECT_EQ(s.stats().seen_drifting, 10000u);
  // Without an on_drift policy the alarm changes nothing.
  c.on_drift.reset();
  Sampler plain(c);
  int kept = 0;
  for (int i = 0; i < 1000; ++i) kept += plain.Decide(kConfident, false, 10, i, true).upload;
  EXPECT_EQ(kept, 0);
}

TEST(SamplerTest, UncertaintyPolicyKeepsUnsureSamplesAndARandomFractionOfTheRest) {
  SamplerConfig c;
  c.policy = SamplingPolicy::kUncertainty;
  c.random_fraction = 0.1;
  Sampler s(c);
  for (int i = 0; i < 100; ++i) {
    auto d = s.Decide(kUnsure, false, 10, i);
    EXPECT_TRUE(d.upload);
    EXPECT_STREQ(d.reason, "low_confidence");
  }
  int kept = 0;
  for (int i = 0; i < 10000; ++i) kept += s.Decide(kConfident, false, 10, i).upload;
  EXPECT_NEAR(kept / 10000.0, 0.1, 0.02);
  // A confident-looking top class over many classes can still be high entropy.
  std::vector<float> flat(10, 0.06f);
  flat[0] = 0.46f;
  c.confidence_below = 0.3;
  c.random_fraction = 0;
  Sampler s2(c);
  EXPECT_STREQ(s2.Decide(flat, false, 10, 0).reason, "high_entropy");
  EXPECT_TRUE(s2.Decide(kConfident, true, 10, 0).upload);  // labelled
}

TEST(SamplerTest, BudgetCapsBytesPerSecond) {
  SamplerConfig c;
  c.policy = SamplingPolicy::kAll;
  c.budget_bytes_per_s = 1000;
  c.burst_bytes = 1000;
  Sampler s(c);
  // 100 samples of 100 bytes per second for 10 s: 10x over budget.
  for (int i = 0; i < 1000; ++i) s.Decide(kUnsure, false, 100, i * 0.01);
  EXPECT_LE(s.stats().uploaded_bytes, 1000u + 10 * 1000u);
  EXPECT_GE(s.stats().uploaded_bytes, 9 * 1000u);
  EXPECT_EQ(s.stats().over_budget + s.stats().uploaded, 1000u);
}

TEST(SamplerTest, ParsesPolicyNames) {
  EXPECT_TRUE(ParseSamplingPolicy("uncertainty").ok());
  auto bad = ParseSamplingPolicy("some");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("all, uniform, uncertainty"), std::string::npos);
}

}  // namespace
}  // namespace edgeloop::edge
