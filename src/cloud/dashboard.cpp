// Route module: the web dashboard at /ui/ (web/, docs/dashboard.md). Static files only; the
// pages read the /v1 API with the operator token the person signs in with, so the files
// themselves need no authentication. Every answer carries a strict Content-Security-Policy.
//
//   GET /ui          308 to /ui/
//   GET /ui/         index.html
//   GET /ui/{file}   one bundled file (app.js, app.css); 404 for anything else
#include "cloud/dashboard.hpp"

#include "cloud/server_impl.hpp"

namespace edgeloop::cloud {

const DashboardAsset* FindDashboardAsset(std::string_view path) {
  for (const DashboardAsset& a : DashboardAssets())
    if (a.path == path) return &a;
  return nullptr;
}

namespace {

void SecurityHeaders(http::Response& res) {
  res.set_header("Content-Security-Policy", std::string(kDashboardCsp));
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cross-Origin-Opener-Policy", "same-origin");
  // Small files, built with the binary: always revalidated, so an upgraded server is seen.
  res.set_header("Cache-Control", "no-cache");
}

void ServeAsset(const std::string& path, http::Response& res) {
  SecurityHeaders(res);
  if (DashboardAssets().empty()) {
    res.status = 503;
    return res.set_content(
        "This edgeloop server was built without its dashboard: the npm packages of web/ were "
        "not installed when it was built. Run scripts/web-install (npm ci in web/) and build "
        "again.\n",
        "text/plain; charset=utf-8");
  }
  const DashboardAsset* asset = FindDashboardAsset(path);
  if (asset == nullptr) return SendError(res, 404, "no dashboard file " + path);
  res.set_content(std::string(asset->bytes), std::string(asset->content_type));
}

}  // namespace

void Server::Impl::DashboardRoutes() {
  auto& s = *http;
  s.Get("/ui", [](const http::Request&, http::Response& res) {
    SecurityHeaders(res);
    res.status = 308;
    res.set_header("Location", "/ui/");
  });
  s.Get("/ui/", [](const http::Request&, http::Response& res) { ServeAsset("index.html", res); });
  s.Get(R"(/ui/([A-Za-z0-9_-][A-Za-z0-9._-]*))",
        [](const http::Request& req, http::Response& res) { ServeAsset(req.matches[1], res); });
}

}  // namespace edgeloop::cloud
