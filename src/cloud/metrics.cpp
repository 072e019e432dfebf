#include "cloud/metrics.hpp"

#include <algorithm>
#include <cstdio>

namespace edgeloop::cloud {
namespace {

// Upper bounds of the duration histograms, seconds.
constexpr double kBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
constexpr size_t kBuckets = sizeof(kBounds) / sizeof(kBounds[0]);

// Label values are escaped as the text format requires (backslash, quote, newline).
std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

}  // namespace

void ServerMetrics::Observe(Histogram& h, double seconds) {
  if (h.buckets.empty()) h.buckets.assign(kBuckets, 0);
  for (size_t i = 0; i < kBuckets; ++i)
    if (seconds <= kBounds[i]) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

void ServerMetrics::Write(std::string& out, const std::string& name, const std::string& labels,
                          const Histogram& h) {
  const std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < kBuckets; ++i)
    out += name + "_bucket{" + labels + sep + "le=\"" + Number(kBounds[i]) + "\"} " +
           std::to_string(h.buckets.empty() ? 0 : h.buckets[i]) + "\n";
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(h.count) + "\n";
  out += name + "_sum" + (labels.empty() ? "" : "{" + labels + "}") + " " + Number(h.sum) + "\n";
  out += name + "_count" + (labels.empty() ? "" : "{" + labels + "}") + " " +
         std::to_string(h.count) + "\n";
}

void ServerMetrics::ObserveRequest(const std::string& method, const std::string& route, int status,
                                   double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{method, route, status}];
  Observe(request_seconds_[route], seconds);
}

void ServerMetrics::AddIngest(uint64_t samples, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ingest_samples_ += samples;
  ingest_bytes_ += bytes;
}

void ServerMetrics::SetSampleStoreSyncs(uint64_t syncs, uint64_t batches) {
  std::lock_guard<std::mutex> lock(mu_);
  // Callers read the store's counters before taking this lock: keep the larger.
  store_syncs_ = std::max(store_syncs_, syncs);
  store_synced_batches_ = std::max(store_synced_batches_, batches);
}

void ServerMetrics::CountMqttIngest(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++mqtt_messages_[status];
}

void ServerMetrics::CountMqttControl(const std::string& topic, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++mqtt_control_[{topic, status}];
}

void ServerMetrics::CountUpdatePush(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(ok ? update_pushes_ : update_push_failures_);
}

void ServerMetrics::ObserveRunStep(const std::string& step, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Observe(step_seconds_[step], seconds);
}

void ServerMetrics::ObserveRun(const std::string& status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Observe(run_seconds_[status], seconds);
}

void ServerMetrics::CountBackgroundError(const std::string& where) {
  std::lock_guard<std::mutex> lock(mu_);
  ++background_errors_[where];
}

void ServerMetrics::CountLeaderChange(const std::string& change) {
  std::lock_guard<std::mutex> lock(mu_);
  ++leader_changes_[change];
}

void ServerMetrics::CountTrustEvent(const std::string& event, const std::string& result) {
  std::lock_guard<std::mutex> lock(mu_);
  ++trust_events_[{event, result}];
}

void ServerMetrics::SetConnections(int64_t open) {
  std::lock_guard<std::mutex> lock(mu_);
  connections_ = open;
}

std::string ServerMetrics::Exposition(const std::string& extra) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out +=
      "# HELP edgeloop_http_requests_total HTTP requests answered, by route pattern and status.\n";
  out += "# TYPE edgeloop_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [method, route, status] = key;
    out += "edgeloop_http_requests_total{method=\"" + Escape(method) + "\",route=\"" +
           Escape(route) + "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(n) +
           "\n";
  }
  out += "# HELP edgeloop_http_request_duration_seconds Time to answer a request, by route.\n";
  out += "# TYPE edgeloop_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : request_seconds_)
    Write(out, "edgeloop_http_request_duration_seconds", "route=\"" + Escape(route) + "\"", h);
  out += "# HELP edgeloop_ingest_samples_total Samples stored by ingest (duplicates excluded).\n";
  out += "# TYPE edgeloop_ingest_samples_total counter\n";
  out += "edgeloop_ingest_samples_total " + std::to_string(ingest_samples_) + "\n";
  out += "# HELP edgeloop_ingest_bytes_total Compressed ingest request bytes accepted.\n";
  out += "# TYPE edgeloop_ingest_bytes_total counter\n";
  out += "edgeloop_ingest_bytes_total " + std::to_string(ingest_bytes_) + "\n";
  out += "# HELP edgeloop_sample_store_syncs_total Segment fdatasyncs (one per group commit).\n";
  out += "# TYPE edgeloop_sample_store_syncs_total counter\n";
  out += "edgeloop_sample_store_syncs_total " + std::to_string(store_syncs_) + "\n";
  out += "# HELP edgeloop_sample_store_synced_batches_total Batches made durable by them.\n";
  out += "# TYPE edgeloop_sample_store_synced_batches_total counter\n";
  out +=
      "edgeloop_sample_store_synced_batches_total " + std::to_string(store_synced_batches_) + "\n";
  out += "# HELP edgeloop_mqtt_ingest_messages_total MQTT samples messages, by outcome status.\n";
  out += "# TYPE edgeloop_mqtt_ingest_messages_total counter\n";
  for (const auto& [status, n] : mqtt_messages_)
    out += "edgeloop_mqtt_ingest_messages_total{status=\"" + std::to_string(status) + "\"} " +
           std::to_string(n) + "\n";
  out +=
      "# HELP edgeloop_mqtt_control_messages_total Telemetry and update events taken from the "
      "MQTT broker, by topic and outcome.\n";
  out += "# TYPE edgeloop_mqtt_control_messages_total counter\n";
  for (const auto& [key, n] : mqtt_control_)
    out += "edgeloop_mqtt_control_messages_total{topic=\"" + Escape(key.first) + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  out +=
      "# HELP edgeloop_update_pushes_total Update metadata published as a device's retained "
      "MQTT message, by outcome.\n";
  out += "# TYPE edgeloop_update_pushes_total counter\n";
  out += "edgeloop_update_pushes_total{result=\"ok\"} " + std::to_string(update_pushes_) + "\n";
  out += "edgeloop_update_pushes_total{result=\"failed\"} " +
         std::to_string(update_push_failures_) + "\n";
  out += "# HELP edgeloop_pipeline_step_duration_seconds Duration of pipeline steps, by step.\n";
  out += "# TYPE edgeloop_pipeline_step_duration_seconds histogram\n";
  for (const auto& [step, h] : step_seconds_)
    Write(out, "edgeloop_pipeline_step_duration_seconds", "step=\"" + Escape(step) + "\"", h);
  out += "# HELP edgeloop_pipeline_run_duration_seconds Duration of finished runs, by status.\n";
  out += "# TYPE edgeloop_pipeline_run_duration_seconds histogram\n";
  for (const auto& [status, h] : run_seconds_)
    Write(out, "edgeloop_pipeline_run_duration_seconds", "status=\"" + Escape(status) + "\"", h);
  out += "# HELP edgeloop_background_errors_total Failures of background work, by where.\n";
  out += "# TYPE edgeloop_background_errors_total counter\n";
  for (const auto& [where, n] : background_errors_)
    out += "edgeloop_background_errors_total{where=\"" + Escape(where) + "\"} " +
           std::to_string(n) + "\n";
  out += "# HELP edgeloop_leader_changes_total Leader lease taken or lost by this replica.\n";
  out += "# TYPE edgeloop_leader_changes_total counter\n";
  for (const auto& [change, n] : leader_changes_)
    out += "edgeloop_leader_changes_total{change=\"" + Escape(change) + "\"} " + std::to_string(n) +
           "\n";
  out +=
      "# HELP edgeloop_trust_events_total Certificate renewals, root metadata publications and "
      "signed-time requests, by result.\n";
  out += "# TYPE edgeloop_trust_events_total counter\n";
  for (const auto& [key, n] : trust_events_)
    out += "edgeloop_trust_events_total{event=\"" + Escape(key.first) + "\",result=\"" +
           Escape(key.second) + "\"} " + std::to_string(n) + "\n";
  out += "# HELP edgeloop_open_connections Client connections open now.\n";
  out += "# TYPE edgeloop_open_connections gauge\n";
  out += "edgeloop_open_connections " + std::to_string(connections_) + "\n";
  out += extra;
  return out;
}

}  // namespace edgeloop::cloud
