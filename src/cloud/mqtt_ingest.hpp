// Cloud ingest over MQTT (docs/scale-out.md): workers that connect to the broker over TLS as
// mqtt::kIngestIdentity, share the subscription $share/edgeloop-ingest/edgeloop/devices/+/
// samples at QoS 1, and hand every message to the server's ingest (the same checks and
// durable write as POST /v1/ingest). Only after the handler returns, that is after the
// durable write, is the device's ack published on edgeloop/devices/<id>/acks (QoS 1):
// {"acked_through": last seq, "accepted", "duplicates"}, or {"error", "status"} on a refusal.
//
// The broker hands each message of the shared subscription to one worker of the group,
// whichever server process it runs in, so several workers and several servers on one broker
// share the load. Workers use clean sessions: a dead worker's share goes to the living at
// once, and what it took and did not ack is sent again by the device after its ack timeout.
// The device id is the topic's segment; the broker's ACL lets a device publish only on its
// own topic, so the topic is as good as the certificate.
//
// Telemetry and update events come the same way (their own shared subscriptions) to the
// control handler; an event's answer goes to the device's acks topic ({"event": id, ...}),
// telemetry gets none. Publish() sends from the server: retained update metadata.
//
// The workers' network threads only read and write: each message goes into a bounded queue
// that handler_threads threads take from, so the durable writes of many devices run at once
// (and share an fsync: the sample store's group commit) while the network threads keep
// sending the acks. A full queue holds the network threads back, and the broker queues for
// them (backpressure) instead of the server taking more than it can store.
//
// Thread safety: the handler runs on the workers' network threads, several at a time when
// there are several workers. Connects and disconnects go to the structured log.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/mqtt_client.hpp"
#include "common/mqtt_protocol.hpp"
#include "common/result.hpp"
#include "common/url.hpp"

namespace edgeloop::cloud {

struct MqttIngestOptions {
  HostPort broker;
  std::string ca_file;              // the CA that issued the broker's certificate
  std::string cert_file, key_file;  // a client certificate whose common name is kIngestIdentity
  int workers = 2;                  // connections, each its own share of the subscription
  std::string client_id_prefix;     // client ids are <prefix>-<n>; unique per process
  int handler_threads = 32;         // messages handled at once
  size_t queue_messages = 512;      // taken from the broker and not yet handled, at most
};

// The answer to one message: the device (from the topic) and the message's payload.
using MqttIngestHandler = std::function<mqtt::Ack(const std::string& device, std::string_view)>;
// A telemetry or events message (leaf "telemetry" or "events"): the ack to publish, if any.
using MqttControlHandler = std::function<std::optional<mqtt::Ack>(
    const std::string& device, const std::string& leaf, std::string_view)>;

class MqttIngest {
 public:
  // control may be empty: telemetry and events are then not subscribed.
  static Result<std::shared_ptr<MqttIngest>> Start(const MqttIngestOptions& options,
                                                   MqttIngestHandler handler,
                                                   MqttControlHandler control = nullptr);
  ~MqttIngest();  // disconnects every worker (a message being handled is finished first)

  int connected_workers() const;
  uint64_t messages() const { return messages_; }
  size_t queued() const;  // messages waiting for a handler
  uint64_t acks_published() const { return acks_published_; }
  // Publishes through the first connected worker. Errors: kUnavailable when none is.
  Status Publish(const std::string& topic, std::string_view payload, bool retain);

 private:
  MqttIngest(MqttIngestHandler handler, MqttControlHandler control)
      : handler_(std::move(handler)), control_(std::move(control)) {}
  // On a network thread: queues the message (waiting while the queue is full).
  void Enqueue(mqtt::Client& worker, const std::string& topic, std::string_view payload);
  // On a handler thread: the durable write and the answer.
  void Handle(mqtt::Client& worker, const std::string& topic, std::string_view payload);
  void HandlerLoop();

  struct Item {
    mqtt::Client* worker;
    std::string topic, payload;
  };
  MqttIngestHandler handler_;
  MqttControlHandler control_;
  size_t capacity_ = 512;
  mutable std::mutex mu_;
  std::condition_variable has_item_, has_room_;
  std::deque<Item> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::vector<std::thread> handlers_;
  std::atomic<uint64_t> acks_published_{0};
  std::vector<std::unique_ptr<mqtt::Client>> workers_;
  std::atomic<uint64_t> messages_{0};
};

}  // namespace edgeloop::cloud
