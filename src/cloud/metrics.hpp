// The server's counters and histograms, exposed in Prometheus text format at /v1/metrics.
// Request counts are keyed by the route's pattern (not the concrete path, so device ids do
// not explode the label set). Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace edgeloop::cloud {

class ServerMetrics {
 public:
  // One finished HTTP request: method, route pattern ("/v1/devices/([^/]+)/revoke", or
  // "unmatched"), status code and duration.
  void ObserveRequest(const std::string& method, const std::string& route, int status,
                      double seconds);
  void AddIngest(uint64_t samples, uint64_t bytes);
  // The sample store's counters so far (SampleStore::syncs, synced_batches): segment
  // fdatasyncs and the batches they made durable; their ratio is the mean group size.
  void SetSampleStoreSyncs(uint64_t syncs, uint64_t batches);
  // One samples message taken from the MQTT broker, by the HTTP-like status of its outcome.
  void CountMqttIngest(int status);
  // One telemetry or events message from the broker (topic: "telemetry" or "events").
  void CountMqttControl(const std::string& topic, int status);
  // Retained update metadata pushed to a device's update topic, or not (broker away).
  void CountUpdatePush(bool ok);
  void ObserveRunStep(const std::string& step, double seconds);
  void ObserveRun(const std::string& status, double seconds);
  // A named counter of background failures ("rollout_tick", "trigger_check", ...).
  void CountBackgroundError(const std::string& where);
  // The leader lease taken ("acquired") or lost ("lost") by this replica.
  void CountLeaderChange(const std::string& change);
  // Device credentials and update keys: event "renewal", "root", "time"; result "ok" or
  // "refused" (a bad CSR, a revoked certificate, a root below threshold, ...).
  void CountTrustEvent(const std::string& event, const std::string& result);
  // Connection gauges the listener keeps up to date.
  void SetConnections(int64_t open);

  // Prometheus text exposition of everything above plus the gauges in `extra` (lines already
  // formatted, e.g. from a database query at scrape time).
  std::string Exposition(const std::string& extra) const;

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;  // cumulative counts per kBounds entry
    uint64_t count = 0;
    double sum = 0;
  };
  static void Observe(Histogram& h, double seconds);
  static void Write(std::string& out, const std::string& name, const std::string& labels,
                    const Histogram& h);

  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> request_seconds_;  // by route
  uint64_t ingest_samples_ = 0, ingest_bytes_ = 0;
  uint64_t store_syncs_ = 0, store_synced_batches_ = 0;
  std::map<int, uint64_t> mqtt_messages_;                         // by status
  std::map<std::pair<std::string, int>, uint64_t> mqtt_control_;  // by topic, status
  uint64_t update_pushes_ = 0, update_push_failures_ = 0;
  std::map<std::string, Histogram> step_seconds_;
  std::map<std::string, Histogram> run_seconds_;  // by final status
  std::map<std::string, uint64_t> background_errors_;
  std::map<std::string, uint64_t> leader_changes_;  // by change
  std::map<std::pair<std::string, std::string>, uint64_t> trust_events_;  // by event, result
  int64_t connections_ = 0;
};

}  // namespace edgeloop::cloud
