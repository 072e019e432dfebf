// The uploader's transport over MQTT (docs/scale-out.md): a batch is published with QoS 1 on
// edgeloop/devices/<id>/samples, in the same wire form as over HTTPS (batch_wire.hpp), and
// counts as delivered only when the cloud's ack arrives on edgeloop/devices/<id>/acks, which
// an ingest worker publishes after the durable write. The broker's PUBACK alone means
// nothing here: a broker or an ingest worker may die with the message.
//
// The connection is TLS with the device's enrolled key and certificate (its common name is
// the device id, which the broker's ACL confines to the device's own topics) and the fleet
// CA, which issued the broker's certificate. Client id = device id, persistent session
// (clean_session false), the acks topic subscribed at QoS 1 at every connect; an ack
// published while the device was away waits in its session. One network thread reconnects
// after every loss (mqtt_client.hpp).
//
// Send() waits for the connection and the acks subscription, publishes, then waits for an
// ack that covers the batch's last sequence number, all within ack_timeout. A refusal
// ({"error": ...}), a timeout or a lost connection is an error: the Uploader backs off and
// sends again; the server stores (device, seq) once, so a resend is never a duplicate.
// The same connection carries the device's other traffic when the agent uploads over MQTT:
// telemetry (QoS 1, no answer: the next snapshot replaces a lost one), update events (QoS 1
// with an "id"; the cloud answers {"event": id, ...} on the acks topic after storing it), and
// the retained update metadata on edgeloop/devices/<id>/update, which the broker hands over at
// every connect and whenever the cloud deploys anew, so the device need not poll.
// Thread safety: Send from one thread (the uploader's); the rest from any.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/mqtt_client.hpp"
#include "common/mqtt_protocol.hpp"
#include "common/url.hpp"
#include "edge/cloud_client.hpp"
#include "edge/uploader.hpp"

namespace edgeloop::edge {

struct MqttUploadOptions {
  HostPort broker;
  std::chrono::milliseconds ack_timeout{10000};
  std::chrono::milliseconds reconnect_min{1000};
  std::chrono::milliseconds reconnect_max{30000};
  int keepalive_s = 30;
  // Connection changes and refusals, one line each (the agent's log); may be empty.
  std::function<void(const std::string&)> log;
};

class MqttUploadTransport : public UploadTransport {
 public:
  // Starts connecting (in the background). Errors: the identity's files are missing.
  static Result<std::unique_ptr<MqttUploadTransport>> Connect(const DeviceIdentity& identity,
                                                              MqttUploadOptions options);
  ~MqttUploadTransport() override;

  Result<uint64_t> Send(const UploadBatch& batch) override;

  // Telemetry: published at QoS 1. Errors: kUnavailable when not connected.
  Status PublishTelemetry(std::string_view json);
  // An update event (JSON with "id": id). Errors: kUnavailable when not connected.
  Status PublishEvent(uint64_t id, std::string_view json);
  // The cloud's answer to event `id`, once it came (nullopt until then). Answers are kept for
  // the 64 most recent events.
  std::optional<mqtt::Ack> EventAnswer(uint64_t id);
  // True when the link has not been ready (connected, acks subscribed) for longer than
  // ack_timeout: the broker is away, and what cannot wait goes over HTTPS instead. A link
  // still connecting at start, or reconnecting after a blip, is not away.
  bool away() const;
  // The newest update metadata the broker delivered since the last call, if any.
  std::optional<std::string> TakePushedUpdate();

  uint64_t bytes_up() const { return bytes_up_; }
  uint64_t bytes_down() const { return bytes_down_; }
  // Samples the cloud reported as stored already (a batch sent again after a lost ack).
  uint64_t duplicates() const { return duplicates_; }

 private:
  MqttUploadTransport(std::string device_id, MqttUploadOptions options);
  void OnConnect();
  void OnDisconnect(const std::string& why);
  void OnSubscribe(const std::string& filter, int granted_qos);
  void OnMessage(const std::string& topic, std::string_view payload);
  void Log(const std::string& line) const;

  const std::string device_id_, samples_topic_, acks_topic_, update_topic_;
  const MqttUploadOptions opt_;
  std::unique_ptr<mqtt::Client> client_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_:
  bool ready_ = false;  // connected, and the acks subscription granted
  std::chrono::steady_clock::time_point not_ready_since_ = std::chrono::steady_clock::now();
  std::string not_ready_why_;   // the broker refused the acks subscription, ...
  uint64_t losses_ = 0;         // connections lost so far
  uint64_t acked_through_ = 0;  // the highest sequence number an ack covered
  uint64_t refusals_ = 0;       // refusals received so far; the latest in last_refusal_
  mqtt::Ack last_refusal_;
  std::map<uint64_t, mqtt::Ack> event_answers_;  // by event id, the newest 64
  std::optional<std::string> pushed_update_;
  std::atomic<uint64_t> bytes_up_{0}, bytes_down_{0}, duplicates_{0};
};

}  // namespace edgeloop::edge
