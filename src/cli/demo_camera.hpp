// The camera scenario of `edgeloop demo`: each device watches a folder into which its own
// camera writes 64x64 RGB JPEG frames, made from Fashion-MNIST's 28x28 grey images as a
// camera with its own optics and electronics would see them: a colour cast (the scene's
// light times a gain per channel, over a black level per channel), a zoom, a per-frame
// jitter of the framing, sensor noise and a JPEG quality. The base model is a small
// MobileNetV2 trained on clean frames (no cast, no zoom).
//
// A frame's label travels in its file name (frame-0000042.label-3.jpg, see
// edge::LabelFromFileName), as a camera with a labelling station beside it would name them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "data/dataset.hpp"
#include "data/image.hpp"

namespace edgeloop::cli::demo {

constexpr int kFrameSide = 64;

struct CameraDomain {
  std::string name;                    // short, usable in file and metric names
  std::array<float, 3> gain{1, 1, 1};  // R, G, B: the light's colour times the sensor's
  std::array<float, 3> lift{0, 0, 0};  // R, G, B black level in [0, 1]: haze, flare
  float zoom = 1;                      // > 1 crops in, < 1 shows the scene smaller on black
  int jitter_px = 0;                   // the framing moves by up to this much each frame
  float noise = 0;                     // sensor noise, standard deviation in [0, 1] units
  int jpeg_quality = 90;
  std::string Describe() const;  // "tungsten: gain 1.00/0.70/0.35, zoom 1.35, ..."
};

// The devices' cameras (devices beyond the list reuse it) and the clean camera the base
// model was trained for.
const std::vector<CameraDomain>& CameraDomains();
CameraDomain CleanCamera();

// Sample i of `images` (grey {1, h, w} pixels) as a frame of the domain: kFrameSide square,
// RGB. The same (i, seed) give the same frame. A clean camera gives exactly what
// data::Preprocess makes of the image at {3, 64, 64} (what the base model trained on).
data::Image RenderFrame(const data::Dataset& images, size_t i, const CameraDomain& domain,
                        uint64_t seed);
// "frame-0000042.label-3.jpg"
std::string FrameFileName(uint64_t sequence, int32_t label);

// A labelled image folder of the first `count` samples: one subfolder per class index
// ("0".."9", which eval matches to a model's classes by index), frames of the domain.
Status WriteFrameFolder(const std::string& dir, const data::Dataset& images, size_t count,
                        const CameraDomain& domain, uint64_t seed);

// One device's camera: a thread that writes frames of `images` (from `first` on, looping)
// into `dir` at a steady rate, each written beside its final name and renamed into place so
// the agent never reads half a JPEG. Stops on Stop() or at the first write error.
class FrameWriter {
 public:
  FrameWriter(const data::Dataset& images, CameraDomain domain, std::string dir, double rate_hz,
              size_t first, uint64_t seed);
  ~FrameWriter() { Stop(); }
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;
  void Start();
  void Stop();
  Status status() const;  // the first error, if writing stopped on one
  uint64_t written() const { return written_; }
  const CameraDomain& domain() const { return domain_; }

 private:
  void Loop();
  const data::Dataset& images_;
  CameraDomain domain_;
  std::string dir_;
  double rate_hz_;
  size_t first_;
  uint64_t seed_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> written_{0};
  mutable std::mutex mu_;
  Status status_;
  std::thread thread_;
};

}  // namespace edgeloop::cli::demo
