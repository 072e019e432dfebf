#include "common/mqtt_client.hpp"

#include <mosquitto.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/file.hpp"

namespace edgeloop::mqtt {
namespace {

std::once_flag g_lib_init;

std::string MosquittoError(int rc) {
  return rc == MOSQ_ERR_ERRNO ? std::string(std::strerror(errno)) : mosquitto_strerror(rc);
}

}  // namespace

struct Client::Impl {
  ClientOptions o;
  ClientCallbacks cb;
  mosquitto* mosq = nullptr;
  std::thread thread;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::atomic<bool> connected{false};
  std::string last_error;      // guarded by mu
  std::string last_tls_error;  // the library's latest error log line (network thread only)
  uint32_t failures = 0;       // consecutive failed attempts (network thread only)
  std::mt19937_64 rng{std::random_device{}()};
  // SUBSCRIBE message ids to their filters. Held while subscribing, so that the SUBACK
  // (on the network thread) finds the id that mosquitto_subscribe has just returned.
  std::mutex sub_mu;
  std::map<int, std::string> pending_subscriptions;

  ~Impl() {
    if (mosq) mosquitto_destroy(mosq);
  }

  std::string Describe() const {
    return o.host + ":" + std::to_string(o.port) + " as " + o.client_id;
  }

  void SetError(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    last_error = e;
  }

  // A lost connection or a failed attempt: the callback once, then the next delay grows.
  void Lost(const std::string& why) {
    const bool was = connected.exchange(false);
    std::string text = why;
    if (!last_tls_error.empty()) text += " (" + last_tls_error + ")";
    last_tls_error.clear();
    SetError(text);
    ++failures;
    if (cb.on_disconnect && (was || failures == 1 || failures % 10 == 0)) cb.on_disconnect(text);
  }

  // Waits before the next attempt; false when Stop() came first.
  bool WaitBeforeReconnect() {
    const uint32_t n = std::min<uint32_t>(failures > 0 ? failures - 1 : 0, 20);
    const double cap = std::min(
        static_cast<double>(o.reconnect_max.count()),
        static_cast<double>(o.reconnect_min.count()) * static_cast<double>(uint64_t{1} << n));
    std::uniform_real_distribution<double> share(0.5, 1.0);
    auto delay = std::chrono::milliseconds(static_cast<int64_t>(cap * share(rng)));
    std::unique_lock<std::mutex> lock(mu);
    return !cv.wait_for(lock, delay, [this] { return stop; });
  }

  Result<int> Subscribe(const std::string& filter, int qos) {
    std::lock_guard<std::mutex> lock(sub_mu);
    int mid = 0;
    int rc = mosquitto_subscribe(mosq, &mid, filter.c_str(), qos);
    if (rc == MOSQ_ERR_NO_CONN)
      return Error(Errc::kUnavailable, "subscribe " + filter + ": not connected to " + Describe());
    if (rc != MOSQ_ERR_SUCCESS)
      return Error(Errc::kInvalidArgument, "subscribe " + filter + ": " + MosquittoError(rc));
    pending_subscriptions[mid] = filter;
    return mid;
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu);
    return stop;
  }

  void Loop() {
    bool first = true;
    while (!Stopping()) {
      int rc = first ? mosquitto_connect(mosq, o.host.c_str(), o.port, o.keepalive_s)
                     : mosquitto_reconnect(mosq);
      first = false;
      if (rc != MOSQ_ERR_SUCCESS) {
        Lost("cannot connect to " + Describe() + ": " + MosquittoError(rc));
        if (!WaitBeforeReconnect()) break;
        continue;
      }
      // CONNECT is sent; CONNACK, messages and acknowledgements come through the loop.
      while (rc == MOSQ_ERR_SUCCESS && !Stopping()) {
        rc = mosquitto_loop(mosq, 100, 1);
        if (rc == MOSQ_ERR_SUCCESS) rc = ReadWhatTlsHolds(mosq);
      }
      if (rc == MOSQ_ERR_SUCCESS) break;  // stopping
      Lost("connection to " + Describe() + " lost: " + MosquittoError(rc));
      if (!WaitBeforeReconnect()) break;
    }
    // Say goodbye when connected, so the broker does not wait for the keepalive to expire.
    if (connected.exchange(false) && mosquitto_disconnect(mosq) == MOSQ_ERR_SUCCESS) {
      for (int i = 0; i < 10 && mosquitto_loop(mosq, 50, 1) == MOSQ_ERR_SUCCESS; ++i) {
      }
    }
  }

  static Impl& Of(void* obj) { return *static_cast<Impl*>(obj); }

  static void OnConnect(mosquitto*, void* obj, int rc, int flags, const mosquitto_property*) {
    Impl& self = Of(obj);
    if (rc != 0) {
      // The broker closes the connection next; the loop then waits and tries again.
      self.last_tls_error = std::string("refused: ") + mosquitto_connack_string(rc);
      return;
    }
    self.failures = 0;
    self.last_tls_error.clear();
    self.SetError("");
    self.connected = true;
    if (self.cb.on_connect) self.cb.on_connect((flags & 1) != 0);
    for (const auto& [filter, qos] : self.o.subscriptions) {
      auto mid = self.Subscribe(filter, qos);
      if (!mid.ok()) self.SetError(mid.error().message);
    }
  }
  static void OnSubscribe(mosquitto*, void* obj, int mid, int count, const int* granted) {
    Impl& self = Of(obj);
    std::string filter;
    {
      std::lock_guard<std::mutex> lock(self.sub_mu);
      auto it = self.pending_subscriptions.find(mid);
      if (it == self.pending_subscriptions.end()) return;
      filter = std::move(it->second);
      self.pending_subscriptions.erase(it);
    }
    if (self.cb.on_subscribe && count > 0) self.cb.on_subscribe(filter, granted[0]);
  }
  static void OnMessage(mosquitto*, void* obj, const mosquitto_message* m) {
    Impl& self = Of(obj);
    if (!self.cb.on_message || m->topic == nullptr) return;
    self.cb.on_message(m->topic, std::string_view(static_cast<const char*>(m->payload),
                                                  static_cast<size_t>(std::max(0, m->payloadlen))));
  }
  static void OnLog(mosquitto*, void* obj, int level, const char* text) {
    if ((level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) != 0 && text != nullptr)
      Of(obj).last_tls_error = text;
  }
};

Result<std::unique_ptr<Client>> Client::Create(const ClientOptions& options,
                                               ClientCallbacks callbacks) {
  std::call_once(g_lib_init, [] { mosquitto_lib_init(); });
  for (const auto& [what, path] :
       {std::pair<const char*, const std::string&>{"CA", options.ca_file},
        {"certificate", options.cert_file},
        {"key", options.key_file}}) {
    if (path.empty())
      return Error(Errc::kInvalidArgument, std::string("MQTT client: no ") + what + " file given");
    if (auto f = ReadFile(path, 1 << 20); !f.ok())
      return Error(Errc::kNotFound,
                   std::string("MQTT client ") + what + " file: " + f.error().message);
  }
  if (options.client_id.empty() || options.client_id.size() > 256)
    return Error(Errc::kInvalidArgument, "MQTT client id must be 1-256 characters");
  auto impl = std::make_unique<Impl>();
  impl->o = options;
  impl->cb = std::move(callbacks);
  impl->mosq = mosquitto_new(options.client_id.c_str(), options.clean_session, impl.get());
  if (impl->mosq == nullptr)
    return Error(Errc::kInvalidArgument,
                 "MQTT client " + options.client_id + ": " + std::strerror(errno));
  // All network I/O happens on this client's own thread (Loop), never in Publish.
  mosquitto_threaded_set(impl->mosq, true);
  // A batch and its ack are one small packet each way: Nagle's algorithm would hold each
  // back until the peer's delayed ACK (40 ms) instead of sending it.
  mosquitto_int_option(impl->mosq, MOSQ_OPT_TCP_NODELAY, 1);
  if (options.max_inflight > 0)
    mosquitto_int_option(impl->mosq, MOSQ_OPT_SEND_MAXIMUM, options.max_inflight);
  mosquitto_connect_v5_callback_set(impl->mosq, &Impl::OnConnect);
  mosquitto_subscribe_callback_set(impl->mosq, &Impl::OnSubscribe);
  mosquitto_message_callback_set(impl->mosq, &Impl::OnMessage);
  mosquitto_log_callback_set(impl->mosq, &Impl::OnLog);
  int rc = mosquitto_tls_set(impl->mosq, options.ca_file.c_str(), nullptr,
                             options.cert_file.c_str(), options.key_file.c_str(), nullptr);
  if (rc != MOSQ_ERR_SUCCESS)
    return Error(Errc::kInvalidArgument, "MQTT client TLS files (" + options.cert_file + ", " +
                                             options.key_file + ", CA " + options.ca_file +
                                             "): " + MosquittoError(rc));
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

void Client::Start() {
  Impl* raw = impl_.get();
  if (!raw->thread.joinable()) raw->thread = std::thread([raw] { raw->Loop(); });
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<int> Client::Subscribe(const std::string& filter, int qos) {
  return impl_->Subscribe(filter, qos);
}

Result<int> Client::Publish(const std::string& topic, std::string_view payload, int qos,
                            bool retain) {
  // QoS 1 messages published while disconnected would queue in the library without bound.
  if (!connected())
    return Error(Errc::kUnavailable, "publish to " + topic + ": not connected to " + Describe() +
                                         (last_error().empty() ? "" : ": " + last_error()));
  if (payload.size() > 256u << 20)
    return Error(Errc::kInvalidArgument, "publish to " + topic + ": payload over 256 MiB");
  int mid = 0;
  int rc = mosquitto_publish(impl_->mosq, &mid, topic.c_str(), static_cast<int>(payload.size()),
                             payload.data(), qos, retain);
  if (rc == MOSQ_ERR_NO_CONN)
    return Error(Errc::kUnavailable, "publish to " + topic + ": not connected to " + Describe());
  if (rc != MOSQ_ERR_SUCCESS)
    return Error(Errc::kInvalidArgument, "publish to " + topic + ": " + MosquittoError(rc));
  return mid;
}

bool Client::connected() const {
  return impl_->connected;
}

std::string Client::Describe() const {
  return impl_->Describe();
}

std::string Client::last_error() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->last_error;
}

int ReadWhatTlsHolds(void* m, int max_packets) {
  auto* mosq = static_cast<mosquitto*>(m);
  int rc = MOSQ_ERR_SUCCESS;
  for (int i = 0; i < max_packets && rc == MOSQ_ERR_SUCCESS; ++i) {
    auto* ssl = static_cast<SSL*>(mosquitto_ssl_get(mosq));
    if (ssl == nullptr || mosquitto_socket(mosq) < 0 || SSL_pending(ssl) <= 0) break;
    rc = mosquitto_loop_read(mosq, 1);
  }
  return rc;
}

}  // namespace edgeloop::mqtt
