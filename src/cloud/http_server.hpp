// The control plane's HTTPS listener: one event loop (Boost.Asio/Beast) holds every
// connection, idle or slow, and a fixed pool of handler threads runs the routes, so a client
// that trickles bytes or keeps a connection open costs a socket and a few kilobytes, never a
// thread. Requests are read whole (within the header and body limits and deadlines) before a
// handler sees them; handlers never run on the event loop.
//
// Refusals the listener makes itself, before any route runs: 400 (malformed request), 404 (no
// route), 405 (no route for this method), 413 (body over the limit), 431 (headers over the
// limit). Connections over the total or per-address limit are closed at accept; a connection
// that misses its handshake, header, body or keep-alive deadline is closed.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>

#include "common/result.hpp"

namespace edgeloop::cloud::http {

struct CaseLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Headers = std::multimap<std::string, std::string, CaseLess>;
using Params = std::multimap<std::string, std::string>;

struct Request {
  std::string method;
  std::string path;  // percent-decoded, without the query
  std::string body;
  std::string remote_addr;
  Headers headers;
  Params params;        // the query, percent-decoded
  std::smatch matches;  // the route pattern's groups, over `path`
  SSL* ssl = nullptr;   // the connection's TLS session (its peer certificate)

  bool has_header(const std::string& key) const { return headers.count(key) > 0; }
  std::string get_header_value(const std::string& key) const;
  bool has_param(const std::string& key) const { return params.count(key) > 0; }
  std::string get_param_value(const std::string& key) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  void set_content(std::string content, const std::string& content_type);
  void set_header(const std::string& key, const std::string& value);
  std::string get_header_value(const std::string& key) const;
};

using Handler = std::function<void(const Request&, Response&)>;

// Every field is a server setting (edgeloop server --help, docs/cloud.md).
struct ListenerOptions {
  int handler_threads = 32;          // most block in the sample store's group commit, not on a core
  int handshake_timeout_ms = 10000;  // TCP accept to finished TLS handshake
  int header_timeout_ms = 30000;     // first byte of a request to its last header line
  int body_timeout_ms = 60000;       // last header line to the last body byte
  int keepalive_timeout_ms = 60000;  // idle between two requests on one connection
  int keepalive_max_requests = 1000;    // then the connection is closed after its answer
  size_t max_header_bytes = 16u << 10;  // request line and headers: 431 above
  int max_connections = 20000;          // open at once, all addresses
  int max_connections_per_ip = 0;       // 0: no limit per address
};

struct ListenerStats {
  int64_t open = 0;       // connections open now
  int64_t in_flight = 0;  // requests being handled now
  int64_t accepted = 0;   // connections accepted since start
  int64_t refused = 0;    // closed at accept: over a connection limit
  int64_t timed_out = 0;  // closed for missing a deadline
};

class Listener {
 public:
  // configure_tls loads certificates and the verification policy into the listener's context;
  // it returns false when that fails (Bind then fails).
  // A request body over max_body_bytes is answered 413 without being read.
  Listener(ListenerOptions options, size_t max_body_bytes,
           std::function<bool(SSL_CTX&)> configure_tls);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Routes are matched in the order they were added; pattern must match the whole path.
  void Route(const std::string& method, const std::string& pattern, Handler handler);
  void Get(const std::string& p, Handler h) { Route("GET", p, std::move(h)); }
  void Post(const std::string& p, Handler h) { Route("POST", p, std::move(h)); }
  void Put(const std::string& p, Handler h) { Route("PUT", p, std::move(h)); }
  void Patch(const std::string& p, Handler h) { Route("PATCH", p, std::move(h)); }
  void Delete(const std::string& p, Handler h) { Route("DELETE", p, std::move(h)); }

  // Fills the body of a refusal the listener makes itself (status as above), and of a 500
  // when a handler throws.
  void SetErrorBody(std::function<void(const Request&, Response&)> fill);
  // Called for every answered request, refusals included, with the route pattern that matched
  // ("" when none did) and the seconds from the request's last byte to its answer.
  void SetOnDone(
      std::function<void(const Request&, const Response&, const std::string&, double)> done);

  // Binds and listens (port 0: any free port); port() is then the bound port.
  Status Bind(const std::string& host, int port);
  int port() const;
  // Serves on background threads (one event loop, handler_threads handlers) until Stop().
  void Start();
  // Stops accepting and closes idle connections at once; requests already being read or
  // handled are answered (with Connection: close) for up to deadline_ms, then everything is
  // closed. Returns true when nothing was cut off.
  bool Stop(int deadline_ms);
  ListenerStats stats() const;

  struct Impl;  // http_server.cpp: the event loop, the connections and the handler pool

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace edgeloop::cloud::http
