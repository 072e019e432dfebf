#include "data/preprocess.hpp"

#include <algorithm>
#include <cmath>

namespace edgeloop::data {
namespace {

constexpr int kMaxInputSide = 8192;

// Fixed-point resampling weights: integer arithmetic gives the same bytes on the x86
// trainer and an arm64 device. The weights themselves are computed in double with
// floating-point contraction off for this file (see CMakeLists.txt), for the same reason.
constexpr int kWeightBits = 14;

struct Taps {
  int first = 0;               // first source index
  std::vector<int32_t> weight;  // for first, first + 1, ...; they sum to about 1 << kWeightBits
};

// A triangle (bilinear) filter over the source, widened by the scale factor when shrinking
// so that every source pixel contributes in proportion to the area it covers.
std::vector<Taps> ResampleTaps(int in, int out) {
  const double scale = static_cast<double>(in) / out;
  const double radius = std::max(scale, 1.0);
  std::vector<Taps> taps(static_cast<size_t>(out));
  std::vector<double> w;
  for (int o = 0; o < out; ++o) {
    const double center = (o + 0.5) * scale;
    const int lo = std::max(0, static_cast<int>(std::floor(center - radius)));
    const int hi = std::min(in, static_cast<int>(std::ceil(center + radius)));
    w.clear();
    double total = 0;
    for (int x = lo; x < hi; ++x) {
      const double d = std::abs(x + 0.5 - center) / radius;
      w.push_back(d < 1.0 ? 1.0 - d : 0.0);
      total += w.back();
    }
    Taps& t = taps[static_cast<size_t>(o)];
    t.first = lo;
    for (double v : w)
      t.weight.push_back(static_cast<int32_t>(std::lround(v / total * (1 << kWeightBits))));
  }
  return taps;
}

// A black image.
Image Blank(int width, int height, int channels) {
  Image img;
  img.width = width;
  img.height = height;
  img.channels = channels;
  img.pixels.assign(static_cast<size_t>(width) * height * channels, 0);
  return img;
}

uint8_t ClampByte(int64_t v) { return static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255)); }

// Separable resize of HWC bytes: rows first (into 1 << kWeightBits fixed point), then columns.
Image Resize(const Image& src, int width, int height) {
  if (src.width == width && src.height == height) return src;
  const int c = src.channels;
  const auto xt = ResampleTaps(src.width, width);
  const auto yt = ResampleTaps(src.height, height);
  std::vector<int32_t> rows(static_cast<size_t>(src.height) * width * c);
  for (int y = 0; y < src.height; ++y) {
    const uint8_t* in = src.pixels.data() + static_cast<size_t>(y) * src.width * c;
    int32_t* out = rows.data() + static_cast<size_t>(y) * width * c;
    for (int x = 0; x < width; ++x) {
      const Taps& t = xt[static_cast<size_t>(x)];
      for (int k = 0; k < c; ++k) {
        int32_t acc = 0;
        for (size_t i = 0; i < t.weight.size(); ++i)
          acc += t.weight[i] * in[(static_cast<size_t>(t.first) + i) * c + k];
        out[x * c + k] = acc;
      }
    }
  }
  Image dst = Blank(width, height, c);
  const size_t row = static_cast<size_t>(width) * c;
  const int64_t half = int64_t{1} << (2 * kWeightBits - 1);
  for (int y = 0; y < height; ++y) {
    const Taps& t = yt[static_cast<size_t>(y)];
    uint8_t* out = dst.pixels.data() + static_cast<size_t>(y) * row;
    for (size_t j = 0; j < row; ++j) {
      int64_t acc = 0;
      for (size_t i = 0; i < t.weight.size(); ++i)
        acc += int64_t{t.weight[i]} * rows[(static_cast<size_t>(t.first) + i) * row + j];
      out[j] = ClampByte((acc + half) >> (2 * kWeightBits));
    }
  }
  return dst;
}

// BT.601 luma in libjpeg's 16-bit fixed point (FIX(0.299), FIX(0.587), FIX(0.114)).
Image ToGray(const Image& rgb) {
  Image g = Blank(rgb.width, rgb.height, 1);
  const size_t n = g.pixels.size();
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = rgb.pixels.data() + 3 * i;
    g.pixels[i] = static_cast<uint8_t>((19595 * p[0] + 38470 * p[1] + 7471 * p[2] + 32768) >> 16);
  }
  return g;
}

Image ToRgb(const Image& gray) {
  Image c = Blank(gray.width, gray.height, 3);
  for (size_t i = 0; i < gray.pixels.size(); ++i)
    c.pixels[3 * i] = c.pixels[3 * i + 1] = c.pixels[3 * i + 2] = gray.pixels[i];
  return c;
}

// round(a * b / d) for non-negative sizes, exactly.
int64_t MulDivRound(int64_t a, int64_t b, int64_t d) { return (2 * a * b + d) / (2 * d); }

// Copies a w x h window of src at (x0, y0) into dst at (dx, dy); both HWC, same channels.
void Blit(const Image& src, int x0, int y0, int w, int h, Image& dst, int dx, int dy) {
  const size_t c = static_cast<size_t>(src.channels);
  for (int y = 0; y < h; ++y)
    std::copy_n(src.pixels.data() + ((static_cast<size_t>(y0 + y) * src.width) + x0) * c,
                static_cast<size_t>(w) * c,
                dst.pixels.data() + ((static_cast<size_t>(dy + y) * dst.width) + dx) * c);
}

}  // namespace

Result<ResizeMode> ParseResizeMode(const std::string& name) {
  if (name == "stretch") return ResizeMode::kStretch;
  if (name == "center-crop") return ResizeMode::kCenterCrop;
  if (name == "pad") return ResizeMode::kPad;
  return Error(Errc::kInvalidArgument,
               "unknown resize mode '" + name + "' (expected stretch, center-crop or pad)");
}

std::string ResizeModeName(ResizeMode mode) {
  switch (mode) {
    case ResizeMode::kStretch:
      return "stretch";
    case ResizeMode::kCenterCrop:
      return "center-crop";
    case ResizeMode::kPad:
      return "pad";
  }
  return "stretch";
}

Result<InputSpec> InputSpec::ForShape(const std::vector<int64_t>& chw) {
  if (chw.size() != 3 || (chw[0] != 1 && chw[0] != 3) || chw[1] <= 0 || chw[2] <= 0 ||
      chw[1] > kMaxInputSide || chw[2] > kMaxInputSide)
    return Error(Errc::kUnsupported,
                 "no image input spec for a sample shape that is not 1xHxW or 3xHxW");
  InputSpec s;
  s.channels = static_cast<int>(chw[0]);
  s.height = static_cast<int>(chw[1]);
  s.width = static_cast<int>(chw[2]);
  s.mean.assign(static_cast<size_t>(s.channels), 0.f);
  s.std.assign(static_cast<size_t>(s.channels), 1.f);
  return s;
}

bool InputSpec::IdentityNormalization() const {
  return std::all_of(mean.begin(), mean.end(), [](float m) { return m == 0.f; }) &&
         std::all_of(std.begin(), std.end(), [](float s) { return s == 1.f; });
}

Status InputSpec::Validate() const {
  if (channels != 1 && channels != 3)
    return Error(Errc::kInvalidArgument,
                 "input spec: channels must be 1 or 3, not " + std::to_string(channels));
  if (height < 1 || width < 1 || height > kMaxInputSide || width > kMaxInputSide)
    return Error(Errc::kInvalidArgument, "input spec: size " + std::to_string(height) + "x" +
                                             std::to_string(width) + " outside 1.." +
                                             std::to_string(kMaxInputSide));
  if (mean.size() != static_cast<size_t>(channels) || std.size() != static_cast<size_t>(channels))
    return Error(Errc::kInvalidArgument, "input spec: mean and std need one value per channel (" +
                                             std::to_string(channels) + ")");
  for (size_t k = 0; k < mean.size(); ++k)
    if (!std::isfinite(mean[k]) || !std::isfinite(std[k]) || !(std[k] > 0))
      return Error(Errc::kInvalidArgument,
                   "input spec: mean must be finite and std finite and positive");
  return Status::Ok();
}

nlohmann::json InputSpec::ToJson() const {
  return {{"channels", channels}, {"height", height},  {"width", width},
          {"resize", ResizeModeName(resize)}, {"mean", mean}, {"std", std}};
}

Result<InputSpec> InputSpec::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Error(Errc::kFormat, "input spec: not a JSON object");
  for (const auto& [key, value] : j.items())
    if (key != "channels" && key != "height" && key != "width" && key != "resize" &&
        key != "mean" && key != "std")
      return Error(Errc::kFormat, "input spec: unknown key '" + key + "'");
  auto int_field = [&](const char* key, int* out) -> Status {
    if (!j.contains(key) || !j[key].is_number_integer())
      return Error(Errc::kFormat, std::string("input spec: \"") + key + "\" must be an integer");
    const int64_t v = j[key].get<int64_t>();
    if (v < 0 || v > kMaxInputSide)
      return Error(Errc::kFormat, std::string("input spec: \"") + key + "\" out of range");
    *out = static_cast<int>(v);
    return Status::Ok();
  };
  InputSpec s;
  EDGELOOP_RETURN_IF_ERROR(int_field("channels", &s.channels));
  EDGELOOP_RETURN_IF_ERROR(int_field("height", &s.height));
  EDGELOOP_RETURN_IF_ERROR(int_field("width", &s.width));
  if (j.contains("resize")) {
    if (!j["resize"].is_string()) return Error(Errc::kFormat, "input spec: \"resize\" must be a string");
    EDGELOOP_ASSIGN_OR_RETURN(s.resize, ParseResizeMode(j["resize"].get<std::string>()));
  }
  auto floats = [&](const char* key, float fallback, std::vector<float>* out) -> Status {
    out->assign(static_cast<size_t>(std::max(s.channels, 0)), fallback);
    if (!j.contains(key)) return Status::Ok();
    const auto& a = j[key];
    if (!a.is_array() || a.size() > 3)
      return Error(Errc::kFormat, std::string("input spec: \"") + key + "\" must be a list of numbers, one per channel");
    out->clear();
    for (const auto& v : a) {
      if (!v.is_number())
        return Error(Errc::kFormat, std::string("input spec: \"") + key + "\" must hold numbers");
      out->push_back(v.get<float>());
    }
    return Status::Ok();
  };
  EDGELOOP_RETURN_IF_ERROR(floats("mean", 0.f, &s.mean));
  EDGELOOP_RETURN_IF_ERROR(floats("std", 1.f, &s.std));
  if (auto st = s.Validate(); !st.ok()) return Error(Errc::kFormat, st.error().message);
  return s;
}

Image ConvertImage(const Image& image, const InputSpec& spec) {
  const Image* src = &image;
  Image gray;
  if (image.channels == 3 && spec.channels == 1) {
    gray = ToGray(image);
    src = &gray;
  }
  const int64_t w = src->width, h = src->height, W = spec.width, H = spec.height;
  // The source is at least as wide as the target, in aspect ratio.
  const bool wider = w * H >= h * W;
  Image out;
  if (spec.resize == ResizeMode::kStretch) {
    out = Resize(*src, spec.width, spec.height);
  } else if (spec.resize == ResizeMode::kCenterCrop) {
    // The short side (relative to the target) fits; the other overhangs and is cropped.
    const int rw = wider ? static_cast<int>(std::max(W, MulDivRound(w, H, h))) : spec.width;
    const int rh = wider ? spec.height : static_cast<int>(std::max(H, MulDivRound(h, W, w)));
    Image scaled = Resize(*src, rw, rh);
    out = Blank(spec.width, spec.height, scaled.channels);
    Blit(scaled, (rw - spec.width) / 2, (rh - spec.height) / 2, spec.width, spec.height, out, 0,
         0);
  } else {
    // The long side fits; the rest of the target stays black.
    const int rw = wider ? spec.width : static_cast<int>(std::clamp<int64_t>(MulDivRound(w, H, h), 1, W));
    const int rh = wider ? static_cast<int>(std::clamp<int64_t>(MulDivRound(h, W, w), 1, H)) : spec.height;
    Image scaled = Resize(*src, rw, rh);
    out = Blank(spec.width, spec.height, scaled.channels);
    Blit(scaled, 0, 0, rw, rh, out, (spec.width - rw) / 2, (spec.height - rh) / 2);
  }
  if (out.channels == 1 && spec.channels == 3) return ToRgb(out);
  return out;
}

std::vector<float> NormalizeImage(const Image& converted, const InputSpec& spec) {
  const size_t plane = static_cast<size_t>(converted.width) * converted.height;
  const size_t c = static_cast<size_t>(converted.channels);
  std::vector<float> out(plane * c);
  for (size_t k = 0; k < c; ++k) {
    const float mean = spec.mean[k], std = spec.std[k];
    float* dst = out.data() + k * plane;
    for (size_t i = 0; i < plane; ++i) dst[i] = (PixelValue(converted.pixels[i * c + k]) - mean) / std;
  }
  return out;
}

Result<std::vector<float>> Preprocess(const Image& image, const InputSpec& spec) {
  EDGELOOP_RETURN_IF_ERROR(spec.Validate());
  if (image.width <= 0 || image.height <= 0 || (image.channels != 1 && image.channels != 3) ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * image.channels)
    return Error(Errc::kInvalidArgument, "not a decoded 1- or 3-channel image");
  return NormalizeImage(ConvertImage(image, spec), spec);
}

Image ImageFromChw(const uint8_t* chw, int channels, int height, int width) {
  Image img = Blank(width, height, channels);
  const size_t plane = static_cast<size_t>(width) * height;
  const size_t c = static_cast<size_t>(channels);
  for (size_t k = 0; k < c; ++k)
    for (size_t i = 0; i < plane; ++i) img.pixels[i * c + k] = chw[k * plane + i];
  return img;
}

std::vector<uint8_t> ImageToChw(const Image& image) {
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  const size_t c = static_cast<size_t>(image.channels);
  std::vector<uint8_t> out(plane * c);
  for (size_t k = 0; k < c; ++k)
    for (size_t i = 0; i < plane; ++i) out[k * plane + i] = image.pixels[i * c + k];
  return out;
}

}  // namespace edgeloop::data
