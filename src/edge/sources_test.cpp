#include "edge/sources.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/sample_record.hpp"
#include "data/test_images.hpp"
#include "edge/inference_loop.hpp"
#include "edge/test_util.hpp"
#include "edgeloop_wire.pb.h"

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

data::InputSpec RgbSpec(int h, int w, data::ResizeMode mode) {
  data::InputSpec spec = data::InputSpec::ForShape({3, h, w}).value();
  spec.resize = mode;
  return spec;
}

TEST(WatchedDirectorySourceTest, ReadsJpegAndPngFramesAtTheModelsInputSpec) {
  ScratchDir dir("watch");
  WatchedDirectorySource src(dir.path(), /*delete_after_read=*/false, milliseconds(5));
  src.SetInputSpec(RgbSpec(24, 32, data::ResizeMode::kCenterCrop));
  ASSERT_TRUE(data::testing::WriteJpeg(dir / "cam1.jpg", 64, 48, 3,
                                       data::testing::TestPixels(64, 48, 3)));
  ASSERT_TRUE(data::testing::WritePng(dir / "cam2.png", 10, 30, PNG_COLOR_TYPE_GRAY,
                                      data::testing::TestPixels(10, 30, 1)));
  for (const char* id : {"cam1.jpg", "cam2.png"}) {
    auto s = src.Next(milliseconds(100));
    ASSERT_TRUE(s.ok() && s->has_value()) << (s.ok() ? "" : s.error().message);
    EXPECT_EQ((*s)->id, id);
    EXPECT_EQ((*s)->shape, (std::vector<int64_t>{3, 24, 32}));
    EXPECT_EQ((*s)->data.size(), 3u * 24 * 32);
  }
  // Without a spec a frame keeps its own size and channels.
  src.SetInputSpec(std::nullopt);
  ASSERT_TRUE(data::testing::WriteJpeg(dir / "cam3.jpg", 20, 10, 3,
                                       data::testing::TestPixels(20, 10, 3)));
  auto own = src.Next(milliseconds(100));
  ASSERT_TRUE(own.ok() && own->has_value());
  EXPECT_EQ((*own)->shape, (std::vector<int64_t>{3, 10, 20}));
}

TEST(WatchedDirectorySourceTest, ABrokenFrameIsAnErrorNamingTheFile) {
  ScratchDir dir("watch");
  WatchedDirectorySource src(dir.path(), /*delete_after_read=*/false, milliseconds(5));
  std::string jpeg = data::testing::EncodeJpeg(32, 32, 3, data::testing::TestPixels(32, 32, 3));
  ASSERT_TRUE(data::testing::WriteBytes(dir / "cut.jpg", jpeg.substr(0, jpeg.size() / 2)));
  auto s = src.Next(milliseconds(50));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cut.jpg"), std::string::npos) << s.error().message;
  // Reported once: the frames after it still arrive.
  ASSERT_TRUE(data::testing::WriteBytes(dir / "next.jpg", jpeg));
  auto next = src.Next(milliseconds(100));
  ASSERT_TRUE(next.ok() && next->has_value()) << (next.ok() ? "" : next.error().message);
  EXPECT_EQ((*next)->id, "next.jpg");
}

// A camera frame's label travels in its file name, as an index of the model's classes.
TEST(WatchedDirectorySourceTest, LabelsFramesByTheirFileName) {
  ScratchDir dir("watch");
  WatchedDirectorySource src(dir.path(), /*delete_after_read=*/true, milliseconds(5));
  const std::string jpeg =
      data::testing::EncodeJpeg(16, 16, 3, data::testing::TestPixels(16, 16, 3));
  ASSERT_TRUE(data::testing::WriteBytes(dir / "f-000001.label-7.jpg", jpeg));
  ASSERT_TRUE(data::testing::WriteBytes(dir / "f-000002.jpg", jpeg));
  ASSERT_TRUE(data::testing::WriteBytes(dir / "f-000003.label-12.png.label-0.jpg", jpeg));
  auto a = src.Next(milliseconds(100));
  auto b = src.Next(milliseconds(100));
  auto c = src.Next(milliseconds(100));
  ASSERT_TRUE(a.ok() && a->has_value() && b.ok() && b->has_value() && c.ok() && c->has_value());
  ASSERT_TRUE((*a)->label.has_value());
  EXPECT_EQ(*(*a)->label, 7);
  EXPECT_FALSE((*b)->label.has_value());
  ASSERT_TRUE((*c)->label.has_value());
  EXPECT_EQ(*(*c)->label, 0);  // the last tag counts
}

TEST(WatchedDirectorySourceTest, AFileNameLabelThatIsNotAClassIndexIsAnError) {
  for (const char* bad :
       {"f.label-.jpg", "f.label-x3.jpg", "f.label--1.jpg", "f.label-1234567.jpg"}) {
    auto l = LabelFromFileName(bad);
    ASSERT_FALSE(l.ok()) << bad;
    EXPECT_EQ(l.error().code, Errc::kFormat);
    EXPECT_NE(l.error().message.find(bad), std::string::npos) << l.error().message;
  }
  ScratchDir dir("watch");
  WatchedDirectorySource src(dir.path(), /*delete_after_read=*/false, milliseconds(5));
  const std::string jpeg = data::testing::EncodeJpeg(8, 8, 1, data::testing::TestPixels(8, 8, 1));
  ASSERT_TRUE(data::testing::WriteBytes(dir / "a.label-cat.jpg", jpeg));
  ASSERT_TRUE(data::testing::WriteBytes(dir / "b.label-2.jpg", jpeg));
  auto a = src.Next(milliseconds(50));
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("a.label-cat.jpg"), std::string::npos) << a.error().message;
  auto b = src.Next(milliseconds(100));
  ASSERT_TRUE(b.ok() && b->has_value()) << (b.ok() ? "" : b.error().message);
  EXPECT_EQ(*(*b)->label, 2);
}

// The trainer's image-folder loader and the device's watched folder give the same tensor,
// bit for bit, for the same JPEG: both run data::Preprocess on data::DecodeImageFile.
TEST(WatchedDirectorySourceTest, GivesTheImageFolderLoadersTensorBitForBit) {
  ScratchDir dir("same");
  std::filesystem::create_directories(dir / "train/cat");
  std::filesystem::create_directories(dir / "watch");
  const std::string jpeg =
      data::testing::EncodeJpeg(301, 173, 3, data::testing::TestPixels(301, 173, 3), 85);
  ASSERT_TRUE(data::testing::WriteBytes(dir / "train/cat/frame.jpg", jpeg));
  ASSERT_TRUE(data::testing::WriteBytes(dir / "watch/frame.jpg", jpeg));
  for (auto mode : {data::ResizeMode::kStretch, data::ResizeMode::kCenterCrop,
                    data::ResizeMode::kPad}) {
    for (int channels : {1, 3}) {
      data::InputSpec spec = RgbSpec(64, 48, mode);
      spec.channels = channels;
      spec.mean.assign(channels, 0.25f);
      spec.std.assign(channels, 0.5f);
      auto trained = data::LoadDataset("images:" + (dir / "train"), &spec);
      ASSERT_TRUE(trained.ok()) << trained.error().message;
      WatchedDirectorySource src(dir / "watch", false, milliseconds(5));
      src.SetInputSpec(spec);
      auto seen = src.Next(milliseconds(100));
      ASSERT_TRUE(seen.ok() && seen->has_value()) << (seen.ok() ? "" : seen.error().message);
      ASSERT_EQ((*seen)->shape, trained->sample_shape);
      ASSERT_EQ((*seen)->data.size(), trained->sample_numel());
      EXPECT_EQ(std::memcmp((*seen)->data.data(), trained->sample(0),
                            trained->sample_numel() * sizeof(float)),
                0)
          << data::ResizeModeName(mode) << " " << channels;
    }
  }
}

// A 96x96 RGB camera frame in the spool record: bytes instead of floats (about 27 KB
// instead of 110 KB), and the server's snapshot reader gets the same floats back.
TEST(WatchedDirectorySourceTest, FramesTravelAsBytes) {
  ScratchDir dir("wire");
  ASSERT_TRUE(data::testing::WriteJpeg(dir / "f.jpg", 640, 480, 3,
                                       data::testing::TestPixels(640, 480, 3)));
  WatchedDirectorySource src(dir.path(), false, milliseconds(5));
  src.SetInputSpec(RgbSpec(96, 96, data::ResizeMode::kCenterCrop));
  auto s = src.Next(milliseconds(100));
  ASSERT_TRUE(s.ok() && s->has_value());
  SampleOutcome o;
  o.prediction = 1;
  wire::Sample rec;
  ASSERT_TRUE(rec.ParseFromString(EncodeUploadRecord(**s, o, "m1")));
  EXPECT_EQ(rec.tensor().values_size(), 0);
  EXPECT_EQ(rec.tensor().pixels().size(), 96u * 96 * 3);
  EXPECT_EQ(TensorValues(rec.tensor()), (*s)->data);
  // The same frame normalised inside the spec is no longer bytes: it travels as floats.
  Sample normalised = **s;
  for (float& v : normalised.data) v = (v - 0.5f) / 0.25f;
  wire::Sample frec;
  ASSERT_TRUE(frec.ParseFromString(EncodeUploadRecord(normalised, o, "m1")));
  EXPECT_EQ(frec.tensor().values_size(), 96 * 96 * 3);
  const size_t bytes = rec.ByteSizeLong(), floats = frec.ByteSizeLong();
  std::printf("96x96 RGB frame record: %zu bytes as uint8 pixels, %zu bytes as float32\n", bytes,
              floats);
  EXPECT_LT(bytes, 28u * 1024);
  EXPECT_GT(floats, 110'000u);
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
