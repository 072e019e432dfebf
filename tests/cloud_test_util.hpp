// Test helpers for the cloud server: a temporary data folder, an in-process server on a
// random loopback port, and HTTPS clients for operators and enrolled devices.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zstd.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cloud/server.hpp"
#include "common/crypto.hpp"
#include "common/file.hpp"
#include "edgeloop_wire.pb.h"

namespace edgeloop::testing {

// A TCP socket bound to 127.0.0.1 on a free port; *addr receives the address.
inline int BindLoopback(sockaddr_in* addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(addr), sizeof(*addr));
  socklen_t len = sizeof(*addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len);
  return fd;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "edgeloop-cloud-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Credentials a device holds after enrollment, as files (cpp-httplib reads paths).
struct DeviceCredentials {
  std::string device_id;
  std::string cert_file, key_file;
};

class CloudFixture {
 public:
  explicit CloudFixture(cloud::ServerOptions options = {}) {
    options.data_dir = dir_.path() + "/data";
    options.port = 0;
    options_ = options;
    auto server = cloud::Server::Create(options);
    if (!server.ok()) throw std::runtime_error(server.error().message);
    server_ = std::move(*server);
    auto st = server_->Start();
    if (!st.ok()) throw std::runtime_error(st.error().message);
    ca_file_ = dir_.path() + "/ca.crt";
    (void)WriteFileAtomic(ca_file_, server_->ca_cert_pem());
  }

  cloud::Server& server() { return *server_; }
  const std::string& dir() const { return dir_.path(); }

  std::unique_ptr<httplib::SSLClient> Client(const DeviceCredentials* device = nullptr) const {
    auto c = device ? std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port(),
                                                           device->cert_file, device->key_file)
                    : std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port());
    c->set_ca_cert_path(ca_file_);
    c->enable_server_certificate_verification(true);
    return c;
  }

  httplib::Headers Bearer(const std::string& token) const {
    return {{"Authorization", "Bearer " + token}};
  }

  // Operator requests with a JSON body; the admin token unless another is given.
  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& token = "") const {
    return Client()->Post(path, Bearer(token.empty() ? server_->admin_token() : token), body,
                          "application/json");
  }
  httplib::Result Get(const std::string& path, const std::string& token = "") const {
    return Client()->Get(path, Bearer(token.empty() ? server_->admin_token() : token));
  }
  // The answer's JSON, after checking its status (a failed expectation otherwise).
  nlohmann::json PostOk(const std::string& path, const nlohmann::json& body, int want = 200) const {
    auto res = Post(path, body.dump());
    EXPECT_TRUE(res) << path;
    if (!res) return nlohmann::json();
    EXPECT_EQ(res->status, want) << path << ": " << res->body;
    return nlohmann::json::parse(res->body, nullptr, false);
  }
  nlohmann::json GetOk(const std::string& path) const {
    auto res = Get(path);
    EXPECT_TRUE(res && res->status == 200) << path << ": " << (res ? res->body : "no answer");
    return res ? nlohmann::json::parse(res->body, nullptr, false) : nlohmann::json();
  }

  std::string EnrollmentToken(const std::string& device_id, const std::string& group = "") {
    auto res = Client()->Post("/v1/enrollment-tokens", Bearer(server_->admin_token()),
                              nlohmann::json{{"device_id", device_id}, {"group", group}}.dump(),
                              "application/json");
    if (!res || res->status != 200) throw std::runtime_error("enrollment token");
    return nlohmann::json::parse(res->body)["token"];
  }

  // Enrolls a device: key, CSR, token, certificate.
  DeviceCredentials Enroll(const std::string& device_id, const std::string& group = "") {
    std::string token = EnrollmentToken(device_id, group);
    auto key = crypto::GenerateTlsKeyPem();
    auto csr = crypto::CreateCsr(*key, device_id);
    auto res = Client()->Post("/v1/enroll", nlohmann::json{{"token", token}, {"csr", *csr}}.dump(),
                              "application/json");
    if (!res || res->status != 200) throw std::runtime_error("enroll failed");
    DeviceCredentials d{device_id, dir_.path() + "/" + device_id + ".crt",
                        dir_.path() + "/" + device_id + ".key"};
    (void)WriteFileAtomic(d.cert_file,
                          nlohmann::json::parse(res->body)["certificate"].get<std::string>());
    (void)WriteFileAtomic(d.key_file, *key, 0600);
    return d;
  }

 private:
  TempDir dir_;
  cloud::ServerOptions options_;
  std::unique_ptr<cloud::Server> server_;
  std::string ca_file_;
};

// A pipeline that reaches its train step: a snapshot of the labelled samples, then a head
// fine-tune of clf's production version.
inline constexpr char kRetrainPipeline[] = R"(name: retrain
dataset: {labelled_only: true, split: {train: 0.8, val: 0.0, test: 0.2, seed: 1}}
train: {parent: clf@production, strategy: head, epochs: 1}
gates: ["accuracy >= champion"]
register: {model: clf}
)";

inline std::string Zstd(const std::string& raw) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 1);
  out.resize(n);
  return out;
}

inline wire::SampleBatch MakeBatch(const std::string& device, uint64_t first_seq, int count,
                                   int elements = 16) {
  wire::SampleBatch batch;
  for (int i = 0; i < count; ++i) {
    auto* s = batch.add_samples();
    s->set_device_id(device);
    s->set_sequence(first_seq + static_cast<uint64_t>(i));
    s->set_timestamp_ms(1'700'000'000'000 + i);
    s->mutable_tensor()->add_shape(elements);
    for (int k = 0; k < elements; ++k) s->mutable_tensor()->add_values(static_cast<float>(k));
    s->set_prediction(i % 10);
    s->set_confidence(0.5f);
    s->set_model_version("1");
  }
  return batch;
}

inline httplib::Result PostBatch(httplib::SSLClient& client, const wire::SampleBatch& batch) {
  return client.Post("/v1/ingest", Zstd(batch.SerializeAsString()),
                     "application/x-edgeloop-batch+zstd");
}

}  // namespace edgeloop::testing
