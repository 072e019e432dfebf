#include "edge/http_upload_transport.hpp"

#include <httplib.h>

#include <nlohmann/json.hpp>

namespace edgeloop::edge {

struct HttpUploadTransport::Impl {
  explicit Impl(const std::string& url) : client(url) {}
  httplib::Client client;
};

HttpUploadTransport::HttpUploadTransport(std::string base_url, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(base_url)), base_url_(std::move(base_url)) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(timeout - secs);
  impl_->client.set_connection_timeout(secs.count(), usecs.count());
  impl_->client.set_read_timeout(secs.count(), usecs.count());
  impl_->client.set_write_timeout(secs.count(), usecs.count());
}

HttpUploadTransport::~HttpUploadTransport() = default;

Result<uint64_t> HttpUploadTransport::Send(const UploadBatch& batch) {
  nlohmann::json body;
  body["records"] = nlohmann::json::array();
  for (const auto& r : batch.records)
    body["records"].push_back({{"seq", r.seq}, {"labelled", r.labelled}, {"payload", r.payload}});
  std::string path = "/v1/devices/" + batch.device_id + "/samples";
  auto res = impl_->client.Post(path, body.dump(), "application/json");
  if (!res) return Error(Errc::kIo, base_url_ + path + ": " + httplib::to_string(res.error()));
  if (res->status != 200)
    return Error(res->status == 401 || res->status == 403 ? Errc::kPermission : Errc::kIo,
                 base_url_ + path + ": HTTP " + std::to_string(res->status));
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("acked_through") ||
      !j["acked_through"].is_number_unsigned())
    return Error(Errc::kFormat, base_url_ + path + ": answer without acked_through");
  return j["acked_through"].get<uint64_t>();
}

}  // namespace edgeloop::edge
