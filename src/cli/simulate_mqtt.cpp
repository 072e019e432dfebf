// The MQTT side of `edgeloop simulate`: one libmosquitto client per device (client id = device
// id, persistent session, the acks topic at QoS 1, batches published at QoS 1 on the samples
// topic, as edge::MqttUploadTransport does), but no network thread per client. A few driver
// threads each own a share of the clients and run them from one epoll set:
// mosquitto_loop_read when a socket is readable, mosquitto_loop_write while the library
// wants to write, mosquitto_loop_misc once a second for keep-alive pings.
//
// TLS: one SSL_CTX holds the fleet CA (and checks the broker's certificate against the
// broker's address); each device's own key and certificate go on its connection's SSL object
// right after mosquitto_connect_async created it (the broker asks for the client certificate
// later in the handshake, which the driver's loop_read calls carry on). One SSL_CTX per
// device, which mosquitto_tls_set makes, costs about 60 KiB and a millisecond each.
//
// Descriptors: libmosquitto opens a socket pair per client besides its TCP socket, only to
// wake the select() of mosquitto_loop when another thread publishes. The drivers never call
// mosquitto_loop and publish from the thread that owns the client, so the pair is dead
// weight: 2 of 3 descriptors per device, which at 10,000 devices passes a 20,000 hard limit.
// mosquitto_new carries on without the pair when socketpair() fails, so the clients are made
// while the soft descriptor limit is held at 0 (nothing else opens files then): 1 descriptor
// per device.
#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "cli/simulate_fleet.hpp"
#include "common/mqtt_client.hpp"
#include "common/mqtt_protocol.hpp"
#include "edge/batch_wire.hpp"

namespace edgeloop::cli::sim {
namespace {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MosqFree {
  void operator()(mosquitto* m) const { mosquitto_destroy(m); }
};

struct Client;

// The client whose connection the driver thread is working on: the shared context's client
// certificate callback hands the handshake that client's key and certificate.
thread_local Client* g_current = nullptr;
int ClientCertificate(SSL* ssl, X509** x509, EVP_PKEY** pkey);

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return e == 0 ? "unknown error" : buf;
}

Result<std::unique_ptr<SSL_CTX, SslCtxFree>> MakeSharedContext(const std::string& ca_file,
                                                               const std::string& broker_host) {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Error(Errc::kInternal, "SSL_CTX_new: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
    return Error(Errc::kNotFound, "fleet CA " + ca_file + ": " + OpenSslError());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_client_cert_cb(ctx.get(), &ClientCertificate);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx.get());
  if (X509_VERIFY_PARAM_set1_ip_asc(param, broker_host.c_str()) != 1 &&
      X509_VERIFY_PARAM_set1_host(param, broker_host.c_str(), 0) != 1)
    return Error(Errc::kInvalidArgument, "broker host " + broker_host + ": " + OpenSslError());
  return ctx;
}

// One driver thread: its clients, its epoll set and its share of the figures.
struct Driver {
  const SimOptions* o = nullptr;
  HostPort broker;
  SSL_CTX* ctx = nullptr;
  LiveCounters* live = nullptr;
  RunStats stats;
  int epfd = -1;
  bool closing = false;  // the run is over: disconnects are ours, not errors
  std::vector<std::unique_ptr<Client>> clients;
  ~Driver() {
    if (epfd >= 0) close(epfd);
  }
};

struct Client {
  Driver* driver = nullptr;
  SimDevice* d = nullptr;
  std::unique_ptr<mosquitto, MosqFree> mosq;
  std::unique_ptr<X509, X509Free> cert;
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
  std::string samples_topic, acks_topic;
  int fd = -1;           // the socket in the epoll set, -1: none
  bool writing = false;  // EPOLLOUT asked for
  bool started = false, connected = false, ready = false;
  Clock::time_point reconnect_at{};
  int failures = 0;

  void Count(const std::string& kind) {
    ++driver->stats.errors[kind];
    ++driver->live->errors;
  }

  // Keeps the epoll set in step with the library's socket and whether it wants to write.
  void Sync() {
    int now_fd = mosquitto_socket(mosq.get());
    bool want = now_fd >= 0 && mosquitto_want_write(mosq.get());
    if (now_fd != fd) {
      if (fd >= 0) epoll_ctl(driver->epfd, EPOLL_CTL_DEL, fd, nullptr);  // may be closed
      fd = now_fd;
      if (fd >= 0) {
        epoll_event ev{};
        ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
        ev.data.ptr = this;
        epoll_ctl(driver->epfd, EPOLL_CTL_ADD, fd, &ev);
        writing = want;
      }
      return;
    }
    if (fd >= 0 && want != writing) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
      ev.data.ptr = this;
      epoll_ctl(driver->epfd, EPOLL_CTL_MOD, fd, &ev);
      writing = want;
    }
  }

  // The device's key and certificate on the connection's SSL object (made by the connect).
  void AttachIdentity() {
    SSL* ssl = static_cast<SSL*>(mosquitto_ssl_get(mosq.get()));
    if (ssl == nullptr) return;
    SSL_use_certificate(ssl, cert.get());
    SSL_use_PrivateKey(ssl, key.get());
  }

  void Connect(bool first) {
    int rc = first ? mosquitto_connect_async(mosq.get(), driver->broker.host.c_str(),
                                             driver->broker.port, 30)
                   : mosquitto_reconnect_async(mosq.get());
    if (rc != MOSQ_ERR_SUCCESS) {
      Count(std::string("connect: ") + mosquitto_strerror(rc));
      Backoff();
      return;
    }
    AttachIdentity();
    Sync();
  }

  void Backoff() {
    failures = std::min(failures + 1, 6);
    reconnect_at = Clock::now() + std::chrono::milliseconds(250 << failures);
  }

  void Lost(const std::string& kind) {
    if (driver->closing) return;
    if (connected) {
      connected = false;
      --driver->live->connected;
    }
    ready = false;
    if (d->in_flight) {
      d->in_flight = false;  // sent again after the reconnect; the server keeps it once
      Count("ack lost with connection");
    }
    Count(kind);
    if (fd >= 0) epoll_ctl(driver->epfd, EPOLL_CTL_DEL, fd, nullptr);
    fd = -1;
    Backoff();
  }

  void Publish() {
    const uint64_t first = d->acked_through + 1, last = d->next_seq - 1;
    auto body = edge::EncodeUploadBatch(MakeBatch(*d, first, last), d->id);
    if (!body.ok()) return Count("encode");
    int rc = mosquitto_publish(mosq.get(), nullptr, samples_topic.c_str(),
                               static_cast<int>(body->size()), body->data(), 1, false);
    if (rc != MOSQ_ERR_SUCCESS) return Count(std::string("publish: ") + mosquitto_strerror(rc));
    d->in_flight = true;
    d->in_flight_last = last;
    d->sent_at = Clock::now();
    Sync();
  }

  void OnMessage(const mosquitto_message* m) {
    if (m->topic == nullptr || acks_topic != m->topic) return;
    auto ack = mqtt::ParseAck(
        std::string_view(static_cast<const char*>(m->payload), static_cast<size_t>(m->payloadlen)));
    if (!ack.ok()) return Count("malformed ack");
    if (!ack->ok()) {
      Count("refused (status " + std::to_string(ack->status) + ")");
      d->in_flight = false;
      d->Failed(Clock::now());
      return;
    }
    if (ack->acked_through <= d->acked_through) return;  // an old batch's, sent again
    const uint64_t newly = ack->acked_through - d->acked_through;
    d->acked_through = ack->acked_through;
    driver->stats.duplicates += ack->duplicates;
    if (d->in_flight && ack->acked_through >= d->in_flight_last) {
      d->in_flight = false;
      d->failures = 0;
      ++driver->stats.batches_acked;
      ++driver->live->batches_acked;
      driver->stats.ack_ms.push_back(
          std::chrono::duration<float, std::milli>(Clock::now() - d->sent_at).count());
    }
    driver->stats.samples_acked += newly;
    driver->live->samples_acked += newly;
  }
};

int ClientCertificate(SSL*, X509** x509, EVP_PKEY** pkey) {
  if (g_current == nullptr) return 0;
  // OpenSSL installs and then frees what it is given: hand it references of its own.
  X509_up_ref(g_current->cert.get());
  EVP_PKEY_up_ref(g_current->key.get());
  *x509 = g_current->cert.get();
  *pkey = g_current->key.get();
  return 1;
}

Client& Of(void* obj) {
  return *static_cast<Client*>(obj);
}

void OnConnect(mosquitto* m, void* obj, int rc) {
  Client& c = Of(obj);
  if (rc != 0) {
    c.Count(std::string("connack: ") + mosquitto_connack_string(rc));
    return;  // the disconnect callback follows
  }
  c.connected = true;
  c.failures = 0;
  ++c.driver->live->connected;
  mosquitto_subscribe(m, nullptr, c.acks_topic.c_str(), 1);
}

void OnSubscribe(mosquitto*, void* obj, int, int count, const int* granted) {
  Client& c = Of(obj);
  if (count >= 1 && granted[0] <= 2) {
    c.ready = true;
  } else {
    c.Count("acks subscription refused");
  }
}

void OnDisconnect(mosquitto*, void* obj, int rc) {
  Of(obj).Lost(rc == 0 ? "disconnected"
                       : std::string("connection lost: ") + mosquitto_strerror(rc));
}

void OnMessage(mosquitto*, void* obj, const mosquitto_message* m) {
  Of(obj).OnMessage(m);
}

void Drive(Driver& dr, const std::atomic<bool>& stop, Clock::time_point end) {
  const SimOptions& o = *dr.o;
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.interval_s));
  const auto ack_timeout =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.ack_timeout_s));
  const auto drain_end =
      end + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.drain_s));
  auto last_misc = Clock::now();
  std::vector<epoll_event> events(1024);
  // The devices are scanned (connects, batches due, ack timeouts, publishes) every kScan at
  // most, not after every epoll return: a scan costs every client of this driver, and at
  // 10,000 devices sockets are ready far more often than that.
  constexpr auto kScan = std::chrono::milliseconds(5);
  auto next_scan = Clock::now();
  // One device's turn in a scan: connects, a batch due, an ack timed out, a publish. True
  // while it has samples not yet acknowledged.
  auto tend = [&](Client& c, Clock::time_point now, bool draining) {
    SimDevice& d = *c.d;
    g_current = &c;
    if (!c.started) {
      if (now < d.connect_at) return false;
      c.started = true;
      c.Connect(true);
      return false;
    }
    if (c.fd < 0 && !c.connected && now >= c.reconnect_at) c.Connect(false);
    if (!draining && now >= d.next_batch) {
      d.Produce(o.batch, o.max_queued_batches);
      d.next_batch += interval;
      if (d.next_batch < now) d.next_batch = now + interval;
    }
    if (d.in_flight && now - d.sent_at > ack_timeout) {
      d.in_flight = false;
      d.Failed(now);
      c.Count("ack timeout");
    }
    if (c.ready && !d.in_flight && d.pending() > 0 && now >= d.retry_at) c.Publish();
    return d.pending() > 0;
  };
  bool busy = true;
  while (!stop) {
    auto now = Clock::now();
    const bool draining = now >= end;
    if (now >= next_scan) {
      next_scan = now + kScan;
      busy = false;
      for (auto& cp : dr.clients)
        if (tend(*cp, now, draining)) busy = true;
    }
    if (draining && (!busy || now >= drain_end)) break;
    now = Clock::now();
    const int wait_ms =
        next_scan <= now
            ? 0
            : static_cast<int>(
                  std::chrono::ceil<std::chrono::milliseconds>(next_scan - now).count());
    int n = epoll_wait(dr.epfd, events.data(), static_cast<int>(events.size()), wait_ms);
    for (int i = 0; i < n; ++i) {
      Client& c = *static_cast<Client*>(events[i].data.ptr);
      g_current = &c;
      mosquitto* m = c.mosq.get();
      int rc = MOSQ_ERR_SUCCESS;
      // While the TLS handshake runs, loop_read carries it on whichever way the socket is ready.
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP) || !c.connected) {
        rc = mosquitto_loop_read(m, 1);
        if (rc == MOSQ_ERR_SUCCESS) rc = mqtt::ReadWhatTlsHolds(m);  // epoll cannot see it
      }
      if (rc == MOSQ_ERR_SUCCESS && (events[i].events & EPOLLOUT) && mosquitto_want_write(m))
        rc = mosquitto_loop_write(m, 1);
      if (rc != MOSQ_ERR_SUCCESS && c.fd >= 0 && mosquitto_socket(m) < 0) {
        // The library closed the socket without a disconnect callback (a TLS error).
        c.Lost(std::string("connection lost: ") + mosquitto_strerror(rc));
        continue;
      }
      c.Sync();
    }
    if (Clock::now() - last_misc > std::chrono::seconds(1)) {
      last_misc = Clock::now();
      for (auto& cp : dr.clients)
        if (cp->fd >= 0) {
          g_current = cp.get();
          mosquitto_loop_misc(cp->mosq.get());
          cp->Sync();
        }
    }
  }
  dr.closing = true;
  for (auto& cp : dr.clients)
    if (cp->connected) {
      mosquitto_disconnect(cp->mosq.get());
      mosquitto_loop_write(cp->mosq.get(), 1);
    }
}

}  // namespace

Status RunMqtt(const SimOptions& o, std::vector<SimDevice>& devices, LiveCounters& live,
               const std::atomic<bool>& stop, RunStats& stats) {
  if (devices.empty()) return Status::Ok();
  EDGELOOP_ASSIGN_OR_RETURN(HostPort broker, ParseHostPort(o.broker, "MQTT broker"));
  mosquitto_lib_init();
  EDGELOOP_ASSIGN_OR_RETURN(auto ctx, MakeSharedContext(devices[0].identity.ca_file, broker.host));
  const int threads =
      std::max(1, std::min<int>(o.threads > 0 ? o.threads : 2, static_cast<int>(devices.size())));
  std::vector<std::unique_ptr<Driver>> drivers;
  for (int t = 0; t < threads; ++t) {
    auto dr = std::make_unique<Driver>();
    dr->o = &o;
    dr->broker = broker;
    dr->ctx = ctx.get();
    dr->live = &live;
    dr->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (dr->epfd < 0)
      return Error(Errc::kIo, std::string("epoll_create1: ") + std::strerror(errno));
    drivers.push_back(std::move(dr));
  }
  const auto start = Clock::now();
  for (size_t i = 0; i < devices.size(); ++i) {
    SimDevice& d = devices[i];
    Driver& dr = *drivers[i % drivers.size()];
    auto c = std::make_unique<Client>();
    c->driver = &dr;
    c->d = &d;
    c->samples_topic = mqtt::SamplesTopic(d.id);
    c->acks_topic = mqtt::AcksTopic(d.id);
    FILE* f = std::fopen(d.identity.cert_file.c_str(), "r");
    if (f != nullptr) {
      c->cert.reset(PEM_read_X509(f, nullptr, nullptr, nullptr));
      std::fclose(f);
    }
    f = std::fopen(d.identity.key_file.c_str(), "r");
    if (f != nullptr) {
      c->key.reset(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
      std::fclose(f);
    }
    if (!c->cert || !c->key)
      return Error(Errc::kFormat, d.id + ": cannot read its certificate or key (" +
                                      d.identity.cert_file + ", " + d.identity.key_file + ")");
    {
      rlimit saved{};
      getrlimit(RLIMIT_NOFILE, &saved);
      rlimit none = saved;
      none.rlim_cur = 0;
      setrlimit(RLIMIT_NOFILE, &none);
      c->mosq.reset(mosquitto_new(d.id.c_str(), /*clean_session=*/false, c.get()));
      const int saved_errno = errno;
      setrlimit(RLIMIT_NOFILE, &saved);
      errno = saved_errno;
    }
    if (!c->mosq)
      return Error(Errc::kUnavailable, d.id + ": mosquitto_new: " + std::strerror(errno));
    mosquitto_int_option(c->mosq.get(), MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(c->mosq.get(), MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(c->mosq.get(), MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    mosquitto_void_option(c->mosq.get(), MOSQ_OPT_SSL_CTX, ctx.get());
    mosquitto_connect_callback_set(c->mosq.get(), &OnConnect);
    mosquitto_subscribe_callback_set(c->mosq.get(), &OnSubscribe);
    mosquitto_disconnect_callback_set(c->mosq.get(), &OnDisconnect);
    mosquitto_message_callback_set(c->mosq.get(), &OnMessage);
    d.connect_at =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                    o.ramp_s * static_cast<double>(i) / static_cast<double>(devices.size())));
    d.next_batch = d.connect_at;  // the first batch goes as soon as the device is connected
    dr.clients.push_back(std::move(c));
  }
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.duration_s));
  std::vector<std::thread> pool;
  for (auto& dr : drivers) pool.emplace_back([&, raw = dr.get()] { Drive(*raw, stop, end); });
  for (auto& th : pool) th.join();
  for (auto& dr : drivers) {
    stats.Merge(dr->stats);
    dr->clients.clear();  // mosquitto_destroy before the context goes
  }
  return Status::Ok();
}

}  // namespace edgeloop::cli::sim
