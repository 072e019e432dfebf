// UploadTransport over HTTP(S) with cpp-httplib:
//   POST <base>/v1/devices/<device>/samples
//   {"records": [{"seq": 17, "labelled": true, "payload": "<record text>"}, ...]}
//   -> 200 {"acked_through": 17}
// The server stores each (device, seq) once and answers with the highest contiguous sequence
// number it holds. This JSON form is the agent's interim wire format; the cloud module's
// protobuf schema and mTLS client certificate replace it behind the same interface.
// Thread safety: one Send() at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "edge/uploader.hpp"

namespace edgeloop::edge {

class HttpUploadTransport : public UploadTransport {
 public:
  // base_url: "http://host:port" or "https://host:port".
  explicit HttpUploadTransport(std::string base_url,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpUploadTransport() override;
  Result<uint64_t> Send(const UploadBatch& batch) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string base_url_;
};

}  // namespace edgeloop::edge
