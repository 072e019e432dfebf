// The operator CLI (fleet, tokens, artifacts, deploy, models, datasets snapshot*) as a client of
// a real `edgeloop server` process: the whole flow, tables and --json, refusals by scope,
// unknown names, and an unreachable server, each with its exit code and a one-line error.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <thread>

#include <openssl/ssl.h>

#include "common/test_documents.hpp"
#include "data/dataset.hpp"
#include "run_command.hpp"
#include "server_process.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

class CliServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.path() + "/data";
    port_ = FreeLoopbackPort();
    server_ = std::make_unique<ServerProcess>(data_, port_);
    ASSERT_TRUE(server_->WaitReady());
  }

  Outcome Cli(const std::string& args) {
    std::string cmd = "'" + CliBinary() + "' " + args +
                      " --server https://127.0.0.1:" + std::to_string(port_) + " --data '" + data_ +
                      "' 2>&1";
    return RunCommand(cmd);
  }
  Json CliJson(const std::string& args) {
    auto o = Cli(args + " --json");
    EXPECT_EQ(o.exit_code, 0) << args << ": " << o.output;
    return Json::parse(o.output, nullptr, false);
  }

  // Enrolls a device with a token made by the CLI and uploads labelled 28x28 samples.
  void EnrollAndIngest(const std::string& device, const std::string& group, int count) {
    auto token = Cli("fleet enroll-token --device " + device + " --group " + group);
    ASSERT_EQ(token.exit_code, 0) << token.output;
    token.output.pop_back();  // newline
    auto key = crypto::GenerateTlsKeyPem();
    auto csr = crypto::CreateCsr(*key, device);
    httplib::SSLClient c("127.0.0.1", port_);
    c.set_ca_cert_path(data_ + "/ca.crt");
    auto res = c.Post("/v1/enroll", Json{{"token", token.output}, {"csr", *csr}}.dump(),
                      "application/json");
    ASSERT_TRUE(res && res->status == 200) << (res ? res->body : "no answer");
    std::string cert = dir_.path() + "/" + device + ".crt",
                keyf = dir_.path() + "/" + device + ".key";
    ASSERT_TRUE(
        WriteFileAtomic(cert, Json::parse(res->body)["certificate"].get<std::string>()).ok());
    ASSERT_TRUE(WriteFileAtomic(keyf, *key, 0600).ok());
    httplib::SSLClient dev("127.0.0.1", port_, cert, keyf);
    dev.set_ca_cert_path(data_ + "/ca.crt");
    auto batch = MakeBatch(device, 0, count, 784);
    for (int i = 0; i < count; ++i) {
      batch.mutable_samples(i)->set_has_label(true);
      batch.mutable_samples(i)->set_label(i % 2);
    }
    auto up = PostBatch(dev, batch);
    ASSERT_TRUE(up && up->status == 200);
  }

  TempDir dir_;
  std::string data_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(CliServerTest, OperatorFlowFromEnrollmentToDeployment) {
  EnrollAndIngest("cam-1", "line-a", 10);
  auto devices = CliJson("fleet devices")["devices"];
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0]["group"], "line-a");
  auto table = Cli("fleet devices").output;
  EXPECT_EQ(table.rfind("DEVICE  GROUP   STATE   ENROLLED_MS    CERT_EXPIRES\ncam-1   line-a  "
                        "active  ",
                        0),
            0u)
      << table;
  EXPECT_NE(table.find(" days\n"), std::string::npos) << table;  // the certificate's expiry

  Json snap = CliJson("datasets snapshot --labelled-only --train 0.6 --test 0.4 --seed 3");
  const std::string id = snap["id"];
  EXPECT_EQ(snap["splits"]["train"], 6);
  EXPECT_NE(Cli("datasets snapshots").output.find(id), std::string::npos);
  auto shown = Cli("datasets show-snapshot " + id);
  EXPECT_EQ(shown.exit_code, 0);
  EXPECT_NE(shown.output.find("cam-1"), std::string::npos) << shown.output;
  auto exported = Cli("datasets export-snapshot " + id + " --format csv --split test --out " +
                      dir_.path() + "/test.csv");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  auto csv = data::LoadCsv(dir_.path() + "/test.csv");
  ASSERT_TRUE(csv.ok()) << csv.error().message;
  EXPECT_EQ(csv->size(), 4u);

  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/m.onnx", "not really onnx").ok());
  auto pushed = CliJson("artifacts push " + dir_.path() + "/m.onnx");
  const std::string sha = pushed["sha256"];
  auto reg = Cli("models register clf --artifact fp32=" + dir_.path() + "/m.onnx --snapshot " + id +
                 " --metrics '{\"accuracy\":0.9}' --code-version t1");
  ASSERT_EQ(reg.exit_code, 0) << reg.output;
  EXPECT_NE(reg.output.find("registered clf version 1"), std::string::npos) << reg.output;
  Json v2 = CliJson("models register clf --artifact fp32=" + sha + " --parent clf:1");
  EXPECT_EQ(v2["version"], 2);
  EXPECT_EQ(Cli("models promote clf 1").exit_code, 0);
  auto promoted = Cli("models promote clf 2");
  EXPECT_NE(promoted.output.find("clf version 2 is now production"), std::string::npos)
      << promoted.output;
  Json versions = CliJson("models show clf")["versions"];
  EXPECT_EQ(versions[0]["stage"], "archived");
  EXPECT_EQ(CliJson("models list")["models"][0]["production_version"], 2);
  auto card = Cli("models card clf 1");
  EXPECT_NE(card.output.find("# Model card: clf version 1"), std::string::npos) << card.output;
  EXPECT_NE(card.output.find("| accuracy | 0.9 |"), std::string::npos) << card.output;
  EXPECT_EQ(CliJson("models card clf production")["version"], 2);

  Json deployed = CliJson("deploy group:line-a --sha256 " + sha + " --model-version clf:2");
  EXPECT_EQ(deployed["signed"]["version"], 1);
}

TEST_F(CliServerTest, ReadTokenIsRefusedWithItsOwnExitCode) {
  auto token = Cli("tokens create --scope read");
  ASSERT_EQ(token.exit_code, 0) << token.output;
  token.output.pop_back();
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/m.onnx", "model").ok());
  auto o =
      Cli("models register clf --artifact fp32=" + dir_.path() + "/m.onnx --token " + token.output);
  EXPECT_EQ(o.exit_code, 6) << o.output;
  EXPECT_NE(o.output.find("'write' scope"), std::string::npos) << o.output;
  EXPECT_EQ(std::count(o.output.begin(), o.output.end(), '\n'), 1) << o.output;
  EXPECT_EQ(Cli("models list --token " + token.output).exit_code, 0);
}

TEST_F(CliServerTest, UnknownModelOrSnapshotIsABadInputErrorInOneLine) {
  auto o = Cli("models show nope");
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("edgeloop models show: error: no model nope"), std::string::npos)
      << o.output;
  EXPECT_EQ(std::count(o.output.begin(), o.output.end(), '\n'), 1) << o.output;
  o = Cli("datasets show-snapshot " + std::string(64, 'a'));
  EXPECT_EQ(o.exit_code, 3) << o.output;
  o = Cli("fleet revoke ghost");
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("ghost"), std::string::npos) << o.output;
}

TEST_F(CliServerTest, UnreachableServerExitsFiveNamingTheUrl) {
  int closed = FreeLoopbackPort();
  std::string url = "https://127.0.0.1:" + std::to_string(closed);
  std::string cmd =
      "'" + CliBinary() + "' models list --server " + url + " --data '" + data_ + "' 2>&1";
  Outcome o = RunCommand(cmd);
  EXPECT_EQ(o.exit_code, 5) << o.output;
  EXPECT_NE(o.output.find(url), std::string::npos) << o.output;
}

TEST_F(CliServerTest, EveryOperatorCommandHasHelp) {
  for (const char* c :
       {"fleet devices", "fleet enroll-token", "fleet revoke", "tokens create", "models list",
        "models show", "models register", "models promote", "models card", "artifacts push",
        "deploy", "datasets snapshot", "datasets snapshots", "datasets show-snapshot",
        "datasets export-snapshot"}) {
    auto o = Cli(std::string(c) + " --help");
    EXPECT_EQ(o.exit_code, 0) << c;
    EXPECT_NE(o.output.find("--server"), std::string::npos) << c << ": " << o.output;
  }
}

// A client that completes the TLS handshake, then sends one header byte every 200 ms: it
// holds a connection for as long as it likes, as a slow or hostile client does.
class TricklingClient {
 public:
  explicit TricklingClient(int port) {
    thread_ = std::thread([this, port] {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
      SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) == 1) {
        handshaken_ = true;
        const std::string req =
            "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(10000, 'a');
        for (char c : req) {
          if (stop_ || SSL_write(ssl, &c, 1) != 1) break;
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
      }
      SSL_free(ssl);
      SSL_CTX_free(ctx);
      close(fd);
    });
  }
  ~TricklingClient() {
    stop_ = true;
    thread_.join();
  }
  bool handshaken() const { return handshaken_; }

 private:
  std::atomic<bool> stop_{false}, handshaken_{false};
  std::thread thread_;
};

TEST(ServerLifecycle, SigtermWithASlowClientConnectedExitsZeroWithinTheDeadline) {
  TempDir dir;
  int port = FreeLoopbackPort();
  ServerProcess server(dir.path() + "/data", port, {"--shutdown-deadline", "1"});
  ASSERT_TRUE(server.WaitReady());
  TricklingClient slow(port);
  for (int i = 0; i < 100 && !slow.handshaken(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(slow.handshaken());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double elapsed = 0;
  // Without a deadline the server waits for the trickling request (minutes); with it, the
  // process ends once the deadline has passed. 30 s is a bound on a stalled shutdown, not a
  // timing target.
  EXPECT_EQ(server.Terminate(SIGTERM, 30, &elapsed), 0);
  EXPECT_LT(elapsed, 30);
}

TEST(ServerLifecycle, SigintOnAnIdleServerStopsCleanly) {
  TempDir dir;
  int port = FreeLoopbackPort();
  ServerProcess server(dir.path() + "/data", port);
  ASSERT_TRUE(server.WaitReady());
  double elapsed = 0;
  EXPECT_EQ(server.Terminate(SIGINT, 30, &elapsed), 0);
}

// server.yaml: the strict reader and the precedence flag > environment > file > default.
class ServerConfig : public ::testing::Test {
 protected:
  Outcome Server(const std::string& yaml, const std::string& args, const std::string& env = "") {
    EXPECT_TRUE(WriteFileAtomic(dir_.path() + "/server.yaml", yaml).ok());
    return RunCommand(env + " '" + CliBinary() + "' server --config '" + dir_.path() +
                      "/server.yaml' " + args + " 2>&1");
  }
  TempDir dir_;
};

TEST_F(ServerConfig, FileValuesApplyAndTheEnvironmentAndFlagsOverrideThem) {
  const std::string yaml =
      "server:\n  port: 9001\n  db: sqlite:/tmp/x.db\nconnections:\n  max_connections: 500\n"
      "  header_timeout_ms: 2500\nlog:\n  log_level: warn\n";
  Outcome file = Server(yaml, "--print-config");
  ASSERT_EQ(file.exit_code, 0) << file.output;
  EXPECT_NE(file.output.find("  port: 9001\n"), std::string::npos) << file.output;
  EXPECT_NE(file.output.find("  max_connections: 500\n"), std::string::npos);
  EXPECT_NE(file.output.find("  header_timeout_ms: 2500\n"), std::string::npos);
  EXPECT_NE(file.output.find("  log_level: \"warn\"\n"), std::string::npos);
  EXPECT_NE(file.output.find("  keepalive_max_requests: 1000\n"), std::string::npos)
      << "an unset key keeps its default";
  Outcome env = Server(yaml, "--print-config", "EDGELOOP_PORT=9002 EDGELOOP_MAX_CONNECTIONS=600");
  ASSERT_EQ(env.exit_code, 0) << env.output;
  EXPECT_NE(env.output.find("  port: 9002\n"), std::string::npos) << env.output;
  EXPECT_NE(env.output.find("  max_connections: 600\n"), std::string::npos);
  Outcome flag = Server(yaml, "--print-config --port 9003", "EDGELOOP_PORT=9002");
  ASSERT_EQ(flag.exit_code, 0) << flag.output;
  EXPECT_NE(flag.output.find("  port: 9003\n"), std::string::npos) << flag.output;
  EXPECT_NE(flag.output.find("  db: \"sqlite:/tmp/x.db\"\n"), std::string::npos);
  // What --print-config writes reads back as the same settings.
  Outcome again = Server(flag.output, "--print-config");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output, flag.output);
}

TEST_F(ServerConfig, MistakesAreRefusedWithTheFileAndLine) {
  struct Case {
    std::string yaml, message;
  };
  const std::vector<Case> cases = {
      {"server:\n  port: 1\nconnections:\n  max_conns: 5\n",
       "server.yaml:4: connections: unknown key \"max_conns\""},
      {"servre:\n  port: 1\n", "server.yaml:1: unknown section \"servre\""},
      {"server:\n  port: 70000\n", "server.yaml:2: server.port: 70000 is outside [0, 65535]"},
      {"server:\n  port: eighty\n", "server.yaml:2: server.port: cannot read \"eighty\""},
      {"log:\n  log_level: loud\n", "server.yaml:2: log.log_level: \"loud\" is not one of"},
      {"server: [1, 2]\n", "server: expected a mapping"},
      {"server:\n  port: [\n", "server.yaml:"},
      {AliasBombYaml(), "max_nodes"},
  };
  for (const auto& c : cases) {
    Outcome o = Server(c.yaml, "--print-config");
    EXPECT_EQ(o.exit_code, 2) << c.yaml << o.output;
    EXPECT_NE(o.output.find(c.message), std::string::npos) << c.yaml << "\n" << o.output;
  }
  Outcome missing = RunCommand("'" + CliBinary() + "' server --config /nonexistent.yaml 2>&1");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("/nonexistent.yaml"), std::string::npos) << missing.output;
}

TEST_F(ServerConfig, AServerRunsFromItsFile) {
  const int port = FreeLoopbackPort();
  const std::string yaml = "server:\n  port: " + std::to_string(port) + "\n  data: '" +
                           dir_.path() + "/data'\nconnections:\n  max_connections_per_ip: 50\n";
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/server.yaml", yaml).ok());
  ServerProcess server(dir_.path() + "/data", port, {"--config", dir_.path() + "/server.yaml"});
  ASSERT_TRUE(server.WaitReady());
  double elapsed = 0;
  EXPECT_EQ(server.Terminate(SIGTERM, 30, &elapsed), 0);
}

}  // namespace
}  // namespace edgeloop::testing
