#include "cloud/report_svg.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

namespace edgeloop::cloud::report {

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Fmt(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string FmtShort(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

std::string FmtBytes(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  static const std::array<const char*, 5> units = {"B", "kB", "MB", "GB", "TB"};
  size_t u = 0;
  while (std::fabs(bytes) >= 1000 && u + 1 < units.size()) {
    bytes /= 1000;
    ++u;
  }
  return Fmt(bytes, u == 0 ? 0 : (std::fabs(bytes) < 10 ? 2 : 1)) + " " + units[u];
}

std::vector<double> NiceTicks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi <= lo || target < 1) return {lo};
  double raw = (hi - lo) / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

const std::string& PaletteColor(size_t i) {
  static const std::array<std::string, 10> colors = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1",
                                                     "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
                                                     "#e15759", "#bab0ac"};
  return colors[i % colors.size()];
}

SvgChart::SvgChart(std::string id, std::string title, int width, int height, int left_margin)
    : id_(std::move(id)),
      title_(std::move(title)),
      width_(width),
      height_(height),
      left_(left_margin),
      right_(width - 24),
      top_(36),
      bottom_(height - 64) {}

void SvgChart::SetX(double lo, double hi) {
  x_lo_ = lo;
  x_hi_ = hi > lo ? hi : lo + 1;
}

void SvgChart::SetY(double lo, double hi) {
  y_lo_ = lo;
  y_hi_ = hi > lo ? hi : lo + 1;
}

double SvgChart::X(double v) const {
  double x = left_ + (v - x_lo_) / (x_hi_ - x_lo_) * (right_ - left_);
  return std::clamp(x, left_, right_);
}

double SvgChart::Y(double v) const {
  double y = bottom_ - (v - y_lo_) / (y_hi_ - y_lo_) * (bottom_ - top_);
  return std::clamp(y, top_, bottom_);
}

void SvgChart::Text(double x, double y, const std::string& text, const std::string& attrs) {
  body_ += "<text x=\"" + Fmt(x, 1) + "\" y=\"" + Fmt(y, 1) + "\" " + attrs + ">" + Escape(text) +
           "</text>";
}

void SvgChart::XAxis(const std::string& label) {
  auto ticks = NiceTicks(x_lo_, x_hi_, 8);
  double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
  int decimals = step >= 1 ? 0 : (step >= 0.1 ? 1 : 2);
  for (double t : ticks) {
    if (t < x_lo_ - 1e-9 || t > x_hi_ + 1e-9) continue;
    std::string x = Fmt(X(t), 1);
    axes_ += "<line class=\"grid\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + Fmt(top_, 1) +
             "\" y2=\"" + Fmt(bottom_, 1) + "\"/>";
    axes_ += "<line class=\"tick\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + Fmt(bottom_, 1) +
             "\" y2=\"" + Fmt(bottom_ + 5, 1) + "\"/>";
    axes_ += "<text class=\"tick-label\" text-anchor=\"middle\" x=\"" + x + "\" y=\"" +
             Fmt(bottom_ + 18, 1) + "\">" + Fmt(t, decimals) + "</text>";
  }
  axes_ += "<line class=\"axis\" x1=\"" + Fmt(left_, 1) + "\" x2=\"" + Fmt(right_, 1) + "\" y1=\"" +
           Fmt(bottom_, 1) + "\" y2=\"" + Fmt(bottom_, 1) + "\"/>";
  axes_ += "<text class=\"axis-label\" text-anchor=\"middle\" x=\"" + Fmt((left_ + right_) / 2, 1) +
           "\" y=\"" + Fmt(bottom_ + 36, 1) + "\">" + Escape(label) + "</text>";
}

void SvgChart::YAxis(const std::string& label, double y_tick_scale, int decimals) {
  auto ticks = NiceTicks(y_lo_, y_hi_, 5);
  if (decimals < 0) {
    double step = ticks.size() > 1 ? (ticks[1] - ticks[0]) * y_tick_scale : 1;
    decimals = step >= 1 ? 0 : (step >= 0.1 ? 1 : 2);
  }
  for (double t : ticks) {
    if (t < y_lo_ - 1e-9 || t > y_hi_ + 1e-9) continue;
    std::string y = Fmt(Y(t), 1);
    axes_ += "<line class=\"grid\" x1=\"" + Fmt(left_, 1) + "\" x2=\"" + Fmt(right_, 1) +
             "\" y1=\"" + y + "\" y2=\"" + y + "\"/>";
    axes_ += "<text class=\"tick-label\" text-anchor=\"end\" x=\"" + Fmt(left_ - 6, 1) + "\" y=\"" +
             Fmt(Y(t) + 4, 1) + "\">" + Fmt(t * y_tick_scale, decimals) + "</text>";
  }
  axes_ += "<line class=\"axis\" x1=\"" + Fmt(left_, 1) + "\" x2=\"" + Fmt(left_, 1) + "\" y1=\"" +
           Fmt(top_, 1) + "\" y2=\"" + Fmt(bottom_, 1) + "\"/>";
  double cy = (top_ + bottom_) / 2;
  axes_ += "<text class=\"axis-label\" text-anchor=\"middle\" transform=\"translate(" +
           Fmt(left_ - 46, 1) + "," + Fmt(cy, 1) + ") rotate(-90)\">" + Escape(label) + "</text>";
}

int CategoryMargin(const std::vector<std::string>& labels) {
  size_t longest = 0;
  for (const auto& l : labels) longest = std::max(longest, l.size());
  // About 7.2 px per character of a 12 px sans-serif font (digits are wide), plus the gap.
  return std::clamp(static_cast<int>(14 + 7.2 * static_cast<double>(longest)), 64, 320);
}

void SvgChart::YCategories(const std::vector<std::string>& labels) {
  SetY(-0.5, static_cast<double>(labels.size()) - 0.5);
  for (size_t i = 0; i < labels.size(); ++i) {
    // Row 0 at the top, as a reader scans a timeline.
    double y = Y(static_cast<double>(labels.size() - 1 - i));
    axes_ += "<text class=\"tick-label\" text-anchor=\"end\" x=\"" + Fmt(left_ - 6, 1) + "\" y=\"" +
             Fmt(y + 4, 1) + "\">" + Escape(labels[i]) + "</text>";
    axes_ += "<line class=\"grid\" x1=\"" + Fmt(left_, 1) + "\" x2=\"" + Fmt(right_, 1) +
             "\" y1=\"" + Fmt(y, 1) + "\" y2=\"" + Fmt(y, 1) + "\"/>";
  }
  axes_ += "<line class=\"axis\" x1=\"" + Fmt(left_, 1) + "\" x2=\"" + Fmt(left_, 1) + "\" y1=\"" +
           Fmt(top_, 1) + "\" y2=\"" + Fmt(bottom_, 1) + "\"/>";
}

void SvgChart::XCategories(const std::vector<std::string>& labels, const std::string& label) {
  SetX(0, static_cast<double>(labels.size()));
  for (size_t i = 0; i < labels.size(); ++i)
    axes_ += "<text class=\"tick-label\" text-anchor=\"middle\" x=\"" +
             Fmt(X(static_cast<double>(i) + 0.5), 1) + "\" y=\"" + Fmt(bottom_ + 18, 1) + "\">" +
             Escape(labels[i]) + "</text>";
  axes_ += "<line class=\"axis\" x1=\"" + Fmt(left_, 1) + "\" x2=\"" + Fmt(right_, 1) + "\" y1=\"" +
           Fmt(bottom_, 1) + "\" y2=\"" + Fmt(bottom_, 1) + "\"/>";
  axes_ += "<text class=\"axis-label\" text-anchor=\"middle\" x=\"" + Fmt((left_ + right_) / 2, 1) +
           "\" y=\"" + Fmt(bottom_ + 36, 1) + "\">" + Escape(label) + "</text>";
}

void SvgChart::Legend(const std::vector<LegendEntry>& entries) {
  // One row under the x axis label, wrapping when it runs out of width.
  double x = left_, y = bottom_ + 54;
  for (const auto& e : entries) {
    double w = 28 + 7.0 * static_cast<double>(e.label.size()) + 16;
    if (x + w > right_ && x > left_) {
      x = left_;
      y += 16;
    }
    legend_ += "<g class=\"legend-entry\"><line x1=\"" + Fmt(x, 1) + "\" x2=\"" + Fmt(x + 20, 1) +
               "\" y1=\"" + Fmt(y - 4, 1) + "\" y2=\"" + Fmt(y - 4, 1) + "\" stroke=\"" +
               Escape(e.color) + "\" stroke-width=\"4\"" +
               (e.dashed ? " stroke-dasharray=\"5 3\"" : "") + "/><text x=\"" + Fmt(x + 26, 1) +
               "\" y=\"" + Fmt(y, 1) + "\">" + Escape(e.label) + "</text></g>";
    x += w;
  }
  legend_bottom_ = y;
}

void SvgChart::NoData(const std::string& why) {
  body_ += "<text class=\"no-data\" text-anchor=\"middle\" x=\"" + Fmt((left_ + right_) / 2, 1) +
           "\" y=\"" + Fmt((top_ + bottom_) / 2, 1) + "\">" + Escape(why) + "</text>";
}

std::string SvgChart::Finish() const {
  int height = std::max(height_, static_cast<int>(legend_bottom_) + 10);
  return "<svg id=\"" + Escape(id_) + "\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" " +
         "width=\"" + std::to_string(width_) + "\" height=\"" + std::to_string(height) +
         "\" viewBox=\"0 0 " + std::to_string(width_) + " " + std::to_string(height) +
         "\" role=\"img\"><title>" + Escape(title_) + "</title><text class=\"plot-title\" x=\"" +
         Fmt(left_, 1) + "\" y=\"22\">" + Escape(title_) + "</text>" + axes_ + body_ + legend_ +
         "</svg>";
}

}  // namespace edgeloop::cloud::report
