#include "cloud/mqtt_ingest.hpp"

#include "common/log.hpp"

namespace edgeloop::cloud {

Result<std::shared_ptr<MqttIngest>> MqttIngest::Start(const MqttIngestOptions& options,
                                                      MqttIngestHandler handler,
                                                      MqttControlHandler control) {
  if (options.workers < 1) return Error(Errc::kInvalidArgument, "MQTT ingest needs a worker");
  const bool with_control = static_cast<bool>(control);
  if (options.handler_threads < 1 || options.queue_messages < 1)
    return Error(Errc::kInvalidArgument, "MQTT ingest needs a handler thread and a queue");
  std::shared_ptr<MqttIngest> ingest(new MqttIngest(std::move(handler), std::move(control)));
  ingest->capacity_ = options.queue_messages;
  for (int i = 0; i < options.workers; ++i) {
    mqtt::ClientOptions co;
    co.host = options.broker.host;
    co.port = options.broker.port;
    co.client_id = options.client_id_prefix + "-" + std::to_string(i + 1);
    co.clean_session = true;
    co.ca_file = options.ca_file;
    co.cert_file = options.cert_file;
    co.key_file = options.key_file;
    co.max_inflight = 1000;
    co.reconnect_min = std::chrono::milliseconds(200);
    co.reconnect_max = std::chrono::milliseconds(5000);
    co.subscriptions = {{mqtt::kSamplesSubscription, 1}};
    if (with_control) {
      co.subscriptions.emplace_back(mqtt::kTelemetrySubscription, 1);
      co.subscriptions.emplace_back(mqtt::kEventsSubscription, 1);
    }
    // The worker's callbacks reach it through this slot, filled before it starts.
    auto slot = std::make_shared<mqtt::Client*>(nullptr);
    MqttIngest* self = ingest.get();
    const std::string id = co.client_id, broker = options.broker.ToString();
    mqtt::ClientCallbacks cb;
    cb.on_connect = [id, broker](bool) {
      log::Info("mqtt_ingest_connected", {{"broker", broker}, {"client", id}});
    };
    cb.on_disconnect = [id](const std::string& why) {
      log::Warn("mqtt_ingest_disconnected", {{"client", id}, {"why", why}});
    };
    cb.on_subscribe = [id](const std::string& filter, int granted) {
      if (granted > 2)
        log::Error("mqtt_ingest_subscription_refused",
                   {{"client", id}, {"filter", filter}, {"hint", "the broker's ACL"}});
      else
        log::Info("mqtt_ingest_subscribed", {{"client", id}, {"filter", filter}});
    };
    cb.on_message = [self, slot](const std::string& topic, std::string_view payload) {
      self->Enqueue(**slot, topic, payload);
    };
    auto client = mqtt::Client::Create(co, std::move(cb));
    if (!client.ok()) return client.error().WithContext("MQTT ingest");
    *slot = client->get();
    ingest->workers_.push_back(std::move(*client));
  }
  for (int i = 0; i < options.handler_threads; ++i)
    ingest->handlers_.emplace_back([self = ingest.get()] { self->HandlerLoop(); });
  for (auto& w : ingest->workers_) w->Start();
  return ingest;
}

MqttIngest::~MqttIngest() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  has_item_.notify_all();
  has_room_.notify_all();
  // The messages in hand are finished; the queued ones are dropped: their devices get no
  // ack and send them again. Then the workers disconnect (each joins its network thread).
  for (auto& t : handlers_) t.join();
  workers_.clear();
}

size_t MqttIngest::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void MqttIngest::Enqueue(mqtt::Client& worker, const std::string& topic, std::string_view payload) {
  ++messages_;
  std::unique_lock<std::mutex> lock(mu_);
  has_room_.wait(lock, [&] { return stopping_ || queue_.size() < capacity_; });
  if (stopping_) return;
  queue_.push_back({&worker, topic, std::string(payload)});
  has_item_.notify_one();
}

void MqttIngest::HandlerLoop() {
  while (true) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      has_item_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    has_room_.notify_one();
    Handle(*item.worker, item.topic, item.payload);
  }
}

int MqttIngest::connected_workers() const {
  int n = 0;
  for (const auto& w : workers_) n += w->connected() ? 1 : 0;
  return n;
}

Status MqttIngest::Publish(const std::string& topic, std::string_view payload, bool retain) {
  for (auto& w : workers_) {
    if (!w->connected()) continue;
    auto sent = w->Publish(topic, payload, 1, retain);
    if (sent.ok()) return Status::Ok();
    if (sent.error().code != Errc::kUnavailable) return sent.error();
  }
  return Error(Errc::kUnavailable, "publish to " + topic + ": no MQTT ingest worker is connected");
}

void MqttIngest::Handle(mqtt::Client& worker, const std::string& topic, std::string_view payload) {
  auto parts = mqtt::SplitDeviceTopic(topic);
  if (parts && control_ && (parts->second == "telemetry" || parts->second == "events")) {
    std::optional<mqtt::Ack> ack;
    try {
      ack = control_(parts->first, parts->second, payload);
    } catch (const std::exception& e) {
      log::Warn("mqtt_control_failed", {{"device", parts->first}, {"error", e.what()}});
    }
    if (!ack) return;
    auto sent = worker.Publish(mqtt::AcksTopic(parts->first), mqtt::EncodeAck(*ack), 1);
    if (sent.ok()) ++acks_published_;
    if (!sent.ok())
      log::Warn("mqtt_ingest_ack_not_sent",
                {{"device", parts->first}, {"error", sent.error().message}});
    return;
  }
  auto device = mqtt::DeviceOfSamplesTopic(topic);
  if (!device) {
    log::Warn("mqtt_ingest_unexpected_topic", {{"topic", topic}});
    return;
  }
  // Nothing thrown may end a handler thread (STYLE.md: background loops).
  mqtt::Ack ack;
  try {
    ack = handler_(*device, payload);
  } catch (const std::exception& e) {
    ack.error = std::string("internal error: ") + e.what();
    ack.status = 500;
  }
  if (!ack.ok())
    log::Warn("mqtt_ingest_refused",
              {{"device", *device}, {"status", ack.status}, {"error", ack.error}});
  auto sent = worker.Publish(mqtt::AcksTopic(*device), mqtt::EncodeAck(ack), 1);
  if (sent.ok()) ++acks_published_;
  // The batch is stored either way; without the ack the device sends it again (a duplicate).
  if (!sent.ok())
    log::Warn("mqtt_ingest_ack_not_sent", {{"device", *device}, {"error", sent.error().message}});
}

}  // namespace edgeloop::cloud
