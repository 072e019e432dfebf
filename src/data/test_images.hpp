// Test-only writers of real PNG and JPEG files (libpng's and libjpeg's own encoders), so the
// decoder tests read files as other tools write them: 8- and 16-bit, palette, CMYK.
#pragma once

#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <csetjmp>
#include <filesystem>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <jpeglib.h>

namespace edgeloop::data::testing {

// A fresh folder per test (named after the process and test), removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("edgeloop_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

// A deterministic picture: channel k of pixel (x, y) is a gradient plus a pattern, so that
// resizing, cropping and channel order are all visible in the values.
inline std::vector<uint8_t> TestPixels(int width, int height, int channels, int seed = 0) {
  std::vector<uint8_t> px(static_cast<size_t>(width) * height * channels);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int k = 0; k < channels; ++k)
        px[(static_cast<size_t>(y) * width + x) * channels + k] =
            static_cast<uint8_t>((x * 255 / std::max(1, width - 1) * (k + 1) + y * 7 + k * 60 +
                                  ((x / 4 + y / 4) % 2) * 40 + seed) %
                                 256);
  return px;
}

// Writes a PNG with libpng's low-level API. color_type: PNG_COLOR_TYPE_GRAY, _RGB, _RGBA,
// _GRAY_ALPHA or _PALETTE (then `pixels` are palette indices and `palette` the RGB entries).
// bit_depth 16 stores each byte b as b * 257 (big-endian), so 8 bits read back exactly.
inline bool WritePng(const std::string& path, int width, int height, int color_type,
                     const std::vector<uint8_t>& pixels, int bit_depth = 8,
                     const std::vector<png_color>& palette = {}) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    return false;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height),
               bit_depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (color_type == PNG_COLOR_TYPE_PALETTE)
    png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  png_write_info(png, info);
  const int channels = color_type == PNG_COLOR_TYPE_RGB          ? 3
                       : color_type == PNG_COLOR_TYPE_RGBA       ? 4
                       : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                                                                 : 1;
  const size_t row_values = static_cast<size_t>(width) * channels;
  std::vector<uint8_t> row(row_values * (bit_depth == 16 ? 2 : 1));
  for (int y = 0; y < height; ++y) {
    const uint8_t* src = pixels.data() + static_cast<size_t>(y) * row_values;
    for (size_t i = 0; i < row_values; ++i) {
      if (bit_depth == 16) {
        row[2 * i] = row[2 * i + 1] = src[i];  // b * 257
      } else {
        row[i] = src[i];
      }
    }
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return std::fclose(f) == 0;
}

// JPEG bytes from libjpeg's encoder; channels 1 (grayscale), 3 (RGB) or 4 (CMYK).
inline std::string EncodeJpeg(int width, int height, int channels,
                              const std::vector<uint8_t>& pixels, int quality = 95) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels.data()) +
                   static_cast<size_t>(cinfo.next_scanline) * width * channels;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buf), size);
  std::free(buf);
  return out;
}

inline bool WriteBytes(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

inline bool WriteJpeg(const std::string& path, int width, int height, int channels,
                      const std::vector<uint8_t>& pixels, int quality = 95) {
  return WriteBytes(path, EncodeJpeg(width, height, channels, pixels, quality));
}

}  // namespace edgeloop::data::testing
