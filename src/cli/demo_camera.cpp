#include "cli/demo_camera.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/file.hpp"
#include "common/pixel.hpp"
#include "data/preprocess.hpp"
#include "data/random.hpp"

namespace edgeloop::cli::demo {
namespace {

namespace fs = std::filesystem;

// Bilinear sample of channel c at (x, y), pixel centres at integers; outside the image is
// black, so a camera zoomed out shows the scene on a dark surround.
float Bilinear(const data::Image& img, int c, float x, float y) {
  const int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
  const float fx = x - static_cast<float>(x0), fy = y - static_cast<float>(y0);
  auto at = [&](int xx, int yy) -> float {
    if (xx < 0 || yy < 0 || xx >= img.width || yy >= img.height) return 0.f;
    return img.pixels[(static_cast<size_t>(yy) * img.width + xx) * img.channels + c];
  };
  return (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) +
         fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
}

}  // namespace

std::string CameraDomain::Describe() const {
  char b[200];
  std::snprintf(b, sizeof b,
                "%s: gain %.2f/%.2f/%.2f, black %.2f/%.2f/%.2f, zoom %.2f, jitter %d px, noise "
                "%.2f, JPEG q%d",
                name.c_str(), gain[0], gain[1], gain[2], lift[0], lift[1], lift[2], zoom, jitter_px,
                noise, jpeg_quality);
  return b;
}

const std::vector<CameraDomain>& CameraDomains() {
  // Four cameras unlike the clean one and unlike each other: a warm tungsten-lit close-up,
  // a cold wide shot through haze, a dim green-cast sensor with noise, and a flared magenta
  // cast compressed hard.
  static const std::vector<CameraDomain> kDomains = {
      {"tungsten", {1.00f, 0.62f, 0.28f}, {0.00f, 0.00f, 0.00f}, 1.35f, 3, 0.02f, 70},
      {"bluehaze", {0.45f, 0.70f, 1.00f}, {0.12f, 0.18f, 0.30f}, 0.70f, 3, 0.02f, 40},
      {"lowlight", {0.30f, 0.48f, 0.26f}, {0.00f, 0.02f, 0.00f}, 1.00f, 2, 0.07f, 50},
      {"magenta", {0.95f, 0.50f, 0.85f}, {0.30f, 0.18f, 0.28f}, 1.15f, 3, 0.03f, 15},
  };
  return kDomains;
}

CameraDomain CleanCamera() {
  return {"clean", {1, 1, 1}, {0, 0, 0}, 1.0f, 0, 0.0f, 95};
}

data::Image RenderFrame(const data::Dataset& images, size_t i, const CameraDomain& d,
                        uint64_t seed) {
  const int h = static_cast<int>(images.sample_shape[1]),
            w = static_cast<int>(images.sample_shape[2]);
  const int c = static_cast<int>(images.sample_shape[0]);
  // The scene as the trainer's preprocessing upsamples it, so a clean camera is training data.
  std::vector<uint8_t> chw(images.sample_numel());
  if (!ToPixels(images.sample(i), chw.size(), chw.data()))
    for (size_t k = 0; k < chw.size(); ++k)
      chw[k] = static_cast<uint8_t>(std::lround(std::clamp(images.sample(i)[k], 0.f, 1.f) * 255));
  data::InputSpec spec;
  spec.channels = 3;
  spec.height = spec.width = kFrameSide;
  spec.mean = {0, 0, 0};
  spec.std = {1, 1, 1};
  data::Image scene = data::ConvertImage(data::ImageFromChw(chw.data(), c, h, w), spec);

  std::mt19937_64 rng(data::detail::MixSeed(seed, i));
  auto jitter = [&] {
    return d.jitter_px == 0 ? 0.f
                            : static_cast<float>(data::detail::UniformIndex(
                                  rng, static_cast<uint64_t>(2 * d.jitter_px + 1))) -
                                  static_cast<float>(d.jitter_px);
  };
  const float dx = jitter(), dy = jitter();
  const bool moved = d.zoom != 1.0f || dx != 0 || dy != 0;
  const float centre = (kFrameSide - 1) / 2.0f;
  data::Image out = scene;
  for (int y = 0; y < kFrameSide; ++y)
    for (int x = 0; x < kFrameSide; ++x)
      for (int k = 0; k < 3; ++k) {
        float v = moved ? Bilinear(scene, k, (x - centre - dx) / d.zoom + centre,
                                   (y - centre - dy) / d.zoom + centre)
                        : scene.pixels[(static_cast<size_t>(y) * kFrameSide + x) * 3 + k];
        v = d.lift[k] + d.gain[k] * v / 255.0f;
        if (d.noise > 0) v += d.noise * static_cast<float>(data::detail::StandardNormal(rng));
        out.pixels[(static_cast<size_t>(y) * kFrameSide + x) * 3 + k] =
            static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f));
      }
  return out;
}

std::string FrameFileName(uint64_t sequence, int32_t label) {
  char b[64];
  if (label >= 0)
    std::snprintf(b, sizeof b, "frame-%07llu.label-%d.jpg",
                  static_cast<unsigned long long>(sequence), label);
  else
    std::snprintf(b, sizeof b, "frame-%07llu.jpg", static_cast<unsigned long long>(sequence));
  return b;
}

Status WriteFrameFolder(const std::string& dir, const data::Dataset& images, size_t count,
                        const CameraDomain& domain, uint64_t seed) {
  count = std::min(count, images.size());
  for (size_t i = 0; i < count; ++i) {
    if (images.y[i] < 0) continue;
    const std::string sub = dir + "/" + std::to_string(images.y[i]);
    if (!fs::exists(sub)) EDGELOOP_RETURN_IF_ERROR(MakeDirs(sub));
    EDGELOOP_ASSIGN_OR_RETURN(
        std::string jpeg,
        data::EncodeJpeg(RenderFrame(images, i, domain, seed), domain.jpeg_quality));
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(sub + "/" + FrameFileName(i, -1), jpeg));
  }
  return Status::Ok();
}

FrameWriter::FrameWriter(const data::Dataset& images, CameraDomain domain, std::string dir,
                         double rate_hz, size_t first, uint64_t seed)
    : images_(images),
      domain_(std::move(domain)),
      dir_(std::move(dir)),
      rate_hz_(rate_hz),
      first_(first),
      seed_(seed) {}

void FrameWriter::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void FrameWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

Status FrameWriter::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void FrameWriter::Loop() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (uint64_t k = 0; !stop_; ++k) {
    // Paced against the start, so a slow write does not lower the rate.
    const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(static_cast<double>(k) / rate_hz_));
    for (auto now = Clock::now(); !stop_ && now < due; now = Clock::now())
      std::this_thread::sleep_for(
          std::min<Clock::duration>(due - now, std::chrono::milliseconds(50)));
    if (stop_) break;
    const size_t i = (first_ + k) % images_.size();
    auto jpeg = data::EncodeJpeg(RenderFrame(images_, i, domain_, seed_), domain_.jpeg_quality);
    // WriteFileAtomic writes beside the final name (NAME.tmp.PID, not an image name) and
    // renames: the agent sees a whole frame or none.
    Status st = jpeg.ok() ? WriteFileAtomic(dir_ + "/" + FrameFileName(k, images_.y[i]), *jpeg)
                          : Status(jpeg.error());
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = st.error().WithContext("camera " + domain_.name);
      return;
    }
    ++written_;
  }
}

}  // namespace edgeloop::cli::demo
