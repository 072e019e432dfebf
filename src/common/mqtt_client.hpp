// An MQTT client over TLS with a client certificate (libmosquitto), for the agent's upload
// transport and the cloud's ingest workers: one network thread per client that connects,
// reads and writes, and after any loss reconnects with a growing, jittered delay.
//
// Why not mosquitto_loop_start: its thread ends for good after some connection errors. A
// broker killed with SIGKILL ends the TLS stream without close_notify, OpenSSL 3 reports
// "unexpected eof" (EPROTO), and mosquitto_loop_forever returns on EPROTO instead of
// reconnecting. This client's own loop treats every loss alike: wait, reconnect.
//
// Callbacks run on the network thread, one at a time; they may call Subscribe and Publish
// (which queue, the network thread writes) but must not destroy the client. Subscribe and
// Publish may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::mqtt {

struct ClientOptions {
  std::string host;
  int port = 8883;
  std::string client_id;
  // false: a persistent session, kept by the broker across disconnects (subscriptions and
  // QoS 1 messages queued for the client while it is away).
  bool clean_session = true;
  // PEM files: the CA that issued the broker's certificate, and this client's certificate
  // and key (the broker takes the certificate's common name as the user name).
  std::string ca_file, cert_file, key_file;
  int keepalive_s = 30;
  // QoS 1 messages this client sends before their PUBACKs (0: libmosquitto's 20). The ingest
  // workers answer many devices at once and need more.
  int max_inflight = 0;
  // After a loss (or a failed attempt) the n-th reconnect waits a uniformly drawn share
  // between half and all of min(reconnect_max, reconnect_min * 2^n).
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
  // Subscribed at every connect (a lost session, a broker restarted without its
  // persistence, loses them); each SUBACK comes to on_subscribe.
  std::vector<std::pair<std::string, int>> subscriptions;  // filter, QoS
};

struct ClientCallbacks {
  // CONNACK accepted; session_present: the broker still had this client's session.
  std::function<void(bool session_present)> on_connect;
  // The connection was lost or closed, or an attempt failed; `why` says which and how.
  std::function<void(const std::string& why)> on_disconnect;
  // A SUBACK: the QoS granted for the filter, 0x80 when the broker refused it.
  std::function<void(const std::string& filter, int granted_qos)> on_subscribe;
  std::function<void(const std::string& topic, std::string_view payload)> on_message;
};

class Client {
 public:
  // Checks the files and sets the client up. Errors: kNotFound for a missing file,
  // kInvalidArgument for options libmosquitto refuses.
  static Result<std::unique_ptr<Client>> Create(const ClientOptions& options,
                                                ClientCallbacks callbacks);
  // Starts the network thread, which connects (callbacks may run from now on, so whoever
  // they reach should hold the client by then). Once only.
  void Start();
  // Disconnects and joins the network thread (which first finishes a connection attempt in
  // progress: to a host that does not answer, up to the system's TCP connect timeout).
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One more subscription, for this connection only (ClientOptions::subscriptions are
  // renewed at every connect). Returns the message id; errors (kUnavailable when not connected,
  // kInvalidArgument for a bad topic or payload) name the topic.
  Result<int> Subscribe(const std::string& filter, int qos);
  // retain: the broker keeps the message as the topic's latest and hands it to every later
  // subscriber (update metadata); an empty retained payload clears it.
  Result<int> Publish(const std::string& topic, std::string_view payload, int qos,
                      bool retain = false);

  bool connected() const;
  // "host:port as <client id>", for logs and errors.
  std::string Describe() const;
  // The latest connection problem ("connection refused: not authorised", a TLS error, ...);
  // empty when there was none since the last successful connect.
  std::string last_error() const;

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// libmosquitto 2.0's mosquitto_loop_read may return after one packet (it tests errno for
// EAGAIN after each packet, and errno may still hold an earlier EAGAIN) while OpenSSL holds
// the rest of a TLS record decrypted. Those bytes are no longer on the socket, so select()
// or epoll would not report them: an ack or a PINGRESP would wait for the next byte the
// broker sends (and a connection can die of its keepalive). Reads them, at most max_packets;
// returns the last loop_read result. m is a struct mosquitto*.
int ReadWhatTlsHolds(void* m, int max_packets = 256);

}  // namespace edgeloop::mqtt
