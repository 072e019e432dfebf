#include "cloud/http_server.hpp"

#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/log.hpp"

namespace edgeloop::cloud::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

bool CaseLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) <
           std::tolower(static_cast<unsigned char>(y));
  });
}

std::string Request::get_header_value(const std::string& key) const {
  auto it = headers.find(key);
  return it == headers.end() ? "" : it->second;
}
std::string Request::get_param_value(const std::string& key) const {
  auto it = params.find(key);
  return it == params.end() ? "" : it->second;
}
void Response::set_content(std::string content, const std::string& content_type) {
  body = std::move(content);
  set_header("Content-Type", content_type);
}
void Response::set_header(const std::string& key, const std::string& value) {
  headers.erase(key);
  headers.emplace(key, value);
}
std::string Response::get_header_value(const std::string& key) const {
  auto it = headers.find(key);
  return it == headers.end() ? "" : it->second;
}

namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoded; a malformed escape is kept as written.
std::string Decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

void ParseTarget(std::string_view target, Request& req) {
  const size_t q = target.find('?');
  req.path = Decode(target.substr(0, q), false);
  if (q == std::string_view::npos) return;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      req.params.emplace(Decode(pair.substr(0, eq), true),
                         eq == std::string_view::npos ? "" : Decode(pair.substr(eq + 1), true));
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
}

// A single byte range (RFC 9110 14.1.2: "bytes=a-b", "bytes=a-", "bytes=-n") applied to a
// 200 answer of length size. Several ranges, or a header that does not parse, leave the
// whole answer (servers may ignore Range); a range that starts past the end is a 416.
void ApplyRange(const std::string& header, Response& res) {
  const size_t size = res.body.size();
  if (header.rfind("bytes=", 0) != 0 || header.find(',') != std::string::npos) return;
  const std::string spec = header.substr(6);
  const size_t dash = spec.find('-');
  if (dash == std::string::npos) return;
  auto number = [](const std::string& t, uint64_t& out) {
    if (t.empty() || t.size() > 18 || t.find_first_not_of("0123456789") != std::string::npos)
      return false;
    out = std::stoull(t);
    return true;
  };
  uint64_t first = 0, last = 0;
  const std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.empty()) {
    uint64_t suffix = 0;
    if (!number(b, suffix) || suffix == 0) return;
    first = suffix >= size ? 0 : size - suffix;
    last = size == 0 ? 0 : size - 1;
  } else {
    if (!number(a, first)) return;
    if (b.empty()) {
      last = size == 0 ? 0 : size - 1;
    } else if (!number(b, last) || last < first) {
      return;
    }
    if (last >= size) last = size == 0 ? 0 : size - 1;
  }
  if (first >= size) {
    res.status = 416;
    res.set_header("Content-Range", "bytes */" + std::to_string(size));
    res.body.clear();
    return;
  }
  res.status = 206;
  res.set_header("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) +
                                      "/" + std::to_string(size));
  res.body = res.body.substr(first, last - first + 1);
}

struct RouteEntry {
  std::string method;
  std::string pattern;
  std::regex re;
  Handler handler;
};

}  // namespace

class Connection;

struct Listener::Impl {
  ListenerOptions options;
  size_t max_body_bytes = 0;
  std::function<bool(SSL_CTX&)> configure_tls;
  std::vector<RouteEntry> routes;
  std::function<void(const Request&, Response&)> error_body;
  std::function<void(const Request&, const Response&, const std::string&, double)> on_done;

  // Guarded by mu: the open connections and the count per address. Declared before the
  // io_context, whose destruction destroys the connections it still holds.
  std::mutex mu;
  std::unordered_set<Connection*> connections;
  std::unordered_map<std::string, int> per_ip;

  std::atomic<bool> stopping{false};
  std::atomic<int64_t> open{0}, in_flight{0}, accepted{0}, refused{0}, timed_out{0};

  asio::io_context ioc{1};
  asio::ssl::context ssl{asio::ssl::context::tls_server};
  tcp::acceptor acceptor{ioc};
  std::optional<asio::steady_timer> retry_timer;
  std::optional<asio::thread_pool> pool;
  // Keeps the event loop running while it has nothing to wait for but handlers in the pool.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread loop;
  int port = -1;

  void Accept();
  void OnAccepted(tcp::socket socket);
  // Runs the route for req (on a handler thread); fills res and the matched pattern.
  void Handle(Request& req, Response& res, std::string& route) const;
  void Refusal(const Request& req, Response& res, int status) const {
    res.status = status;
    if (error_body) error_body(req, res);
  }
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Listener::Impl* impl, tcp::socket socket, std::string ip)
      : impl_(impl), stream_(std::move(socket), impl->ssl), ip_(std::move(ip)) {}

  ~Connection() {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->connections.erase(this);
    if (--impl_->per_ip[ip_] <= 0) impl_->per_ip.erase(ip_);
    --impl_->open;
  }

  void Start() {
    state_ = State::kHandshake;
    Expire(Ms(impl_->options.handshake_timeout_ms));
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (ec) return self->Fail(ec);
                              self->ReadHeader();
                            });
  }

  // At shutdown (on the event loop): a connection that has no request being handled or
  // answered, or whose request is still arriving header by header, is closed now.
  void CloseIfIdle() {
    if (state_ == State::kHandshake || state_ == State::kHeader) Lowest().cancel();
  }

 private:
  enum class State { kHandshake, kHeader, kBody, kHandling, kWriting, kClosing };

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  // Arms the deadline of the operations that follow, and remembers it: a connection that
  // fails after its deadline passed was cut off by it, whatever error the TLS layer reports.
  void Expire(Ms timeout) {
    deadline_ = Clock::now() + timeout;
    Lowest().expires_after(timeout);
  }

  void ReadHeader() {
    if (impl_->stopping) return Shutdown();
    state_ = State::kHeader;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(impl_->options.max_header_bytes));
    parser_->body_limit(impl_->max_body_bytes);
    Expire(
        Ms(served_ == 0 ? impl_->options.header_timeout_ms : impl_->options.keepalive_timeout_ms));
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    state_ = State::kBody;
    const auto& msg = parser_->get();
    if (beast::iequals(msg[bhttp::field::expect], "100-continue")) {
      Expire(Ms(impl_->options.body_timeout_ms));
      asio::async_write(stream_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                        [self = shared_from_this()](beast::error_code e, size_t) {
                          if (e) return self->Fail(e);
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return Dispatch();
    Expire(Ms(impl_->options.body_timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->Dispatch();
                      });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return Refuse(413);
    if (ec == bhttp::error::header_limit) return Refuse(431);
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
      return Refuse(400);
    Fail(ec);
  }

  // The request as far as it was read (at least its start line and headers when they parsed).
  Request RequestFromParser(bool with_body) {
    Request req;
    req.remote_addr = ip_;
    req.ssl = stream_.native_handle();
    if (!parser_) return req;
    // What parsed so far: a refusal at the headers still names the method and path.
    auto& msg = parser_->get();
    req.method = std::string(msg.method_string());
    ParseTarget(std::string_view(msg.target().data(), msg.target().size()), req);
    for (const auto& f : msg)
      req.headers.emplace(std::string(f.name_string()), std::string(f.value()));
    if (with_body) req.body = std::move(msg.body());
    return req;
  }

  void Refuse(int status) {
    Request req = RequestFromParser(false);
    Response res;
    impl_->Refusal(req, res, status);
    if (impl_->on_done) impl_->on_done(req, res, "", 0.0);
    keep_alive_ = false;  // the rest of the request is unread
    drain_ = true;
    Write(std::move(res), req.method == "HEAD");
  }

  void Dispatch() {
    state_ = State::kHandling;
    ++served_;
    keep_alive_ = parser_->get().keep_alive() && served_ < impl_->options.keepalive_max_requests;
    auto req = std::make_shared<Request>(RequestFromParser(true));
    parser_.reset();
    ++impl_->in_flight;
    asio::post(*impl_->pool, [self = shared_from_this(), req] {
      Response res;
      std::string route;
      const auto started = Clock::now();
      RunHandler(*self->impl_, *req, res, route);
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      if (self->impl_->on_done) self->impl_->on_done(*req, res, route, seconds);
      const bool head = req->method == "HEAD";
      asio::post(self->stream_.get_executor(), [self, res = std::move(res), head]() mutable {
        --self->impl_->in_flight;
        self->Write(std::move(res), head);
      });
    });
  }

  static void RunHandler(const Listener::Impl& impl, Request& req, Response& res,
                         std::string& route) {
    try {
      impl.Handle(req, res, route);
    } catch (const std::exception& e) {
      log::Error("http_handler_exception", {{"method", req.method},
                                            {"path", req.path},
                                            {"client", req.remote_addr},
                                            {"what", e.what()}});
      res = Response();
      impl.Refusal(req, res, 500);
    } catch (...) {
      log::Error("http_handler_exception", {{"method", req.method},
                                            {"path", req.path},
                                            {"client", req.remote_addr},
                                            {"what", "unknown"}});
      res = Response();
      impl.Refusal(req, res, 500);
    }
  }

  void Write(Response res, bool head) {
    state_ = State::kWriting;
    if (impl_->stopping) keep_alive_ = false;
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(res.status));
    for (const auto& [k, v] : res.headers) response_.insert(k, v);
    response_.body() = std::move(res.body);
    response_.keep_alive(keep_alive_);
    response_.prepare_payload();
    if (head) response_.body().clear();  // Content-Length stays that of the GET
    // A client that does not read its answer is cut off like one that does not send.
    Expire(Ms(impl_->options.body_timeout_ms));
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Fail(ec);
                         if (self->drain_) return self->Drain();
                         if (!self->keep_alive_) return self->Shutdown();
                         self->ReadHeader();
                       });
  }

  // After a refusal, what the client still sends (the body it was refused for) is read and
  // dropped for a while before the connection closes: a client that writes its whole body
  // before it reads (most do) then gets the answer instead of a reset connection.
  void Drain() {
    state_ = State::kClosing;
    if (!drain_buffer_) {
      drain_buffer_ = std::make_unique<char[]>(kDrainChunk);
      Expire(Ms(std::min(impl_->options.body_timeout_ms, kDrainMs)));
    }
    stream_.async_read_some(asio::buffer(drain_buffer_.get(), kDrainChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kDrainBytes) return self->Close();
                              self->Drain();
                            });
  }

  void Fail(beast::error_code ec) {
    if (ec == beast::error::timeout || (state_ != State::kClosing && Clock::now() >= deadline_)) {
      ++impl_->timed_out;
      log::Debug("http_timeout", {{"client", ip_}, {"state", static_cast<int>(state_)}});
    }
    Close();
  }

  void Shutdown() {
    state_ = State::kClosing;
    Expire(Ms(1000));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->Close(); });
  }

  void Close() {
    state_ = State::kClosing;
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
  static constexpr int kDrainMs = 5000;
  static constexpr size_t kDrainBytes = 64u << 20;
  static constexpr size_t kDrainChunk = 16u << 10;

  Listener::Impl* impl_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  std::string ip_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  State state_ = State::kHandshake;
  Clock::time_point deadline_{};
  int served_ = 0;
  bool keep_alive_ = true;
  bool drain_ = false;
  size_t drained_ = 0;
  std::unique_ptr<char[]> drain_buffer_;  // only while draining: idle connections stay small
};

void Listener::Impl::Handle(Request& req, Response& res, std::string& route) const {
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  bool path_known = false;
  std::string allowed;
  for (const auto& r : routes) {
    std::smatch m;
    if (!std::regex_match(req.path, m, r.re)) continue;
    if (r.method != method) {
      path_known = true;
      if (allowed.find(r.method) == std::string::npos)
        allowed += (allowed.empty() ? "" : ", ") + r.method;
      continue;
    }
    req.matches = std::move(m);
    route = r.pattern;
    r.handler(req, res);
    if (method == "GET" && res.status == 200) {
      res.set_header("Accept-Ranges", "bytes");
      if (req.has_header("Range")) ApplyRange(req.get_header_value("Range"), res);
    }
    return;
  }
  if (path_known) res.set_header("Allow", allowed);
  Refusal(req, res, path_known ? 405 : 404);
}

void Listener::Impl::Accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopping || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors (or another transient failure): wait a little instead of spinning.
      log::Warn("http_accept_failed", {{"error", ec.message()}});
      retry_timer.emplace(ioc);
      retry_timer->expires_after(Ms(100));
      retry_timer->async_wait([this](beast::error_code) { Accept(); });
      return;
    }
    OnAccepted(std::move(socket));
    Accept();
  });
}

void Listener::Impl::OnAccepted(tcp::socket socket) {
  beast::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return;
  std::string ip = endpoint.address().to_string();
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard<std::mutex> lock(mu);
    const bool over_total = open >= options.max_connections;
    const bool over_ip =
        options.max_connections_per_ip > 0 && per_ip[ip] >= options.max_connections_per_ip;
    if (over_total || over_ip) {
      ++refused;
      if (per_ip[ip] == 0) per_ip.erase(ip);
      log::Warn("http_connection_refused",
                {{"client", ip},
                 {"limit", over_total ? "max_connections" : "max_connections_per_ip"},
                 {"open", static_cast<int64_t>(open)}});
      socket.close(ec);
      return;
    }
    ++per_ip[ip];
    ++open;
    ++accepted;
    conn = std::make_shared<Connection>(this, std::move(socket), ip);
    connections.insert(conn.get());
  }
  conn->Start();
}

Listener::Listener(ListenerOptions options, size_t max_body_bytes,
                   std::function<bool(SSL_CTX&)> configure_tls)
    : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  impl_->max_body_bytes = max_body_bytes;
  impl_->configure_tls = std::move(configure_tls);
}

Listener::~Listener() {
  Stop(0);
}

void Listener::Route(const std::string& method, const std::string& pattern, Handler handler) {
  impl_->routes.push_back({method, pattern, std::regex(pattern), std::move(handler)});
}

void Listener::SetErrorBody(std::function<void(const Request&, Response&)> fill) {
  impl_->error_body = std::move(fill);
}

void Listener::SetOnDone(
    std::function<void(const Request&, const Response&, const std::string&, double)> done) {
  impl_->on_done = std::move(done);
}

Status Listener::Bind(const std::string& host, int port) {
  auto& im = *impl_;
  SSL_CTX* ctx = im.ssl.native_handle();
  if (!im.configure_tls || !im.configure_tls(*ctx))
    return Error(Errc::kInternal, "TLS setup failed");
  // An idle TLS connection keeps no read or write buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  beast::error_code ec;
  const std::string where = host + ":" + std::to_string(port);
  tcp::endpoint endpoint;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(port));
  } else {
    tcp::resolver resolver(im.ioc);
    auto found = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
    if (ec || found.empty())
      return Error(Errc::kInvalidArgument, "cannot listen on " + where + ": unknown host");
    endpoint = found.begin()->endpoint();
  }
  im.acceptor.open(endpoint.protocol(), ec);
  if (!ec) im.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor.bind(endpoint, ec);
  if (!ec) im.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error(Errc::kIo, "cannot listen on " + where + ": " + ec.message());
  im.port = im.acceptor.local_endpoint().port();
  return Status::Ok();
}

int Listener::port() const {
  return impl_->port;
}

void Listener::Start() {
  auto& im = *impl_;
  im.pool.emplace(static_cast<size_t>(std::max(1, im.options.handler_threads)));
  im.work.emplace(im.ioc.get_executor());
  im.Accept();
  im.loop = std::thread([&im] { im.ioc.run(); });
}

bool Listener::Stop(int deadline_ms) {
  auto& im = *impl_;
  if (!im.loop.joinable()) return true;
  im.stopping = true;
  asio::post(im.ioc, [&im] {
    beast::error_code ec;
    im.acceptor.close(ec);
    if (im.retry_timer) im.retry_timer->cancel();
    std::vector<std::shared_ptr<Connection>> live;
    {
      std::lock_guard<std::mutex> lock(im.mu);
      for (Connection* c : im.connections) {
        // A connection whose last reference is being dropped is skipped: it is closing.
        if (auto sp = c->weak_from_this().lock()) live.push_back(std::move(sp));
      }
    }
    for (auto& c : live) c->CloseIfIdle();
  });
  const auto deadline = Clock::now() + Ms(deadline_ms);
  while (im.open > 0 && Clock::now() < deadline) std::this_thread::sleep_for(Ms(10));
  const bool clean = im.open == 0;
  im.pool->join();
  im.work.reset();
  im.ioc.stop();
  im.loop.join();
  return clean;
}

ListenerStats Listener::stats() const {
  const auto& im = *impl_;
  return {im.open, im.in_flight, im.accepted, im.refused, im.timed_out};
}

}  // namespace edgeloop::cloud::http
