// The web dashboard's files (web/, bundled by esbuild at build time) as the server carries
// them: compiled into the binary by cmake/embed_dashboard.cmake, so the installed package and
// the single edgeloop executable serve /ui/ with nothing beside them. A build without the
// dashboard's npm packages embeds no files, and /ui/ then says how to build it.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace edgeloop::cloud {

struct DashboardAsset {
  std::string_view path;          // relative to /ui/: "index.html", "app.js", "app.css"
  std::string_view content_type;  // with charset for text
  std::string_view bytes;
};

// Every embedded file (generated: <build>/src/cloud/dashboard_assets.cpp); empty when the
// build had no bundle.
std::span<const DashboardAsset> DashboardAssets();

// The file at `path` (relative to /ui/), or nullptr.
const DashboardAsset* FindDashboardAsset(std::string_view path);

// The Content-Security-Policy of every /ui/ answer: only this origin's scripts, styles and
// API, no inline script or style, no frames, no plugins.
inline constexpr std::string_view kDashboardCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

}  // namespace edgeloop::cloud
