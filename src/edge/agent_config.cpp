#include "edge/agent_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "common/config_reader.hpp"
#include "common/file.hpp"
#include "common/url.hpp"

namespace edgeloop::edge {

using config::Section;

static Result<AgentConfig> Parse(const std::string& yaml_text, const std::string& origin);

Result<AgentConfig> ParseAgentConfig(const std::string& yaml_text, const std::string& origin) {
  // yaml-cpp reports problems as exceptions; they stop here and become errors.
  try {
    return Parse(yaml_text, origin);
  } catch (const YAML::Exception& e) {
    return Error(Errc::kFormat, origin + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

static Result<AgentConfig> Parse(const std::string& yaml_text, const std::string& origin) {
  static const std::set<std::string> kSections = {"device",   "server", "model",      "source",
                                                  "sampling", "spool",  "upload",     "telemetry",
                                                  "drift",    "update", "certificate"};
  EDGELOOP_ASSIGN_OR_RETURN(YAML::Node root, config::LoadDocument(yaml_text, origin, kSections));

  AgentConfig c;
  std::map<std::string, Section> s;
  for (const auto& name : kSections) {
    s.emplace(name, Section(root, name, origin));
    EDGELOOP_RETURN_IF_ERROR(s.at(name).CheckShape());
  }

  Section& dev = s.at("device");
  EDGELOOP_RETURN_IF_ERROR(dev.Get("id", c.device_id));
  EDGELOOP_RETURN_IF_ERROR(dev.Get("data_dir", c.data_dir));

  Section& srv = s.at("server");
  EDGELOOP_RETURN_IF_ERROR(srv.Get("url", c.server_url));
  EDGELOOP_RETURN_IF_ERROR(srv.Get("enrollment_token", c.enrollment_token));
  EDGELOOP_RETURN_IF_ERROR(srv.Get("ca_file", c.ca_file));

  Section& mdl = s.at("model");
  EDGELOOP_RETURN_IF_ERROR(mdl.Get("path", c.model_path));
  EDGELOOP_RETURN_IF_ERROR(mdl.Get("version", c.model_version));
  EDGELOOP_RETURN_IF_ERROR(mdl.Get("profile", c.model_profile));
  EDGELOOP_RETURN_IF_ERROR(mdl.GetInRange("max_gflops", c.model_max_gflops, 1e-6, 1e6));
  EDGELOOP_RETURN_IF_ERROR(
      mdl.GetInRange("max_arena_mib", c.model_max_arena_mib, int64_t{1}, int64_t{1} << 20));

  Section& src = s.at("source");
  std::string corruption;
  EDGELOOP_RETURN_IF_ERROR(src.Get("kind", c.source_kind));
  EDGELOOP_RETURN_IF_ERROR(src.Get("dataset", c.dataset));
  EDGELOOP_RETURN_IF_ERROR(src.GetInRange("rate_hz", c.replay.rate_hz, 0.0, 1e6));
  EDGELOOP_RETURN_IF_ERROR(src.Get("loop", c.replay.loop));
  EDGELOOP_RETURN_IF_ERROR(src.Get("corruption", corruption));
  EDGELOOP_RETURN_IF_ERROR(src.GetInRange("severity", c.replay.severity, 1, 5));
  EDGELOOP_RETURN_IF_ERROR(src.Get("dir", c.watch_dir));
  EDGELOOP_RETURN_IF_ERROR(src.Get("delete_after_read", c.delete_after_read));

  Section& smp = s.at("sampling");
  std::string policy = "uncertainty";
  EDGELOOP_RETURN_IF_ERROR(smp.Get("policy", policy));
  EDGELOOP_RETURN_IF_ERROR(smp.GetInRange("rate", c.sampling.rate, 0.0, 1.0));
  EDGELOOP_RETURN_IF_ERROR(
      smp.GetInRange("confidence_below", c.sampling.confidence_below, 0.0, 1.0));
  EDGELOOP_RETURN_IF_ERROR(smp.GetInRange("entropy_above", c.sampling.entropy_above, 0.0, 1.0));
  EDGELOOP_RETURN_IF_ERROR(smp.GetInRange("random_fraction", c.sampling.random_fraction, 0.0, 1.0));
  EDGELOOP_RETURN_IF_ERROR(
      smp.GetInRange("budget_bytes_per_s", c.sampling.budget_bytes_per_s, 0.0, 1e12));
  std::string on_drift;
  EDGELOOP_RETURN_IF_ERROR(smp.Get("on_drift", on_drift));
  EDGELOOP_RETURN_IF_ERROR(smp.GetInRange("on_drift_rate", c.sampling.on_drift_rate, 0.0, 1.0));

  Section& sp = s.at("spool");
  uint64_t max_mb = 64, segment_kb = 4096;
  std::string drop = "oldest", fsync = "every_append";
  EDGELOOP_RETURN_IF_ERROR(sp.GetInRange<uint64_t>("max_mb", max_mb, 1, 1 << 20));
  EDGELOOP_RETURN_IF_ERROR(sp.GetInRange<uint64_t>("segment_kb", segment_kb, 4, 1 << 20));
  EDGELOOP_RETURN_IF_ERROR(sp.Get("drop", drop));
  EDGELOOP_RETURN_IF_ERROR(sp.Get("fsync", fsync));

  Section& up = s.at("upload");
  int batch_kb = 1024, base_ms = 500, max_ms = 60000;
  EDGELOOP_RETURN_IF_ERROR(up.GetInRange<size_t>("batch_records", c.upload.max_records, 1, 100000));
  EDGELOOP_RETURN_IF_ERROR(up.GetInRange("batch_kb", batch_kb, 1, 1 << 20));
  EDGELOOP_RETURN_IF_ERROR(up.GetInRange("base_delay_ms", base_ms, 1, 3600000));
  EDGELOOP_RETURN_IF_ERROR(up.GetInRange("max_delay_ms", max_ms, 1, 86400000));
  EDGELOOP_RETURN_IF_ERROR(up.GetOneOf("transport", c.upload_transport, {"https", "mqtt"}));
  std::string mqtt_broker;
  int ack_timeout_ms = 10000;
  EDGELOOP_RETURN_IF_ERROR(up.Get("mqtt_broker", mqtt_broker));
  EDGELOOP_RETURN_IF_ERROR(up.GetInRange("mqtt_ack_timeout_ms", ack_timeout_ms, 10, 3600000));

  EDGELOOP_RETURN_IF_ERROR(
      s.at("telemetry").GetInRange("interval_s", c.telemetry_interval_s, 0.05, 86400.0));
  Section& dr = s.at("drift");
  EDGELOOP_RETURN_IF_ERROR(dr.GetInRange<size_t>("window", c.drift.window, 10, 10000000));
  EDGELOOP_RETURN_IF_ERROR(dr.GetInRange<size_t>("min_samples", c.drift.min_samples, 1, 10000000));
  EDGELOOP_RETURN_IF_ERROR(dr.GetInRange("psi_raise", c.drift.psi_raise, 0.0, 100.0));
  EDGELOOP_RETURN_IF_ERROR(dr.GetInRange("psi_clear", c.drift.psi_clear, 0.0, 100.0));
  Section& ud = s.at("update");
  EDGELOOP_RETURN_IF_ERROR(ud.GetInRange("poll_s", c.update_poll_s, 0.05, 86400.0));
  EDGELOOP_RETURN_IF_ERROR(
      ud.GetInRange<uint64_t>("probation_samples", c.probation.samples, 0, 10000000));
  EDGELOOP_RETURN_IF_ERROR(ud.GetInRange("max_error_rate", c.probation.max_error_rate, 0.0, 1.0));
  EDGELOOP_RETURN_IF_ERROR(ud.GetInRange("max_latency_ms", c.probation.max_latency_ms, 0.0, 1e7));

  Section& cert = s.at("certificate");
  EDGELOOP_RETURN_IF_ERROR(cert.GetInRange("renew_at", c.renew_at, 0.05, 0.95));
  EDGELOOP_RETURN_IF_ERROR(cert.GetInRange("retry_s", c.renew_retry_s, 0.05, 86400.0));
  EDGELOOP_RETURN_IF_ERROR(cert.GetInRange("retry_max_s", c.renew_retry_max_s, 0.05, 30 * 86400.0));

  for (const auto& [name, sec] : s) EDGELOOP_RETURN_IF_ERROR(sec.CheckNoUnknownKeys());

  // Cross-field checks and enumerations.
  auto fail = [&](const std::string& msg) -> Error {
    return Error(Errc::kInvalidArgument, origin + ": " + msg);
  };
  if (c.data_dir.empty()) return fail("device.data_dir is required");
  if (c.server_url.empty()) return fail("server.url is required");
  if (auto url = ParseServerUrl(c.server_url); !url.ok())
    return fail("server.url: " + url.error().message);
  if (c.source_kind == "replay") {
    if (c.dataset.empty()) return fail("source.dataset is required for kind: replay");
  } else if (c.source_kind == "watch") {
    if (c.watch_dir.empty()) return fail("source.dir is required for kind: watch");
  } else if (c.source_kind != "stdin") {
    return fail("source.kind must be replay, watch or stdin (got \"" + c.source_kind + "\")");
  }
  if (!corruption.empty()) {
    c.replay.corruption = data::ParseCorruption(corruption);
    if (!c.replay.corruption)
      return fail("source.corruption: unknown corruption \"" + corruption + "\"");
  }
  auto parsed_policy = ParseSamplingPolicy(policy);
  if (!parsed_policy.ok()) return parsed_policy.error().WithContext(origin + ": sampling.policy");
  c.sampling.policy = *parsed_policy;
  if (!on_drift.empty()) {
    auto p = ParseSamplingPolicy(on_drift);
    if (!p.ok()) return p.error().WithContext(origin + ": sampling.on_drift");
    c.sampling.on_drift = *p;
  }
  if (drop == "oldest") {
    c.spool.drop = DropPolicy::kDropOldest;
  } else if (drop == "reject_new") {
    c.spool.drop = DropPolicy::kRejectNew;
  } else {
    return fail("spool.drop must be oldest or reject_new (got \"" + drop + "\")");
  }
  if (fsync == "every_append") {
    c.spool.fsync = FsyncPolicy::kEveryAppend;
  } else if (fsync == "never") {
    c.spool.fsync = FsyncPolicy::kNever;
  } else {
    return fail("spool.fsync must be every_append or never (got \"" + fsync + "\")");
  }
  c.spool.max_bytes = max_mb << 20;
  c.spool.segment_bytes = segment_kb << 10;
  if (c.spool.segment_bytes > c.spool.max_bytes)
    return fail("spool.segment_kb exceeds spool.max_mb");
  if (c.upload_transport == "mqtt") {
    if (mqtt_broker.empty()) return fail("upload.mqtt_broker is required for transport: mqtt");
    auto broker = ParseHostPort(mqtt_broker, "upload.mqtt_broker");
    if (!broker.ok()) return fail(broker.error().message);
    c.mqtt_broker = *broker;
  } else if (!mqtt_broker.empty()) {
    return fail("upload.mqtt_broker is set but upload.transport is not mqtt");
  }
  c.mqtt_ack_timeout = std::chrono::milliseconds(ack_timeout_ms);
  c.upload.max_bytes = static_cast<size_t>(batch_kb) << 10;
  c.upload.base_delay = std::chrono::milliseconds(base_ms);
  c.upload.max_delay = std::chrono::milliseconds(max_ms);
  if (base_ms > max_ms) return fail("upload.base_delay_ms exceeds upload.max_delay_ms");
  if (c.drift.psi_clear > c.drift.psi_raise) return fail("drift.psi_clear exceeds drift.psi_raise");
  if (c.drift.min_samples > c.drift.window) return fail("drift.min_samples exceeds drift.window");
  c.upload.device_id = c.device_id;
  c.replay.device_id = c.device_id.empty() ? "device" : c.device_id;
  return c;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) return text.error();
  return ParseAgentConfig(*text, path);
}

}  // namespace edgeloop::edge
