// The report of a demo run: one self-contained HTML file (inline CSS and SVG plots, no
// scripts, no network) rendered from the report JSON that `edgeloop demo` writes. The JSON
// schema is documented in docs/report.md. Rendering is total: missing, empty or mistyped
// sections render as "no data" rather than failing, and every string from the JSON is
// HTML-escaped. Thread-safe (no shared state).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.hpp"

namespace edgeloop::cloud {

// The HTML document for a report.
std::string RenderHtmlReport(const nlohmann::json& report);

// Renders and writes out_html durably (temporary file, fsync, rename), creating its folder.
// Errors: kIo when the folder or file cannot be written.
Status WriteHtmlReport(const nlohmann::json& report, const std::string& out_html);

}  // namespace edgeloop::cloud
