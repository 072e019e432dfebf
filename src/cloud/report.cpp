#include "cloud/report.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>

#include "cloud/report_plots.hpp"
#include "cloud/report_svg.hpp"
#include "common/file.hpp"

namespace edgeloop::cloud {
namespace report {

const Json& Arr(const Json& j, const char* key) {
  static const Json kEmpty = Json::array();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : kEmpty;
}

const Json& Obj(const Json& j, const char* key) {
  static const Json kEmpty = Json::object();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

double Num(const Json& j, const char* key) {
  if (j.is_object()) {
    auto it = j.find(key);
    if (it != j.end() && it->is_number()) return it->get<double>();
  }
  return std::numeric_limits<double>::quiet_NaN();
}

std::string Str(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>()
                         : it->dump(-1, ' ', false, Json::error_handler_t::replace);
}

ReportView::ReportView(const Json& report) : root(&report) {
  auto add = [this](const std::string& d) {
    if (!d.empty() && device_index.emplace(d, devices.size()).second) devices.push_back(d);
  };
  for (const auto& d : Arr(report, "devices")) add(Str(d, "id"));
  const Json& series = Obj(report, "series");
  for (const char* name : {"accuracy", "latency", "drift"})
    for (const auto& p : Arr(series, name)) add(Str(p, "device"));
  for (const auto& e : Arr(report, "events")) add(Str(e, "device"));
  // The time axis spans every timestamp in the report, starting at 0 (the demo's start).
  double hi = 0, lo = 0;
  auto see = [&](double t) {
    if (!std::isfinite(t)) return;
    hi = std::max(hi, t);
    lo = std::min(lo, t);
  };
  for (const char* name : {"accuracy", "latency", "drift"})
    for (const auto& p : Arr(series, name)) see(Num(p, "t_s"));
  for (const auto& e : Arr(report, "events")) see(Num(e, "t_s"));
  for (const auto& r : Arr(report, "runs")) {
    see(Num(r, "started_s"));
    see(Num(r, "finished_s"));
  }
  for (const auto& ro : Arr(report, "rollouts"))
    for (const auto& st : Arr(ro, "stages")) {
      see(Num(st, "started_s"));
      see(Num(st, "finished_s"));
    }
  t_lo = lo;
  t_hi = hi > lo ? hi : lo + 1;
}

const std::string& ReportView::DeviceColor(const std::string& device) const {
  auto it = device_index.find(device);
  return PaletteColor(it == device_index.end() ? 9 : it->second);
}

std::vector<const Json*> ReportView::Events(const std::string& kind) const {
  std::vector<const Json*> out;
  for (const auto& e : Arr(*root, "events"))
    if (Str(e, "kind") == kind) out.push_back(&e);
  std::stable_sort(out.begin(), out.end(),
                   [](const Json* a, const Json* b) { return Num(*a, "t_s") < Num(*b, "t_s"); });
  return out;
}

}  // namespace report

namespace {

using report::Arr;
using report::Escape;
using report::Fmt;
using report::FmtBytes;
using report::Json;
using report::Num;
using report::Obj;
using report::Str;

constexpr const char* kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:24px auto;max-width:960px;color:#222;line-height:1.4}
h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:170px}
.card .v{font-size:1.5em;font-weight:600}.card .k{color:#666;font-size:.85em}
table{border-collapse:collapse;margin:8px 0;display:block;max-width:100%;overflow-x:auto}td,th{border:1px solid #ddd;padding:4px 8px;
text-align:right;white-space:nowrap}th{background:#f4f4f4}td.t,th.t{text-align:left}
.gate-pass td:last-child{color:#2ca02c;font-weight:600}
.gate-fail td:last-child{color:#d62728;font-weight:600}
.up{color:#2ca02c}.down{color:#d62728}.no-data{color:#888;font-style:italic}
.status-failed,.status-rejected,.status-rolled_back,.status-aborted{color:#d62728}
svg.plot{display:block;margin:8px 0;font-size:12px}svg .grid{stroke:#eee}
svg .axis,svg .tick{stroke:#444}svg .plot-title{font-size:14px;font-weight:600}
svg .axis-label{font-size:12px;fill:#333}svg .tick-label{fill:#444}
svg .band-label,svg .bar-label,svg .marker-label{font-size:10px;fill:#333}
svg text.no-data{font-size:16px;fill:#888}
pre{background:#f7f7f7;padding:8px;overflow:auto}
)";

std::string Percent(double v) {
  return std::isfinite(v) ? Fmt(v * 100, 1) + "%" : "-";
}

std::string UtcTime(double unix_s) {
  if (!std::isfinite(unix_s) || unix_s <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string Card(const std::string& value, const std::string& label) {
  return "<div class=\"card\"><div class=\"v\">" + Escape(value) + "</div><div class=\"k\">" +
         Escape(label) + "</div></div>";
}

double SumOf(const Json& devices, const char* key) {
  double sum = 0;
  bool any = false;
  for (const auto& d : devices)
    if (std::isfinite(Num(d, key))) {
      sum += Num(d, key);
      any = true;
    }
  return any ? sum : std::numeric_limits<double>::quiet_NaN();
}

std::string Summary(const Json& r) {
  const Json& s = Obj(r, "summary");
  const Json& devices = Arr(r, "devices");
  double to_fleet = Num(s, "time_to_fleet_s");
  if (!std::isfinite(to_fleet)) to_fleet = Num(s, "fleet_updated_s") - Num(s, "drift_onset_s");
  double full = SumOf(devices, "bytes_down_full"), delta = SumOf(devices, "bytes_down_delta");
  std::string saving = std::isfinite(full) && std::isfinite(delta) && full > 0
                           ? " (" + Fmt(100 * (1 - delta / full), 1) + "% less)"
                           : "";
  std::string out = "<div class=\"cards\">";
  out += Card(std::to_string(devices.size()), "devices");
  out += Card(
      Percent(Num(s, "accuracy_before_mean")) + " \u2192 " + Percent(Num(s, "accuracy_after_mean")),
      "mean accuracy, before \u2192 after");
  out += Card(std::isfinite(to_fleet) ? Fmt(to_fleet, 1) + " s" : "-",
              "drift onset \u2192 whole fleet updated");
  out += Card(FmtBytes(SumOf(devices, "bytes_up")), "data up, all devices");
  out += Card(FmtBytes(full) + " / " + FmtBytes(delta), "model down: full / delta" + saving);
  out += "</div>";
  if (devices.empty()) return out + "<p class=\"no-data\">no devices in this report</p>";
  out +=
      "<table class=\"devices\"><tr><th class=\"t\">device</th><th "
      "class=\"t\">domain</th><th>accuracy before</th>"
      "<th>accuracy after</th><th>change</th><th class=\"t\">model before</th><th "
      "class=\"t\">model after</th>"
      "<th>bytes up</th><th>down, full</th><th>down, delta</th></tr>";
  for (const auto& d : devices) {
    double before = Num(d, "accuracy_before"), after = Num(d, "accuracy_after");
    double change = after - before;
    std::string cls = !std::isfinite(change) ? "" : (change >= 0 ? "up" : "down");
    out += "<tr class=\"device-row\"><td class=\"t\">" + Escape(Str(d, "id")) +
           "</td><td class=\"t\">" + Escape(Str(d, "domain")) + "</td><td>" + Percent(before) +
           "</td><td>" + Percent(after) + "</td><td class=\"" + cls + "\">" +
           (std::isfinite(change) ? (change >= 0 ? "+" : "") + Fmt(change * 100, 1) + " pt" : "-") +
           "</td><td class=\"t\">" + Escape(Str(d, "model_version_before")) +
           "</td><td class=\"t\">" + Escape(Str(d, "model_version_after")) + "</td><td>" +
           FmtBytes(Num(d, "bytes_up")) + "</td><td>" + FmtBytes(Num(d, "bytes_down_full")) +
           "</td><td>" + FmtBytes(Num(d, "bytes_down_delta")) + "</td></tr>";
  }
  return out + "</table>";
}

std::string EventsTable(const Json& r) {
  std::vector<const Json*> events;
  for (const auto& e : Arr(r, "events")) events.push_back(&e);
  if (events.empty()) return "<p class=\"no-data\">no data</p>";
  std::stable_sort(events.begin(), events.end(),
                   [](const Json* a, const Json* b) { return Num(*a, "t_s") < Num(*b, "t_s"); });
  std::string out =
      "<details><summary>" + std::to_string(events.size()) +
      " events</summary><table class=\"events\"><tr><th>t (s)</th><th class=\"t\">kind</th>"
      "<th class=\"t\">device</th><th class=\"t\">model version</th>"
      "<th class=\"t\">detail</th></tr>";
  for (const Json* e : events)
    out += "<tr><td>" + Fmt(Num(*e, "t_s"), 1) + "</td><td class=\"t\">" + Escape(Str(*e, "kind")) +
           "</td><td class=\"t\">" + Escape(Str(*e, "device")) + "</td><td class=\"t\">" +
           Escape(Str(*e, "model_version")) + "</td><td class=\"t\">" + Escape(Str(*e, "detail")) +
           "</td></tr>";
  return out + "</table></details>";
}

}  // namespace

std::string RenderHtmlReport(const nlohmann::json& in) {
  // Anything but an object renders as an empty report.
  static const Json kEmpty = Json::object();
  const Json& r = in.is_object() ? in : kEmpty;
  report::ReportView view(r);
  double started = Num(r, "started_unix"), finished = Num(r, "finished_unix");
  std::string html =
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      "<title>edgeloop demo report</title><style>";
  html += kStyle;
  html += "</style></head><body><h1>edgeloop demo report</h1><p class=\"meta\">edgeloop " +
          Escape(Str(r, "edgeloop_version")) + " &middot; started " + UtcTime(started) +
          " &middot; finished " + UtcTime(finished);
  if (std::isfinite(finished - started) && finished >= started)
    html += " &middot; " + Fmt(finished - started, 0) + " s";
  html += "</p><h2>Summary</h2>" + Summary(r);
  html += "<h2>Accuracy over time</h2>" + report::AccuracyPlot(view);
  html += "<h2>Rollout timeline</h2>" + report::RolloutTimeline(view);
  html += "<h2>Latency</h2>" + report::LatencyPlot(view);
  html += "<h2>Bytes up and down</h2>" + report::BytesPlot(view);
  html += "<h2>Pipeline runs and gates</h2>" + report::RunsSection(view);
  html += "<h2>Events</h2>" + EventsTable(r);
  const Json& config = Obj(r, "config");
  html += "<h2>Configuration</h2>";
  html +=
      config.empty()
          ? "<p class=\"no-data\">no data</p>"
          : "<pre>" + Escape(config.dump(2, ' ', false, Json::error_handler_t::replace)) + "</pre>";
  return html + "</body></html>\n";
}

Status WriteHtmlReport(const nlohmann::json& report, const std::string& out_html) {
  std::string dir = std::filesystem::path(out_html).parent_path().string();
  if (!dir.empty()) {
    Status st = MakeDirs(dir);
    if (!st.ok()) return st.error().WithContext("report " + out_html);
  }
  Status st = WriteFileAtomic(out_html, RenderHtmlReport(report));
  if (!st.ok()) return st.error().WithContext("report " + out_html);
  return Status::Ok();
}

}  // namespace edgeloop::cloud
