// Long-lived fleets with real processes on loopback (`edgeloop server`, `edgeloop-agent`,
// the `edgeloop keys` commands), real TLS and real keys:
//   (a) certificate renewal before expiry, the replaced certificate kept for the grace period,
//       revocation at once for every serial, and renewal with a revoked certificate refused;
//   (b) a device offline through two rotations (root keys, then the targets key) catches up
//       N -> N+1 -> N+2 and installs what the new targets key signed; roots below threshold
//       or skipping a version refused;
//   (c) device clocks years ahead and years behind: fresh metadata installed, expired
//       metadata refused, judged by the server's signed time;
//   (d) bad renewal input (another device's id, weak keys) refused with a JSON 4xx, counted,
//       and the device's credentials kept.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>

#include "agent_test_util.hpp"
#include "common/crypto.hpp"
#include "common/process.hpp"
#include "common/root_metadata.hpp"
#include "edge/cloud_client.hpp"
#include "server_process.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

constexpr int64_t kThreeYears = 3 * 365 * 86400;

class Trust : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> extra = {}) {
    port_ = FreeLoopbackPort();
    server_ = std::make_unique<ServerProcess>(data_, port_, std::move(extra));
    ASSERT_TRUE(server_->WaitReady());
    ASSERT_TRUE(WriteFileAtomic(factory_, LinearModelOnnx(0)).ok());
    WriteCsvDataset(dir_.path() + "/data.csv", 200);
  }

  // agent.yaml for `device` (enrolling on its first start).
  std::string WriteConfig(const std::string& device, const std::string& extra = "") {
    std::string path = dir_.path() + "/" + device + ".yaml";
    Operator op(port_, data_);
    (void)WriteFileAtomic(
        path, AgentYaml(device, State(device), port_, op.EnrollmentToken(device), data_ + "/ca.crt",
                        factory_,
                        "source: {kind: replay, dataset: " + dir_.path() +
                            "/data.csv, rate_hz: 50, loop: true}\n",
                        "sampling: {policy: all}\nupload: {base_delay_ms: 20, max_delay_ms: 200}\n"
                        "telemetry: {interval_s: 0.3}\nupdate: {poll_s: 0.3, probation_samples: "
                        "5}\n" +
                            extra));
    return path;
  }

  ChildProcess StartAgent(const std::string& device, const std::string& config,
                          int64_t clock_offset_s = 0) {
    RunOptions o;
    o.log_path = Log(device);
    if (clock_offset_s != 0)
      o.env.push_back("EDGELOOP_AGENT_CLOCK_OFFSET_S=" + std::to_string(clock_offset_s));
    auto child = ChildProcess::Start({agent_bin_, "--config", config}, o);
    EXPECT_TRUE(child.ok());
    return child.ok() ? std::move(*child) : ChildProcess();
  }

  std::string State(const std::string& device) const { return dir_.path() + "/" + device; }
  std::string Log(const std::string& device) const { return dir_.path() + "/" + device + ".log"; }
  std::string LogText(const std::string& device) const {
    auto text = ReadFile(Log(device));
    return text.ok() ? *text : "(no log)";
  }

  // Runs `edgeloop <args>` against the server; returns the exit code, output in *out.
  int Cli(std::vector<std::string> args, std::string* out = nullptr) {
    std::vector<std::string> argv = {CliBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(),
                {"--server", "https://127.0.0.1:" + std::to_string(port_), "--data", data_});
    RunOptions o;
    o.log_path = dir_.path() + "/cli.log";
    (void)std::remove(o.log_path.c_str());
    auto r = RunProcess(argv, o);
    if (out) {
      auto text = ReadFile(o.log_path);
      *out = text.ok() ? *text : "";
    }
    return r.ok() ? r->exit_code : -1;
  }

  // The metric line's value (0 when absent).
  double Metric(const std::string& series) {
    return MetricValue(Operator(port_, data_).Metrics(), series);
  }

  // An HTTPS client presenting the certificate and key files given.
  std::unique_ptr<httplib::SSLClient> DeviceClient(const std::string& cert,
                                                   const std::string& key) {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port_, cert, key);
    c->set_ca_cert_path(data_ + "/ca.crt");
    c->enable_server_certificate_verification(true);
    return c;
  }
  int IngestStatus(const std::string& device, const std::string& cert, const std::string& key,
                   uint64_t seq) {
    auto res = PostBatch(*DeviceClient(cert, key), MakeBatch(device, seq, 1, 4));
    return res ? res->status : -1;
  }

  // Copies the device's current certificate and key to <prefix>.crt/.key.
  void CopyCredentials(const std::string& device, const std::string& prefix) {
    const std::string id = State(device) + "/identity";
    ASSERT_TRUE(WriteFileAtomic(prefix + ".crt", *ReadFile(id + "/device.crt")).ok());
    ASSERT_TRUE(WriteFileAtomic(prefix + ".key", *ReadFile(id + "/device.key"), 0600).ok());
  }

  TempDir dir_;
  std::string data_ = dir_.path() + "/server";
  std::string factory_ = dir_.path() + "/factory.onnx";
  int port_ = 0;
  std::unique_ptr<ServerProcess> server_;
  const std::string agent_bin_ = EDGELOOP_AGENT_BINARY;
};

TEST_F(Trust, RenewsBeforeExpiryKeepsTheOldCertificateForTheGraceAndRevocationEndsBoth) {
  // 20 s certificates renewed at half their lifetime: a renewal every ~10 s.
  StartServer({"--device-cert-lifetime-s", "20", "--cert-grace-s", "3600"});
  auto agent = StartAgent("ren-1", WriteConfig("ren-1",
                                               "certificate: {renew_at: 0.5, retry_s: "
                                               "0.5, retry_max_s: 2}\n"));
  const std::string log = Log("ren-1");
  ASSERT_TRUE(WaitFor([&] { return CountInFile(log, "certificate renewed") >= 1; }, 60))
      << LogText("ren-1");
  const std::string first = dir_.path() + "/first-renewed";
  CopyCredentials("ren-1", first);
  ASSERT_TRUE(WaitFor([&] { return CountInFile(log, "certificate renewed") >= 2; }, 60))
      << LogText("ren-1");
  // The certificate of the first renewal was replaced by the second: still accepted (grace).
  EXPECT_EQ(IngestStatus("ren-1", first + ".crt", first + ".key", 100000), 200);
  const std::string current = dir_.path() + "/current";
  CopyCredentials("ren-1", current);
  EXPECT_EQ(IngestStatus("ren-1", current + ".crt", current + ".key", 100001), 200);
  EXPECT_GE(Metric("edgeloop_trust_events_total{event=\"renewal\",result=\"ok\"}"), 2);
  // The fleet view shows the renewed certificate's expiry.
  Operator op(port_, data_);
  auto devices = op.Get("/v1/devices");
  ASSERT_TRUE(devices.contains("devices")) << devices.dump();
  auto info = crypto::ParseCertificate(*ReadFile(current + ".crt"));
  ASSERT_TRUE(info.ok());
  int64_t shown = devices["devices"][0].value("cert_not_after_ms", int64_t{0});
  EXPECT_GE(shown, info->not_after_unix * 1000) << devices.dump();
  std::string table;
  EXPECT_EQ(Cli({"fleet", "devices"}, &table), 0) << table;
  EXPECT_NE(table.find("CERT_EXPIRES"), std::string::npos) << table;
  EXPECT_NE(table.find("in 0 days"), std::string::npos) << table;
  // Samples kept flowing through the renewals.
  EXPECT_GT(op.SampleCount("ren-1"), 20u);

  // Revocation ends the current and the grace certificate at once, and renewal with either.
  ASSERT_FALSE(op.Post("/v1/devices/ren-1/revoke", "{}").contains("error"));
  EXPECT_EQ(IngestStatus("ren-1", first + ".crt", first + ".key", 100002), 403);
  EXPECT_EQ(IngestStatus("ren-1", current + ".crt", current + ".key", 100003), 403);
  auto csr = crypto::CreateCsr(*ReadFile(current + ".key"), "ren-1");
  auto renew = DeviceClient(current + ".crt", current + ".key")
                   ->Post("/v1/renew", Json{{"csr", *csr}}.dump(), "application/json");
  ASSERT_TRUE(renew);
  EXPECT_EQ(renew->status, 403);
  EXPECT_TRUE(Json::parse(renew->body, nullptr, false).contains("error")) << renew->body;
  EXPECT_GE(Metric("edgeloop_trust_events_total{event=\"renewal\",result=\"refused\"}"), 1);
  // The agent's own next attempt is refused too, reported, and it keeps running its model.
  ASSERT_TRUE(WaitFor([&] { return CountInFile(log, "certificate renewal failed") >= 1; }, 60))
      << LogText("ren-1");
  EXPECT_TRUE(agent.running());
}

TEST_F(Trust, FailedRenewalIsRetriedWithBackoffReportedAndThenSucceeds) {
  StartServer({"--device-cert-lifetime-s", "20"});
  auto agent = StartAgent("retry-1", WriteConfig("retry-1",
                                                 "certificate: {renew_at: 0.5, "
                                                 "retry_s: 2, retry_max_s: 8}\n"));
  const std::string log = Log("retry-1");
  ASSERT_TRUE(WaitFor([&] { return CountInFile(log, "signed server time received") >= 1; }, 60))
      << LogText("retry-1");
  // The server is away when the renewal falls due: attempts fail, each later than the last.
  server_->Kill(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return CountInFile(log, "certificate renewal failed") >= 2; }, 60))
      << LogText("retry-1");
  EXPECT_GE(CountInFile(log, "next attempt in 2.0 s"), 1u) << LogText("retry-1");
  EXPECT_GE(CountInFile(log, "next attempt in 4.0 s"), 1u) << LogText("retry-1");
  server_ = std::make_unique<ServerProcess>(data_, port_);
  ASSERT_TRUE(server_->WaitReady());
  // Telemetry tells the operator before the next attempt succeeds.
  Operator op(port_, data_);
  auto failures = [&] {
    auto fleet = op.Get("/v1/fleet");
    if (!fleet.contains("devices") || fleet["devices"].empty()) return int64_t{-1};
    const Json& d = fleet["devices"][0];
    return d.contains("credentials") ? d["credentials"].value("renewal_failures", int64_t{-1})
                                     : int64_t{-1};
  };
  ASSERT_TRUE(WaitFor([&] { return failures() >= 2; }, 30)) << op.Get("/v1/fleet").dump();
  ASSERT_TRUE(WaitFor([&] { return CountInFile(log, "certificate renewed") >= 1; }, 30))
      << LogText("retry-1");
  EXPECT_TRUE(WaitFor([&] { return failures() == 0; }, 30)) << op.Get("/v1/fleet").dump();
  EXPECT_TRUE(agent.running());
}

TEST_F(Trust, OfflineDeviceWalksTwoRotationsAndInstallsWhatTheNewTargetsKeySigned) {
  StartServer();
  Operator op(port_, data_);
  const std::string config = WriteConfig("rot-1");
  {
    auto agent = StartAgent("rot-1", config);
    ASSERT_TRUE(WaitFor([&] { return CountInFile(Log("rot-1"), "inferring with model") >= 1; }, 60))
        << LogText("rot-1");
    agent.Stop();
  }
  // Root 1 is the server's own key; the device pinned it at enrollment.
  auto pinned = ParseRootMetadata(*ReadFile(State("rot-1") + "/identity/root.json"));
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->version, 1u);

  // Rotation 1: offline root keys (3, threshold 2), signed by root 1's key and by them.
  const std::string root_keys = dir_.path() + "/root.keys";
  std::string out;
  ASSERT_EQ(Cli({"keys", "rotate-root", "--root-keys", data_ + "/update.key", "--new-root-keys",
                 root_keys, "--generate", "3", "--threshold", "2"},
                &out),
            0)
      << out;
  // Below threshold: one of the three root keys cannot publish root 3.
  auto three = SplitPrivateKeys(*ReadFile(root_keys));
  ASSERT_TRUE(three.ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/one.key", (*three)[0]).ok());
  EXPECT_NE(Cli({"keys", "rotate-targets", "--root-keys", dir_.path() + "/one.key"}, &out), 0);
  EXPECT_NE(out.find("threshold is 2"), std::string::npos) << out;
  // A root that skips a version is refused whatever its signatures.
  auto current = ParseRootMetadata(op.Get("/v1/root").dump());
  ASSERT_TRUE(current.ok());
  RootMetadata skip = *current;
  skip.version += 2;
  auto res = op.Client()->Post("/v1/root", op.Bearer(), *SignRootMetadata(skip, *three),
                               "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("skips a version"), std::string::npos) << res->body;
  EXPECT_GE(Metric("edgeloop_trust_events_total{event=\"root\",result=\"refused\"}"), 2);

  // Rotation 2: a new targets key, which the server makes and signs with from now on.
  const std::string old_pub = *ReadFile(data_ + "/update.pub");
  ASSERT_EQ(Cli({"keys", "rotate-targets", "--root-keys", root_keys}, &out), 0) << out;
  EXPECT_NE(*ReadFile(data_ + "/update.pub"), old_pub);
  EXPECT_EQ(op.Get("/v1/root")["signed"]["version"], 3);

  // A new model, signed by the new targets key only; the device comes back and catches up.
  const std::string model = dir_.path() + "/v1.onnx";
  ASSERT_TRUE(WriteFileAtomic(model, LinearModelOnnx(1)).ok());
  auto doc = op.Deploy("rot-1", *ReadFile(model), "clf:1", GoldenFor(model));
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  auto agent = StartAgent("rot-1", config);
  ASSERT_TRUE(WaitFor([&] { return CountInFile(Log("rot-1"), "model clf:1") >= 1; }, 60))
      << LogText("rot-1");
  EXPECT_GE(CountInFile(Log("rot-1"), "trusted root metadata now version 3 (2 rotation(s)"), 1u)
      << LogText("rot-1");
  auto walked = ParseRootMetadata(*ReadFile(State("rot-1") + "/identity/root.json"));
  ASSERT_TRUE(walked.ok());
  EXPECT_EQ(walked->version, 3u);
  EXPECT_EQ(walked->root.threshold, 2u);
}

TEST_F(Trust, ClocksYearsOffInstallFreshMetadataAndRefuseExpiredMetadata) {
  StartServer();
  Operator op(port_, data_);
  const std::string model = dir_.path() + "/v1.onnx";
  ASSERT_TRUE(WriteFileAtomic(model, LinearModelOnnx(1)).ok());
  // Expired before either device asks: a device trusting a clock 3 years behind would take it.
  ASSERT_FALSE(
      op.Deploy("behind-1", *ReadFile(model), "clf:1", GoldenFor(model), 1).contains("error"));
  // Fresh for an hour: a device trusting a clock 3 years ahead would call it expired.
  ASSERT_FALSE(
      op.Deploy("ahead-1", *ReadFile(model), "clf:1", GoldenFor(model), 3600).contains("error"));
  sleep(2);  // the 1 s metadata has expired by the server's clock
  auto behind = StartAgent("behind-1", WriteConfig("behind-1"), -kThreeYears);
  auto ahead = StartAgent("ahead-1", WriteConfig("ahead-1"), kThreeYears);
  ASSERT_TRUE(WaitFor([&] { return CountInFile(Log("ahead-1"), "model clf:1") >= 1; }, 60))
      << LogText("ahead-1");
  ASSERT_TRUE(WaitFor([&] { return CountInFile(Log("behind-1"), "expired") >= 1; }, 60))
      << LogText("behind-1");
  EXPECT_EQ(CountInFile(Log("behind-1"), "model clf:1"), 0u) << LogText("behind-1");
  for (const char* d : {"ahead-1", "behind-1"})
    EXPECT_GE(CountInFile(Log(d), "s off the server's signed time"), 1u) << LogText(d);
  EXPECT_TRUE(behind.running());
  EXPECT_TRUE(ahead.running());
}

TEST(TrustIdentity, ARenewalInterruptedBetweenItsRenamesIsFinishedAtTheNextStart) {
  TempDir dir;
  const std::string id = dir.path() + "/identity";
  ASSERT_TRUE(MakeDirs(id).ok());
  for (const char* f : {"ca.crt", "update.pub", "device.key", "device.crt"})
    ASSERT_TRUE(WriteFileAtomic(id + "/" + f, std::string("old ") + f).ok());
  ASSERT_TRUE(WriteFileAtomic(id + "/identity.json", R"({"device_id": "d-1", "group": ""})").ok());
  // The crash came after the key's rename and before the certificate's.
  ASSERT_TRUE(WriteFileAtomic(id + "/device.key", "new key").ok());
  ASSERT_TRUE(WriteFileAtomic(id + "/device.crt.new", "new cert").ok());
  auto loaded = edge::LoadIdentity(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(*ReadFile(id + "/device.crt"), "new cert");
  EXPECT_EQ(*ReadFile(id + "/device.key"), "new key");
  EXPECT_FALSE(ReadFile(id + "/device.crt.new").ok());
  // Before either rename: both new files move into place.
  ASSERT_TRUE(WriteFileAtomic(id + "/device.key.new", "newer key").ok());
  ASSERT_TRUE(WriteFileAtomic(id + "/device.crt.new", "newer cert").ok());
  ASSERT_TRUE(edge::LoadIdentity(dir.path()).ok());
  EXPECT_EQ(*ReadFile(id + "/device.key"), "newer key");
  EXPECT_EQ(*ReadFile(id + "/device.crt"), "newer cert");
}

// A PEM private key of the given OpenSSL algorithm ("RSA" with bits, or "EC" with a curve).
std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

TEST(TrustInput, RenewalRefusesAnotherDevicesIdWeakKeysAndKeepsTheDeviceWorking) {
  CloudFixture cloud;
  DeviceCredentials dev = cloud.Enroll("bad-1");
  auto renew = [&](const std::string& key_pem, const std::string& cn) {
    auto csr = crypto::CreateCsr(key_pem, cn);
    EXPECT_TRUE(csr.ok());
    return cloud.Client(&dev)->Post("/v1/renew", Json{{"csr", *csr}}.dump(), "application/json");
  };
  auto expect_refused = [](const httplib::Result& res, int status, const std::string& words) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << res->body;
    auto j = Json::parse(res->body, nullptr, false);
    ASSERT_TRUE(j.contains("error")) << res->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(words), std::string::npos) << res->body;
  };
  expect_refused(renew(*crypto::GenerateTlsKeyPem(), "other-device"), 403, "other-device");
  expect_refused(renew(KeyPem(EVP_RSA_gen(1024)), "bad-1"), 400, "RSA key of 1024 bits");
  expect_refused(renew(KeyPem(EVP_EC_gen("secp256k1")), "bad-1"), 400, "EC curve secp256k1");
  auto garbage =
      cloud.Client(&dev)->Post("/v1/renew", Json{{"csr", "not a csr"}}.dump(), "application/json");
  expect_refused(garbage, 400, "CSR refused");
  // Weak keys are refused at enrollment as well.
  auto token = cloud.EnrollmentToken("bad-2");
  auto csr = crypto::CreateCsr(KeyPem(EVP_RSA_gen(1024)), "bad-2");
  expect_refused(cloud.Client()->Post("/v1/enroll", Json{{"token", token}, {"csr", *csr}}.dump(),
                                      "application/json"),
                 400, "RSA key of 1024 bits");
  // The device's certificate is untouched: it still uploads.
  auto res = PostBatch(*cloud.Client(&dev), MakeBatch("bad-1", 1, 2, 4));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  auto metrics = cloud.Get("/v1/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(
      metrics->body.find("edgeloop_trust_events_total{event=\"renewal\",result=\"refused\"} 4"),
      std::string::npos)
      << metrics->body;
  // A good renewal then works, with RSA 2048 as well as P-256.
  auto ok = renew(KeyPem(EVP_RSA_gen(2048)), "bad-1");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  // Signed time: a nonce that is not hex is refused.
  auto time = cloud.Client()->Get("/v1/time?nonce=xyz");
  ASSERT_TRUE(time);
  EXPECT_EQ(time->status, 400);
}

}  // namespace
}  // namespace edgeloop::testing
