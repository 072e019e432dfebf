// The six corruptions. Parameters per severity follow ImageNet-C / MNIST-C in spirit and grow
// strictly with severity. Every random draw happens in the same order at every severity, so
// for one seed a higher severity is the same perturbation, only stronger.
#include "data/corruptions.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/random.hpp"

namespace edgeloop::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

int SeverityIndex(int severity) {
  return std::clamp(severity, 1, 5) - 1;
}

void Clamp01(float* p, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = std::clamp(p[i], 0.0f, 1.0f);
}

void GaussianNoise(float* img, size_t n, int s, std::mt19937_64& rng) {
  static constexpr float kSigma[] = {0.08f, 0.12f, 0.18f, 0.26f, 0.38f};
  for (size_t i = 0; i < n; ++i)
    img[i] += kSigma[s] * static_cast<float>(detail::StandardNormal(rng));
}

// Separable Gaussian blur, edges replicated; the kernel radius is 3 sigma.
void Blur(float* img, int channels, int h, int w, int s) {
  static constexpr double kSigma[] = {0.6, 0.9, 1.2, 1.6, 2.1};
  const int radius = static_cast<int>(std::ceil(3.0 * kSigma[s]));
  std::vector<float> k(2 * radius + 1);
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) {
    double v = std::exp(-0.5 * i * i / (kSigma[s] * kSigma[s]));
    k[i + radius] = static_cast<float>(v);
    sum += v;
  }
  for (float& v : k) v = static_cast<float>(v / sum);
  std::vector<float> tmp(static_cast<size_t>(h) * w);
  for (int c = 0; c < channels; ++c) {
    float* p = img + static_cast<size_t>(c) * h * w;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        float acc = 0;
        for (int i = -radius; i <= radius; ++i)
          acc += k[i + radius] * p[y * w + std::clamp(x + i, 0, w - 1)];
        tmp[y * w + x] = acc;
      }
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        float acc = 0;
        for (int i = -radius; i <= radius; ++i)
          acc += k[i + radius] * tmp[std::clamp(y + i, 0, h - 1) * w + x];
        p[y * w + x] = acc;
      }
  }
}

void Brightness(float* img, size_t n, int s) {
  static constexpr float kDelta[] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
  for (size_t i = 0; i < n; ++i) img[i] += kDelta[s];
}

// Pulls every pixel toward its channel's mean.
void Contrast(float* img, int channels, size_t plane, int s) {
  static constexpr float kFactor[] = {0.6f, 0.45f, 0.3f, 0.2f, 0.1f};
  for (int c = 0; c < channels; ++c) {
    float* p = img + c * plane;
    double mean = 0;
    for (size_t i = 0; i < plane; ++i) mean += p[i];
    mean /= static_cast<double>(plane);
    for (size_t i = 0; i < plane; ++i) p[i] = static_cast<float>(mean + (p[i] - mean) * kFactor[s]);
  }
}

// Rotation about the centre, bilinear; pixels from outside the image are black.
void Rotate(float* img, int channels, int h, int w, int s, std::mt19937_64& rng) {
  static constexpr double kDegrees[] = {6, 12, 18, 24, 30};
  const double sign = (rng() & 1) ? 1.0 : -1.0;
  const double a = sign * kDegrees[s] * kPi / 180.0;
  const double cs = std::cos(a), sn = std::sin(a);
  const double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
  std::vector<float> src(static_cast<size_t>(h) * w);
  for (int c = 0; c < channels; ++c) {
    float* p = img + static_cast<size_t>(c) * h * w;
    std::copy(p, p + src.size(), src.begin());
    auto at = [&](int y, int x) -> float {
      return (y < 0 || y >= h || x < 0 || x >= w) ? 0.0f : src[y * w + x];
    };
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        // Inverse mapping: where in the source does this output pixel come from.
        const double dy = y - cy, dx = x - cx;
        const double sx = cs * dx + sn * dy + cx;
        const double sy = -sn * dx + cs * dy + cy;
        const int x0 = static_cast<int>(std::floor(sx)), y0 = static_cast<int>(std::floor(sy));
        const float fx = static_cast<float>(sx - x0), fy = static_cast<float>(sy - y0);
        p[y * w + x] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
                       fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
      }
  }
}

// A black square. Its position is drawn as a fraction of the free room, so with one seed the
// square of a higher severity contains the square of every lower one.
void Occlude(float* img, int channels, int h, int w, int s, std::mt19937_64& rng) {
  static constexpr double kSide[] = {0.2, 0.3, 0.4, 0.5, 0.6};
  const double uy = detail::Uniform01(rng), ux = detail::Uniform01(rng);
  const int side = std::max(1, static_cast<int>(std::lround(kSide[s] * std::min(h, w))));
  const int top = static_cast<int>(uy * (h - side + 1));
  const int left = static_cast<int>(ux * (w - side + 1));
  for (int c = 0; c < channels; ++c)
    for (int y = top; y < std::min(h, top + side); ++y)
      for (int x = left; x < std::min(w, left + side); ++x)
        img[(static_cast<size_t>(c) * h + y) * w + x] = 0.0f;
}

}  // namespace

const std::vector<Corruption>& AllCorruptions() {
  static const std::vector<Corruption> all = {Corruption::kGaussianNoise, Corruption::kBlur,
                                              Corruption::kBrightness,    Corruption::kContrast,
                                              Corruption::kRotation,      Corruption::kOcclusion};
  return all;
}

std::string CorruptionName(Corruption c) {
  switch (c) {
    case Corruption::kGaussianNoise:
      return "gaussian_noise";
    case Corruption::kBlur:
      return "blur";
    case Corruption::kBrightness:
      return "brightness";
    case Corruption::kContrast:
      return "contrast";
    case Corruption::kRotation:
      return "rotation";
    case Corruption::kOcclusion:
      return "occlusion";
  }
  return "unknown";
}

std::optional<Corruption> ParseCorruption(const std::string& name) {
  for (Corruption c : AllCorruptions())
    if (CorruptionName(c) == name) return c;
  // Common spellings people type.
  if (name == "noise" || name == "gaussian-noise") return Corruption::kGaussianNoise;
  if (name == "gaussian_blur" || name == "gaussian-blur") return Corruption::kBlur;
  if (name == "rotate") return Corruption::kRotation;
  return std::nullopt;
}

void ApplyCorruption(Corruption c, int severity, float* image, int channels, int height, int width,
                     std::mt19937_64& rng) {
  if (channels <= 0 || height <= 0 || width <= 0) return;
  const int s = SeverityIndex(severity);
  const size_t plane = static_cast<size_t>(height) * width;
  const size_t n = plane * channels;
  switch (c) {
    case Corruption::kGaussianNoise:
      GaussianNoise(image, n, s, rng);
      break;
    case Corruption::kBlur:
      Blur(image, channels, height, width, s);
      break;
    case Corruption::kBrightness:
      Brightness(image, n, s);
      break;
    case Corruption::kContrast:
      Contrast(image, channels, plane, s);
      break;
    case Corruption::kRotation:
      Rotate(image, channels, height, width, s, rng);
      break;
    case Corruption::kOcclusion:
      Occlude(image, channels, height, width, s, rng);
      break;
  }
  Clamp01(image, n);
}

Dataset Corrupt(const Dataset& d, Corruption c, int severity, uint64_t seed) {
  Dataset out = d;
  if (d.is_image()) {
    const int ch = static_cast<int>(d.sample_shape[0]);
    const int h = static_cast<int>(d.sample_shape[1]);
    const int w = static_cast<int>(d.sample_shape[2]);
    for (size_t i = 0; i < out.size(); ++i) {
      // One stream per sample: a sample's corruption does not depend on which others are in
      // the dataset.
      std::mt19937_64 rng(detail::MixSeed(seed, i));
      ApplyCorruption(c, severity, out.sample(i), ch, h, w, rng);
    }
  }
  out.source = d.source + " (corrupted: " + CorruptionName(c) + ", severity " +
               std::to_string(std::clamp(severity, 1, 5)) + ", seed " + std::to_string(seed) + ")";
  out.hash = ComputeHash(out);
  return out;
}

}  // namespace edgeloop::data
