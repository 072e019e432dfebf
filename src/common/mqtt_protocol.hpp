// The MQTT device plane's topics and messages (docs/scale-out.md), shared by the agent's
// transport, the cloud's ingest workers and the broker configuration, so that all three
// name the same topics. No networking here: the libmosquitto client is mqtt_client.hpp.
//
//   edgeloop/devices/<id>/samples    device -> cloud: a zstd-compressed wire::SampleBatch
//   edgeloop/devices/<id>/telemetry  device -> cloud: a telemetry snapshot (JSON, as over HTTPS)
//   edgeloop/devices/<id>/events     device -> cloud: an update event (JSON with an "id")
//   edgeloop/devices/<id>/acks       cloud -> device: an Ack (JSON) after the durable write
//   edgeloop/devices/<id>/update     cloud -> device: the device's signed update metadata,
//                                    retained, so a device that connects gets the latest
//
// <id> is the device certificate's common name: the broker takes it as the client's user
// name (use_identity_as_username) and its ACL lets a device touch only its own topics. The
// ingest workers connect as kIngestIdentity and share the samples subscription.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.hpp"

namespace edgeloop::mqtt {

// The certificate common name (and so the broker user name) of the cloud's ingest workers.
// The server refuses to enroll a device under this name.
inline constexpr char kIngestIdentity[] = "edgeloop-ingest";
inline constexpr char kTopicRoot[] = "edgeloop/";
// What the ingest workers subscribe to: one shared subscription, so the broker hands each
// message to one of the workers of the group, whichever server process they run in.
inline constexpr char kSamplesSubscription[] = "$share/edgeloop-ingest/edgeloop/devices/+/samples";
// Telemetry and update events, shared the same way.
inline constexpr char kTelemetrySubscription[] =
    "$share/edgeloop-ingest/edgeloop/devices/+/telemetry";
inline constexpr char kEventsSubscription[] = "$share/edgeloop-ingest/edgeloop/devices/+/events";

// Topic leaves under edgeloop/devices/<id>/, by direction.
inline constexpr const char* kDeviceWrites[] = {"samples", "telemetry", "events"};
inline constexpr const char* kDeviceReads[] = {"acks", "update"};

inline constexpr char kDevicesPrefix[] = "edgeloop/devices/";

// "edgeloop/devices/<device>/<leaf>". (Inline, like the constants: the broker's ACL plugin
// compiles this header alone.)
inline std::string DeviceTopic(std::string_view device, std::string_view leaf) {
  std::string topic(kDevicesPrefix);
  topic.append(device).append("/").append(leaf);
  return topic;
}
inline std::string SamplesTopic(std::string_view device) {
  return DeviceTopic(device, "samples");
}
inline std::string AcksTopic(std::string_view device) {
  return DeviceTopic(device, "acks");
}
inline std::string UpdateTopic(std::string_view device) {
  return DeviceTopic(device, "update");
}
// The device of "edgeloop/devices/<device>/samples"; nullopt for any other topic.
std::optional<std::string> DeviceOfSamplesTopic(std::string_view topic);
// The device and leaf of "edgeloop/devices/<device>/<leaf>"; nullopt for any other shape.
std::optional<std::pair<std::string, std::string>> SplitDeviceTopic(std::string_view topic);

// The cloud's answer to one samples message, on the device's acks topic. Success:
//   {"acked_through": N, "accepted": a, "duplicates": d}
// N is the batch's last sequence number: every sample of the batch is durably stored (a
// new ones, d were there already). A refusal:
//   {"error": "...", "status": 403, "last_seq": N}
// with the HTTP-like status of the same refusal over HTTPS; last_seq when the batch parsed.
// An update event's answer, after the event is stored or refused:
//   {"event": id, "stored": true}    {"event": id, "error": "...", "status": 400}
struct Ack {
  bool is_event = false;  // an update event's ack: event_id; acked_through etc. unused
  uint64_t event_id = 0;
  uint64_t acked_through = 0;
  uint64_t accepted = 0, duplicates = 0;
  std::string error;  // empty: success
  int status = 200;
  uint64_t last_seq = 0;  // of a refused batch; 0: unknown
  bool ok() const { return error.empty(); }
};

std::string EncodeAck(const Ack& ack);
// Errors: kFormat for anything but one of the shapes above (the message says which).
Result<Ack> ParseAck(std::string_view payload);

}  // namespace edgeloop::mqtt
