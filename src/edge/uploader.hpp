// Uploader: drains the spool to the cloud in batches. A batch is the oldest pending records
// (up to max_records / max_bytes); the server answers with the highest sequence number it has
// stored, and only then are the records acknowledged in the spool. The server deduplicates by
// (device, seq), so a batch resent after a lost answer or a crash is stored once: nothing is
// lost (records leave the spool only after the server confirmed them) and nothing is
// duplicated at the server.
//
// Failures back off exponentially with full jitter: the wait before attempt n is uniform in
// [0, min(max_delay, base_delay * 2^n)], so a fleet coming back after an outage does not
// reconnect in lockstep. A success resets the backoff.
//
// The transport is an interface with two implementations: HTTPS with mutual TLS
// (CloudUploadTransport, cloud_client.hpp) and MQTT with an application-level ack
// (MqttUploadTransport, mqtt_upload_transport.hpp).
// Thread safety: Step() from one thread; Run() owns that thread until Stop().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "edge/spool.hpp"

namespace edgeloop::edge {

struct UploadBatch {
  std::string device_id;
  std::vector<SpoolRecord> records;  // consecutive sequence numbers, oldest first
};

class UploadTransport {
 public:
  virtual ~UploadTransport() = default;
  // Sends a batch; returns the highest sequence number the server has durably stored for
  // this device (it may be below the batch's last one if it stored only a prefix).
  virtual Result<uint64_t> Send(const UploadBatch& batch) = 0;
};

struct UploaderOptions {
  std::string device_id;
  size_t max_records = 256;
  size_t max_bytes = 1 << 20;
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{60000};
  uint64_t seed = 0;  // 0: seeded from the device id
};

struct UploaderStats {
  uint64_t batches_sent = 0, records_acked = 0, failures = 0;
  uint32_t consecutive_failures = 0;
  std::string last_error;
};

class Uploader {
 public:
  Uploader(Spool& spool, std::shared_ptr<UploadTransport> transport, UploaderOptions options);

  // One attempt: sends one batch if any is pending. Returns the number of records the server
  // confirmed (0 when the spool is empty) or the transport's error.
  Result<size_t> Step();
  // The wait before the next attempt after the last Step(): 0 after a success with more
  // pending, the poll interval when idle, the jittered backoff after a failure.
  std::chrono::milliseconds NextDelay() const { return next_delay_; }
  const UploaderStats& stats() const { return stats_; }

  // Loops Step() / wait until Stop(); Wake() cuts a wait short (new data, network back).
  void Run(std::chrono::milliseconds idle_poll = std::chrono::milliseconds(1000));
  void Stop();
  void Wake();

 private:
  std::chrono::milliseconds Backoff();

  Spool& spool_;
  std::shared_ptr<UploadTransport> transport_;
  UploaderOptions opt_;
  std::mt19937_64 rng_;
  UploaderStats stats_;
  std::chrono::milliseconds next_delay_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, woken_ = false;
};

}  // namespace edgeloop::edge
