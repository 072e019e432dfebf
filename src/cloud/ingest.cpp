// Sample ingest, over both device transports: HTTPS (POST /v1/ingest, the device named by
// its client certificate) and MQTT (a message on edgeloop/devices/<id>/samples, the device
// named by the topic, which the broker's ACL confines to the certificate's owner). One
// function checks and stores a batch for both, so they refuse the same batches with the same
// status and store (device, seq) once whichever way a sample arrived.
#include <google/protobuf/arena.h>
#include <zstd.h>

#include <algorithm>

#include "cloud/server_impl.hpp"
#include "common/sample_record.hpp"

namespace edgeloop::cloud {

IngestOutcome Server::Impl::IngestBatch(const std::string& device, std::string_view body) {
  auto refuse = [](int status, std::string message) {
    IngestOutcome o;
    o.status = status;
    o.message = std::move(message);
    return o;
  };
  if (!limiter.Allow(device)) return refuse(429, "device " + device + " exceeds its batch rate");
  // The HTTPS listener refuses larger bodies before reading them; an MQTT message is whole.
  if (body.size() > options.max_body_bytes)
    return refuse(413, "batch of " + std::to_string(body.size()) +
                           " bytes larger than the server's limit of " +
                           std::to_string(options.max_body_bytes) + " bytes (max_body_bytes)");
  // Sizes are checked before anything is allocated for the decompressed batch.
  unsigned long long size = ZSTD_getFrameContentSize(body.data(), body.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    return refuse(400, "body is not a zstd frame with a declared size");
  if (size > options.max_decompressed_bytes)
    return refuse(413, "decompressed batch larger than " +
                           std::to_string(options.max_decompressed_bytes) + " bytes");
  std::string raw(size, '\0');
  size_t got = ZSTD_decompress(raw.data(), raw.size(), body.data(), body.size());
  if (ZSTD_isError(got) || got != size) return refuse(400, "corrupt zstd body");
  // Parsed into an arena: a batch's samples, tensors and strings are one allocation block
  // rather than a few heap objects each, freed at once.
  google::protobuf::ArenaOptions arena_options;
  arena_options.start_block_size = std::min<size_t>(raw.size() + 4096, 1 << 20);
  arena_options.max_block_size = 1 << 20;
  google::protobuf::Arena arena(arena_options);
  auto& batch = *google::protobuf::Arena::CreateMessage<wire::SampleBatch>(&arena);
  if (!batch.ParseFromString(raw)) return refuse(400, "body is not a SampleBatch");
  if (static_cast<size_t>(batch.samples_size()) > options.max_batch_samples)
    return refuse(413, "batch of " + std::to_string(batch.samples_size()) +
                           " samples exceeds the limit of " +
                           std::to_string(options.max_batch_samples));
  uint64_t last_seq = 0;
  std::vector<const wire::Sample*> samples;
  for (auto& s : *batch.mutable_samples()) {
    if (s.device_id().empty()) s.set_device_id(device);
    if (s.device_id() != device)
      return refuse(403, "device " + device + " cannot write samples as " + s.device_id());
    uint64_t elements = 1;
    for (int64_t d : s.tensor().shape()) {
      if (d <= 0 || static_cast<uint64_t>(d) > options.max_tensor_elements ||
          elements * static_cast<uint64_t>(d) > options.max_tensor_elements)
        return refuse(400, "tensor shape of sample " + std::to_string(s.sequence()) +
                               " is empty, negative or too large");
      elements *= static_cast<uint64_t>(d);
    }
    // Float values or 8-bit pixels (newer agents send images as bytes), never both.
    const int64_t count = TensorValueCount(s.tensor());
    if (count < 0)
      return refuse(400, "tensor of sample " + std::to_string(s.sequence()) +
                             " carries both float values and pixels");
    if (s.tensor().shape_size() > 0 && elements != static_cast<uint64_t>(count))
      return refuse(400, "tensor of sample " + std::to_string(s.sequence()) +
                             " has values that do not match its shape");
    last_seq = std::max(last_seq, s.sequence());
    samples.push_back(&s);
  }
  auto ack = store->Append(samples);
  metrics.SetSampleStoreSyncs(store->syncs(), store->synced_batches());
  if (!ack.ok()) return refuse(500, ack.error().message);
  metrics.AddIngest(ack->accepted, body.size());
  IngestOutcome o;
  o.accepted = ack->accepted;
  o.duplicates = ack->duplicates;
  o.last_seq = last_seq;
  return o;
}

void Server::Impl::HandleIngest(const http::Request& req, http::Response& res) {
  auto device = DeviceIdentity(req, res);
  if (!device) return;
  IngestOutcome o = IngestBatch(*device, req.body);
  if (o.status == 429) res.set_header("Retry-After", "1");
  if (o.status != 200) return SendError(res, o.status, o.message);
  res.set_content(Json{{"accepted", o.accepted}, {"duplicates", o.duplicates}}.dump(),
                  "application/json");
}

namespace {

// The broker checked the certificate against the fleet CA and its ACL the topic; what it
// cannot know is the device table: a revoked or never enrolled device is refused here. Sets
// o's status and message (403, or 500 when the table could not be read) and returns false.
bool EnrolledAndValid(FleetStore& fleet, const std::string& device, IngestOutcome& o) {
  auto row = fleet.GetDevice(device);
  if (!row.ok()) {
    o.status = row.error().code == Errc::kNotFound ? 403 : 500;
    o.message = row.error().code == Errc::kNotFound ? "device " + device + " is not enrolled"
                                                    : row.error().message;
    return false;
  }
  if (row->revoked) {
    o.status = 403;
    o.message = "device " + device + " is revoked";
    return false;
  }
  return true;
}

}  // namespace

IngestOutcome Server::Impl::IngestFromBroker(const std::string& device, std::string_view body) {
  IngestOutcome o;
  if (EnrolledAndValid(*fleet, device, o)) o = IngestBatch(device, body);
  metrics.CountMqttIngest(o.status);
  return o;
}

std::optional<mqtt::Ack> Server::Impl::ControlFromBroker(const std::string& device,
                                                         const std::string& leaf,
                                                         std::string_view payload) {
  const bool event = leaf == "events";
  mqtt::Ack ack;
  ack.is_event = event;
  IngestOutcome o;
  Status st;
  auto body = ParseJsonBounded(payload, leaf + " message");
  if (!EnrolledAndValid(*fleet, device, o)) {
    st = Error(o.status == 403 ? Errc::kPermission : Errc::kIo, o.message);
  } else if (!body.ok()) {
    st = body.error();
  } else if (!body->is_object()) {
    st = Error(Errc::kFormat, leaf + " message is not a JSON object");
  } else {
    if (event) {
      auto id = body->find("id");
      if (id == body->end() || !id->is_number_unsigned())
        st = Error(Errc::kInvalidArgument, "an event over MQTT needs an id (a count)");
      else
        ack.event_id = id->get<uint64_t>();
    }
    if (st.ok()) st = event ? RecordUpdateEvent(device, *body) : RecordTelemetry(device, *body);
  }
  metrics.CountMqttControl(leaf, st.ok() ? 200 : HttpStatus(st.error().code));
  if (!st.ok()) {
    ack.error = st.error().message;
    ack.status = HttpStatus(st.error().code);
    log::Warn("mqtt_control_refused",
              {{"device", device}, {"topic", leaf}, {"status", ack.status}, {"error", ack.error}});
  }
  // Telemetry is a periodic snapshot: the next one replaces a lost one, so it has no answer.
  if (!event) return std::nullopt;
  return ack;
}

}  // namespace edgeloop::cloud
