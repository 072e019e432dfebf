#include "edge/sources.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "edge/test_util.hpp"

namespace edgeloop::edge {
namespace {

using std::chrono::milliseconds;
using testing::ScratchDir;

data::Dataset SmallImages() {
  data::Dataset d;
  d.sample_shape = {1, 4, 4};
  for (int i = 0; i < 6; ++i) {
    for (int p = 0; p < 16; ++p) d.x.push_back(static_cast<float>((i * 16 + p) % 255) / 255.0f);
    d.y.push_back(i % 3);
  }
  d.class_names = {"a", "b", "c"};
  return d;
}

void WritePng(const std::string& path, int w, int h, unsigned char value) {
  Sample s;
  s.shape = {1, h, w};
  s.data.assign(static_cast<size_t>(w * h), static_cast<float>(value) / 255.0f);
  ASSERT_TRUE(WritePngSample(path, s).ok());
}

TEST(ReplaySourceTest, ReplaysEverySampleWithLabelsThenEnds) {
  ReplaySource src(SmallImages(), ReplayOptions{});
  std::vector<int32_t> labels;
  for (;;) {
    auto s = src.Next(milliseconds(10));
    ASSERT_TRUE(s.ok());
    if (!*s) break;
    EXPECT_EQ((*s)->shape, (std::vector<int64_t>{1, 4, 4}));
    EXPECT_EQ((*s)->data.size(), 16u);
    labels.push_back(*(*s)->label);
  }
  EXPECT_EQ(labels, (std::vector<int32_t>{0, 1, 2, 0, 1, 2}));
}

TEST(ReplaySourceTest, AppliesTheDeviceCorruption) {
  ReplayOptions opt;
  opt.corruption = data::Corruption::kBrightness;
  opt.severity = 5;
  ReplaySource clean(SmallImages(), ReplayOptions{});
  ReplaySource bright(SmallImages(), opt);
  auto a = clean.Next(milliseconds(0));
  auto b = bright.Next(milliseconds(0));
  ASSERT_TRUE(a.ok() && b.ok() && *a && *b);
  EXPECT_NE((*a)->data, (*b)->data);
}

// Every sample of a replay, in order (the source must not loop).
std::vector<std::vector<float>> ReplayAll(ReplaySource& src) {
  std::vector<std::vector<float>> out;
  for (;;) {
    auto s = src.Next(milliseconds(0));
    EXPECT_TRUE(s.ok());
    if (!s.ok() || !*s) return out;
    out.push_back((*s)->data);
  }
}

TEST(ReplaySourceTest, HoldsPixelImagesAsBytesAndReplaysExactlyTheCorruptedDataset) {
  for (auto c : {data::Corruption::kGaussianNoise, data::Corruption::kRotation,
                 data::Corruption::kOcclusion}) {
    ReplayOptions opt;
    opt.corruption = c;
    opt.severity = 4;
    opt.seed = 7;
    ReplaySource src(SmallImages(), opt);
    EXPECT_EQ(src.HeldBytes(), 6u * 16u);  // one byte a pixel, not four
    EXPECT_NE(src.Describe().find(data::CorruptionName(c)), std::string::npos);
    data::Dataset want = data::Corrupt(SmallImages(), c, 4, 7);
    auto got = ReplayAll(src);
    ASSERT_EQ(got.size(), 6u);
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_EQ(got[i], std::vector<float>(want.sample(i), want.sample(i) + 16))
          << data::CorruptionName(c) << " sample " << i;
  }
  // Values that are not bytes (a feature vector or a preprocessed image) stay floats.
  data::Dataset fine = SmallImages();
  fine.x[5] = 0.1234f;
  ReplayOptions opt;
  opt.corruption = data::Corruption::kBlur;
  ReplaySource src(fine, opt);
  EXPECT_EQ(src.HeldBytes(), 6u * 16u * sizeof(float));
  data::Dataset want = data::Corrupt(fine, data::Corruption::kBlur, opt.severity, opt.seed);
  auto got = ReplayAll(src);
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0], std::vector<float>(want.sample(0), want.sample(0) + 16));
}

TEST(ReplaySourceTest, PacedSourceReturnsNothingBeforeTheNextSampleIsDue) {
  ReplayOptions opt;
  opt.rate_hz = 0.5;  // one sample every two seconds
  opt.loop = true;
  ReplaySource src(SmallImages(), opt);
  auto first = src.Next(milliseconds(0));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->has_value());
  auto second = src.Next(milliseconds(0));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->has_value());
}

TEST(ReplaySourceTest, OpenReportsABadSpec) {
  auto r = ReplaySource::Open("csv:/nonexistent/file.csv", ReplayOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/file.csv"), std::string::npos);
}

TEST(WatchedDirectorySourceTest, PicksUpNewPngAndCsvFiles) {
  ScratchDir dir("watch");
  WatchedDirectorySource src(dir.path(), /*delete_after_read=*/false, milliseconds(5));
  auto none = src.Next(milliseconds(20));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  WritePng(dir / "a.png", 3, 2, 255);
  std::ofstream(dir / "b.csv") << "f0,f1,label\n0.5,1.5,1\n2,3,0\n";
  std::ofstream(dir / "ignored.txt") << "x";
  auto png = src.Next(milliseconds(100));
  ASSERT_TRUE(png.ok() && png->has_value()) << (png.ok() ? "" : png.error().message);
  EXPECT_EQ((*png)->id, "a.png");
  EXPECT_EQ((*png)->shape, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_FLOAT_EQ((*png)->data[0], 1.0f);
  auto row0 = src.Next(milliseconds(100));
  auto row1 = src.Next(milliseconds(100));
  ASSERT_TRUE(row0.ok() && row0->has_value() && row1.ok() && row1->has_value());
  EXPECT_EQ((*row0)->data, (std::vector<float>{0.5f, 1.5f}));
  EXPECT_EQ((*row1)->id, "b.csv#1");
  auto again = src.Next(milliseconds(20));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());  // each file once
  EXPECT_TRUE(std::filesystem::exists(dir / "a.png"));
}

TEST(WatchedDirectorySourceTest, DeletesFilesAfterReadingWhenAsked) {
  ScratchDir dir("watch");
  WatchedDirectorySource src(dir.path(), /*delete_after_read=*/true, milliseconds(5));
  WritePng(dir / "c.png", 2, 2, 0);
  auto s = src.Next(milliseconds(100));
  ASSERT_TRUE(s.ok() && s->has_value());
  EXPECT_FALSE(std::filesystem::exists(dir / "c.png"));
}

TEST(JsonLinesSourceTest, ReadsSamplesAndRejectsBadLinesWithTheLineNumber) {
  std::istringstream in(
      "{\"id\":\"s1\",\"shape\":[2],\"data\":[0.1,0.2],\"label\":4}\n"
      "\n"
      "{\"shape\":[1,2],\"data\":[1,2]}\n"
      "{\"shape\":[3],\"data\":[1,2]}\n");
  JsonLinesSource src(in);
  auto a = src.Next(milliseconds(0));
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->id, "s1");
  EXPECT_EQ(*(*a)->label, 4);
  auto b = src.Next(milliseconds(0));
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->id, "stdin-3");
  EXPECT_FALSE((*b)->label.has_value());
  auto c = src.Next(milliseconds(0));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("line 4"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("shape says 3"), std::string::npos);
  auto end = src.Next(milliseconds(0));
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

TEST(JsonLinesSourceTest, RefusesOverlongLines) {
  std::istringstream in(std::string(100, 'x') + "\n{\"shape\":[1],\"data\":[1]}\n");
  JsonLinesSource src(in, 50);
  auto a = src.Next(milliseconds(0));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, Errc::kResourceExhausted);
  auto b = src.Next(milliseconds(0));
  ASSERT_TRUE(b.ok() && b->has_value());  // the stream carries on after the bad line
}

}  // namespace
}  // namespace edgeloop::edge
