// The MQTT device plane with real processes on loopback (docs/scale-out.md): a Mosquitto
// broker configured by `edgeloop mqtt-config`, `edgeloop server --mqtt-broker`, and devices
// enrolled over HTTPS that upload with edge::Uploader over edge::MqttUploadTransport.
//   end to end: two devices, every sample stored once and acked; throughput and ack latency;
//   ACL: a device cannot subscribe to another's acks (SUBACK 0x80), what it publishes on
//        another's samples topic never reaches ingest, and with the ACL file alone (no plugin)
//        it is still delivered nothing of another device; foreign samples, revoked devices
//        and the ingest identity are refused;
//   faults: the broker killed -9 and restarted during sustained upload, and the server killed
//        -9 and restarted: every sample stored exactly once, the spools empty.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "agent_test_util.hpp"
#include "cloud/database.hpp"
#include "cloud/server.hpp"
#include "common/mqtt_client.hpp"
#include "common/mqtt_protocol.hpp"
#include "edge/cloud_client.hpp"
#include "edge/mqtt_upload_transport.hpp"
#include "edge/spool.hpp"
#include "edge/uploader.hpp"
#include "mqtt_broker.hpp"
#include "server_process.hpp"

namespace edgeloop::testing {
namespace {

using namespace std::chrono_literals;

std::string SamplePayload(uint64_t i) {
  wire::Sample s;
  s.mutable_tensor()->add_shape(8);
  for (int k = 0; k < 8; ++k) s.mutable_tensor()->add_values(static_cast<float>(i + k));
  s.set_timestamp_ms(1'700'000'000'000 + static_cast<int64_t>(i));
  s.set_prediction(static_cast<int32_t>(i % 3));
  s.set_confidence(0.5f);
  s.set_model_version("m1");
  return s.SerializeAsString();
}

// A device as the agent runs it: enrolled identity, spool, uploader over MQTT.
struct TestDevice {
  std::string id;
  edge::DeviceIdentity identity;
  std::unique_ptr<edge::Spool> spool;
  std::shared_ptr<edge::MqttUploadTransport> transport;
  std::unique_ptr<edge::Uploader> uploader;
  std::thread upload_thread, produce_thread;

  void Append(int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(spool->Append(SamplePayload(i)).ok());
  }
  // Appends n samples at rate_hz on a thread of its own (a sensor feeding the spool).
  void Produce(int n, double rate_hz) {
    produce_thread = std::thread([this, n, rate_hz] {
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) {
        std::this_thread::sleep_until(start + std::chrono::duration<double>(i / rate_hz));
        (void)spool->Append(SamplePayload(static_cast<uint64_t>(i)));
      }
    });
  }
  void StartUploading() {
    upload_thread = std::thread([this] { uploader->Run(20ms); });
  }
  uint64_t pending() const { return spool->Stats().depth_records; }
  void Stop() {
    if (produce_thread.joinable()) produce_thread.join();
    if (uploader) uploader->Stop();
    if (upload_thread.joinable()) upload_thread.join();
  }
  ~TestDevice() { Stop(); }
};

// libmosquitto with a device's certificate, for what the agent never does on its own.
class RawClient {
 public:
  RawClient(const edge::DeviceIdentity& id, const std::string& broker_host, int port,
            const std::string& client_id) {
    mqtt::ClientOptions o;
    o.host = broker_host;
    o.port = port;
    o.client_id = client_id;
    o.ca_file = id.ca_file;
    o.cert_file = id.cert_file;
    o.key_file = id.key_file;
    o.reconnect_min = 100ms;
    mqtt::ClientCallbacks cb;
    cb.on_subscribe = [this](const std::string& filter, int granted) {
      std::lock_guard<std::mutex> lock(mu_);
      granted_[filter] = granted;
    };
    cb.on_message = [this](const std::string& topic, std::string_view payload) {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.emplace_back(topic, std::string(payload));
    };
    auto c = mqtt::Client::Create(o, std::move(cb));
    EXPECT_TRUE(c.ok()) << c.error().message;
    if (!c.ok()) return;
    client_ = std::move(*c);
    client_->Start();
    EXPECT_TRUE(WaitFor([&] { return client_->connected(); }, 10)) << client_->last_error();
  }

  // The QoS the broker granted for filter (0x80: refused), -1 when no SUBACK came in 5 s.
  int Subscribe(const std::string& filter) {
    EXPECT_TRUE(client_->Subscribe(filter, 1).ok());
    WaitFor([&] { return Granted(filter) != -1; }, 5);
    return Granted(filter);
  }
  void Publish(const std::string& topic, const std::string& payload) {
    auto mid = client_->Publish(topic, payload, 1);
    EXPECT_TRUE(mid.ok()) << mid.error().message;
  }
  // The acks received on topic so far.
  std::vector<mqtt::Ack> Acks(const std::string& topic) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<mqtt::Ack> out;
    for (const auto& [t, payload] : messages_) {
      if (t != topic) continue;
      auto a = mqtt::ParseAck(payload);
      EXPECT_TRUE(a.ok()) << payload;
      if (a.ok()) out.push_back(*a);
    }
    return out;
  }
  // Publishes a batch on device's samples topic and waits (10 s) for the next ack on its
  // acks topic (which this client must have subscribed to).
  std::optional<mqtt::Ack> PublishForAck(const std::string& device, const std::string& body) {
    const std::string acks = mqtt::AcksTopic(device);
    const size_t before = Acks(acks).size();
    Publish(mqtt::SamplesTopic(device), body);
    if (!WaitFor([&] { return Acks(acks).size() > before; }, 10)) return std::nullopt;
    return Acks(acks).back();
  }
  size_t MessageCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_.size();
  }

 private:
  int Granted(const std::string& filter) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = granted_.find(filter);
    return it == granted_.end() ? -1 : it->second;
  }
  std::mutex mu_;
  std::map<std::string, int> granted_;
  std::vector<std::pair<std::string, std::string>> messages_;
  std::unique_ptr<mqtt::Client> client_;
};

std::string BatchBody(const std::string& device, uint64_t first_seq, int count) {
  return Zstd(MakeBatch(device, first_seq, count, 8).SerializeAsString());
}

class MqttPlane : public ::testing::Test {
 protected:
  virtual std::string BrokerArgs() { return ""; }

  void SetUp() override {
    ASSERT_EQ(broker_.Configure(BrokerArgs()), "");
    ASSERT_TRUE(broker_.Start()) << broker_.log();
    StartServer();
  }

  void StartServer() {
    server_ = std::make_unique<ServerProcess>(
        data_, port_, std::vector<std::string>{"--mqtt-broker", broker_.address()});
    ASSERT_TRUE(server_->WaitReady());
    const int workers = cloud::ServerOptions{}.mqtt_workers;  // the server's default
    ASSERT_TRUE(WaitFor([&] { return IngestWorkersConnected() == workers; }, 20))
        << "ingest workers not connected\n"
        << broker_.log();
  }

  std::string Metrics() const { return Operator(port_, data_).Metrics(); }
  int IngestWorkersConnected() const {
    const std::string m = Metrics();
    const std::string key = "\nedgeloop_mqtt_ingest_workers_connected ";
    size_t at = m.find(key);
    return at == std::string::npos ? -1 : std::atoi(m.c_str() + at + key.size());
  }

  edge::DeviceIdentity Enroll(const std::string& id) {
    Operator op(port_, data_);
    auto identity =
        edge::LoadOrEnroll({"https://127.0.0.1:" + std::to_string(port_), dir_.path() + "/" + id,
                            id, op.EnrollmentToken(id), data_ + "/ca.crt"});
    EXPECT_TRUE(identity.ok()) << identity.error().message;
    return identity.ok() ? *identity : edge::DeviceIdentity{};
  }

  std::unique_ptr<TestDevice> MakeDevice(const std::string& id,
                                         std::chrono::milliseconds ack_timeout = 2000ms) {
    auto d = std::make_unique<TestDevice>();
    d->id = id;
    d->identity = Enroll(id);
    edge::SpoolOptions so;
    so.fsync = edge::FsyncPolicy::kNever;  // the spool's durability is tested on its own
    auto spool = edge::Spool::Open(dir_.path() + "/" + id + "/spool", so);
    EXPECT_TRUE(spool.ok());
    d->spool = std::move(*spool);
    edge::MqttUploadOptions mo;
    mo.broker = {"127.0.0.1", broker_.port()};
    mo.ack_timeout = ack_timeout;
    mo.reconnect_min = 200ms;
    mo.reconnect_max = 1000ms;
    mo.keepalive_s = 5;
    mo.log = [id](const std::string& line) {
      std::fprintf(stderr, "[%s] %s\n", id.c_str(), line.c_str());
    };
    auto t = edge::MqttUploadTransport::Connect(d->identity, mo);
    EXPECT_TRUE(t.ok()) << t.error().message;
    d->transport = std::move(*t);
    edge::UploaderOptions uo;
    uo.device_id = id;
    uo.max_records = 25;
    uo.base_delay = 50ms;
    uo.max_delay = 500ms;
    d->uploader = std::make_unique<edge::Uploader>(*d->spool, d->transport, uo);
    return d;
  }

  // agent.yaml for an agent uploading over MQTT to the broker, replaying csv (`replay` adds to
  // the source's settings), with its factory model written to `model`; `extra`: more sections.
  bool WriteMqttAgentConfig(const std::string& id, const std::string& config,
                            const std::string& model, const std::string& csv,
                            const std::string& replay, const std::string& extra) {
    if (!WriteFileAtomic(model, LinearModelOnnx(0)).ok()) return false;
    Operator op(port_, data_);
    return WriteFileAtomic(
               config,
               AgentYaml(id, dir_.path() + "/" + id, port_, op.EnrollmentToken(id),
                         data_ + "/ca.crt", model,
                         "source: {kind: replay, dataset: " + csv + ", " + replay + "}\n",
                         "sampling: {policy: all}\nupload: {transport: mqtt, mqtt_broker: '" +
                             broker_.address() + "', batch_records: 20}\n" + extra))
        .ok();
  }

  // Deploys the second linear model (with its golden case) to a device; false on an error.
  bool DeployV2(const std::string& device) {
    const std::string v2 = dir_.path() + "/v2.onnx";
    if (!WriteFileAtomic(v2, LinearModelOnnx(1)).ok()) return false;
    auto doc = Operator(port_, data_).Deploy(device, *ReadFile(v2), "linear:2", GoldenFor(v2));
    EXPECT_FALSE(doc.contains("error")) << doc.dump();
    return !doc.contains("error");
  }
  // The device reported `version` committed.
  static bool Committed(const Operator& op, const std::string& device, const std::string& version) {
    for (const auto& e : op.Events(device))
      if (e.value("phase", "") == "committed" && e.value("model_version", "") == version)
        return true;
    return false;
  }

  uint64_t Stored(const std::string& device) const {
    return Operator(port_, data_).SampleCount(device);
  }

  // Sequence numbers 1..n each stored once for the device, none else (in the database).
  void ExpectEachStoredOnce(const std::string& device, int n) {
    auto db = cloud::OpenDatabase("sqlite:" + data_ + "/edgeloop.db");
    ASSERT_TRUE(db.ok());
    auto rows = (*db)->Query(
        "SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM samples WHERE device_id = ?",
        {device});
    ASSERT_TRUE(rows.ok());
    const std::string count = std::to_string(n);
    EXPECT_EQ(rows->at(0), (cloud::Row{count, count, "1", count})) << device;
  }

  TempDir dir_;
  std::string data_ = dir_.path() + "/server";
  BrokerProcess broker_{data_, dir_.path() + "/broker"};
  int port_ = FreeLoopbackPort();
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(MqttPlane, TwoDevicesUploadEverySampleExactlyOnceAndAcked) {
  constexpr int kSamples = 400;
  auto a = MakeDevice("cam-a"), b = MakeDevice("cam-b");
  a->Append(kSamples);
  b->Append(kSamples);
  auto start = std::chrono::steady_clock::now();
  a->StartUploading();
  b->StartUploading();
  ASSERT_TRUE(WaitFor([&] { return a->pending() == 0 && b->pending() == 0; }, 60))
      << "pending " << a->pending() << " and " << b->pending() << ": "
      << a->uploader->stats().last_error << " / " << b->uploader->stats().last_error;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  a->Stop();
  b->Stop();
  for (TestDevice* d : {a.get(), b.get()}) {
    EXPECT_EQ(Stored(d->id), static_cast<uint64_t>(kSamples)) << d->id;
    EXPECT_EQ(d->uploader->stats().records_acked, static_cast<uint64_t>(kSamples)) << d->id;
    EXPECT_EQ(d->uploader->stats().failures, 0u) << d->uploader->stats().last_error;
    ExpectEachStoredOnce(d->id, kSamples);
  }
  std::printf("mqtt end to end: 2 devices x %d samples in batches of 25, %.2f s, %.0f samples/s\n",
              kSamples, seconds, 2 * kSamples / seconds);
}

// The agent process itself, configured with upload.transport: mqtt.
TEST_F(MqttPlane, AgentUploadsOverMqttWhenConfigured) {
  constexpr int kSamples = 150;
  const std::string csv = dir_.path() + "/data.csv", model = dir_.path() + "/factory.onnx";
  const std::string config = dir_.path() + "/agent.yaml", log = dir_.path() + "/agent.log";
  WriteCsvDataset(csv, kSamples);
  ASSERT_TRUE(WriteMqttAgentConfig("agent-1", config, model, csv, "rate_hz: 500",
                                   "telemetry: {interval_s: 0.5}\n"));
  AgentProcess agent(EDGELOOP_AGENT_BINARY, config, log);
  ASSERT_TRUE(WaitFor([&] { return Stored("agent-1") >= kSamples; }, 30)) << *ReadFile(log);
  int status = agent.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << *ReadFile(log);
  EXPECT_EQ(Stored("agent-1"), static_cast<uint64_t>(kSamples));
  ExpectEachStoredOnce("agent-1", kSamples);
  EXPECT_GE(
      CountInFile(log, "samples, telemetry and update events over MQTT to " + broker_.address()),
      1u)
      << *ReadFile(log);
}

// With upload.transport mqtt the agent's telemetry and update events go over the broker too,
// and update metadata comes to it as a retained message: with polling set to once an hour,
// a deployment still reaches the running agent, which installs it, and its events reach the
// fleet view, none of them over HTTPS.
TEST_F(MqttPlane, AgentTakesPushedUpdatesAndReportsOverMqtt) {
  const std::string csv = dir_.path() + "/data.csv", model = dir_.path() + "/factory.onnx";
  const std::string config = dir_.path() + "/agent.yaml", log = dir_.path() + "/agent.log";
  WriteCsvDataset(csv, 400);
  ASSERT_TRUE(WriteMqttAgentConfig(
      "push-1", config, model, csv, "rate_hz: 100, loop: true",
      "telemetry: {interval_s: 0.3}\nupdate: {poll_s: 3600, probation_samples: 20}\n"));
  Operator op(port_, data_);
  AgentProcess agent(EDGELOOP_AGENT_BINARY, config, log);
  const std::string telemetry_ok =
      "edgeloop_mqtt_control_messages_total{topic=\"telemetry\",status=\"200\"}";
  ASSERT_TRUE(WaitFor([&] { return MetricValue(Metrics(), telemetry_ok) >= 2; }, 30))
      << Metrics() << *ReadFile(log);
  // The fleet view has the device's telemetry (its model and samples).
  ASSERT_TRUE(WaitFor(
      [&] {
        auto fleet = op.Get("/v1/fleet");
        for (const auto& d : fleet.value("devices", nlohmann::json::array()))
          if (d.value("device_id", "") == "push-1" && d.value("model_version", "") == "factory")
            return true;
        return false;
      },
      10))
      << op.Get("/v1/fleet").dump();

  // Deployed after the agent's one poll at start: only the push can bring it.
  ASSERT_TRUE(DeployV2("push-1"));
  ASSERT_TRUE(WaitFor([&] { return Committed(op, "push-1", "linear:2"); }, 40))
      << op.Events("push-1").dump() << "\n"
      << *ReadFile(log);
  const std::string m = Metrics();
  EXPECT_GE(MetricValue(m, "edgeloop_update_pushes_total{result=\"ok\"}"), 1) << m;
  EXPECT_GE(MetricValue(m, "edgeloop_mqtt_control_messages_total{topic=\"events\",status=\"200\"}"),
            3)
      << m;  // downloading, staged, probation, committed
  // Nothing went over HTTPS but the enrollment, the poll at start and the artifact download.
  EXPECT_EQ(m.find("route=\"/v1/telemetry\""), std::string::npos) << m;
  EXPECT_EQ(m.find("route=\"/v1/events\""), std::string::npos) << m;
  EXPECT_GE(CountInFile(log, "update metadata pushed over MQTT"), 1u) << *ReadFile(log);
  int status = agent.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << *ReadFile(log);
}

// With the broker gone for longer than the ack timeout the agent's telemetry goes over HTTPS
// (the device API stays), and back through the broker once it returns; a start, when the link
// is still connecting, sends nothing over HTTPS.
TEST_F(MqttPlane, AgentTelemetryFallsBackToHttpsWhileTheBrokerIsAway) {
  const std::string csv = dir_.path() + "/data.csv", model = dir_.path() + "/factory.onnx";
  const std::string config = dir_.path() + "/agent.yaml", log = dir_.path() + "/agent.log";
  WriteCsvDataset(csv, 200);
  ASSERT_TRUE(WriteMqttAgentConfig("away-1", config, model, csv, "rate_hz: 50, loop: true",
                                   "telemetry: {interval_s: 0.2}\n"));
  // mqtt_ack_timeout_ms is also how long the broker must be gone to count as away: 1 s here.
  std::string yaml = *ReadFile(config);
  yaml.replace(yaml.find("batch_records: 20"), 17, "batch_records: 20, mqtt_ack_timeout_ms: 1000");
  ASSERT_TRUE(WriteFileAtomic(config, yaml).ok());
  AgentProcess agent(EDGELOOP_AGENT_BINARY, config, log);
  const std::string over_mqtt =
      "edgeloop_mqtt_control_messages_total{topic=\"telemetry\",status=\"200\"}";
  const std::string over_https =
      "edgeloop_http_requests_total{method=\"POST\",route=\"/v1/telemetry\",status=\"200\"}";
  ASSERT_TRUE(WaitFor([&] { return MetricValue(Metrics(), over_mqtt) >= 3; }, 30))
      << *ReadFile(log);
  EXPECT_EQ(MetricValue(Metrics(), over_https), 0) << Metrics();
  broker_.Kill(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return MetricValue(Metrics(), over_https) >= 2; }, 30))
      << Metrics() << *ReadFile(log);
  ASSERT_TRUE(broker_.Start()) << broker_.log();
  const double before = MetricValue(Metrics(), over_mqtt);
  ASSERT_TRUE(WaitFor([&] { return MetricValue(Metrics(), over_mqtt) >= before + 3; }, 40))
      << *ReadFile(log);
  EXPECT_GE(CountInFile(log, "sending it over HTTPS"), 1u) << *ReadFile(log);
  int status = agent.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << *ReadFile(log);
}

// A deployment made while the broker is down is pushed once it is back: the server keeps the
// push and sends it when an ingest worker has reconnected; the agent (polling once an hour)
// gets it from its update topic and installs it.
TEST_F(MqttPlane, UpdateDeployedWhileTheBrokerIsDownIsPushedWhenItReturns) {
  const std::string csv = dir_.path() + "/data.csv", model = dir_.path() + "/factory.onnx";
  const std::string config = dir_.path() + "/agent.yaml", log = dir_.path() + "/agent.log";
  WriteCsvDataset(csv, 400);
  ASSERT_TRUE(WriteMqttAgentConfig(
      "late-1", config, model, csv, "rate_hz: 100, loop: true",
      "telemetry: {interval_s: 0.3}\nupdate: {poll_s: 3600, probation_samples: 20}\n"));
  AgentProcess agent(EDGELOOP_AGENT_BINARY, config, log);
  const std::string telemetry_ok =
      "edgeloop_mqtt_control_messages_total{topic=\"telemetry\",status=\"200\"}";
  ASSERT_TRUE(WaitFor([&] { return MetricValue(Metrics(), telemetry_ok) >= 1; }, 30))
      << *ReadFile(log);
  broker_.Kill(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return IngestWorkersConnected() == 0; }, 30)) << Metrics();
  Operator op(port_, data_);
  ASSERT_TRUE(DeployV2("late-1"));
  EXPECT_EQ(MetricValue(Metrics(), "edgeloop_update_pushes_total{result=\"ok\"}"), 0);
  ASSERT_TRUE(broker_.Start()) << broker_.log();
  ASSERT_TRUE(WaitFor([&] { return Committed(op, "late-1", "linear:2"); }, 60))
      << op.Events("late-1").dump() << "\n"
      << *ReadFile(log);
  EXPECT_GE(MetricValue(Metrics(), "edgeloop_update_pushes_total{result=\"ok\"}"), 1);
  EXPECT_GE(CountInFile(log, "update metadata pushed over MQTT"), 1u) << *ReadFile(log);
  int status = agent.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << *ReadFile(log);
}

// Telemetry and events over the broker from a device that is not enrolled, or with bad
// documents, are refused with the same checks as over HTTPS; the event's answer says why.
TEST_F(MqttPlane, BadTelemetryAndEventsOverMqttAreRefused) {
  edge::DeviceIdentity a = Enroll("ctl-a");
  RawClient raw(a, "127.0.0.1", broker_.port(), "ctl-a");
  ASSERT_EQ(raw.Subscribe(mqtt::AcksTopic("ctl-a")), 1);
  const std::string events = mqtt::DeviceTopic("ctl-a", "events");
  raw.Publish(events, R"({"id": 5, "phase": "exploded"})");
  raw.Publish(events, R"({"phase": "committed"})");  // no id: no answer can name it
  raw.Publish(events, R"({"id": 6, "phase": "committed", "version": 1, "model_version": "m"})");
  raw.Publish(mqtt::DeviceTopic("ctl-a", "telemetry"), R"({"no_model_version": 1})");
  raw.Publish(mqtt::DeviceTopic("ctl-a", "telemetry"), std::string(3, '[') + "oops");
  ASSERT_TRUE(WaitFor([&] { return raw.Acks(mqtt::AcksTopic("ctl-a")).size() >= 3; }, 10));
  std::map<uint64_t, mqtt::Ack> by_id;
  for (const auto& ack : raw.Acks(mqtt::AcksTopic("ctl-a"))) {
    EXPECT_TRUE(ack.is_event);
    by_id[ack.event_id] = ack;
  }
  ASSERT_EQ(by_id.count(5), 1u);
  EXPECT_FALSE(by_id[5].ok());
  EXPECT_EQ(by_id[5].status, 400);
  EXPECT_NE(by_id[5].error.find("phase"), std::string::npos) << by_id[5].error;
  ASSERT_EQ(by_id.count(6), 1u);
  EXPECT_TRUE(by_id[6].ok()) << by_id[6].error;
  Operator op(port_, data_);
  ASSERT_EQ(op.Events("ctl-a").size(), 1u) << op.Events("ctl-a").dump();
  EXPECT_EQ(op.Events("ctl-a")[0].value("phase", ""), "committed");
  ASSERT_TRUE(WaitFor(
      [&] {
        return MetricValue(
                   Metrics(),
                   "edgeloop_mqtt_control_messages_total{topic=\"telemetry\",status=\"400\"}") >= 2;
      },
      10))
      << Metrics();
  EXPECT_EQ(MetricValue(Metrics(),
                        "edgeloop_mqtt_control_messages_total{topic=\"events\",status=\"400\"}"),
            2)
      << Metrics();
}

TEST_F(MqttPlane, AckLatencyOfSingleSampleBatches) {
  constexpr int kBatches = 200;
  auto d = MakeDevice("lat-1");
  d->Append(kBatches);
  std::vector<double> ms;
  for (int i = 0; i < kBatches; ++i) {
    auto batch = d->spool->Peek(1, 1 << 20);
    ASSERT_TRUE(batch.ok() && batch->size() == 1);
    auto t0 = std::chrono::steady_clock::now();
    auto acked = d->transport->Send({d->id, *batch});
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(acked.ok()) << acked.error().message;
    EXPECT_EQ(*acked, batch->front().seq);
    ASSERT_TRUE(d->spool->Ack(*acked).ok());
  }
  EXPECT_EQ(Stored("lat-1"), static_cast<uint64_t>(kBatches));
  std::sort(ms.begin(), ms.end());
  std::printf(
      "mqtt ack latency (publish to ack, one sample, durable write): p50 %.2f ms, "
      "p95 %.2f ms, p99 %.2f ms, max %.2f ms over %d batches\n",
      ms[ms.size() / 2], ms[ms.size() * 95 / 100], ms[ms.size() * 99 / 100], ms.back(), kBatches);
}

TEST_F(MqttPlane, DevicesAreConfinedToTheirOwnTopics) {
  edge::DeviceIdentity a = Enroll("dev-a");
  Enroll("dev-b");
  RawClient raw(a, "127.0.0.1", broker_.port(), "dev-a-raw");
  // Another device's acks: refused by the subscribe ACL. Its own: granted at QoS 1.
  EXPECT_EQ(raw.Subscribe(mqtt::AcksTopic("dev-b")), 0x80);
  EXPECT_EQ(raw.Subscribe("edgeloop/#"), 0x80);
  EXPECT_EQ(raw.Subscribe(mqtt::AcksTopic("dev-a")), 1);
  // Samples published on dev-b's topic, then on its own: only its own reach ingest.
  raw.Publish(mqtt::SamplesTopic("dev-b"), BatchBody("dev-b", 1, 5));
  auto ack = raw.PublishForAck("dev-a", BatchBody("dev-a", 1, 3));
  ASSERT_TRUE(ack.has_value());
  EXPECT_TRUE(ack->ok()) << ack->error;
  EXPECT_EQ(ack->acked_through, 3u);
  EXPECT_EQ(ack->accepted, 3u);
  EXPECT_EQ(Stored("dev-a"), 3u);
  EXPECT_EQ(Stored("dev-b"), 0u);
  // The broker dropped the foreign message: ingest saw exactly one message, the stored one.
  const std::string m = Metrics();
  EXPECT_NE(m.find("edgeloop_mqtt_ingest_messages_total{status=\"200\"} 1\n"), std::string::npos)
      << m;
  EXPECT_EQ(m.find("edgeloop_mqtt_ingest_messages_total{status=\"4"), std::string::npos) << m;

  // On its own topic, samples that name another device are refused with an error ack.
  ack = raw.PublishForAck("dev-a", BatchBody("dev-b", 10, 2));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status, 403);
  EXPECT_NE(ack->error.find("cannot write samples as dev-b"), std::string::npos) << ack->error;
  EXPECT_EQ(Stored("dev-b"), 0u);

  // A revoked device still holds a certificate the broker accepts; ingest refuses it.
  Operator op(port_, data_);
  EXPECT_FALSE(op.Post("/v1/devices/dev-a/revoke", "{}").contains("error"));
  ack = raw.PublishForAck("dev-a", BatchBody("dev-a", 4, 2));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status, 403);
  EXPECT_NE(ack->error.find("revoked"), std::string::npos) << ack->error;
  EXPECT_EQ(Stored("dev-a"), 3u);

  // Nobody enrolls as the ingest identity, whose certificate may read every device's topics.
  auto ingest = edge::LoadOrEnroll({"https://127.0.0.1:" + std::to_string(port_),
                                    dir_.path() + "/impostor", mqtt::kIngestIdentity,
                                    op.EnrollmentToken(mqtt::kIngestIdentity), data_ + "/ca.crt"});
  ASSERT_FALSE(ingest.ok());
  EXPECT_NE(ingest.error().message.find("reserved"), std::string::npos) << ingest.error().message;
}

// Mosquitto's ACL file alone grants every SUBSCRIBE; it still delivers nothing of another
// device (the plugin above only makes the refusal visible).
class MqttPlaneWithoutPlugin : public MqttPlane {
 protected:
  std::string BrokerArgs() override { return "--acl-plugin none"; }
};

TEST_F(MqttPlaneWithoutPlugin, AclFileDeliversNothingOfAnotherDevice) {
  edge::DeviceIdentity a = Enroll("dev-a"), b = Enroll("dev-b");
  RawClient spy(a, "127.0.0.1", broker_.port(), "dev-a-spy");
  EXPECT_EQ(spy.Subscribe(mqtt::AcksTopic("dev-b")), 1);  // granted, as Mosquitto 2.0.11 does
  EXPECT_EQ(spy.Subscribe("edgeloop/devices/+/samples"), 1);
  RawClient owner(b, "127.0.0.1", broker_.port(), "dev-b-raw");
  EXPECT_EQ(owner.Subscribe(mqtt::AcksTopic("dev-b")), 1);
  auto ack = owner.PublishForAck("dev-b", BatchBody("dev-b", 1, 4));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->acked_through, 4u);
  EXPECT_EQ(Stored("dev-b"), 4u);
  // The ack and the samples went out at the same moment; give the spy a little longer.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(spy.MessageCount(), 0u);
}

class MqttFaults : public MqttPlane {
 protected:
  static constexpr int kSamples = 1200;

  // Two devices produce kSamples each at 300/s while uploading; at each of `marks` (samples
  // stored, both devices together) `fault` runs. Then everything must arrive exactly once.
  void SustainedUploadWith(const std::vector<uint64_t>& marks, const std::function<void()>& fault) {
    std::vector<std::unique_ptr<TestDevice>> devices;
    for (const char* id : {"dev-1", "dev-2"}) devices.push_back(MakeDevice(id));
    for (auto& d : devices) {
      d->Produce(kSamples, 300);
      d->StartUploading();
    }
    auto stored = [&] {
      uint64_t n = 0;
      for (auto& d : devices) n += Stored(d->id);
      return n;
    };
    for (uint64_t mark : marks) {
      ASSERT_TRUE(WaitFor([&] { return stored() >= mark; }, 60)) << "stuck below " << mark;
      fault();
    }
    auto drained = [&] {
      for (auto& d : devices)
        if (d->pending() > 0) return false;
      return stored() >= 2u * kSamples;
    };
    ASSERT_TRUE(WaitFor(drained, 90)) << "stored " << stored() << " of " << 2 * kSamples;
    for (auto& d : devices) {
      d->Stop();
      EXPECT_EQ(d->pending(), 0u) << d->id << ": " << d->uploader->stats().last_error;
      EXPECT_EQ(d->uploader->stats().records_acked, static_cast<uint64_t>(kSamples)) << d->id;
      EXPECT_EQ(Stored(d->id), static_cast<uint64_t>(kSamples)) << d->id;
      ExpectEachStoredOnce(d->id, kSamples);
      std::printf(
          "%s: %llu batches sent, %llu failed and sent again, %llu samples the "
          "server had already\n",
          d->id.c_str(), static_cast<unsigned long long>(d->uploader->stats().batches_sent),
          static_cast<unsigned long long>(d->uploader->stats().failures),
          static_cast<unsigned long long>(d->transport->duplicates()));
    }
  }
};

TEST_F(MqttFaults, BrokerKilledAndRestartedLosesAndDuplicatesNothing) {
  int kills = 0;
  SustainedUploadWith({400, 1200}, [&] {
    broker_.Kill(SIGKILL);
    ++kills;
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(broker_.Start()) << broker_.log();
  });
  EXPECT_EQ(kills, 2);
}

TEST_F(MqttFaults, ServerKilledAndRestartedLosesAndDuplicatesNothing) {
  int kills = 0;
  SustainedUploadWith({400, 1200}, [&] {
    server_->Kill(SIGKILL);
    ++kills;
    std::this_thread::sleep_for(300ms);
    StartServer();
  });
  EXPECT_EQ(kills, 2);
}

}  // namespace
}  // namespace edgeloop::testing
