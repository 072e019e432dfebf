// The agent's configuration (agent.yaml). Every section and key is optional except
// server.url, source.kind and device.data_dir; unknown keys are errors (a typo must not
// silently fall back to a default). Errors name the file, the key path and the line.
//
//   device:   {id: dev-1, data_dir: /var/lib/edgeloop}
//   server:   {url: https://host:8443, enrollment_token: T, ca_file: ca.crt}
//             (ca_file pins the fleet CA for the first enrollment; the update-signing key
//             arrives with enrollment and is stored in the state folder)
//   model:    {path: factory.onnx, version: base, profile: reference.json}
//             (the factory model installed on first start; profile: drift reference)
//   source:   {kind: replay | watch | stdin, dataset: fashion-mnist:test, rate_hz: 100,
//              loop: true, corruption: gaussian_noise, severity: 3, dir: /in,
//              delete_after_read: true}
//   sampling: {policy: uncertainty, rate: 0.1, confidence_below: 0.6, entropy_above: 0.8,
//              random_fraction: 0.02, budget_bytes_per_s: 20000}
//   spool:    {max_mb: 64, segment_kb: 4096, drop: oldest | reject_new,
//              fsync: every_append | never}
//   upload:   {batch_records: 256, batch_kb: 1024, base_delay_ms: 500, max_delay_ms: 60000,
//              transport: https | mqtt, mqtt_broker: host:port, mqtt_ack_timeout_ms: 10000}
//             (transport https, the default: POST /v1/ingest at server.url; mqtt: publish
//             to the broker mqtt_broker, required then, with the enrolled certificate and
//             wait for the cloud's ack, docs/scale-out.md; telemetry, events and updates
//             stay on HTTPS either way)
//   telemetry: {interval_s: 60}
//   drift:    {window: 1000, min_samples: 200, psi_raise: 0.25, psi_clear: 0.1}
//   update:   {poll_s: 60, probation_samples: 50, max_error_rate: 0.05, max_latency_ms: 1000}
//   certificate: {renew_at: 0.66, retry_s: 60, retry_max_s: 86400}
//             (renew the device certificate once this fraction of its lifetime has passed,
//             by the server's signed time; a failed renewal is retried after retry_s,
//             doubling up to retry_max_s)
#pragma once

#include <string>

#include "common/result.hpp"
#include "common/url.hpp"
#include "edge/drift.hpp"
#include "edge/sampler.hpp"
#include "edge/sources.hpp"
#include "edge/spool.hpp"
#include "edge/updater.hpp"
#include "edge/uploader.hpp"

namespace edgeloop::edge {

struct AgentConfig {
  std::string device_id;
  std::string data_dir;
  std::string server_url;
  std::string enrollment_token;
  std::string ca_file;
  std::string model_path;
  std::string model_version = "factory";
  std::string model_profile;
  // The runtime's limits for every model the device loads (factory and updates): a model
  // over them is refused at load, and an update with one is rejected by its health check.
  double model_max_gflops = 1000;      // arithmetic per inference (runtime::PlanStats::flops)
  int64_t model_max_arena_mib = 1024;  // activations and scratch

  std::string source_kind;  // replay, watch, stdin
  std::string dataset;
  ReplayOptions replay;
  std::string watch_dir;
  bool delete_after_read = true;

  SamplerConfig sampling;
  SpoolOptions spool;
  UploaderOptions upload;
  std::string upload_transport = "https";  // https or mqtt
  HostPort mqtt_broker;                    // upload.mqtt_broker (transport mqtt)
  std::chrono::milliseconds mqtt_ack_timeout{10000};
  double telemetry_interval_s = 60;
  DriftConfig drift;
  double update_poll_s = 60;
  ProbationPolicy probation;
  double renew_at = 0.66;
  double renew_retry_s = 60;
  double renew_retry_max_s = 86400;
};

Result<AgentConfig> ParseAgentConfig(const std::string& yaml_text, const std::string& origin);
Result<AgentConfig> LoadAgentConfig(const std::string& path);

}  // namespace edgeloop::edge
