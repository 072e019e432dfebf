#include "edge/agent_config.hpp"

#include <gtest/gtest.h>

namespace edgeloop::edge {
namespace {

const char* kFull = R"(device:
  id: dev-7
  data_dir: /var/lib/edgeloop
server:
  url: https://127.0.0.1:8443
  enrollment_token: tok
  ca_file: /etc/edgeloop/ca.crt
model:
  path: /opt/model.onnx
  version: base-3
  profile: /opt/reference.json
  max_gflops: 2.5
  max_arena_mib: 64
source:
  kind: replay
  dataset: fashion-mnist:test
  rate_hz: 100
  loop: true
  corruption: blur
  severity: 4
sampling:
  policy: uniform
  rate: 0.2
  budget_bytes_per_s: 5000
  on_drift: all
spool:
  max_mb: 8
  segment_kb: 256
  drop: reject_new
upload:
  batch_records: 64
  base_delay_ms: 200
telemetry:
  interval_s: 30
drift:
  psi_raise: 0.3
update:
  probation_samples: 20
)";

TEST(AgentConfigTest, ParsesEverySection) {
  auto c = ParseAgentConfig(kFull, "agent.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->device_id, "dev-7");
  EXPECT_EQ(c->source_kind, "replay");
  EXPECT_DOUBLE_EQ(c->replay.rate_hz, 100);
  EXPECT_TRUE(c->replay.loop);
  ASSERT_TRUE(c->replay.corruption.has_value());
  EXPECT_EQ(*c->replay.corruption, data::Corruption::kBlur);
  EXPECT_EQ(c->replay.severity, 4);
  EXPECT_EQ(c->sampling.policy, SamplingPolicy::kUniform);
  EXPECT_DOUBLE_EQ(c->sampling.budget_bytes_per_s, 5000);
  EXPECT_EQ(c->sampling.on_drift, SamplingPolicy::kAll);
  EXPECT_EQ(c->spool.max_bytes, 8u << 20);
  EXPECT_EQ(c->spool.segment_bytes, 256u << 10);
  EXPECT_EQ(c->spool.drop, DropPolicy::kRejectNew);
  EXPECT_EQ(c->upload.max_records, 64u);
  EXPECT_EQ(c->upload.base_delay.count(), 200);
  EXPECT_EQ(c->upload.device_id, "dev-7");
  EXPECT_EQ(c->telemetry_interval_s, 30);
  EXPECT_DOUBLE_EQ(c->drift.psi_raise, 0.3);
  EXPECT_EQ(c->probation.samples, 20u);
  EXPECT_EQ(c->ca_file, "/etc/edgeloop/ca.crt");
  EXPECT_EQ(c->model_path, "/opt/model.onnx");
  EXPECT_EQ(c->model_version, "base-3");
  EXPECT_EQ(c->model_profile, "/opt/reference.json");
  EXPECT_DOUBLE_EQ(c->model_max_gflops, 2.5);
  EXPECT_EQ(c->model_max_arena_mib, 64);
}

void ExpectError(const std::string& yaml, const std::string& needle) {
  auto c = ParseAgentConfig(yaml, "agent.yaml");
  ASSERT_FALSE(c.ok()) << "accepted:\n" << yaml;
  EXPECT_NE(c.error().message.find(needle), std::string::npos) << c.error().message;
}

TEST(AgentConfigTest, ErrorsNameTheKeyAndLine) {
  const std::string base = "device: {data_dir: /d}\nserver: {url: https://x}\n";
  ExpectError(base + "source:\n  kind: replay\n  dataset: d\n  rate_hz: fast\n",
              "agent.yaml:6: source.rate_hz: cannot read \"fast\" as a number");
  ExpectError(base + "source:\n  kind: replay\n  dataset: d\n  severity: 9\n",
              "source.severity: 9 is outside [1, 5]");
  ExpectError(base + "source: {kind: stdin}\nspool:\n  max_bm: 3\n",
              "agent.yaml:5: spool: unknown key \"max_bm\"");
  ExpectError(base + "source: {kind: stdin}\nsampler: {}\n", "unknown section \"sampler\"");
  ExpectError("device: {data_dir: /d}\nserver: {url: http://x}\nsource: {kind: stdin}\n",
              "server.url: server URL 'http://x': must start with https://");
  ExpectError("device: {data_dir: /d}\nserver: {url: 'https://x:99999'}\nsource: {kind: stdin}\n",
              "port must be a number from 1 to 65535");
  ExpectError(base + "source: {kind: camera}\n", "source.kind must be replay, watch or stdin");
  ExpectError(base + "source: {kind: watch}\n", "source.dir is required");
  ExpectError(base + "source: {kind: stdin}\nsampling: {policy: most}\n",
              "unknown sampling policy");
  ExpectError(base + "source: {kind: stdin}\nsampling: {on_drift: most}\n", "sampling.on_drift");
  ExpectError(base + "source: {kind: replay, dataset: d, corruption: fog}\n",
              "unknown corruption \"fog\"");
  ExpectError("server: {url: https://x}\nsource: {kind: stdin}\n", "device.data_dir is required");
  ExpectError(base + "source: [1, 2\n", "agent.yaml:");
  ExpectError(base + "source: {kind: stdin}\ndrift: {psi_raise: 0.1, psi_clear: 0.2}\n",
              "psi_clear exceeds");
  ExpectError(base + "source: {kind: stdin}\nmodel: {max_gflops: 0}\n", "model.max_gflops");
  ExpectError(base + "source: {kind: stdin}\nmodel: {max_arena_mib: -1}\n", "model.max_arena_mib");
}

TEST(AgentConfigTest, UploadTransportIsHttpsOrMqttWithABroker) {
  const std::string base =
      "device: {data_dir: /d}\nserver: {url: https://x}\nsource: {kind: stdin}\n";
  auto https = ParseAgentConfig(base, "agent.yaml");
  ASSERT_TRUE(https.ok()) << https.error().message;
  EXPECT_EQ(https->upload_transport, "https");
  auto mqtt = ParseAgentConfig(
      base + "upload: {transport: mqtt, mqtt_broker: 'broker:8883', mqtt_ack_timeout_ms: 2500}\n",
      "agent.yaml");
  ASSERT_TRUE(mqtt.ok()) << mqtt.error().message;
  EXPECT_EQ(mqtt->upload_transport, "mqtt");
  EXPECT_EQ(mqtt->mqtt_broker.host, "broker");
  EXPECT_EQ(mqtt->mqtt_broker.port, 8883);
  EXPECT_EQ(mqtt->mqtt_ack_timeout.count(), 2500);
  ExpectError(base + "upload: {transport: amqp}\n",
              "agent.yaml:4: upload.transport: \"amqp\" is not one of https, mqtt");
  ExpectError(base + "upload: {transport: mqtt}\n", "upload.mqtt_broker is required");
  ExpectError(base + "upload: {transport: mqtt, mqtt_broker: broker}\n",
              "upload.mqtt_broker 'broker': no port");
  ExpectError(base + "upload: {mqtt_broker: 'broker:8883'}\n", "upload.transport is not mqtt");
  ExpectError(base + "upload: {transport: mqtt, mqtt_broker: 'b:1', mqtt_ack_timeout_ms: 0}\n",
              "upload.mqtt_ack_timeout_ms");
}

TEST(AgentConfigTest, MissingFileIsAnError) {
  auto c = LoadAgentConfig("/nonexistent/agent.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::kNotFound);
}

TEST(AgentConfigTest, ShippedExampleParses) {
  auto c = LoadAgentConfig(std::string(EDGELOOP_TEST_SOURCE_DIR) + "/examples/agent.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->sampling.policy, SamplingPolicy::kUncertainty);
  EXPECT_EQ(c->sampling.on_drift, SamplingPolicy::kUniform);
}

}  // namespace
}  // namespace edgeloop::edge
