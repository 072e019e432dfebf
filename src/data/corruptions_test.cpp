#include "data/corruptions.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace edgeloop::data {
namespace {

// A garment-like image: a bright, textured, off-centre shape on a black background, so every
// corruption (including a black occluding square and a rotation) has something to damage.
Dataset MakeShapes(size_t n) {
  const int h = 28, w = 28;
  Dataset d;
  d.sample_shape = {1, h, w};
  d.class_names = {"a", "b"};
  for (size_t i = 0; i < n; ++i) {
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        bool inside = y >= 4 + static_cast<int>(i % 3) && y < 24 && x >= 6 &&
                      x < 20 + static_cast<int>(i % 4);
        float v =
            inside ? 0.55f + 0.35f * std::sin(0.7f * x + 0.3f * y + static_cast<float>(i)) : 0.0f;
        d.x.push_back(v);
      }
    d.y.push_back(static_cast<int32_t>(i % 2));
  }
  d.source = "test:shapes";
  d.hash = ComputeHash(d);
  return d;
}

double MeanAbsDiff(const Dataset& a, const Dataset& b) {
  double s = 0;
  for (size_t i = 0; i < a.x.size(); ++i) s += std::fabs(a.x[i] - b.x[i]);
  return s / static_cast<double>(a.x.size());
}

TEST(Corruptions, NamesRoundTrip) {
  EXPECT_EQ(AllCorruptions().size(), 6u);
  for (Corruption c : AllCorruptions()) EXPECT_EQ(ParseCorruption(CorruptionName(c)), c);
  EXPECT_EQ(CorruptionName(Corruption::kGaussianNoise), "gaussian_noise");
  EXPECT_FALSE(ParseCorruption("sepia").has_value());
}

TEST(Corruptions, ChangeTheImageAndStayInRange) {
  Dataset d = MakeShapes(8);
  for (Corruption c : AllCorruptions()) {
    for (int s = 1; s <= 5; ++s) {
      Dataset out = Corrupt(d, c, s, 1);
      ASSERT_EQ(out.x.size(), d.x.size());
      EXPECT_GT(MeanAbsDiff(d, out), 1e-3) << CorruptionName(c) << " severity " << s;
      for (float v : out.x) {
        ASSERT_GE(v, 0.0f) << CorruptionName(c);
        ASSERT_LE(v, 1.0f) << CorruptionName(c);
      }
      EXPECT_EQ(out.y, d.y);
      EXPECT_EQ(out.hash, ComputeHash(out));
      EXPECT_NE(out.hash, d.hash);
      EXPECT_NE(out.source.find(CorruptionName(c)), std::string::npos) << out.source;
    }
  }
}

TEST(Corruptions, AreDeterministicPerSeed) {
  Dataset d = MakeShapes(6);
  for (Corruption c : AllCorruptions()) {
    EXPECT_EQ(Corrupt(d, c, 3, 11).hash, Corrupt(d, c, 3, 11).hash) << CorruptionName(c);
  }
  // The random ones differ with another seed.
  for (Corruption c : {Corruption::kGaussianNoise, Corruption::kOcclusion}) {
    EXPECT_NE(Corrupt(d, c, 3, 11).hash, Corrupt(d, c, 3, 12).hash) << CorruptionName(c);
  }
}

TEST(Corruptions, HigherSeverityDoesMoreDamage) {
  Dataset d = MakeShapes(20);
  for (Corruption c : AllCorruptions()) {
    double prev = 0;
    for (int s = 1; s <= 5; ++s) {
      double diff = MeanAbsDiff(d, Corrupt(d, c, s, 5));
      EXPECT_GT(diff, prev) << CorruptionName(c) << " severity " << s;
      prev = diff;
    }
  }
}

TEST(Corruptions, HigherSeverityDoesMoreDamageOnFashionMnist) {
  auto loaded = LoadDataset("fashion-mnist:test");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  std::vector<size_t> idx;
  for (size_t i = 0; i < 200; ++i) idx.push_back(i * 37);
  Dataset d = loaded->Subset(idx);
  for (Corruption c : AllCorruptions()) {
    double prev = 0;
    for (int s = 1; s <= 5; ++s) {
      double diff = MeanAbsDiff(d, Corrupt(d, c, s, 9));
      EXPECT_GT(diff, prev) << CorruptionName(c) << " severity " << s;
      prev = diff;
    }
  }
}

TEST(Corruptions, ApplyCorruptionWorksOnOneMultiChannelImage) {
  std::vector<float> img(3 * 8 * 8, 0.5f);
  std::mt19937_64 rng(3);
  ApplyCorruption(Corruption::kOcclusion, 5, img.data(), 3, 8, 8, rng);
  // The square covers the same pixels in every channel.
  for (size_t p = 0; p < 64; ++p) {
    EXPECT_EQ(img[p], img[64 + p]);
    EXPECT_EQ(img[p], img[128 + p]);
  }
  size_t zeros = 0;
  for (float v : img) zeros += v == 0.0f;
  EXPECT_GT(zeros, 0u);
}

}  // namespace
}  // namespace edgeloop::data
