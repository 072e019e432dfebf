// Devices that act as their updaters would during a staged rollout, for the fault tests: each
// polls its deployment, verifies the signed metadata, "installs" the new version and reports
// the commit and healthy telemetry. Anything offered other than the old or the new artifact
// is counted as a stray (a device left between versions).
#pragma once

#include <atomic>
#include <ctime>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cloud_test_util.hpp"
#include "common/update_metadata.hpp"

namespace edgeloop::testing {

class RolloutDevices {
 public:
  // connect: a client for one device (direct to a server, or through a load balancer).
  using Connect = std::function<std::unique_ptr<httplib::SSLClient>(const DeviceCredentials&)>;

  RolloutDevices(std::vector<DeviceCredentials> devices, Connect connect, std::string public_key,
                 std::string old_sha, std::string new_sha, std::string new_version,
                 int poll_ms = 50)
      : devices_(std::move(devices)),
        connect_(std::move(connect)),
        public_key_(std::move(public_key)),
        old_sha_(std::move(old_sha)),
        new_sha_(std::move(new_sha)),
        new_version_(std::move(new_version)),
        poll_ms_(poll_ms) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~RolloutDevices() { Stop(); }
  RolloutDevices(const RolloutDevices&) = delete;
  RolloutDevices& operator=(const RolloutDevices&) = delete;

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int committed() const { return committed_; }
  int strays() const { return strays_; }

 private:
  void Loop() {
    std::vector<bool> done(devices_.size(), false);
    while (!stop_) {
      for (size_t d = 0; d < devices_.size(); ++d) {
        auto c = connect_(devices_[d]);
        auto res = c->Get("/v1/deployments/" + devices_[d].device_id);
        if (!res || res->status != 200) continue;
        auto m = VerifyUpdateMetadata(res->body, public_key_,
                                      static_cast<int64_t>(std::time(nullptr)), 0);
        if (!m.ok() || (m->target.sha256 != old_sha_ && m->target.sha256 != new_sha_)) {
          ++strays_;
          continue;
        }
        if (m->target.sha256 != new_sha_ || done[d]) continue;
        nlohmann::json event = {
            {"phase", "committed"}, {"model_version", new_version_}, {"reason", ""}};
        nlohmann::json telemetry = {{"t", 1},
                                    {"model_version", new_version_},
                                    {"n", 100},
                                    {"labelled", 50},
                                    {"accuracy", 0.9},
                                    {"error_rate", 0.0},
                                    {"latency_ms", {{"p50", 1.0}, {"p95", 2.0}}}};
        auto e = c->Post("/v1/events", event.dump(), "application/json");
        auto t = c->Post("/v1/telemetry", telemetry.dump(), "application/json");
        if (e && e->status == 200 && t && t->status == 200) {
          done[d] = true;
          ++committed_;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms_));
    }
  }

  std::vector<DeviceCredentials> devices_;
  Connect connect_;
  std::string public_key_, old_sha_, new_sha_, new_version_;
  int poll_ms_;
  std::atomic<bool> stop_{false};
  std::atomic<int> committed_{0}, strays_{0};
  std::thread thread_;
};

}  // namespace edgeloop::testing
