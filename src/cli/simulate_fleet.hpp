// `edgeloop simulate`: many light virtual devices in one process (docs/scale-out.md, "Fleet
// simulator and load test"). What the two transports share lives here: the devices, their
// identities, the samples they make and the figures they report.
//
// A device is an enrolled identity (its own key and client certificate from the fleet CA,
// cached under --state), its own sequence numbers and an in-memory bounded queue of the
// samples not yet acknowledged. The queue holds sequence numbers only: a sample's content is
// one of kImages synthetic 28x28 images chosen by its sequence number, made again when a
// batch is encoded, so 10,000 devices with a few unacknowledged batches each cost kilobytes,
// not the gigabyte the images themselves would take. No model runs: inference is not what the
// simulator loads, the upload and ack path is.
//
// Thread safety: a SimDevice belongs to one driver thread; RunStats are per thread and merged
// at the end.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/url.hpp"
#include "edge/cloud_client.hpp"
#include "edge/uploader.hpp"

namespace edgeloop::cli::sim {

using Clock = std::chrono::steady_clock;

struct SimOptions {
  int devices = 100;
  std::string transport = "https";  // https | mqtt
  std::string server = "https://127.0.0.1:8443";
  std::string token, ca_file, data_dir;  // the operator's (see server_client.hpp)
  std::string enroll_tokens_file;        // one single-use enrollment token per line
  std::string broker = "127.0.0.1:8883";
  std::string state_dir = "simulate-state";
  std::string prefix = "sim";
  std::string json_path;
  double interval_s = 10, duration_s = 60, ramp_s = 10, drain_s = 30;
  int batch = 32;
  int threads = 0;  // 0: 2 for mqtt, 64 for https
  int enroll_concurrency = 8;
  int max_queued_batches = 10;  // per device; older samples are dropped past it
  double ack_timeout_s = 10;
};

// Refuses every target but loopback: 127.0.0.0/8, ::1 and "localhost" (not resolved).
// Errors: kInvalidArgument naming the option and the host.
Status RequireLoopback(const std::string& host, const std::string& option);

struct SimDevice {
  std::string id;
  edge::DeviceIdentity identity;
  uint64_t baseline = 0;       // samples the server held for the device at the start
  uint64_t next_seq = 1;       // the next sample to make
  uint64_t acked_through = 0;  // every sample up to this one is acknowledged (or dropped)
  uint64_t start_through = 0;  // acked_through at the start of this run
  uint64_t dropped = 0;        // samples dropped from a full queue
  Clock::time_point next_batch{}, connect_at{};
  // The batch in flight: its last sequence number and when it left.
  bool in_flight = false;
  uint64_t in_flight_last = 0;
  Clock::time_point sent_at{};

  // After a failed send (an ack timeout, a refusal, an error), the next waits as the agent's
  // uploader would: a uniform draw in [0, min(60 s, 0.5 s * 2^failures)].
  uint32_t failures = 0;
  Clock::time_point retry_at{};
  void Failed(Clock::time_point now);

  // Makes one interval's samples (dropping the oldest unsent ones past the bound).
  void Produce(int batch, int max_queued_batches);
  uint64_t pending() const { return next_seq - 1 - acked_through; }
  uint64_t acked_this_run() const { return acked_through - start_through - dropped; }
};

// One driver thread's figures.
struct RunStats {
  uint64_t batches_acked = 0, samples_acked = 0, duplicates = 0;
  std::vector<float> ack_ms;               // publish/POST to ack, one per acked batch
  std::map<std::string, uint64_t> errors;  // by kind
  void Merge(const RunStats& other);
};

// Live counters for the progress line, written by the drivers.
struct LiveCounters {
  std::atomic<uint64_t> connected{0}, batches_acked{0}, samples_acked{0}, errors{0};
};

// The records of the batch of samples first..last for the device (payloads are serialized
// wire::Sample, as in the agent's spool).
edge::UploadBatch MakeBatch(const SimDevice& device, uint64_t first, uint64_t last);

// Loads each device's identity from <state>/<id>/, enrolling those that have none through
// POST /v1/enroll (a single-use token each: minted with the operator's admin token, or read
// from --enroll-tokens), `enroll_concurrency` at a time. Errors name the first device that
// failed.
Result<std::vector<SimDevice>> LoadOrEnrollFleet(const SimOptions& o);

// Samples stored per device, from GET /v1/samples/counts?by=device.
Result<std::map<std::string, uint64_t>> StoredCounts(const SimOptions& o);

// Sets each device's baseline (what the server holds) and next sequence number: after the
// highest one it used in an earlier run (<state>/sequences.json) and after what is stored.
Status StartSequences(const SimOptions& o, std::vector<SimDevice>& devices);
// Writes <state>/sequences.json (atomically), so a later run never reuses a number.
Status SaveSequences(const SimOptions& o, const std::vector<SimDevice>& devices);

// Raises RLIMIT_NOFILE's soft limit to the hard limit (and the hard limit, when allowed, to
// `needed`). Errors: kUnavailable when `needed` descriptors cannot be had, saying how many.
Result<uint64_t> RaiseFileLimit(uint64_t needed);

// The drivers: run until `stop` or the duration, then drain (no new samples, wait for the
// acks of what is queued, up to drain_s). Fill stats and counters.
Status RunHttps(const SimOptions& o, std::vector<SimDevice>& devices, LiveCounters& live,
                const std::atomic<bool>& stop, RunStats& stats);
Status RunMqtt(const SimOptions& o, std::vector<SimDevice>& devices, LiveCounters& live,
               const std::atomic<bool>& stop, RunStats& stats);

}  // namespace edgeloop::cli::sim
