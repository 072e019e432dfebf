// edgeloop report: renders the report JSON of a demo run (docs/report.md) as one
// self-contained HTML page with plots. `edgeloop demo` does this itself at the end of a run;
// this command re-renders a kept report.json.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cloud/report.hpp"
#include "common/file.hpp"

namespace edgeloop::cli {
namespace {

int Run(const std::string& in, const std::string& out) {
  auto text = ReadFile(in, size_t{256} << 20);
  if (!text.ok()) return ReportError("report", text.error());
  auto report = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded() || !report.is_object())
    return ReportError("report", Error(Errc::kFormat, in + ": not a JSON object"));
  Status st = cloud::WriteHtmlReport(report, out);
  if (!st.ok()) return ReportError("report", st.error());
  std::printf("report: %s\n", out.c_str());
  return kExitOk;
}

}  // namespace

void RegisterReport(CLI::App& root) {
  auto in = std::make_shared<std::string>("report/report.json");
  auto out = std::make_shared<std::string>("report/index.html");
  auto* sub = root.add_subcommand(
      "report", "Render a demo run's report.json as a self-contained HTML page with plots");
  sub->add_option("--in", *in, "report JSON (schema: docs/report.md)")->capture_default_str();
  sub->add_option("--out", *out, "HTML file to write")->capture_default_str();
  SetAction(sub, [in, out] { return Run(*in, *out); });
}

}  // namespace edgeloop::cli
