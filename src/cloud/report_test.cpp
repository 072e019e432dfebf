#include "cloud/report.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "cloud/report_svg.hpp"
#include "common/file.hpp"

namespace edgeloop::cloud {
namespace {

using Json = nlohmann::json;

Json Fixture() {
  auto text = ReadFile(std::string(EDGELOOP_TEST_SOURCE_DIR) + "/tests/data/report.json");
  if (!text.ok()) throw std::runtime_error(text.error().message);
  return Json::parse(*text);
}

// The <svg> element with the given id, or "" when the page has none.
std::string Svg(const std::string& html, const std::string& id) {
  size_t at = html.find("<svg id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  size_t end = html.find("</svg>", at);
  return end == std::string::npos ? "" : html.substr(at, end + 6 - at);
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(HtmlReport, EveryPlotHasOneSeriesPerDeviceAndAMarkerPerUpdate) {
  std::string html = RenderHtmlReport(Fixture());
  std::string accuracy = Svg(html, "plot-accuracy");
  ASSERT_FALSE(accuracy.empty());
  EXPECT_EQ(Count(accuracy, "<polyline class=\"series\""), 3u);
  EXPECT_EQ(Count(accuracy, "class=\"version-marker\""), 3u);  // three device_updated events
  EXPECT_EQ(Count(accuracy, "class=\"stage-band\""), 2u);      // canary and wave-1
  EXPECT_EQ(Count(accuracy, "class=\"drift-onset\""), 1u);
  EXPECT_NE(accuracy.find(">fmnist-cnn:2</text>"), std::string::npos);
  EXPECT_EQ(Count(accuracy, "class=\"legend-entry\""), 5u);  // 3 devices, onset, update

  std::string rollout = Svg(html, "plot-rollout");
  EXPECT_EQ(Count(rollout, "class=\"run-bar\""), 2u);
  EXPECT_EQ(Count(rollout, "class=\"stage-bar\""), 2u);
  EXPECT_EQ(Count(rollout, "class=\"device-update\""), 3u);
  EXPECT_EQ(Count(rollout, "class=\"rollback\""), 0u);

  EXPECT_EQ(Count(Svg(html, "plot-latency"), "<polyline class=\"series\""), 3u);

  std::string bytes = Svg(html, "plot-bytes");
  EXPECT_EQ(Count(bytes, "class=\"bar bar-up\""), 3u);
  EXPECT_EQ(Count(bytes, "class=\"bar bar-down-full\""), 3u);
  EXPECT_EQ(Count(bytes, "class=\"bar bar-down-delta\""), 3u);

  std::string runs = Svg(html, "plot-runs");
  EXPECT_EQ(Count(runs, "<rect class=\"step"), 10u);  // 6 steps + 4 steps
  EXPECT_EQ(Count(runs, "class=\"step step-failed\""), 1u);
  // Gates: run-1 passes 3 of 3, run-2 fails one of 2.
  EXPECT_EQ(Count(html, "<tr class=\"gate gate-pass\">"), 4u);
  EXPECT_EQ(Count(html, "<tr class=\"gate gate-fail\">"), 1u);
  EXPECT_EQ(Count(html, "<tr class=\"device-row\">"), 3u);
}

// The x of the right-aligned row label with this text in a plot, or -1.
double RowLabelX(const std::string& svg, const std::string& text) {
  size_t end = svg.find(">" + text + "</text>");
  if (end == std::string::npos) return -1;
  size_t start = svg.rfind("<text class=\"tick-label\"", end);
  size_t x = svg.find("x=\"", start);
  return start == std::string::npos || x == std::string::npos || x > end
             ? -1
             : std::stod(svg.substr(x + 3));
}

TEST(HtmlReport, LongRowLabelsGetAMarginWideEnoughToShowThem) {
  Json report = Fixture();
  report["runs"][0]["id"] = "run-1796174893111-0d12";
  std::string html = RenderHtmlReport(report);
  const std::string run = "run-1796174893111-0d12";
  for (const auto& [plot, label] :
       {std::pair<std::string, std::string>{
            "plot-rollout", run + " " + report["runs"][0]["pipeline"].get<std::string>()},
        {"plot-runs", run + " " + report["runs"][0]["status"].get<std::string>()}}) {
    double x = RowLabelX(Svg(html, plot), label);
    // Right-aligned at x: the text needs about 6 px a character to its left (12 px font).
    EXPECT_GE(x, 6.0 * static_cast<double>(label.size())) << plot << ": " << label;
  }
  EXPECT_EQ(report::CategoryMargin({"a"}), 64);
  EXPECT_EQ(report::CategoryMargin({std::string(200, 'x')}), 320);
}

TEST(HtmlReport, HeaderStatesAccuracyTimeToFleetAndBytes) {
  std::string html = RenderHtmlReport(Fixture());
  EXPECT_NE(html.find("42.7% \u2192 85.9%"), std::string::npos);
  EXPECT_NE(html.find("121.7 s"), std::string::npos);  // drift onset to whole fleet
  EXPECT_NE(html.find("<td>31.0%</td><td>87.4%</td>"), std::string::npos);  // dev-1
  // Model down over 3 devices: 2.49 MB full against 912.7 kB with deltas.
  EXPECT_NE(html.find("2.49 MB / 912.7 kB"), std::string::npos);
}

TEST(HtmlReport, IsSelfContained) {
  std::string html = RenderHtmlReport(Fixture());
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
}

TEST(HtmlReport, EscapesStringsFromTheReport) {
  Json r = Fixture();
  r["devices"][0]["id"] = "<script>alert(1)</script>";
  r["devices"][0]["domain"] = "\"><img src=x onerror=alert(1)>";
  for (auto& p : r["series"]["accuracy"])
    if (p["device"] == "dev-1") p["device"] = "<script>alert(1)</script>";
  r["runs"][0]["gates"][0]["expr"] = "a < b && c > d";
  r["config"]["note"] = "</pre><script>x</script>";
  std::string html = RenderHtmlReport(r);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("a &lt; b &amp;&amp; c &gt; d"), std::string::npos);
  // The renamed device still gets its own series.
  EXPECT_EQ(Count(Svg(html, "plot-accuracy"), "<polyline class=\"series\""), 3u);
}

TEST(HtmlReport, EmptyOrMistypedReportRendersNoDataEverywhere) {
  for (const Json& r : {Json::object(), Json::array(), Json(nullptr),
                        Json{{"devices", "x"},
                             {"series", 3},
                             {"runs", {{"steps", 1}}},
                             {"summary", {{"drift_onset_s", "soon"}}}}}) {
    std::string html = RenderHtmlReport(r);
    for (const char* id : {"plot-accuracy", "plot-rollout", "plot-latency", "plot-bytes"}) {
      std::string svg = Svg(html, id);
      ASSERT_FALSE(svg.empty()) << id << " for " << r.dump();
      EXPECT_NE(svg.find(">no data</text>"), std::string::npos) << id << " for " << r.dump();
    }
    EXPECT_EQ(Count(html, "<polyline"), 0u);
    EXPECT_NE(html.find("no devices in this report"), std::string::npos);
  }
}

TEST(HtmlReport, RollbacksAreDrawnInRedAndUpdatesFallBackToVersionChanges) {
  Json r = Fixture();
  Json events = Json::array();
  for (const auto& e : r["events"])
    if (e["kind"] != "device_updated") events.push_back(e);
  events.push_back({{"t_s", 170.0},
                    {"kind", "rollback"},
                    {"device", "dev-2"},
                    {"model_version", "fmnist-cnn:2"},
                    {"detail", "accuracy fell below the canary criterion"}});
  r["events"] = events;
  r["rollouts"][0]["status"] = "rolled_back";
  r["rollouts"][0]["stages"][1]["result"] = "failed";
  std::string html = RenderHtmlReport(r);
  std::string accuracy = Svg(html, "plot-accuracy");
  EXPECT_EQ(Count(accuracy, "class=\"rollback-marker\""), 1u);
  EXPECT_EQ(Count(accuracy, "class=\"version-marker\""), 0u);  // events present, none updates
  std::string rollout = Svg(html, "plot-rollout");
  EXPECT_EQ(Count(rollout, "<path class=\"rollback\""), 1u);
  EXPECT_NE(rollout.find("stroke=\"#d62728\""), std::string::npos);
  EXPECT_NE(rollout.find("fill=\"#d62728\""), std::string::npos);  // the failed stage

  // With no events at all, each device's change of model_version in its series is the update.
  r.erase("events");
  EXPECT_EQ(Count(Svg(RenderHtmlReport(r), "plot-accuracy"), "class=\"version-marker\""), 3u);
}

TEST(HtmlReport, ARunStillRunningIsDrawnAsRunningNotAsFailed) {
  Json r = Fixture();
  ASSERT_FALSE(r["runs"].empty());
  Json& run = r["runs"][0];
  run["status"] = "running";
  run["finished_s"] = nullptr;
  ASSERT_FALSE(run["steps"].empty());
  run["steps"].back()["status"] = "running";
  std::string html = RenderHtmlReport(r);
  std::string rollout = Svg(html, "plot-rollout");
  EXPECT_EQ(Count(rollout, "class=\"run-bar run-running\""), 1u);
  size_t bar = rollout.find("class=\"run-bar run-running\"");
  ASSERT_NE(bar, std::string::npos);
  const std::string bar_tag = rollout.substr(bar, rollout.find('>', bar) - bar);
  EXPECT_EQ(bar_tag.find(report::kRed), std::string::npos) << bar_tag;
  EXPECT_NE(bar_tag.find(report::kRunning), std::string::npos) << bar_tag;
  // The running step is not outlined as failed: no more failed outlines than before.
  EXPECT_EQ(Count(Svg(html, "plot-runs"), "step-failed"),
            Count(Svg(RenderHtmlReport(Fixture()), "plot-runs"), "step-failed"));
}

TEST(HtmlReport, WriteCreatesTheFolderAndReportsUnwritablePaths) {
  auto dir =
      std::filesystem::temp_directory_path() / ("edgeloop-report-" + std::to_string(getpid()));
  std::string out = (dir / "report" / "index.html").string();
  ASSERT_TRUE(WriteHtmlReport(Fixture(), out).ok());
  auto text = ReadFile(out);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, RenderHtmlReport(Fixture()));
  std::filesystem::remove_all(dir);
  Status st = WriteHtmlReport(Fixture(), "/proc/edgeloop-no/index.html");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("/proc/edgeloop-no/index.html"), std::string::npos);
}

// The page as a real browser sees it: Chromium's headless shell (Debian
// chromium-headless-shell, installed by scripts/setup) loads a copy of the report with a
// probe script appended that writes, for each plot, the rendered size of what was drawn.
TEST(HtmlReport, RendersItsPlotsInAHeadlessBrowser) {
  const char* browser = "/usr/bin/chromium-headless-shell";
  if (access(browser, X_OK) != 0) GTEST_SKIP() << browser << " not installed (scripts/setup)";
  auto dir =
      std::filesystem::temp_directory_path() / ("edgeloop-browser-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string html = RenderHtmlReport(Fixture());
  std::string probe =
      "<script>for (const s of document.querySelectorAll('svg.plot')) {"
      "const b = s.getBBox(); const p = document.createElement('p'); p.className = 'probe';"
      "p.textContent = s.id + ' ' + Math.round(b.width) + 'x' + Math.round(b.height) + ' ' +"
      "s.querySelectorAll('polyline').length; document.body.appendChild(p);}</script>";
  html.insert(html.rfind("</body>"), probe);
  ASSERT_TRUE(WriteFileAtomic((dir / "index.html").string(), html).ok());
  std::string cmd = "timeout 120 " + std::string(browser) +
                    " --no-sandbox --disable-gpu --dump-dom file://" +
                    (dir / "index.html").string() + " 2>/dev/null";
  std::string dom;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) dom.append(buf, n);
    pclose(p);
  }
  std::filesystem::remove_all(dir);
  ASSERT_NE(dom.find("<p class=\"probe\">"), std::string::npos) << "no probe output:\n"
                                                                << dom.substr(0, 500);
  for (const char* id :
       {"plot-accuracy", "plot-rollout", "plot-latency", "plot-bytes", "plot-runs"}) {
    size_t at = dom.find(std::string("<p class=\"probe\">") + id + " ");
    ASSERT_NE(at, std::string::npos) << id;
    int w = 0, h = 0, lines = 0;
    ASSERT_EQ(std::sscanf(dom.c_str() + at + 17 + std::strlen(id), " %dx%d %d", &w, &h, &lines), 3)
        << id;
    // Drawn content spans most of the 900-pixel-wide plot and has height.
    EXPECT_GT(w, 600) << id;
    EXPECT_GT(h, 100) << id;
    if (std::string(id) == "plot-accuracy" || std::string(id) == "plot-latency") {
      EXPECT_EQ(lines, 3) << id;
    }
  }
}

}  // namespace
}  // namespace edgeloop::cloud
