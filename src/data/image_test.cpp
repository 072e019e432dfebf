#include "data/image.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/test_images.hpp"

namespace edgeloop::data {
namespace {

using testing::EncodeJpeg;
using testing::TestPixels;
using testing::WriteBytes;
using testing::WritePng;

class ImageFiles : public testing::TempDirTest {
 protected:
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

void PutBe32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

TEST_F(ImageFiles, DecodesRgbAndGrayPngExactly) {
  auto rgb = TestPixels(7, 5, 3);
  ASSERT_TRUE(WritePng(P("rgb.png"), 7, 5, PNG_COLOR_TYPE_RGB, rgb));
  auto img = DecodeImageFile(P("rgb.png"));
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->width, 7);
  EXPECT_EQ(img->height, 5);
  EXPECT_EQ(img->channels, 3);
  EXPECT_EQ(img->pixels, rgb);

  auto gray = TestPixels(3, 9, 1);
  ASSERT_TRUE(WritePng(P("gray.png"), 3, 9, PNG_COLOR_TYPE_GRAY, gray));
  auto g = DecodeImage(Read(P("gray.png")), "gray.png");
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->channels, 1);
  EXPECT_EQ(g->pixels, gray);
}

TEST_F(ImageFiles, Converts16BitPngTo8BitsWithoutAGammaChange) {
  auto px = TestPixels(6, 4, 1);
  ASSERT_TRUE(WritePng(P("deep.png"), 6, 4, PNG_COLOR_TYPE_GRAY, px, /*bit_depth=*/16));
  auto img = DecodeImageFile(P("deep.png"));
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->channels, 1);
  EXPECT_EQ(img->pixels, px);  // b * 257 reads back as b
  auto rgb = TestPixels(6, 4, 3);
  ASSERT_TRUE(WritePng(P("deep_rgb.png"), 6, 4, PNG_COLOR_TYPE_RGB, rgb, 16));
  auto c = DecodeImageFile(P("deep_rgb.png"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->pixels, rgb);
}

TEST_F(ImageFiles, ConvertsPalettePngToRgb) {
  const std::vector<png_color> palette = {{10, 20, 30}, {200, 100, 0}, {0, 255, 7}};
  std::vector<uint8_t> idx = {0, 1, 2, 2, 1, 0};
  ASSERT_TRUE(WritePng(P("pal.png"), 3, 2, PNG_COLOR_TYPE_PALETTE, idx, 8, palette));
  auto img = DecodeImageFile(P("pal.png"));
  ASSERT_TRUE(img.ok()) << img.error().message;
  ASSERT_EQ(img->channels, 3);
  for (size_t i = 0; i < idx.size(); ++i) {
    EXPECT_EQ(img->pixels[3 * i], palette[idx[i]].red) << i;
    EXPECT_EQ(img->pixels[3 * i + 1], palette[idx[i]].green) << i;
    EXPECT_EQ(img->pixels[3 * i + 2], palette[idx[i]].blue) << i;
  }
}

TEST_F(ImageFiles, CompositesAlphaOntoBlack) {
  // Two RGBA pixels: opaque orange, fully transparent white.
  std::vector<uint8_t> px = {250, 120, 10, 255, 255, 255, 255, 0};
  ASSERT_TRUE(WritePng(P("alpha.png"), 2, 1, PNG_COLOR_TYPE_RGBA, px));
  auto img = DecodeImageFile(P("alpha.png"));
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->pixels, (std::vector<uint8_t>{250, 120, 10, 0, 0, 0}));
}

TEST_F(ImageFiles, DecodesGrayAndRgbJpeg) {
  // A smooth picture: JPEG keeps it within a few levels.
  std::vector<uint8_t> rgb;
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 40; ++x)
      for (int k = 0; k < 3; ++k) rgb.push_back(static_cast<uint8_t>(2 * x + 2 * y + 40 * k));
  auto img = DecodeImage(EncodeJpeg(40, 24, 3, rgb, 100), "cam.jpg");
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->width, 40);
  EXPECT_EQ(img->height, 24);
  EXPECT_EQ(img->channels, 3);
  ASSERT_EQ(img->pixels.size(), rgb.size());
  double err = 0;
  for (size_t i = 0; i < rgb.size(); ++i) err += std::abs(img->pixels[i] - rgb[i]);
  EXPECT_LT(err / static_cast<double>(rgb.size()), 3.0);  // lossy, but the same picture

  auto gray = TestPixels(16, 16, 1);
  auto g = DecodeImage(EncodeJpeg(16, 16, 1, gray, 100), "gray.jpg");
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->channels, 1);
  EXPECT_EQ(g->pixels.size(), gray.size());
}

TEST(JpegEncoder, EncodesWhatTheDecoderReadsBackAndLowerQualityIsSmaller) {
  std::vector<uint8_t> rgb;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 48; ++x)
      for (int k = 0; k < 3; ++k) rgb.push_back(static_cast<uint8_t>(3 * x + 2 * y + 50 * k));
  Image src{48, 32, 3, rgb};
  auto hi = data::EncodeJpeg(src, 95);
  auto lo = data::EncodeJpeg(src, 15);
  ASSERT_TRUE(hi.ok() && lo.ok());
  EXPECT_LT(lo->size(), hi->size());
  auto back = DecodeImage(*hi, "frame.jpg");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->width, 48);
  ASSERT_EQ(back->height, 32);
  ASSERT_EQ(back->channels, 3);
  double err = 0;
  for (size_t i = 0; i < rgb.size(); ++i) err += std::abs(back->pixels[i] - rgb[i]);
  EXPECT_LT(err / static_cast<double>(rgb.size()), 3.0);

  Image gray{16, 8, 1, TestPixels(16, 8, 1)};
  auto g = data::EncodeJpeg(gray, 90);
  ASSERT_TRUE(g.ok());
  auto gb = DecodeImage(*g, "gray.jpg");
  ASSERT_TRUE(gb.ok());
  EXPECT_EQ(gb->channels, 1);
}

TEST(JpegEncoder, RefusesAnImageWhosePixelsDoNotMatchItsSize) {
  Image bad{10, 10, 3, std::vector<uint8_t>(299)};
  auto r = data::EncodeJpeg(bad, 90);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("JPEG encoding"), std::string::npos);
  Image four{2, 2, 4, std::vector<uint8_t>(16)};
  EXPECT_FALSE(data::EncodeJpeg(four, 90).ok());
}

TEST_F(ImageFiles, RefusesCmykJpegNamingTheFile) {
  auto cmyk = TestPixels(8, 8, 4);
  ASSERT_TRUE(WriteBytes(P("print.jpg"), EncodeJpeg(8, 8, 4, cmyk)));
  auto img = DecodeImageFile(P("print.jpg"));
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().code, Errc::kUnsupported);
  EXPECT_EQ(img.error().message.rfind(P("print.jpg"), 0), 0u) << img.error().message;
  EXPECT_NE(img.error().message.find("CMYK"), std::string::npos) << img.error().message;
  EXPECT_EQ(img.error().message.find('\n'), std::string::npos);
}

TEST_F(ImageFiles, TruncatedJpegIsAnError) {
  std::string jpeg = EncodeJpeg(64, 48, 3, TestPixels(64, 48, 3));
  ASSERT_TRUE(WriteBytes(P("cut.jpg"), jpeg.substr(0, jpeg.size() * 2 / 3)));
  auto img = DecodeImageFile(P("cut.jpg"));
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().code, Errc::kFormat);
  EXPECT_EQ(img.error().message.rfind(P("cut.jpg"), 0), 0u) << img.error().message;
  EXPECT_NE(img.error().message.find("truncated"), std::string::npos) << img.error().message;
  // Cut inside the header: also an error, not an exit.
  EXPECT_FALSE(DecodeImage(jpeg.substr(0, 40), "head.jpg").ok());
}

TEST_F(ImageFiles, CorruptPngIsAnError) {
  ASSERT_TRUE(WritePng(P("good.png"), 32, 32, PNG_COLOR_TYPE_RGB, TestPixels(32, 32, 3)));
  std::string png = Read(P("good.png"));
  // Flip bytes inside the image data: the chunk's CRC no longer matches.
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  for (size_t i = idat + 10; i < idat + 30; ++i) png[i] = static_cast<char>(png[i] ^ 0x5a);
  ASSERT_TRUE(WriteBytes(P("bad.png"), png));
  auto img = DecodeImageFile(P("bad.png"));
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().message.rfind(P("bad.png"), 0), 0u) << img.error().message;
  ASSERT_TRUE(WriteBytes(P("half.png"), Read(P("good.png")).substr(0, 60)));
  auto half = DecodeImageFile(P("half.png"));
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error().message.rfind(P("half.png"), 0), 0u) << half.error().message;
}

TEST_F(ImageFiles, RefusesAPngHeaderDeclaring60000x60000BeforeAllocating) {
  ASSERT_TRUE(WritePng(P("small.png"), 4, 4, PNG_COLOR_TYPE_RGB, TestPixels(4, 4, 3)));
  std::string png = Read(P("small.png"));
  // IHDR: length at 8, type at 12, width at 16, height at 20, CRC over type + data at 29.
  ASSERT_EQ(png.substr(12, 4), "IHDR");
  PutBe32(png, 16, 60000);
  PutBe32(png, 20, 60000);
  PutBe32(png, 29, static_cast<uint32_t>(
                       crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17)));
  ASSERT_TRUE(WriteBytes(P("huge.png"), png));
  // Decoding would need 10.8 GB; the header alone must be refused, naming the declared size.
  auto img = DecodeImageFile(P("huge.png"));
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().code, Errc::kResourceExhausted);
  EXPECT_EQ(img.error().message.rfind(P("huge.png"), 0), 0u) << img.error().message;
  EXPECT_NE(img.error().message.find("60000x60000"), std::string::npos) << img.error().message;
  // The same header within raised limits gets past the check and fails on the pixel data.
  ImageLimits wide{60000, int64_t{60000} * 60000};
  PutBe32(png, 16, 3000);
  PutBe32(png, 20, 3000);
  PutBe32(png, 29, static_cast<uint32_t>(
                       crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17)));
  auto big = DecodeImage(png, "big.png", wide);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::kFormat) << big.error().message;
}

TEST_F(ImageFiles, RefusesAJpegHeaderDeclaring60000x60000BeforeAllocating) {
  std::string jpeg = EncodeJpeg(8, 8, 3, TestPixels(8, 8, 3));
  const size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  // SOF0: marker, length (2), precision (1), height (2), width (2).
  for (size_t at : {sof + 5, sof + 7}) {
    jpeg[at] = static_cast<char>(60000 >> 8);
    jpeg[at + 1] = static_cast<char>(60000 & 0xff);
  }
  auto img = DecodeImage(jpeg, "huge.jpg");
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().code, Errc::kResourceExhausted);
  EXPECT_NE(img.error().message.find("huge.jpg: "), std::string::npos) << img.error().message;
  EXPECT_NE(img.error().message.find("60000x60000"), std::string::npos) << img.error().message;
}

TEST_F(ImageFiles, RefusesBytesThatAreNeitherPngNorJpeg) {
  auto img = DecodeImage("GIF89a......", "anim.gif");
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.error().message.rfind("anim.gif: ", 0), 0u) << img.error().message;
  EXPECT_FALSE(DecodeImage("", "empty.png").ok());
}

TEST(ImageFileName, AcceptsPngAndJpegInAnyCase) {
  EXPECT_TRUE(IsImageFileName("a.png"));
  EXPECT_TRUE(IsImageFileName("b.JPG"));
  EXPECT_TRUE(IsImageFileName("c.jpeg"));
  EXPECT_FALSE(IsImageFileName("d.csv"));
  EXPECT_FALSE(IsImageFileName("png"));
}

}  // namespace
}  // namespace edgeloop::data
