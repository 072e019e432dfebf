// The event-driven HTTPS listener with real TLS sockets on loopback: slow and idle clients
// hold connections without starving others, deadlines and connection limits close what
// they must, the listener's own refusals carry a body, and Stop answers what is in flight.
#include "cloud/http_server.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <csignal>

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "cloud/fleet_keys.hpp"
#include "cloud_test_util.hpp"

namespace edgeloop::testing {
namespace {

using cloud::http::Listener;
using cloud::http::ListenerOptions;
using cloud::http::Request;
using cloud::http::Response;
using Json = nlohmann::json;

// A TLS client on a blocking socket, for what httplib's client will not do: send half a
// request, hold a connection open, read until the server closes.
class RawTls {
 public:
  explicit RawTls(int port) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    ok_ = SSL_connect(ssl_) == 1;
  }
  ~RawTls() {
    if (ssl_) SSL_free(ssl_);
    close(fd_);
    SSL_CTX_free(ctx_);
  }
  bool ok() const { return ok_; }
  bool Send(const std::string& s) {
    return ok_ &&
           SSL_write(ssl_, s.data(), static_cast<int>(s.size())) == static_cast<int>(s.size());
  }
  // Reads for up to timeout_ms, or until `until` has arrived, or the server closes.
  std::string Read(int timeout_ms, bool* closed, const std::string& until = "") {
    *closed = false;
    std::string out;
    if (!ok_) {
      *closed = true;
      return out;
    }
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[4096];
    while (until.empty() || out.find(until) == std::string::npos) {
      errno = 0;
      int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n > 0) {
        out.append(buf, n);
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      ERR_clear_error();
      if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_SYSCALL) &&
          (errno == EAGAIN || errno == EWOULDBLOCK))
        break;  // the timeout, the connection still open
      *closed = true;
      break;
    }
    return out;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool ok_ = false;
};

class ListenerFixture {
 public:
  explicit ListenerFixture(ListenerOptions options, size_t max_body = 1 << 16) {
    auto keys = cloud::LoadOrCreateFleetKeys(dir_.path(), "127.0.0.1", "", "", "");
    EXPECT_TRUE(keys.ok());
    cert_ = keys->server_tls.cert_pem;
    key_ = keys->server_tls.key_pem;
    listener_ = std::make_unique<Listener>(options, max_body, [this](SSL_CTX& ctx) {
      BIO* cb = BIO_new_mem_buf(cert_.data(), static_cast<int>(cert_.size()));
      BIO* kb = BIO_new_mem_buf(key_.data(), static_cast<int>(key_.size()));
      X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
      EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
      bool ok = cert && key && SSL_CTX_use_certificate(&ctx, cert) == 1 &&
                SSL_CTX_use_PrivateKey(&ctx, key) == 1;
      X509_free(cert);
      EVP_PKEY_free(key);
      BIO_free(cb);
      BIO_free(kb);
      return ok;
    });
    auto& l = *listener_;
    l.SetErrorBody([](const Request& req, Response& res) {
      res.set_content(Json{{"error", {{"status", res.status}, {"path", req.path}}}}.dump(),
                      "application/json");
    });
    l.Get("/hello", [](const Request&, Response& res) { res.set_content("hello", "text/plain"); });
    l.Post("/echo", [](const Request& req, Response& res) {
      Json params = Json::object();
      for (const auto& [k, v] : req.params) params[k] = v;
      res.set_content(Json{{"body", req.body}, {"params", params}}.dump(), "application/json");
    });
    l.Get(R"(/items/([a-z]+))", [](const Request& req, Response& res) {
      res.set_content(req.matches[1].str(), "text/plain");
    });
    l.Get("/blob", [](const Request&, Response& res) {
      std::string blob;
      for (int i = 0; i < 1000; ++i) blob.push_back(static_cast<char>('a' + i % 26));
      res.set_content(blob, "application/octet-stream");
    });
    l.Get("/slow", [this](const Request&, Response& res) {
      ++slow_started_;
      std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_));
      res.set_content("slept", "text/plain");
    });
    l.Get("/throws", [](const Request&, Response&) { throw std::runtime_error("boom"); });
    EXPECT_TRUE(l.Bind("127.0.0.1", 0).ok());
    l.Start();
  }
  Listener& listener() { return *listener_; }
  int port() const { return listener_->port(); }
  std::unique_ptr<httplib::SSLClient> Client() const {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port());
    c->enable_server_certificate_verification(false);
    c->set_read_timeout(20, 0);
    return c;
  }
  std::atomic<int> slow_started_{0};
  int slow_ms_ = 300;

 private:
  TempDir dir_;
  std::string cert_, key_;
  std::unique_ptr<Listener> listener_;
};

ListenerOptions Small() {
  ListenerOptions o;
  o.handler_threads = 2;
  return o;
}

TEST(HttpListener, RoutesParamsAndBodiesReachTheHandler) {
  ListenerFixture f(Small());
  auto c = f.Client();
  auto r = c->Post("/echo?a=1&b=x%20y", "payload", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  Json j = Json::parse(r->body);
  EXPECT_EQ(j["body"], "payload");
  EXPECT_EQ(j["params"]["a"], "1");
  EXPECT_EQ(j["params"]["b"], "x y");
  // '+' in a query is a space (httplib's client escapes it, so a raw request sends it).
  RawTls raw(f.port());
  ASSERT_TRUE(raw.Send("POST /echo?c=p+q HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  bool closed = false;
  EXPECT_NE(raw.Read(5000, &closed, "}}").find("\"c\":\"p q\""), std::string::npos);
  auto m = c->Get("/items/abc");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, "abc");
  auto head = c->Head("/hello");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->get_header_value("Content-Length"), "5");
}

TEST(HttpListener, OwnRefusalsCarryTheErrorBody) {
  ListenerFixture f(Small(), /*max_body=*/1000);
  auto c = f.Client();
  auto nf = c->Get("/nothing");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(Json::parse(nf->body)["error"]["path"], "/nothing");
  auto wrong = c->Delete("/hello");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->get_header_value("Allow"), "GET");
  auto big = c->Post("/echo", std::string(5000, 'x'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(Json::parse(big->body)["error"]["status"], 413);
  auto boom = c->Get("/throws");
  ASSERT_TRUE(boom);
  EXPECT_EQ(boom->status, 500);
  EXPECT_EQ(Json::parse(boom->body)["error"]["status"], 500);
  // Headers over the limit, and a request line that is not HTTP.
  RawTls huge(f.port());
  ASSERT_TRUE(huge.Send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(40000, 'a') +
                        "\r\n\r\n"));
  bool closed = false;
  EXPECT_NE(huge.Read(5000, &closed, "}").find("431"), std::string::npos);
  RawTls junk(f.port());
  ASSERT_TRUE(junk.Send("NOT\x01HTTP\r\n\r\n"));
  EXPECT_NE(junk.Read(5000, &closed, "}").find(" 400 "), std::string::npos);
  // The listener still serves.
  auto ok = c->Get("/hello");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpListener, ServesSingleByteRanges) {
  ListenerFixture f(Small());
  auto c = f.Client();
  auto part = c->Get("/blob", {{"Range", "bytes=100-109"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body.size(), 10u);
  EXPECT_EQ(part->get_header_value("Content-Range"), "bytes 100-109/1000");
  auto tail = c->Get("/blob", {{"Range", "bytes=-4"}});
  ASSERT_TRUE(tail);
  EXPECT_EQ(tail->status, 206);
  EXPECT_EQ(tail->get_header_value("Content-Range"), "bytes 996-999/1000");
  auto open_end = c->Get("/blob", {{"Range", "bytes=990-"}});
  ASSERT_TRUE(open_end);
  EXPECT_EQ(open_end->body.size(), 10u);
  auto past = c->Get("/blob", {{"Range", "bytes=5000-"}});
  ASSERT_TRUE(past);
  EXPECT_EQ(past->status, 416);
  auto ignored = c->Get("/blob", {{"Range", "bytes=0-1,5-6"}});
  ASSERT_TRUE(ignored);
  EXPECT_EQ(ignored->status, 200);
  EXPECT_EQ(ignored->body.size(), 1000u);
}

// 200 clients trickle half a request line and keep their connections; two handler threads
// still answer everyone else.
TEST(HttpListener, SlowClientsDoNotStarveOthers) {
  ListenerFixture f(Small());
  std::vector<std::unique_ptr<RawTls>> slow;
  for (int i = 0; i < 200; ++i) {
    slow.push_back(std::make_unique<RawTls>(f.port()));
    ASSERT_TRUE(slow.back()->ok());
    ASSERT_TRUE(slow.back()->Send("GET /hello HTTP/1.1\r\nHo"));
  }
  auto c = f.Client();
  for (int i = 0; i < 20; ++i) {
    auto r = c->Get("/hello");
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_GE(f.listener().stats().open, 200);
  // They finish their requests and are answered too.
  bool closed = false;
  ASSERT_TRUE(slow[0]->Send("st: x\r\n\r\n"));
  EXPECT_NE(slow[0]->Read(5000, &closed, "hello").find("hello"), std::string::npos);
}

// The deadline closes the socket at once and counts the connection when its read completes,
// on the event loop: the client may see the close a moment before the count moves.
bool CountReaches(Listener& l, int64_t timed_out) {
  for (int i = 0; i < 500 && l.stats().timed_out < timed_out; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return l.stats().timed_out == timed_out;
}

TEST(HttpListener, DeadlinesCloseSlowAndIdleConnections) {
  // Each deadline on its own listener, the other one long, so that a loaded machine cannot
  // make the test's own requests miss a deadline.
  ListenerOptions slow_header = Small();
  slow_header.header_timeout_ms = 300;
  ListenerFixture f(slow_header);
  RawTls slow(f.port());
  ASSERT_TRUE(slow.Send("GET /hello HTTP/1.1\r\nHo"));
  bool closed = false;
  slow.Read(10000, &closed);
  EXPECT_TRUE(closed) << "a request whose headers never finish is closed at its deadline";
  EXPECT_TRUE(CountReaches(f.listener(), 1));

  ListenerOptions short_idle = Small();
  short_idle.keepalive_timeout_ms = 300;
  ListenerFixture g(short_idle);
  RawTls idle(g.port());
  ASSERT_TRUE(idle.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string answer = idle.Read(10000, &closed);
  EXPECT_NE(answer.find("hello"), std::string::npos);
  EXPECT_TRUE(closed) << "an idle keep-alive connection is closed at its deadline";
  EXPECT_TRUE(CountReaches(g.listener(), 1));
}

TEST(HttpListener, ConnectionLimitsRefuseAtAccept) {
  ListenerOptions o = Small();
  o.max_connections_per_ip = 2;
  ListenerFixture f(o);
  auto a = std::make_unique<RawTls>(f.port());
  RawTls b(f.port());
  ASSERT_TRUE(a->ok());
  ASSERT_TRUE(b.ok());
  RawTls third(f.port());
  EXPECT_FALSE(third.ok()) << "a third connection from one address is closed at accept";
  EXPECT_EQ(f.listener().stats().refused, 1);
  a.reset();
  for (int i = 0; i < 100 && f.listener().stats().open > 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  RawTls again(f.port());
  EXPECT_TRUE(again.ok()) << "a closed connection frees its place";
}

TEST(HttpListener, KeepAliveEndsAfterTheRequestLimit) {
  ListenerOptions o = Small();
  o.keepalive_max_requests = 2;
  ListenerFixture f(o);
  RawTls conn(f.port());
  bool closed = false;
  ASSERT_TRUE(conn.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string first = conn.Read(5000, &closed, "hello");
  EXPECT_EQ(first.find("Connection: close"), std::string::npos);
  EXPECT_FALSE(closed);
  ASSERT_TRUE(conn.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string second = conn.Read(5000, &closed);
  EXPECT_NE(second.find("Connection: close"), std::string::npos) << second;
  EXPECT_TRUE(closed);
}

TEST(HttpListener, StopAnswersRequestsInFlightAndClosesIdleConnections) {
  ListenerFixture f(Small());
  f.slow_ms_ = 500;
  RawTls idle(f.port());
  ASSERT_TRUE(idle.ok());
  RawTls busy(f.port());
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  while (f.slow_started_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(f.listener().Stop(5000))
      << "open " << f.listener().stats().open << ", in flight " << f.listener().stats().in_flight;
  bool closed = false;
  std::string answer = busy.Read(5000, &closed);
  EXPECT_NE(answer.find("slept"), std::string::npos) << "the request in flight was answered";
  EXPECT_NE(answer.find("Connection: close"), std::string::npos);
  idle.Read(5000, &closed);
  EXPECT_TRUE(closed);
  RawTls late(f.port());
  EXPECT_FALSE(late.ok()) << "nothing is accepted after Stop";
}

TEST(HttpListener, StopGivesUpOnAHandlerPastTheDeadline) {
  ListenerFixture f(Small());
  f.slow_ms_ = 1500;
  RawTls busy(f.port());
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  while (f.slow_started_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(f.listener().Stop(100)) << "the request was cut off";
}

}  // namespace
}  // namespace edgeloop::testing
