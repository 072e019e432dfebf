#include <gtest/gtest.h>

#include <filesystem>

#include "data/dataset.hpp"
#include "data/preprocess.hpp"
#include "data/test_images.hpp"

namespace edgeloop::data {
namespace {

namespace fs = std::filesystem;
using testing::TestPixels;
using testing::WriteBytes;
using testing::WriteJpeg;
using testing::WritePng;

class ImageFolder : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(dir_ / "imgs" / "a");
    fs::create_directories(dir_ / "imgs" / "b");
  }
};

InputSpec Spec(int c, int h, int w) { return InputSpec::ForShape({c, h, w}).value(); }

TEST_F(ImageFolder, RgbPngAndJpegFoldersLoadAsThreeChannels) {
  auto px = TestPixels(12, 10, 3);
  ASSERT_TRUE(WritePng(P("imgs/a/1.png"), 12, 10, PNG_COLOR_TYPE_RGB, px));
  ASSERT_TRUE(WriteJpeg(P("imgs/b/1.jpg"), 12, 10, 3, TestPixels(12, 10, 3, 90)));
  ASSERT_TRUE(WriteJpeg(P("imgs/b/2.JPEG"), 12, 10, 3, TestPixels(12, 10, 3, 30)));
  auto d = LoadDataset(P("imgs"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->sample_shape, (std::vector<int64_t>{3, 10, 12}));
  EXPECT_EQ(d->y, (std::vector<int32_t>{0, 1, 1}));
  // CHW: the first plane is the red channel of the PNG, exactly.
  for (int i = 0; i < 120; ++i) ASSERT_EQ(d->sample(0)[i], px[3 * i] / 255.f) << i;
  EXPECT_EQ(d->sample(0)[120], px[1] / 255.f);
}

TEST_F(ImageFolder, MixedSizesAndChannelsAreConvertedToAGivenSpec) {
  ASSERT_TRUE(WritePng(P("imgs/a/big.png"), 80, 60, PNG_COLOR_TYPE_RGB, TestPixels(80, 60, 3)));
  ASSERT_TRUE(WriteJpeg(P("imgs/a/tall.jpg"), 20, 50, 1, TestPixels(20, 50, 1)));
  ASSERT_TRUE(WritePng(P("imgs/b/tiny.png"), 5, 5, PNG_COLOR_TYPE_GRAY, TestPixels(5, 5, 1)));
  for (ResizeMode mode : {ResizeMode::kStretch, ResizeMode::kCenterCrop, ResizeMode::kPad}) {
    InputSpec spec = Spec(3, 16, 24);
    spec.resize = mode;
    auto d = LoadImageFolder(P("imgs"), &spec);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(d->sample_shape, (std::vector<int64_t>{3, 16, 24}));
    EXPECT_EQ(d->size(), 3u);
    EXPECT_EQ(d->x.size(), 3u * 3 * 16 * 24);
  }
  // Through LoadDataset, the same values.
  InputSpec spec = Spec(1, 8, 8);
  auto a = LoadImageFolder(P("imgs"), &spec);
  auto b = LoadDataset("images:" + P("imgs"), &spec);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->x, b->x);
  EXPECT_EQ(a->hash, b->hash);
}

TEST_F(ImageFolder, MixedChannelsWithoutASpecAreRefusedWithAHint) {
  ASSERT_TRUE(WritePng(P("imgs/a/gray.png"), 8, 8, PNG_COLOR_TYPE_GRAY, TestPixels(8, 8, 1)));
  ASSERT_TRUE(WriteJpeg(P("imgs/b/colour.jpg"), 8, 8, 3, TestPixels(8, 8, 3)));
  auto d = LoadImageFolder(P("imgs"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::kMismatch);
  const std::string& m = d.error().message;
  EXPECT_EQ(m.rfind(P("imgs/b/colour.jpg"), 0), 0u) << m;
  EXPECT_NE(m.find("--input-size 8x8 --channels 3"), std::string::npos) << m;
}

TEST_F(ImageFolder, ABadFileIsNamedInTheError) {
  ASSERT_TRUE(WritePng(P("imgs/a/ok.png"), 8, 8, PNG_COLOR_TYPE_GRAY, TestPixels(8, 8, 1)));
  std::string jpeg = testing::EncodeJpeg(32, 32, 1, TestPixels(32, 32, 1));
  ASSERT_TRUE(WriteBytes(P("imgs/b/cut.jpg"), jpeg.substr(0, jpeg.size() / 2)));
  InputSpec spec = Spec(1, 8, 8);
  auto d = LoadImageFolder(P("imgs"), &spec);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().message.rfind(P("imgs/b/cut.jpg"), 0), 0u) << d.error().message;
}

TEST_F(ImageFolder, PixelDatasetsOfOtherFormatsConvertToASpec) {
  Dataset d;
  d.sample_shape = {1, 4, 4};
  for (int i = 0; i < 32; ++i) d.x.push_back(static_cast<float>(i * 7 % 256) / 255.f);
  d.y = {0, 1};
  d.class_names = {"x", "y"};
  ASSERT_TRUE(WriteIdx(d, P("t-images-idx3-ubyte"), P("t-labels-idx1-ubyte")).ok());
  InputSpec spec = Spec(3, 8, 8);
  auto c = LoadDataset("idx:" + P("t"), &spec);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->sample_shape, (std::vector<int64_t>{3, 8, 8}));
  // Sample 0 as an image through Preprocess gives the same values.
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 16; ++i) bytes.push_back(static_cast<uint8_t>(i * 7 % 256));
  auto want = Preprocess(ImageFromChw(bytes.data(), 1, 4, 4), spec);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(std::vector<float>(c->sample(0), c->sample(0) + 192), *want);
  // The same shape and default normalisation: the data as stored.
  InputSpec same = Spec(1, 4, 4);
  auto s = LoadDataset("idx:" + P("t"), &same);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->x, d.x);
}

TEST_F(ImageFolder, FeatureDatasetsIgnoreAnInputSpec) {
  ASSERT_TRUE(WriteBytes(P("f.csv"), "a,b,label\n1,2,0\n3,4,1\n"));
  InputSpec spec = Spec(1, 8, 8);
  auto d = LoadDataset(P("f.csv"), &spec);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->sample_shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(d->x, (std::vector<float>{1, 2, 3, 4}));
  // Asked for explicitly, the conversion is refused.
  auto c = ConvertToInputSpec(*d, spec);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("features"), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace edgeloop::data
