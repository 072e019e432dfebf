// The control plane under many idle and slow connections: a real `edgeloop server` process
// on loopback, N TLS connections held open against it (half idle keep-alive connections that
// made one request, half slow clients trickling one header byte per second), and
// well-behaved clients timing GET /v1/health meanwhile (on kept-alive connections, and with
// a new TLS connection per request). Then SIGTERM under that load: time to exit and exit code.
// Last, server RSS before and after the hostile documents of the parser tests.
//
//   ./build/bench/connections_bench [--counts 1000,10000] [--seconds 15] [--probes 4]
//
// Writes bench/results/connections.json.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <list>
#include <mutex>
#include <thread>

#include "bench/bench_util.hpp"
#include "common/test_documents.hpp"
#include "server_process.hpp"

using namespace edgeloop;
using namespace edgeloop::testing;
using namespace edgeloop::bench;
using Json = nlohmann::json;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

int64_t ProcKiB(pid_t pid, const std::string& key) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  return -1;
}

// The held connections: each is a TLS stream on one event loop. Slow ones write one byte of
// an unfinished header per second; idle ones make one request and then keep the connection.
class Crowd {
 public:
  Crowd(int port, int count) : port_(port), target_(count) {
    ssl_.set_verify_mode(asio::ssl::verify_none);
  }

  // Opens the connections (at most 256 handshakes at a time) and starts the trickle.
  void Open() {
    started_ = Clock::now();
    for (int i = 0; i < 256 && launched_ < target_; ++i) Launch();
    Tick();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  // Waits until every connection is held or failed, or timeout_s passed.
  double WaitOpen(double timeout_s) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    while (held_ + failed_ < target_ && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return std::chrono::duration<double>(Clock::now() - started_).count();
  }
  void Stop() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int held() const { return held_ - closed_; }
  int failed() const { return failed_; }
  int closed() const { return closed_; }

 private:
  struct Conn {
    explicit Conn(asio::io_context& ioc, asio::ssl::context& ssl) : s(ioc, ssl) {}
    asio::ssl::stream<tcp::socket> s;
    bool slow = false;
    bool open = false;
    bool writing = false;
    std::array<char, 4096> buf{};
    std::string got;
  };

  void Launch() {
    const bool slow = launched_ % 2 == 1;
    ++launched_;
    conns_.emplace_back(ioc_, ssl_);
    Conn* c = &conns_.back();
    c->slow = slow;
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_));
    c->s.lowest_layer().async_connect(ep, [this, c](boost::system::error_code ec) {
      if (ec) return Failed();
      c->s.async_handshake(asio::ssl::stream_base::client, [this, c](boost::system::error_code e) {
        if (e) return Failed();
        if (c->slow) {
          static const std::string head = "GET /v1/health HTTP/1.1\r\nX-Slow: ";
          asio::async_write(c->s, asio::buffer(head),
                            [this, c](boost::system::error_code w, size_t) {
                              if (w) return Failed();
                              Held(c);
                            });
        } else {
          static const std::string req = "GET /v1/health HTTP/1.1\r\nHost: bench\r\n\r\n";
          asio::async_write(c->s, asio::buffer(req),
                            [this, c](boost::system::error_code w, size_t) {
                              if (w) return Failed();
                              ReadAnswer(c);
                            });
        }
      });
    });
  }
  void ReadAnswer(Conn* c) {
    c->s.async_read_some(asio::buffer(c->buf), [this, c](boost::system::error_code ec, size_t n) {
      if (ec) return Failed();
      c->got.append(c->buf.data(), n);
      if (c->got.find("\"ok\"") == std::string::npos) return ReadAnswer(c);
      Held(c);
    });
  }
  void Held(Conn* c) {
    c->open = true;
    ++held_;
    if (launched_ < target_) Launch();
    // A read that completes only when the server closes the connection.
    c->s.async_read_some(asio::buffer(c->buf), [this, c](boost::system::error_code, size_t) {
      c->open = false;
      ++closed_;
    });
  }
  void Failed() {
    ++failed_;
    if (launched_ < target_) Launch();
  }
  void Tick() {
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      static const char byte = 'a';
      for (Conn& c : conns_) {
        if (!c.slow || !c.open || c.writing) continue;
        c.writing = true;
        asio::async_write(c.s, asio::buffer(&byte, 1),
                          [&c](boost::system::error_code, size_t) { c.writing = false; });
      }
      Tick();
    });
  }

  asio::io_context ioc_{1};
  asio::ssl::context ssl_{asio::ssl::context::tls_client};
  asio::steady_timer timer_{ioc_};
  std::list<Conn> conns_;
  int port_;
  int target_;
  int launched_ = 0;
  std::atomic<int> held_{0}, failed_{0}, closed_{0};
  Clock::time_point started_;
  std::thread thread_;
};

struct Probe {
  std::vector<double> kept_ms, fresh_ms;
  int errors = 0;
};

// `threads` clients on kept-alive connections and one that opens a new connection for every
// request, each timing GET /v1/health for `seconds`.
Probe RunProbes(int port, int threads, double seconds) {
  Probe out;
  std::mutex mu;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  auto one = [&](bool fresh) {
    std::vector<double> lat;
    int errors = 0;
    std::unique_ptr<httplib::SSLClient> c;
    while (Clock::now() < end) {
      if (!c || fresh) {
        c = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
        c->enable_server_certificate_verification(false);
        c->set_keep_alive(!fresh);
        c->set_read_timeout(30, 0);
      }
      auto s = Clock::now();
      auto r = c->Get("/v1/health");
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - s).count();
      if (!r || r->status != 200) {
        ++errors;
        c.reset();
        continue;
      }
      lat.push_back(ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard<std::mutex> lock(mu);
    auto& dst = fresh ? out.fresh_ms : out.kept_ms;
    dst.insert(dst.end(), lat.begin(), lat.end());
    out.errors += errors;
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) ts.emplace_back(one, false);
  ts.emplace_back(one, true);
  for (auto& t : ts) t.join();
  return out;
}

Json Latency(const std::vector<double>& v) {
  if (v.empty()) return Json{{"requests", 0}};
  return {{"requests", v.size()},
          {"p50_ms", Percentile(v, 0.5)},
          {"p99_ms", Percentile(v, 0.99)},
          {"max_ms", *std::max_element(v.begin(), v.end())}};
}

std::vector<std::string> ServerArgs(int count) {
  return {"--max-connections",
          std::to_string(count + 1000),
          "--handshake-timeout-ms",
          "600000",
          "--header-timeout-ms",
          "600000",
          "--keepalive-timeout-ms",
          "600000",
          "--shutdown-deadline",
          "10",
          "--log-level",
          "error"};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Connections held, request latency and shutdown under idle and slow clients"};
  std::vector<int> counts = {1000, 10000};
  double seconds = 15;
  int probes = 4;
  std::string out_path = "bench/results/connections.json";
  app.add_option("--counts", counts, "Held connections per round")->delimiter(',');
  app.add_option("--seconds", seconds, "Probe time per round")->check(CLI::Range(1.0, 3600.0));
  app.add_option("--probes", probes, "Well-behaved keep-alive clients")->check(CLI::Range(1, 64));
  app.add_option("--out", out_path, "JSON output");
  CLI11_PARSE(app, argc, argv);

  signal(SIGPIPE, SIG_IGN);  // writes to connections the server closed fail, not kill
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  Json rounds = Json::array();
  std::printf("%8s %8s %7s %9s %9s %9s %9s %9s %10s %8s\n", "target", "held", "open_s", "kept_p50",
              "kept_p99", "kept_max", "new_p99", "rss_MiB", "stop_s", "exit");
  for (int count : counts) {
    if (static_cast<rlim_t>(count) + 512 > files.rlim_cur) {
      std::fprintf(stderr, "connections_bench: %d connections need ulimit -n above %d (now %llu)\n",
                   count, count + 512, static_cast<unsigned long long>(files.rlim_cur));
      return 2;
    }
    TempDir dir;
    const int port = FreeLoopbackPort();
    ServerProcess server(dir.path() + "/data", port, ServerArgs(count));
    if (!server.WaitReady()) {
      std::fprintf(stderr, "connections_bench: the server did not start\n");
      return 1;
    }
    const int64_t rss_idle = ProcKiB(server.pid(), "VmRSS");
    Crowd crowd(port, count);
    crowd.Open();
    const double open_s = crowd.WaitOpen(300);
    Probe probe = RunProbes(port, probes, seconds);
    const int held = crowd.held();
    const int64_t rss = ProcKiB(server.pid(), "VmRSS");
    // SIGTERM with everything still connected and the probes running.
    std::thread load([&] { RunProbes(port, probes, 3.0); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    double stop_s = 0;
    const int exit_code = server.Terminate(SIGTERM, 30, &stop_s);
    load.join();
    crowd.Stop();
    Json kept = Latency(probe.kept_ms), fresh = Latency(probe.fresh_ms);
    std::printf("%8d %8d %7.1f %9.2f %9.2f %9.2f %9.2f %9.1f %10.2f %8d\n", count, held, open_s,
                kept.value("p50_ms", 0.0), kept.value("p99_ms", 0.0), kept.value("max_ms", 0.0),
                fresh.value("p99_ms", 0.0), rss / 1024.0, stop_s, exit_code);
    rounds.push_back({{"target_connections", count},
                      {"held_connections", held},
                      {"failed_to_open", crowd.failed()},
                      {"open_seconds", open_s},
                      {"kept_alive_probe", kept},
                      {"new_connection_probe", fresh},
                      {"probe_errors", probe.errors},
                      {"server_rss_kib_idle", rss_idle},
                      {"server_rss_kib_held", rss},
                      {"sigterm_to_exit_s", stop_s},
                      {"exit_code", exit_code}});
  }

  // The hostile documents of the parser tests, against a fresh server.
  TempDir dir;
  const int port = FreeLoopbackPort();
  ServerProcess server(dir.path() + "/data", port, {"--log-level", "error"});
  if (!server.WaitReady()) return 1;
  auto token = ReadFile(dir.path() + "/data/admin.token", 4096);
  httplib::SSLClient c("127.0.0.1", port);
  c.enable_server_certificate_verification(false);
  c.set_read_timeout(60, 0);
  httplib::Headers auth = {{"Authorization", "Bearer " + (token.ok() ? *token : std::string())}};
  const int64_t before = ProcKiB(server.pid(), "VmRSS");
  Json hostile = Json::array();
  const std::string bomb = "name: p\n" + AliasBombYaml();
  struct Doc {
    const char* name;
    const char* path;
    std::string body;
  };
  std::vector<Doc> docs = {
      {"yaml_alias_bomb", "/v1/pipelines", bomb},
      {"yaml_bomb_in_json", "/v1/pipelines", Json{{"yaml", bomb}}.dump()},
      {"json_nested_10000", "/v1/tokens", std::string(10000, '[') + std::string(10000, ']')},
      {"json_8MiB_string", "/v1/tokens",
       "{\"scope\":\"" + std::string((8u << 20) - 64, 'a') + "\"}"}};
  std::printf("\n%-20s %6s %12s\n", "document", "status", "bytes");
  for (int round = 0; round < 10; ++round) {
    for (const auto& d : docs) {
      auto r = c.Post(d.path, auth, d.body, "application/json");
      if (round == 0) {
        std::printf("%-20s %6d %12zu\n", d.name, r ? r->status : -1, d.body.size());
        hostile.push_back(
            {{"document", d.name}, {"status", r ? r->status : -1}, {"bytes", d.body.size()}});
      }
    }
  }
  const int64_t after = ProcKiB(server.pid(), "VmRSS");
  const int64_t peak = ProcKiB(server.pid(), "VmHWM");
  std::printf("server RSS %0.1f MiB before, %0.1f MiB after 10 rounds, peak %0.1f MiB\n",
              before / 1024.0, after / 1024.0, peak / 1024.0);

  Json out = MachineInfo();
  out["benchmark"] = "connections";
  out["probe_seconds"] = seconds;
  out["probe_clients"] = probes;
  out["rounds"] = rounds;
  out["hostile_documents"] = {{"documents", hostile},
                              {"rounds", 10},
                              {"server_rss_kib_before", before},
                              {"server_rss_kib_after", after},
                              {"server_rss_kib_peak", peak}};
  WriteJson(out_path, out);
  return 0;
}
