// Two `edgeloop server` replicas on one real PostgreSQL, sharing one data folder, behind a
// real HAProxy running the shipped config (deploy/haproxy/haproxy.cfg) on the test's ports:
// kill -9 of a replica during sustained ingest (every acked sample stored exactly once, the
// survivor keeps serving), kill -9 of the leader during a rollout (the other replica takes the
// lease and the rollout completes), and never two leaders. Plus the SQLite rule: one server
// per data folder.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "cloud_test_util.hpp"
#include "database_param.hpp"
#include "rollout_devices.hpp"
#include "run_command.hpp"
#include "server_process.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

std::string HaproxyBinary() {
  for (const char* p : {"/usr/sbin/haproxy", "/usr/bin/haproxy"})
    if (access(p, X_OK) == 0) return p;
  return "";
}

bool HavePostgres() {
  return RunCommand("ls /usr/lib/postgresql/*/bin/pg_ctl > /dev/null 2>&1").exit_code == 0;
}

template <typename Pred>
bool WaitUntil(Pred done, double seconds = 60) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    usleep(50'000);
  }
  return done();
}

// HAProxy in the foreground on the shipped config, with its bind line and server lines
// replaced by the test's loopback ports, and the global settings that need root dropped.
class Haproxy {
 public:
  Haproxy(const std::string& dir, int port, const std::vector<int>& replicas) : port_(port) {
    std::ifstream in(std::string(EDGELOOP_TEST_SOURCE_DIR) + "/deploy/haproxy/haproxy.cfg");
    std::ostringstream cfg;
    std::string line;
    bool servers_written = false;
    while (std::getline(in, line)) {
      const std::string t = std::regex_replace(line, std::regex("^\\s+"), "");
      // EDGELOOP_TEST_HAPROXY_LOG=1: HAProxy logs every connection and check to stderr.
      if (t.rfind("log /dev/log", 0) == 0 && getenv("EDGELOOP_TEST_HAPROXY_LOG")) {
        cfg << "    log stderr format raw local0\n";
        continue;
      }
      if (t.rfind("user ", 0) == 0 || t.rfind("group ", 0) == 0 || t.rfind("log /dev/log", 0) == 0)
        continue;
      if (t.rfind("maxconn ", 0) == 0) {
        cfg << "    maxconn 1000\n";  // within the test's open-file limit
        continue;
      }
      if (t.rfind("bind ", 0) == 0) {
        cfg << "    bind 127.0.0.1:" << port << "\n";
        continue;
      }
      if (t.rfind("server ", 0) == 0) {
        if (!servers_written)
          for (size_t i = 0; i < replicas.size(); ++i)
            cfg << "    server replica-" << i + 1 << " 127.0.0.1:" << replicas[i] << "\n";
        servers_written = true;
        continue;
      }
      cfg << line << "\n";
    }
    config_ = cfg.str();
    EXPECT_TRUE(servers_written) << "deploy/haproxy/haproxy.cfg has no server lines";
    const std::string path = dir + "/haproxy.cfg";
    EXPECT_TRUE(WriteFileAtomic(path, config_).ok());
    pid_ = fork();
    if (pid_ == 0) {
      execl(HaproxyBinary().c_str(), "haproxy", "-db", "-f", path.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Haproxy() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Polls until HAProxy forwards /v1/health to a replica.
  bool WaitReady() {
    return WaitUntil([&] {
      httplib::SSLClient c("127.0.0.1", port_);
      c.enable_server_certificate_verification(false);
      auto res = c.Get("/v1/health");
      return res && res->status == 200;
    });
  }
  int port() const { return port_; }
  const std::string& config() const { return config_; }

 private:
  int port_;
  pid_t pid_ = -1;
  std::string config_;
};

// PostgreSQL, two replicas on it sharing one data folder (started at the same moment, so
// they race to create the keys), HAProxy in front.
class Replicas : public ::testing::Test {
 protected:
  void SetUp() override {
    if (HaproxyBinary().empty())
      GTEST_SKIP() << "haproxy is not installed (scripts/setup installs it: apt-get install "
                      "haproxy)";
    if (!HavePostgres())
      GTEST_SKIP() << "PostgreSQL is not installed (scripts/setup installs it: apt-get install "
                      "postgresql)";
    url_ = FreshPostgresUrl();
    ASSERT_FALSE(HasFailure());
    data_ = dir_.path() + "/data";
    for (int i = 0; i < 2; ++i) ports_.push_back(FreeLoopbackPort());
    for (int i = 0; i < 2; ++i) StartReplica(i);
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(replicas_[i]->WaitReady()) << "replica " << i + 1;
    lb_ = std::make_unique<Haproxy>(dir_.path(), FreeLoopbackPort(), ports_);
    ASSERT_TRUE(lb_->WaitReady()) << lb_->config();
    ca_file_ = data_ + "/ca.crt";
    admin_ = *ReadFile(data_ + "/admin.token");
  }

  void StartReplica(int i) {
    replicas_.resize(2);
    replicas_[i] = std::make_unique<ServerProcess>(
        data_, ports_[i],
        std::vector<std::string>{"--db", url_, "--replica-id", "replica-" + std::to_string(i + 1),
                                 "--background-interval-ms", std::to_string(interval_ms_)});
  }

  // A client of one replica (port) or of the load balancer; verified against the fleet CA.
  std::unique_ptr<httplib::SSLClient> Client(int port, const DeviceCredentials* device = nullptr) {
    auto c = device ? std::make_unique<httplib::SSLClient>("127.0.0.1", port, device->cert_file,
                                                           device->key_file)
                    : std::make_unique<httplib::SSLClient>("127.0.0.1", port);
    c->set_ca_cert_path(ca_file_);
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(5);
    c->set_read_timeout(10);
    return c;
  }
  httplib::Headers Bearer() const { return {{"Authorization", "Bearer " + admin_}}; }

  // An operator request through the load balancer, retried on connection errors.
  Json Call(const std::string& method, const std::string& path, const Json& body, int want) {
    std::string last_error;
    for (int attempt = 0; attempt < 20; ++attempt) {
      auto c = Client(lb_->port());
      auto res = method == "GET" ? c->Get(path, Bearer())
                                 : c->Post(path, Bearer(), body.dump(), "application/json");
      if (!res) {
        last_error = httplib::to_string(res.error());
        usleep(200'000);
        continue;
      }
      EXPECT_EQ(res->status, want) << method << " " << path << ": " << res->body;
      return Json::parse(res->body, nullptr, false);
    }
    ADD_FAILURE() << method << " " << path << ": no answer through HAProxy (" << last_error << ")";
    return Json();
  }

  DeviceCredentials Enroll(const std::string& id, const std::string& group) {
    Json tok = Call("POST", "/v1/enrollment-tokens", {{"device_id", id}, {"group", group}}, 200);
    auto key = crypto::GenerateTlsKeyPem();
    auto res =
        Client(lb_->port())
            ->Post("/v1/enroll",
                   Json{{"token", tok.value("token", "")}, {"csr", *crypto::CreateCsr(*key, id)}}
                       .dump(),
                   "application/json");
    EXPECT_TRUE(res && res->status == 200) << (res ? res->body : "no answer");
    DeviceCredentials cred{id, dir_.path() + "/" + id + ".crt", dir_.path() + "/" + id + ".key"};
    if (!res || res->status != 200) return cred;
    EXPECT_TRUE(
        WriteFileAtomic(cred.cert_file, Json::parse(res->body)["certificate"].get<std::string>())
            .ok());
    EXPECT_TRUE(WriteFileAtomic(cred.key_file, *key, 0600).ok());
    return cred;
  }

  // Replica i's own view: 1 leader, 0 not, -1 no answer (dead).
  int Leader(int i) {
    auto res = Client(ports_[i])->Get("/v1/health");
    if (!res || res->status != 200) return -1;
    return Json::parse(res->body, nullptr, false).value("leader", false) ? 1 : 0;
  }
  // The edgeloop_leader gauge in replica i's metrics (-1: no answer or no gauge).
  int LeaderGauge(int i) {
    auto res = Client(ports_[i])->Get("/v1/metrics", Bearer());
    if (!res || res->status != 200) return -1;
    std::smatch m;
    if (!std::regex_search(res->body, m,
                           std::regex("\\nedgeloop_leader\\{replica=\"replica-" +
                                      std::to_string(i + 1) + "\"\\} ([01])\\n")))
      return -1;
    return std::stoi(m[1]);
  }

  // Checks, until stopped, that the two replicas never both hold the lease: replica 1 is
  // read before and after replica 2, and an overlap is counted only when it led at both ends.
  void WatchLeaders() {
    watcher_ = std::thread([this] {
      while (!stop_watch_) {
        const int a = Leader(0), b = Leader(1), a2 = Leader(0);
        if (a == 1 && b == 1 && a2 == 1) ++both_leaders_;
        ++leader_samples_;
        usleep(100'000);
      }
    });
  }
  void StopWatching() {
    stop_watch_ = true;
    if (watcher_.joinable()) watcher_.join();
  }
  void TearDown() override { StopWatching(); }

  // Which replica leads (0 or 1) once exactly one does; -1 after 30 s without.
  int WaitForOneLeader() {
    int who = -1;
    WaitUntil(
        [&] {
          const int a = Leader(0), b = Leader(1);
          who = a == 1 && b != 1 ? 0 : b == 1 && a != 1 ? 1 : -1;
          return who >= 0;
        },
        30);
    return who;
  }

  int interval_ms_ = 1000;
  TempDir dir_;
  std::string url_, data_, ca_file_, admin_;
  std::vector<int> ports_;
  std::vector<std::unique_ptr<ServerProcess>> replicas_;
  std::unique_ptr<Haproxy> lb_;
  std::thread watcher_;
  std::atomic<bool> stop_watch_{false};
  std::atomic<int> both_leaders_{0}, leader_samples_{0};
};

TEST_F(Replicas, StartedTogetherOnOneFolderTheyShareOneFleetCaAndAdminTokenAndOneLeads) {
  // Each replica's TLS certificate verifies against the one ca.crt, and the one admin token
  // works on both: neither generated keys of its own.
  for (int i = 0; i < 2; ++i) {
    auto res = Client(ports_[i])->Get("/v1/metrics", Bearer());
    ASSERT_TRUE(res) << "replica " << i + 1 << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << res->body;
  }
  const int leader = WaitForOneLeader();
  ASSERT_GE(leader, 0);
  EXPECT_EQ(LeaderGauge(leader), 1);
  EXPECT_EQ(LeaderGauge(1 - leader), 0);
}

TEST_F(Replicas, KillNineOfAReplicaDuringIngestThroughHaproxyStoresEveryAckedSampleOnce) {
  WatchLeaders();
  constexpr int kDevices = 4, kBatches = 40, kBatch = 25;
  std::vector<DeviceCredentials> devices;
  for (int d = 0; d < kDevices; ++d) devices.push_back(Enroll("cam-" + std::to_string(d), "line"));
  ASSERT_FALSE(HasFailure());
  // Devices upload as agents do: one batch at a time, the same batch again after a
  // connection error or a 5xx, the next one only after an ack.
  std::atomic<int> acked_total{0}, retries{0}, acked_after_kill{0};
  std::atomic<bool> killed{false};
  std::vector<int> acked(kDevices, 0);
  std::vector<std::thread> threads;
  for (int d = 0; d < kDevices; ++d)
    threads.emplace_back([&, d] {
      auto client = Client(lb_->port(), &devices[d]);
      for (int b = 0; b < kBatches;) {
        auto res = PostBatch(
            *client, MakeBatch(devices[d].device_id, static_cast<uint64_t>(b) * kBatch, kBatch));
        if (!res || res->status >= 500) {
          ++retries;
          if (retries > 2000) return;
          client = Client(lb_->port(), &devices[d]);
          usleep(20'000);
          continue;
        }
        ASSERT_EQ(res->status, 200) << res->body;
        acked[d] = ++b;
        ++acked_total;
        if (killed) ++acked_after_kill;
      }
    });
  // Killed once ingest is well under way (a count of acks, not a time).
  ASSERT_TRUE(WaitUntil([&] { return acked_total >= kDevices * kBatches / 3; }));
  replicas_[0]->Kill(SIGKILL);
  killed = true;
  for (auto& t : threads) t.join();
  StopWatching();

  for (int d = 0; d < kDevices; ++d) EXPECT_EQ(acked[d], kBatches) << devices[d].device_id;
  EXPECT_GT(acked_after_kill.load(), 0) << "nothing was acked after the kill";
  // Every batch was acked, so every sample must be there, and exactly once.
  Json counts = Call("GET", "/v1/samples/counts?by=device", {}, 200);
  for (const auto& dev : devices)
    EXPECT_EQ(counts["counts"].value(dev.device_id, uint64_t{0}),
              static_cast<uint64_t>(kBatches) * kBatch)
        << dev.device_id << " " << counts.dump();
  // Sending an acked batch again stores nothing: the survivor sees every sample already.
  auto again = PostBatch(*Client(lb_->port(), &devices[0]), MakeBatch("cam-0", 0, kBatch));
  ASSERT_TRUE(again);
  EXPECT_EQ(Json::parse(again->body).value("duplicates", 0), kBatch) << again->body;
  // The survivor leads now (it was the leader, or took over from the dead one).
  EXPECT_EQ(WaitForOneLeader(), 1);
  EXPECT_EQ(both_leaders_, 0) << "both replicas held the lease at once";
  EXPECT_GT(leader_samples_, 0);
  RecordProperty("retries_after_kill", retries.load());
}

TEST_F(Replicas, KillNineOfTheLeaderDuringARolloutMovesTheLeaseAndTheRolloutCompletes) {
  WatchLeaders();
  const int leader = WaitForOneLeader();
  ASSERT_GE(leader, 0);
  const int other = 1 - leader;
  std::vector<DeviceCredentials> devs;
  for (int i = 1; i <= 3; ++i) devs.push_back(Enroll("cam-" + std::to_string(i), "line"));
  ASSERT_FALSE(HasFailure());
  std::vector<std::string> sha(1);
  for (int n = 1; n <= 2; ++n) {
    auto up =
        Client(lb_->port())
            ->Post("/v1/artifacts", Bearer(), "onnx bytes of clf version " + std::to_string(n),
                   "application/octet-stream");
    ASSERT_TRUE(up && up->status == 200);
    sha.push_back(Json::parse(up->body)["sha256"]);
    Call("POST", "/v1/models/clf/versions", {{"artifacts", {{"fp32", sha.back()}}}}, 201);
  }
  Call("POST", "/v1/models/clf/versions/1/stage", {{"stage", "production"}}, 200);
  const std::string public_key = *ReadFile(data_ + "/update.pub");
  Json rollout = Call(
      "POST", "/v1/rollouts",
      {{"model", "clf"},
       {"version", 2},
       {"target", "group:line"},
       {"canary", "1"},
       {"waves", {"100%"}},
       {"criteria", {{"window_seconds", 1}, {"stage_timeout_seconds", 120}, {"min_labelled", 1}}}},
      201);
  const std::string id = rollout.value("id", "");
  ASSERT_FALSE(id.empty());

  // Simulated devices through HAProxy: poll their deployment, install what verifies, report
  // the commit and healthy telemetry; any request may meet the dead replica and is retried.
  RolloutDevices devices(
      devs, [&](const DeviceCredentials& d) { return Client(lb_->port(), &d); }, public_key, sha[1],
      sha[2], "clf:2", 100);
  // The leader dies once the canary has committed: the stage is half done.
  EXPECT_TRUE(WaitUntil([&] { return devices.committed() >= 1; }))
      << "the canary never got version 2";
  ASSERT_EQ(Leader(leader), 1) << "the leader changed before the kill";
  replicas_[leader]->Kill(SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitUntil([&] { return Leader(other) == 1; }, 30))
      << "replica-" << other + 1 << " never took the lease";
  const double takeover_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_EQ(LeaderGauge(other), 1);
  std::printf("takeover after kill -9 of the leader: %.2f s (background interval %d ms)\n",
              takeover_s, interval_ms_);
  RecordProperty("takeover_ms", static_cast<int>(takeover_s * 1000));

  EXPECT_TRUE(WaitUntil([&] {
    return Call("GET", "/v1/rollouts/" + id, {}, 200).value("status", "") == "completed";
  })) << Call("GET", "/v1/rollouts/" + id, {}, 200).dump();
  devices.Stop();
  StopWatching();
  EXPECT_EQ(devices.strays(), 0) << "a device was given something other than version 1 or 2";
  EXPECT_EQ(devices.committed(), 3);
  EXPECT_EQ(Call("GET", "/v1/models/clf/versions/2", {}, 200).value("stage", ""), "production");
  EXPECT_EQ(both_leaders_, 0) << "both replicas held the lease at once";
  // The dead leader comes back as a follower: the lease stays where it is.
  StartReplica(leader);
  ASSERT_TRUE(replicas_[leader]->WaitReady());
  usleep(3 * interval_ms_ * 1000);
  EXPECT_EQ(Leader(leader), 0);
  EXPECT_EQ(Leader(other), 1);
}

// One TLS handshake to 127.0.0.1:port offering `session` for resumption (nullptr: none).
// Returns the new session (caller frees) and whether the offered one was resumed; nullptr
// when the handshake failed.
SSL_SESSION* Handshake(int port, SSL_SESSION* session, bool* resumed) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return nullptr;
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  if (session) SSL_set_session(ssl.get(), session);
  SSL_SESSION* out = nullptr;
  if (SSL_connect(ssl.get()) == 1) {
    // TLS 1.3 sends its tickets after the handshake: one request and its answer bring them.
    const std::string req =
        "GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    SSL_write(ssl.get(), req.data(), static_cast<int>(req.size()));
    char buf[4096];
    while (SSL_read(ssl.get(), buf, sizeof(buf)) > 0) {
    }
    *resumed = SSL_session_reused(ssl.get()) == 1;
    SSL_shutdown(ssl.get());  // a session of a connection not shut down is not resumable
    out = SSL_get1_session(ssl.get());
  }
  close(fd);
  return out;
}

// HAProxy's TLS health checks (check-ssl) resume the session of the previous check: a server
// that cannot resume fails every other check and is marked down while healthy.
TEST(TlsSessions, TheServerResumesASessionItIssued) {
  TempDir dir;
  const int port = FreeLoopbackPort();
  ServerProcess server(dir.path() + "/data", port);
  ASSERT_TRUE(server.WaitReady());
  bool resumed = false;
  SSL_SESSION* first = Handshake(port, nullptr, &resumed);
  ASSERT_NE(first, nullptr) << "the first handshake failed";
  EXPECT_FALSE(resumed);
  SSL_SESSION* second = Handshake(port, first, &resumed);
  EXPECT_NE(second, nullptr) << "the server refused to resume the session it issued";
  EXPECT_TRUE(resumed);
  SSL_SESSION_free(first);
  if (second) SSL_SESSION_free(second);
}

// SQLite: a second server on a data folder in use is refused, by name, with a non-zero exit.
TEST(SqliteFolder, ASecondServerOnTheSameDataFolderIsRefused) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  ServerProcess first(data, FreeLoopbackPort());
  ASSERT_TRUE(first.WaitReady());
  Outcome second = RunCommand(CliBinary() + " server --data " + data + " --port " +
                              std::to_string(FreeLoopbackPort()) + " 2>&1");
  EXPECT_NE(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("another edgeloop server is running on the data folder"),
            std::string::npos)
      << second.output;
  EXPECT_TRUE(first.WaitReady()) << "the first server stopped serving";
  first.Kill(SIGKILL);
  // After it is gone the folder is free again.
  ServerProcess third(data, FreeLoopbackPort());
  EXPECT_TRUE(third.WaitReady());
}

}  // namespace
}  // namespace edgeloop::testing
