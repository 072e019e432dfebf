#include "cli/demo_camera.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

#include "data/image.hpp"
#include "data/preprocess.hpp"

namespace edgeloop::cli::demo {
namespace {

namespace fs = std::filesystem;

// Grey 28x28 "scenes" with pixel values (multiples of 1/255), as Fashion-MNIST loads.
data::Dataset Scenes(size_t n) {
  data::Dataset d;
  d.sample_shape = {1, 28, 28};
  std::mt19937 rng(3);
  for (size_t i = 0; i < n; ++i) {
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        const bool object = std::abs(x - 14) < 8 && std::abs(y - 14) < 10;
        d.x.push_back(object ? static_cast<float>(120 + rng() % 120) / 255.0f : 0.0f);
      }
    d.y.push_back(static_cast<int32_t>(i % 3));
  }
  d.class_names = {"a", "b", "c"};
  return d;
}

std::vector<double> ChannelMeans(const data::Image& img) {
  std::vector<double> m(3, 0);
  for (size_t p = 0; p < img.pixels.size(); ++p) m[p % 3] += img.pixels[p];
  for (auto& v : m) v /= static_cast<double>(img.pixels.size() / 3);
  return m;
}

TEST(CameraFrames, ACleanCameraDeliversExactlyWhatTrainingPreprocessingMakes) {
  auto scenes = Scenes(2);
  data::InputSpec spec;
  spec.channels = 3;
  spec.height = spec.width = kFrameSide;
  spec.mean = {0, 0, 0};
  spec.std = {1, 1, 1};
  for (size_t i = 0; i < scenes.size(); ++i) {
    data::Image frame = RenderFrame(scenes, i, CleanCamera(), 1);
    ASSERT_EQ(frame.width, kFrameSide);
    ASSERT_EQ(frame.height, kFrameSide);
    ASSERT_EQ(frame.channels, 3);
    std::vector<uint8_t> chw(scenes.sample_numel());
    for (size_t k = 0; k < chw.size(); ++k)
      chw[k] = static_cast<uint8_t>(std::lround(scenes.sample(i)[k] * 255));
    auto trained = data::Preprocess(data::ImageFromChw(chw.data(), 1, 28, 28), spec);
    ASSERT_TRUE(trained.ok());
    std::vector<float> seen = data::NormalizeImage(frame, spec);
    ASSERT_EQ(seen.size(), trained->size());
    for (size_t k = 0; k < seen.size(); ++k) ASSERT_NEAR(seen[k], (*trained)[k], 1e-6) << k;
  }
}

TEST(CameraFrames, EachCameraCastsItsOwnColourAndIsRepeatable) {
  auto scenes = Scenes(1);
  const auto& cams = CameraDomains();
  ASSERT_GE(cams.size(), 4u);
  data::Image clean = RenderFrame(scenes, 0, CleanCamera(), 1);
  auto cm = ChannelMeans(clean);
  EXPECT_NEAR(cm[0], cm[2], 1e-9);  // grey scene, neutral camera
  // Tungsten light: red over blue; blue haze: blue over red.
  auto warm = ChannelMeans(RenderFrame(scenes, 0, cams[0], 1));
  EXPECT_GT(warm[0], 1.5 * warm[2]);
  auto cold = ChannelMeans(RenderFrame(scenes, 0, cams[1], 1));
  EXPECT_GT(cold[2], 1.3 * cold[0]);
  // The same sample and seed give the same frame; frames of all cameras differ from clean.
  for (const auto& cam : cams) {
    EXPECT_EQ(RenderFrame(scenes, 0, cam, 5).pixels, RenderFrame(scenes, 0, cam, 5).pixels)
        << cam.name;
    EXPECT_NE(RenderFrame(scenes, 0, cam, 5).pixels, clean.pixels) << cam.name;
    EXPECT_NE(cam.Describe().find(cam.name), std::string::npos);
  }
}

TEST(CameraFrames, FileNamesCarryTheLabel) {
  EXPECT_EQ(FrameFileName(42, 3), "frame-0000042.label-3.jpg");
  EXPECT_EQ(FrameFileName(7, -1), "frame-0000007.jpg");
}

class CameraFolders : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("edgeloop-camera-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CameraFolders, AFrameFolderHoldsOneDecodableJpegPerSampleUnderItsClass) {
  auto scenes = Scenes(7);
  ASSERT_TRUE(WriteFrameFolder(dir_.string(), scenes, 5, CameraDomains()[3], 2).ok());
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_)) {
    if (!e.is_regular_file()) continue;
    ++n;
    const std::string cls = e.path().parent_path().filename().string();
    EXPECT_TRUE(cls == "0" || cls == "1" || cls == "2") << e.path();
    auto img = data::DecodeImageFile(e.path().string());
    ASSERT_TRUE(img.ok()) << img.error().message;
    EXPECT_EQ(img->channels, 3);
    EXPECT_EQ(img->width, kFrameSide);
  }
  EXPECT_EQ(n, 5u);
}

TEST_F(CameraFolders, TheWriterShowsOnlyWholeFramesAndStops) {
  auto scenes = Scenes(4);
  FrameWriter w(scenes, CameraDomains()[0], dir_.string(), 200, 1, 9);
  w.Start();
  for (int i = 0; i < 200 && w.written() < 20; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  w.Stop();
  ASSERT_TRUE(w.status().ok()) << w.status().error().message;
  const uint64_t written = w.written();
  EXPECT_GE(written, 20u);
  size_t frames = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    ASSERT_TRUE(data::IsImageFileName(name)) << "a partial file is visible: " << name;
    ASSERT_NE(name.find(".label-"), std::string::npos) << name;
    ASSERT_TRUE(data::DecodeImageFile(e.path().string()).ok()) << name;
    ++frames;
  }
  EXPECT_EQ(frames, written);
  // Stopped: nothing more arrives.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(w.written(), written);
}

TEST_F(CameraFolders, AWriteErrorStopsTheCameraWithItsName) {
  auto scenes = Scenes(2);
  FrameWriter w(scenes, CameraDomains()[1], (dir_ / "missing" / "deeper").string(), 100, 0, 1);
  w.Start();
  for (int i = 0; i < 200 && w.status().ok(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  w.Stop();
  ASSERT_FALSE(w.status().ok());
  EXPECT_NE(w.status().error().message.find(CameraDomains()[1].name), std::string::npos)
      << w.status().error().message;
  EXPECT_EQ(w.written(), 0u);
}

}  // namespace
}  // namespace edgeloop::cli::demo
