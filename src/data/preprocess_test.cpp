#include "data/preprocess.hpp"

#include <gtest/gtest.h>

#include "data/test_images.hpp"

namespace edgeloop::data {
namespace {

Image Filled(int w, int h, int c, uint8_t v) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = c;
  img.pixels.assign(static_cast<size_t>(w) * h * c, v);
  return img;
}

InputSpec Spec(int c, int h, int w, ResizeMode mode = ResizeMode::kStretch) {
  InputSpec s = InputSpec::ForShape({c, h, w}).value();
  s.resize = mode;
  return s;
}

TEST(Preprocess, SameSizeAndChannelsGivesPixelsOver255InChwOrder) {
  Image img;
  img.width = 2;
  img.height = 1;
  img.channels = 3;
  img.pixels = {1, 2, 3, 4, 5, 6};  // HWC
  auto x = Preprocess(img, Spec(3, 1, 2));
  ASSERT_TRUE(x.ok()) << x.error().message;
  const std::vector<float> want = {1 / 255.f, 4 / 255.f, 2 / 255.f, 5 / 255.f, 3 / 255.f, 6 / 255.f};
  EXPECT_EQ(*x, want);  // bit-identical to what the IDX and PNG loaders always gave
}

TEST(Preprocess, RgbToGrayUsesBt601Weights) {
  Image img;
  img.width = 4;
  img.height = 1;
  img.channels = 3;
  img.pixels = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
  Image g = ConvertImage(img, Spec(1, 1, 4));
  // 0.299 * 255 = 76.2, 0.587 * 255 = 149.7, 0.114 * 255 = 29.1; white stays white.
  EXPECT_EQ(g.pixels, (std::vector<uint8_t>{76, 150, 29, 255}));
}

TEST(Preprocess, GrayToRgbRepeatsTheChannel) {
  Image img = Filled(2, 2, 1, 0);
  img.pixels = {10, 20, 30, 40};
  auto x = Preprocess(img, Spec(3, 2, 2));
  ASSERT_TRUE(x.ok());
  ASSERT_EQ(x->size(), 12u);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i) EXPECT_EQ((*x)[c * 4 + i], img.pixels[i] / 255.f);
}

TEST(Preprocess, StretchResizesToExactlyTheSpecAndKeepsFlatImagesFlat) {
  for (auto [w, h] : {std::pair{640, 480}, std::pair{7, 3}, std::pair{1, 1}}) {
    Image img = Filled(w, h, 3, 173);
    Image out = ConvertImage(img, Spec(3, 32, 48));
    EXPECT_EQ(out.width, 48);
    EXPECT_EQ(out.height, 32);
    for (uint8_t v : out.pixels) ASSERT_EQ(v, 173) << w << "x" << h;
  }
}

TEST(Preprocess, ShrinkingAveragesEverySourcePixel) {
  // Columns 255, 0, 0, 0, repeating: a point-sampling resize to a quarter of the width
  // would see only one of the four columns (all 255 or all 0); the area is a quarter white.
  Image img = Filled(64, 4, 1, 0);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 64; x += 4) img.pixels[y * 64 + x] = 255;
  Image out = ConvertImage(img, Spec(1, 4, 16));
  for (size_t i = 0; i < out.pixels.size(); ++i) {
    EXPECT_GE(out.pixels[i], 32) << i;  // about 64, less where the filter meets the border
    EXPECT_LE(out.pixels[i], 96) << i;
  }
}

TEST(Preprocess, CenterCropScalesTheShortSideAndKeepsTheCentre) {
  // 100 wide, 50 high: white 25-column bands left and right, black centre.
  Image img = Filled(100, 50, 1, 0);
  for (int y = 0; y < 50; ++y)
    for (int x = 0; x < 100; ++x)
      if (x < 25 || x >= 75) img.pixels[y * 100 + x] = 255;
  Image crop = ConvertImage(img, Spec(1, 50, 50, ResizeMode::kCenterCrop));
  ASSERT_EQ(crop.pixels.size(), 2500u);
  for (uint8_t v : crop.pixels) ASSERT_EQ(v, 0);
  Image stretch = ConvertImage(img, Spec(1, 50, 50, ResizeMode::kStretch));
  EXPECT_EQ(stretch.pixels[0], 255);  // stretching keeps the bands, squeezed
}

TEST(Preprocess, PadLetterboxesWithBlack) {
  Image img = Filled(100, 50, 3, 255);
  Image out = ConvertImage(img, Spec(3, 50, 50, ResizeMode::kPad));
  ASSERT_EQ(out.width, 50);
  ASSERT_EQ(out.height, 50);
  // Scaled to 50x25, placed at row 12.
  for (int y = 0; y < 50; ++y) {
    const uint8_t want = y >= 12 && y < 37 ? 255 : 0;
    for (int x = 0; x < 50; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(out.pixels[(y * 50 + x) * 3 + c], want) << y;
  }
}

TEST(Preprocess, AppliesMeanAndStdPerChannel) {
  InputSpec s = Spec(3, 1, 1);
  s.mean = {0.5f, 0.f, 1.f};
  s.std = {0.25f, 2.f, 1.f};
  Image img = Filled(1, 1, 3, 51);
  auto x = Preprocess(img, s);
  ASSERT_TRUE(x.ok());
  const float v = 51 / 255.f;
  EXPECT_EQ(*x, (std::vector<float>{(v - 0.5f) / 0.25f, v / 2.f, v - 1.f}));
}

TEST(Preprocess, RefusesAnInvalidSpecOrImage) {
  InputSpec s = Spec(3, 8, 8);
  s.std = {1.f, 0.f, 1.f};
  EXPECT_FALSE(Preprocess(Filled(4, 4, 3, 0), s).ok());
  EXPECT_FALSE(Preprocess(Image{}, Spec(1, 8, 8)).ok());
}

TEST(Preprocess, ChwBytesRoundTripThroughImages) {
  auto px = testing::TestPixels(5, 3, 3);
  Image img{5, 3, 3, px};
  auto chw = ImageToChw(img);
  EXPECT_EQ(chw[1], px[3]);  // red of the second pixel
  EXPECT_EQ(ImageFromChw(chw.data(), 3, 3, 5).pixels, px);
}

TEST(InputSpecJson, RoundTripsAndFillsDefaults) {
  InputSpec s = Spec(3, 96, 128, ResizeMode::kCenterCrop);
  s.mean = {0.485f, 0.456f, 0.406f};
  s.std = {0.229f, 0.224f, 0.225f};
  auto back = InputSpec::FromJson(s.ToJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, s);
  auto d = InputSpec::FromJson({{"channels", 3}, {"height", 64}, {"width", 64}});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->mean, (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(d->std, (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(d->resize, ResizeMode::kStretch);
  EXPECT_TRUE(d->IdentityNormalization());
}

TEST(InputSpecJson, RefusesUnknownKeysAndOutOfRangeValues) {
  const nlohmann::json ok = {{"channels", 1}, {"height", 28}, {"width", 28}};
  ASSERT_TRUE(InputSpec::FromJson(ok).ok());
  auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = ok;
    j[key] = std::move(v);
    return InputSpec::FromJson(j);
  };
  EXPECT_FALSE(with("colour", "rgb").ok());
  EXPECT_FALSE(with("channels", 2).ok());
  EXPECT_FALSE(with("height", 0).ok());
  EXPECT_FALSE(with("width", 100000).ok());
  EXPECT_FALSE(with("width", "28").ok());
  EXPECT_FALSE(with("resize", "zoom").ok());
  EXPECT_FALSE(with("mean", nlohmann::json::array({0.1, 0.2})).ok());
  EXPECT_FALSE(with("std", nlohmann::json::array({0.0})).ok());
  EXPECT_FALSE(InputSpec::FromJson(nlohmann::json::array()).ok());
  auto bad = with("colour", "rgb");
  EXPECT_NE(bad.error().message.find("colour"), std::string::npos);
}

}  // namespace
}  // namespace edgeloop::data
