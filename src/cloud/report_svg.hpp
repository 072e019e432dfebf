// Drawing primitives for the HTML report: escaping, number formatting, "nice" axis ticks and
// an SvgChart that maps data coordinates into a plot area with axes, grid, ticks, labels and a
// legend. Everything is plain text (inline SVG); no scripts, no external resources.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgeloop::cloud::report {

// Escapes &, <, >, " and ' so text is safe in HTML/SVG text and in quoted attributes.
std::string Escape(std::string_view s);
// Fixed-point with the given decimals ("12.5"); non-finite values print as "-".
std::string Fmt(double v, int decimals);
// Four significant digits, no trailing zeros ("0.8590" -> "0.859", 2000 -> "2000").
std::string FmtShort(double v);
// 1234567 -> "1.23 MB" (decimal units, as network figures are usually quoted).
std::string FmtBytes(double bytes);
// About `target` round tick values (1, 2, 5 x 10^k steps) covering [lo, hi].
std::vector<double> NiceTicks(double lo, double hi, int target);

// A qualitative palette (Tableau 10): readable on white, distinguishable by most viewers.
const std::string& PaletteColor(size_t i);
inline constexpr const char* kRed = "#d62728";
inline constexpr const char* kRunning = "#b0b0b0";  // a run or step not finished yet
inline constexpr const char* kGreen = "#2ca02c";

struct LegendEntry {
  std::string label;
  std::string color;
  bool dashed = false;
};

// A left margin wide enough for the longest of these row labels at the plots' 12 px font
// (between 64 and 320 px), so that category labels are never cut off at the edge.
int CategoryMargin(const std::vector<std::string>& labels);

class SvgChart {
 public:
  // id becomes the <svg> id (tests and readers find plots by it).
  SvgChart(std::string id, std::string title, int width = 900, int height = 340,
           int left_margin = 64);

  void SetX(double lo, double hi);
  void SetY(double lo, double hi);
  // Data to pixel coordinates (clamped to the plot area).
  double X(double v) const;
  double Y(double v) const;
  double left() const { return left_; }
  double right() const { return right_; }
  double top() const { return top_; }
  double bottom() const { return bottom_; }

  // Numeric axes with grid lines, ticks and a label; y ticks are scaled by y_tick_scale for
  // display (100 for percentages).
  void XAxis(const std::string& label);
  void YAxis(const std::string& label, double y_tick_scale = 1, int decimals = -1);
  // Category axes: one label per row (y) or per group (x), rows numbered from 0.
  void YCategories(const std::vector<std::string>& labels);
  void XCategories(const std::vector<std::string>& labels, const std::string& label);

  // Appends raw SVG; callers escape any text they put in it.
  void Add(const std::string& element) { body_ += element; }
  void Text(double x, double y, const std::string& text, const std::string& attrs = "");
  void Legend(const std::vector<LegendEntry>& entries);
  // A centred "no data" note instead of a plot.
  void NoData(const std::string& why = "no data");

  std::string Finish() const;

 private:
  std::string id_, title_;
  int width_, height_;
  double left_, right_, top_, bottom_;
  double x_lo_ = 0, x_hi_ = 1, y_lo_ = 0, y_hi_ = 1;
  std::string axes_, body_, legend_;
  double legend_bottom_ = 0;
};

}  // namespace edgeloop::cloud::report
