#include "edge/mqtt_upload_transport.hpp"

#include <algorithm>

#include "edge/batch_wire.hpp"

namespace edgeloop::edge {

MqttUploadTransport::MqttUploadTransport(std::string device_id, MqttUploadOptions options)
    : device_id_(std::move(device_id)),
      samples_topic_(mqtt::SamplesTopic(device_id_)),
      acks_topic_(mqtt::AcksTopic(device_id_)),
      update_topic_(mqtt::UpdateTopic(device_id_)),
      opt_(std::move(options)) {}

Result<std::unique_ptr<MqttUploadTransport>> MqttUploadTransport::Connect(
    const DeviceIdentity& identity, MqttUploadOptions options) {
  std::unique_ptr<MqttUploadTransport> t(
      new MqttUploadTransport(identity.device_id, std::move(options)));
  mqtt::ClientOptions co;
  co.host = t->opt_.broker.host;
  co.port = t->opt_.broker.port;
  co.client_id = identity.device_id;
  co.clean_session = false;  // acks published while the device is away wait in its session
  co.ca_file = identity.ca_file;
  co.cert_file = identity.cert_file;
  co.key_file = identity.key_file;
  co.keepalive_s = t->opt_.keepalive_s;
  co.reconnect_min = t->opt_.reconnect_min;
  co.reconnect_max = t->opt_.reconnect_max;
  co.subscriptions = {{t->acks_topic_, 1}, {t->update_topic_, 1}};
  MqttUploadTransport* self = t.get();
  mqtt::ClientCallbacks cb;
  cb.on_connect = [self](bool) { self->OnConnect(); };
  cb.on_disconnect = [self](const std::string& why) { self->OnDisconnect(why); };
  cb.on_subscribe = [self](const std::string& f, int q) { self->OnSubscribe(f, q); };
  cb.on_message = [self](const std::string& topic, std::string_view payload) {
    self->OnMessage(topic, payload);
  };
  auto client = mqtt::Client::Create(co, std::move(cb));
  if (!client.ok()) return client.error().WithContext("MQTT upload transport");
  t->client_ = std::move(*client);
  t->client_->Start();
  return t;
}

MqttUploadTransport::~MqttUploadTransport() {
  client_.reset();  // joins the network thread: no callback runs after this
}

void MqttUploadTransport::Log(const std::string& line) const {
  if (opt_.log) opt_.log(line);
}

void MqttUploadTransport::OnConnect() {
  Log("MQTT connected to " + opt_.broker.ToString() + " as " + device_id_);
  std::lock_guard<std::mutex> lock(mu_);
  if (ready_) not_ready_since_ = std::chrono::steady_clock::now();
  ready_ = false;  // until the acks subscription is granted
}

void MqttUploadTransport::OnDisconnect(const std::string& why) {
  Log("MQTT " + why);
  std::lock_guard<std::mutex> lock(mu_);
  if (ready_) not_ready_since_ = std::chrono::steady_clock::now();
  ready_ = false;
  ++losses_;
  cv_.notify_all();
}

void MqttUploadTransport::OnSubscribe(const std::string& filter, int granted_qos) {
  std::lock_guard<std::mutex> lock(mu_);
  if (filter == update_topic_ && granted_qos > 2)
    Log("MQTT the broker refused the subscription to " + update_topic_ +
        ": updates arrive by polling only");
  if (filter != acks_topic_) return;
  if (granted_qos > 2) {
    not_ready_why_ = "the broker refused the subscription to " + acks_topic_ +
                     " (its ACL: is the certificate's name the device id?)";
    Log("MQTT " + not_ready_why_);
  } else {
    not_ready_why_.clear();
    ready_ = true;
  }
  cv_.notify_all();
}

void MqttUploadTransport::OnMessage(const std::string& topic, std::string_view payload) {
  bytes_down_ += payload.size();
  if (topic == update_topic_) {
    // Signed metadata, checked by the updater like a polled document; bounded like one.
    if (payload.empty() || payload.size() > (1u << 20))
      return Log("MQTT update message of " + std::to_string(payload.size()) + " bytes ignored");
    std::lock_guard<std::mutex> lock(mu_);
    pushed_update_ = std::string(payload);
    return;
  }
  if (topic != acks_topic_) return;
  auto ack = mqtt::ParseAck(payload);
  if (!ack.ok()) return Log("MQTT " + ack.error().message + " on " + topic + " ignored");
  std::lock_guard<std::mutex> lock(mu_);
  if (ack->is_event) {
    event_answers_[ack->event_id] = *ack;
    while (event_answers_.size() > 64) event_answers_.erase(event_answers_.begin());
    return;
  }
  if (ack->ok()) {
    // Every ack covers all sequence numbers up to its own: batches start at the oldest
    // record the spool still holds, so everything before it was acknowledged earlier.
    acked_through_ = std::max(acked_through_, ack->acked_through);
    duplicates_ += ack->duplicates;
  } else {
    last_refusal_ = *ack;
    ++refusals_;
  }
  cv_.notify_all();
}

Status MqttUploadTransport::PublishTelemetry(std::string_view json) {
  auto mid = client_->Publish(mqtt::DeviceTopic(device_id_, "telemetry"), json, 1);
  if (!mid.ok()) return mid.error();
  bytes_up_ += json.size();
  return Status::Ok();
}

Status MqttUploadTransport::PublishEvent(uint64_t id, std::string_view json) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    event_answers_.erase(id);
  }
  auto mid = client_->Publish(mqtt::DeviceTopic(device_id_, "events"), json, 1);
  if (!mid.ok()) return mid.error();
  bytes_up_ += json.size();
  return Status::Ok();
}

std::optional<mqtt::Ack> MqttUploadTransport::EventAnswer(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = event_answers_.find(id);
  if (it == event_answers_.end()) return std::nullopt;
  return it->second;
}

bool MqttUploadTransport::away() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !ready_ && std::chrono::steady_clock::now() - not_ready_since_ > opt_.ack_timeout;
}

std::optional<std::string> MqttUploadTransport::TakePushedUpdate() {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<std::string> out;
  out.swap(pushed_update_);
  return out;
}

Result<uint64_t> MqttUploadTransport::Send(const UploadBatch& batch) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string body, EncodeUploadBatch(batch, device_id_));
  const uint64_t first = batch.records.front().seq, last = batch.records.back().seq;
  const std::string what = "samples " + std::to_string(first) + ".." + std::to_string(last);
  const auto deadline = std::chrono::steady_clock::now() + opt_.ack_timeout;
  std::unique_lock<std::mutex> lock(mu_);
  // An ack of an earlier send (that timed out) may already cover this batch.
  if (acked_through_ >= last) return acked_through_;
  if (!cv_.wait_until(lock, deadline, [&] { return ready_; })) {
    std::string why = not_ready_why_.empty() ? client_->last_error() : not_ready_why_;
    return Error(Errc::kIo, "MQTT broker " + opt_.broker.ToString() + " not ready for " + what +
                                (why.empty() ? "" : ": " + why));
  }
  const uint64_t losses = losses_;
  uint64_t refusals = refusals_;
  lock.unlock();
  auto mid = client_->Publish(samples_topic_, body, 1);
  if (!mid.ok()) return Error(Errc::kIo, mid.error().message);
  bytes_up_ += body.size();
  lock.lock();
  while (true) {
    cv_.wait_until(lock, deadline, [&] {
      return acked_through_ >= last || refusals_ != refusals || losses_ != losses;
    });
    if (acked_through_ >= last) return acked_through_;
    if (refusals_ != refusals) {
      refusals = refusals_;
      // A refusal of another batch (an earlier send) says nothing about this one.
      if (last_refusal_.last_seq != 0 && last_refusal_.last_seq != last) continue;
      return Error(ErrcForStatus(last_refusal_.status), "ingest refused " + what + " (status " +
                                                            std::to_string(last_refusal_.status) +
                                                            "): " + last_refusal_.error);
    }
    if (losses_ != losses)
      return Error(Errc::kIo, "connection to MQTT broker " + opt_.broker.ToString() +
                                  " lost while waiting for the ack of " + what);
    return Error(Errc::kIo, "no ack for " + what + " within " +
                                std::to_string(opt_.ack_timeout.count()) + " ms (broker " +
                                opt_.broker.ToString() + ")");
  }
}

}  // namespace edgeloop::edge
