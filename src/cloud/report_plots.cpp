#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "cloud/report_plots.hpp"
#include "cloud/report_svg.hpp"

namespace edgeloop::cloud::report {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string Attr(const char* name, double v) {
  return std::string(name) + "=\"" + Fmt(v, 1) + "\" ";
}

std::string Line(const std::string& cls, double x1, double y1, double x2, double y2,
                 const std::string& color, const std::string& extra = "") {
  return "<line class=\"" + cls + "\" " + Attr("x1", x1) + Attr("y1", y1) + Attr("x2", x2) +
         Attr("y2", y2) + "stroke=\"" + Escape(color) + "\" " + extra + "/>";
}

std::string Rect(const std::string& cls, double x, double y, double w, double h,
                 const std::string& fill, const std::string& extra, const std::string& tooltip) {
  return "<rect class=\"" + cls + "\" " + Attr("x", x) + Attr("y", y) +
         Attr("width", std::max(w, 1.0)) + Attr("height", h) + "fill=\"" + Escape(fill) + "\" " +
         extra + "><title>" + Escape(tooltip) + "</title></rect>";
}

// One polyline per device through its (t, value) points, in time order.
struct Series {
  std::map<std::string, std::vector<std::pair<double, double>>> points;
  double max_value = 0;
};

Series CollectSeries(const Json& list, const char* value_key) {
  Series s;
  for (const auto& p : list) {
    double t = Num(p, "t_s"), y = Num(p, value_key);
    std::string device = Str(p, "device");
    if (!std::isfinite(t) || !std::isfinite(y) || device.empty()) continue;
    s.points[device].emplace_back(t, y);
    s.max_value = std::max(s.max_value, y);
  }
  for (auto& [device, pts] : s.points) std::sort(pts.begin(), pts.end());
  return s;
}

void DrawSeries(SvgChart& c, const ReportView& v, const Series& s,
                std::vector<LegendEntry>* legend) {
  for (const auto& device : v.devices) {
    auto it = s.points.find(device);
    if (it == s.points.end()) continue;
    std::string pts;
    for (const auto& [t, y] : it->second) pts += Fmt(c.X(t), 1) + "," + Fmt(c.Y(y), 1) + " ";
    const std::string& color = v.DeviceColor(device);
    c.Add("<polyline class=\"series\" data-device=\"" + Escape(device) +
          "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\" points=\"" + pts +
          "\"><title>" + Escape(device) + "</title></polyline>");
    if (it->second.size() == 1)
      c.Add("<circle " + Attr("cx", c.X(it->second[0].first)) +
            Attr("cy", c.Y(it->second[0].second)) + "r=\"3\" fill=\"" + color + "\"/>");
    legend->push_back({device, color});
  }
}

// Shaded bands for the rollout stages, labelled at the top of the plot.
void DrawStageBands(SvgChart& c, const ReportView& v) {
  size_t k = 0;
  for (const auto& ro : Arr(*v.root, "rollouts")) {
    for (const auto& st : Arr(ro, "stages")) {
      double t0 = Num(st, "started_s"), t1 = Num(st, "finished_s");
      if (!std::isfinite(t0)) continue;
      if (!std::isfinite(t1)) t1 = v.t_hi;
      bool failed = Str(st, "result") == "failed";
      std::string label = Str(ro, "id") + " " + Str(st, "name");
      c.Add(Rect("stage-band", c.X(t0), c.top(), c.X(t1) - c.X(t0), c.bottom() - c.top(),
                 failed ? "#f4b6b6" : (k % 2 ? "#c9dbee" : "#dfe9d2"), "opacity=\"0.55\"",
                 label + ": " + Fmt(t0, 1) + "-" + Fmt(t1, 1) + " s"));
      // The stage's name only (the tooltip has the rollout), every other one a line higher,
      // so that a short canary band's label does not run into the next stage's.
      c.Text(c.X(t0) + 3, c.bottom() - 6 - 12.0 * static_cast<double>(k % 2), Str(st, "name"),
             "class=\"band-label\"");
      ++k;
    }
  }
}

void DrawDriftOnset(SvgChart& c, const ReportView& v, std::vector<LegendEntry>* legend) {
  double onset = Num(Obj(*v.root, "summary"), "drift_onset_s");
  if (!std::isfinite(onset)) return;
  c.Add(Line("drift-onset", c.X(onset), c.top(), c.X(onset), c.bottom(), "#555",
             "stroke-width=\"1.5\" stroke-dasharray=\"6 4\""));
  legend->push_back({"drift onset", "#555", true});
}

}  // namespace

std::string AccuracyPlot(const ReportView& v) {
  SvgChart c("plot-accuracy", "Accuracy on labelled samples per device, with model updates", 900,
             380);
  Series s = CollectSeries(Arr(Obj(*v.root, "series"), "accuracy"), "accuracy");
  if (s.points.empty()) {
    c.NoData();
    return c.Finish();
  }
  c.SetX(v.t_lo, v.t_hi);
  c.SetY(0, 1);
  DrawStageBands(c, v);
  c.XAxis("time since start (s)");
  c.YAxis("accuracy (%)", 100);
  std::vector<LegendEntry> legend;
  DrawSeries(c, v, s, &legend);
  DrawDriftOnset(c, v, &legend);
  // A marker per device update (the version it moved to) and per rollback. Without update
  // events, a change of model_version inside a device's accuracy series is the update.
  struct Marker {
    double t;
    std::string device, version;
    bool rollback;
  };
  std::vector<Marker> markers;
  for (const Json* e : v.Events("device_updated"))
    markers.push_back({Num(*e, "t_s"), Str(*e, "device"), Str(*e, "model_version"), false});
  for (const Json* e : v.Events("rollback"))
    markers.push_back({Num(*e, "t_s"), Str(*e, "device"), Str(*e, "model_version"), true});
  if (markers.empty()) {
    std::map<std::string, std::string> last;
    for (const auto& p : Arr(Obj(*v.root, "series"), "accuracy")) {
      std::string d = Str(p, "device"), ver = Str(p, "model_version");
      auto it = last.find(d);
      if (it != last.end() && !ver.empty() && it->second != ver)
        markers.push_back({Num(p, "t_s"), d, ver, false});
      if (!ver.empty()) last[d] = ver;
    }
  }
  size_t row = 0;
  for (const auto& m : markers) {
    if (!std::isfinite(m.t)) continue;
    std::string color = m.rollback ? kRed : (m.device.empty() ? "#333" : v.DeviceColor(m.device));
    std::string label = (m.rollback ? "rollback " : "") + m.version;
    double x = c.X(m.t);
    c.Add("<g class=\"" + std::string(m.rollback ? "rollback-marker" : "version-marker") +
          "\" data-device=\"" + Escape(m.device) + "\">" +
          Line("marker-line", x, c.top(), x, c.bottom(), color,
               "stroke-width=\"1.2\" stroke-dasharray=\"2 3\"") +
          "<text class=\"marker-label\" " + Attr("x", x + 2) +
          Attr("y", c.top() + 10 + 11.0 * (row % 4)) + "fill=\"" + color + "\">" + Escape(label) +
          "</text><title>" + Escape(m.device) + " at " + Fmt(m.t, 1) + " s: " + Escape(label) +
          "</title></g>");
    ++row;
  }
  legend.push_back({"model update (dotted, labelled)", "#333", true});
  c.Legend(legend);
  return c.Finish();
}

std::string RolloutTimeline(const ReportView& v) {
  // Rows: pipeline runs, rollout stages, then one row per device with its updates.
  std::vector<std::string> labels;
  struct Bar {
    size_t row;
    double t0, t1;
    std::string cls, color, tooltip;
  };
  std::vector<Bar> bars;
  for (const auto& run : Arr(*v.root, "runs")) {
    std::string status = Str(run, "status");
    // A run still going when the report was written is drawn as running, not as failed.
    bars.push_back({labels.size(), Num(run, "started_s"), Num(run, "finished_s"),
                    status == "running" || status == "queued" ? "run-bar run-running" : "run-bar",
                    status == "succeeded"                         ? "#4e79a7"
                    : status == "running" || status == "queued" ? kRunning
                                                                  : kRed,
                    Str(run, "id") + " (" + Str(run, "pipeline") + "): " + status});
    labels.push_back(Str(run, "id") + " " + Str(run, "pipeline"));
  }
  for (const auto& ro : Arr(*v.root, "rollouts")) {
    for (const auto& st : Arr(ro, "stages")) {
      std::string result = Str(st, "result");
      std::string devices;
      for (const auto& d : Arr(st, "devices"))
        devices +=
            (devices.empty() ? "" : ", ") + (d.is_string() ? d.get<std::string>() : d.dump());
      bars.push_back({labels.size(), Num(st, "started_s"), Num(st, "finished_s"), "stage-bar",
                      result == "failed" ? kRed : (result == "passed" ? kGreen : "#999"),
                      Str(ro, "id") + " " + Str(ro, "model_version") + " " + Str(st, "name") +
                          ": " + result + " [" + devices + "]"});
      labels.push_back(Str(ro, "id") + " " + Str(st, "name"));
    }
  }
  size_t first_device_row = labels.size();
  auto updates = v.Events("device_updated");
  auto rollbacks = v.Events("rollback");
  if (!updates.empty() || !rollbacks.empty())
    for (const auto& d : v.devices) labels.push_back(d);
  int height = 110 + 24 * static_cast<int>(std::max<size_t>(labels.size(), 3));
  SvgChart c("plot-rollout", "Rollout timeline: runs, stages, device updates and rollbacks", 900,
             height, CategoryMargin(labels));
  if (labels.empty()) {
    c.NoData();
    return c.Finish();
  }
  c.YCategories(labels);
  c.SetX(v.t_lo, v.t_hi);
  c.XAxis("time since start (s)");
  auto row_y = [&](size_t row) { return c.Y(static_cast<double>(labels.size() - 1 - row)); };
  for (const auto& b : bars) {
    if (!std::isfinite(b.t0)) continue;
    double t1 = std::isfinite(b.t1) ? b.t1 : v.t_hi;
    c.Add(Rect(b.cls, c.X(b.t0), row_y(b.row) - 8, c.X(t1) - c.X(b.t0), 16, b.color,
               "rx=\"3\" opacity=\"0.85\"",
               b.tooltip + " (" + Fmt(b.t0, 1) + "-" + Fmt(t1, 1) + " s)"));
  }
  auto device_row = [&](const std::string& d) -> double {
    auto it = std::find(v.devices.begin(), v.devices.end(), d);
    if (it == v.devices.end()) return kNaN;
    return row_y(first_device_row + static_cast<size_t>(it - v.devices.begin()));
  };
  for (const Json* e : updates) {
    double t = Num(*e, "t_s"), y = device_row(Str(*e, "device"));
    if (!std::isfinite(t) || !std::isfinite(y)) continue;
    c.Add("<circle class=\"device-update\" " + Attr("cx", c.X(t)) + Attr("cy", y) +
          "r=\"6\" fill=\"" + v.DeviceColor(Str(*e, "device")) + "\" stroke=\"#222\"><title>" +
          Escape(Str(*e, "device")) + " updated to " + Escape(Str(*e, "model_version")) + " at " +
          Fmt(t, 1) + " s</title></circle>");
  }
  for (const Json* e : rollbacks) {
    double t = Num(*e, "t_s"), y = device_row(Str(*e, "device"));
    if (!std::isfinite(t)) continue;
    std::string tip = "<title>rollback " + Escape(Str(*e, "device")) + " " +
                      Escape(Str(*e, "model_version")) + " at " + Fmt(t, 1) +
                      " s: " + Escape(Str(*e, "detail")) + "</title>";
    if (std::isfinite(y)) {
      double x = c.X(t);
      c.Add("<path class=\"rollback\" d=\"M" + Fmt(x - 6, 1) + " " + Fmt(y - 6, 1) + " L" +
            Fmt(x + 6, 1) + " " + Fmt(y + 6, 1) + " M" + Fmt(x - 6, 1) + " " + Fmt(y + 6, 1) +
            " L" + Fmt(x + 6, 1) + " " + Fmt(y - 6, 1) + "\" stroke=\"" + kRed +
            "\" stroke-width=\"3\">" + tip + "</path>");
    } else {
      c.Add("<g class=\"rollback\">" +
            Line("rollback-line", c.X(t), c.top(), c.X(t), c.bottom(), kRed, "stroke-width=\"2\"") +
            tip + "</g>");
    }
  }
  c.Legend({{"pipeline run", "#4e79a7"},
            {"run still running", kRunning},
            {"stage passed", kGreen},
            {"stage failed / run failed", kRed},
            {"device updated (dot)", "#333"},
            {"rollback (red cross)", kRed}});
  return c.Finish();
}

std::string LatencyPlot(const ReportView& v) {
  SvgChart c("plot-latency", "On-device inference latency (p50) per device", 900, 340);
  Series s = CollectSeries(Arr(Obj(*v.root, "series"), "latency"), "p50_us");
  if (s.points.empty()) {
    c.NoData();
    return c.Finish();
  }
  c.SetX(v.t_lo, v.t_hi);
  c.SetY(0, s.max_value > 0 ? s.max_value * 1.15 : 1);
  c.XAxis("time since start (s)");
  c.YAxis("latency p50 (\u00b5s)");
  std::vector<LegendEntry> legend;
  DrawSeries(c, v, s, &legend);
  DrawDriftOnset(c, v, &legend);
  c.Legend(legend);
  return c.Finish();
}

std::string BytesPlot(const ReportView& v) {
  SvgChart c("plot-bytes", "Bytes moved per device: data up, model down (full against delta)", 900,
             340, 72);
  const Json& devices = Arr(*v.root, "devices");
  if (devices.empty()) {
    c.NoData();
    return c.Finish();
  }
  static const char* kKeys[] = {"bytes_up", "bytes_down_full", "bytes_down_delta"};
  static const char* kClasses[] = {"bar bar-up", "bar bar-down-full", "bar bar-down-delta"};
  static const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f"};
  double max_value = 0;
  std::vector<std::string> names;
  for (const auto& d : devices) {
    names.push_back(Str(d, "id"));
    for (const char* k : kKeys)
      if (std::isfinite(Num(d, k))) max_value = std::max(max_value, Num(d, k));
  }
  double unit = max_value >= 1e6 ? 1e6 : (max_value >= 1e3 ? 1e3 : 1);
  c.XCategories(names, "device");
  c.SetY(0, max_value > 0 ? max_value * 1.15 : 1);
  c.YAxis(unit == 1e6 ? "MB" : (unit == 1e3 ? "kB" : "bytes"), 1 / unit);
  for (size_t i = 0; i < names.size(); ++i) {
    double slot = (c.X(static_cast<double>(i) + 1) - c.X(static_cast<double>(i))) * 0.8;
    double w = slot / 3;
    for (size_t k = 0; k < 3; ++k) {
      double value = Num(devices[i], kKeys[k]);
      if (!std::isfinite(value)) continue;
      double x = c.X(static_cast<double>(i) + 0.1) + w * static_cast<double>(k);
      c.Add(Rect(kClasses[k], x, c.Y(value), w - 2, c.bottom() - c.Y(value), kColors[k], "",
                 names[i] + " " + kKeys[k] + ": " + FmtBytes(value)));
      c.Text(x + w / 2 - 1, c.Y(value) - 4, FmtBytes(value),
             "class=\"bar-label\" text-anchor=\"middle\"");
    }
  }
  c.Legend({{"data up", kColors[0]},
            {"model down, full", kColors[1]},
            {"model down, delta", kColors[2]}});
  return c.Finish();
}

std::string RunsSection(const ReportView& v) {
  const Json& runs = Arr(*v.root, "runs");
  std::vector<std::string> step_names, labels;
  double longest = 0;
  for (const auto& run : runs) {
    double total = 0;
    for (const auto& st : Arr(run, "steps")) {
      if (std::find(step_names.begin(), step_names.end(), Str(st, "name")) == step_names.end())
        step_names.push_back(Str(st, "name"));
      if (std::isfinite(Num(st, "duration_s"))) total += Num(st, "duration_s");
    }
    longest = std::max(longest, total);
    labels.push_back(Str(run, "id") + " " + Str(run, "status"));
  }
  SvgChart c("plot-runs", "Pipeline runs: where the time goes, step by step", 900,
             110 + 28 * static_cast<int>(std::max<size_t>(labels.size(), 3)),
             CategoryMargin(labels));
  if (runs.empty()) {
    c.NoData();
    return c.Finish() + "<p class=\"no-data\">no gates: no pipeline runs</p>";
  }
  c.YCategories(labels);
  c.SetX(0, longest > 0 ? longest * 1.05 : 1);
  c.XAxis("duration (s), steps stacked in order");
  std::string tables;
  for (size_t r = 0; r < runs.size(); ++r) {
    const Json& run = runs[r];
    double y = c.Y(static_cast<double>(runs.size() - 1 - r)), t = 0;
    for (const auto& st : Arr(run, "steps")) {
      double d = Num(st, "duration_s");
      if (!std::isfinite(d) || d < 0) continue;
      size_t color = static_cast<size_t>(
          std::find(step_names.begin(), step_names.end(), Str(st, "name")) - step_names.begin());
      const std::string step_status = Str(st, "status");
      bool ok = step_status == "succeeded" || step_status == "running";
      c.Add(Rect(std::string("step") + (ok ? "" : " step-failed"), c.X(t), y - 10,
                 c.X(t + d) - c.X(t), 20, PaletteColor(color),
                 step_status == "running" ? "stroke=\"#888\" stroke-dasharray=\"4 2\""
                 : ok                     ? "stroke=\"#fff\""
                                          : "stroke=\"#d62728\" stroke-width=\"3\"",
                 Str(st, "name") + ": " + Str(st, "status") + ", " + Fmt(d, 1) + " s " +
                     Str(st, "detail")));
      t += d;
    }
    c.Text(c.X(t) + 4, y + 4, Fmt(t, 1) + " s", "class=\"bar-label\"");
    tables += "<h4>" + Escape(Str(run, "id")) + " &middot; " + Escape(Str(run, "pipeline")) +
              " &middot; trigger " + Escape(Str(run, "trigger")) +
              " &middot; <span class=\"status-" + Escape(Str(run, "status")) + "\">" +
              Escape(Str(run, "status")) + "</span></h4>";
    const Json& gates = Arr(run, "gates");
    if (gates.empty()) {
      tables += "<p class=\"no-data\">no gates recorded</p>";
      continue;
    }
    tables +=
        "<table class=\"gates\"><tr><th class=\"t\">gate</th><th>value</th><th>threshold</th>"
        "<th>result</th></tr>";
    for (const auto& g : gates) {
      bool passed = g.is_object() && g.contains("passed") && g["passed"].is_boolean() &&
                    g["passed"].get<bool>();
      tables += std::string("<tr class=\"gate ") + (passed ? "gate-pass" : "gate-fail") +
                "\"><td class=\"t\"><code>" + Escape(Str(g, "expr")) + "</code></td><td>" +
                FmtShort(Num(g, "value")) + "</td><td>" + FmtShort(Num(g, "threshold")) +
                "</td><td>" + (passed ? "pass" : "FAIL") + "</td></tr>";
    }
    tables += "</table>";
  }
  std::vector<LegendEntry> legend;
  for (size_t i = 0; i < step_names.size(); ++i) legend.push_back({step_names[i], PaletteColor(i)});
  legend.push_back({"failed step (red outline)", kRed});
  c.Legend(legend);
  return c.Finish() + tables;
}

}  // namespace edgeloop::cloud::report
