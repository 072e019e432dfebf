// The cloud server end to end over real HTTPS on loopback: enrollment, mutual TLS,
// revocation, operator scopes, idempotent ingest, late labels, limits and bad input; each on
// SQLite and on a real PostgreSQL.
#include <gtest/gtest.h>

#include <fstream>

#include "cloud/dashboard.hpp"
#include "cloud_test_util.hpp"
#include "common/crypto.hpp"
#include "common/delta.hpp"
#include "common/hash.hpp"
#include "common/test_bytes.hpp"
#include "common/test_documents.hpp"
#include "common/update_metadata.hpp"
#include "database_param.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

void ExpectJsonError(const httplib::Result& res, int status) {
  ASSERT_TRUE(res) << "no response";
  EXPECT_EQ(res->status, status) << res->body;
  Json body = Json::parse(res->body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << res->body;
  EXPECT_TRUE(body.contains("error")) << res->body;
}

// Every test runs on SQLite and on a real PostgreSQL (tests/database_param.hpp).
class CloudServer : public ::testing::TestWithParam<std::string> {
 protected:
  cloud::ServerOptions Options() {
    cloud::ServerOptions o;
    if (GetParam() == "postgresql") o.db_url = FreshPostgresUrl();
    return o;
  }
};

uint64_t Total(CloudFixture& f, const std::string& by = "device") {
  auto res = f.Client()->Get("/v1/samples/counts?by=" + by, f.Bearer(f.server().admin_token()));
  return Json::parse(res->body)["total"].get<uint64_t>();
}

TEST_P(CloudServer, FirstStartCreatesPrivateKeysWithMode0600) {
  CloudFixture f(Options());
  for (const char* name : {"/data/ca.key", "/data/update.key", "/data/admin.token"}) {
    struct stat st {};
    ASSERT_EQ(stat((f.dir() + name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
  }
}

TEST_P(CloudServer, SuppliedCaAndSigningKeyAreUsedAndAMismatchedPairIsRefused) {
  CloudFixture a(Options());
  cloud::ServerOptions o = Options();
  o.ca_cert_file = a.dir() + "/data/ca.crt";
  o.ca_key_file = a.dir() + "/data/ca.key";
  o.signing_key_file = a.dir() + "/data/update.key";
  CloudFixture b(o);
  EXPECT_EQ(b.server().ca_cert_pem(), a.server().ca_cert_pem());
  EXPECT_EQ(b.server().signing_public_key_pem(), a.server().signing_public_key_pem());
  auto dev = b.Enroll("cam-1");
  auto cert = ReadFile(dev.cert_file);
  ASSERT_TRUE(cert.ok());
  EXPECT_TRUE(crypto::VerifyIssuedBy(*cert, a.server().ca_cert_pem()).ok());
  ASSERT_EQ(PostBatch(*b.Client(&dev), MakeBatch("cam-1", 0, 2))->status, 200);

  // Another server's CA key with a's certificate; a garbage signing key; half a CA.
  CloudFixture other(Options());
  TempDir scratch;
  ASSERT_TRUE(WriteFileAtomic(scratch.path() + "/garbage.pem", "not a key").ok());
  struct Case {
    std::string cert, key, signing, names;
  } cases[] = {
      {o.ca_cert_file, other.dir() + "/data/ca.key", "", "does not belong"},
      {"", "", scratch.path() + "/garbage.pem", "garbage.pem"},
      {o.ca_cert_file, "", "", "both its certificate and key"},
  };
  for (const auto& c : cases) {
    cloud::ServerOptions bad = Options();
    bad.data_dir = scratch.path() + "/data";
    bad.port = 0;
    bad.ca_cert_file = c.cert;
    bad.ca_key_file = c.key;
    bad.signing_key_file = c.signing;
    auto server = cloud::Server::Create(bad);
    ASSERT_FALSE(server.ok()) << c.names;
    EXPECT_NE(server.error().message.find(c.names), std::string::npos) << server.error().message;
    // A key that is not the certificate's is bad input (exit 3), not a usage error.
    if (c.names == std::string("does not belong")) {
      EXPECT_EQ(server.error().code, Errc::kMismatch);
    }
  }
}

TEST_P(CloudServer, EnrolledDeviceIngestsAndRetriesNeverDuplicate) {
  CloudFixture f(Options());
  auto dev = f.Enroll("cam-1");
  auto client = f.Client(&dev);
  auto res = PostBatch(*client, MakeBatch("cam-1", 0, 10));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Json::parse(res->body)["accepted"], 10);
  // A retry of an overlapping batch stores only the new samples.
  res = PostBatch(*client, MakeBatch("cam-1", 5, 10));
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Json::parse(res->body)["accepted"], 5);
  EXPECT_EQ(Json::parse(res->body)["duplicates"], 5);
  EXPECT_EQ(Total(f), 15u);
}

// Newer agents send image samples as 8-bit pixels; older ones floats. Both are stored;
// a tensor carrying both forms, or pixels that do not fit its shape, is refused.
TEST_P(CloudServer, IngestsPixelAndFloatTensorsAndRefusesATensorWithBoth) {
  CloudFixture f(Options());
  auto dev = f.Enroll("cam-1");
  auto client = f.Client(&dev);
  auto batch = MakeBatch("cam-1", 0, 2);
  auto* t = batch.mutable_samples(1)->mutable_tensor();
  t->clear_values();
  t->set_pixels(std::string(16, '\x7f'));
  auto res = PostBatch(*client, batch);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Json::parse(res->body)["accepted"], 2);
  auto both = MakeBatch("cam-1", 2, 1);
  both.mutable_samples(0)->mutable_tensor()->set_pixels(std::string(16, '\x01'));
  ExpectJsonError(PostBatch(*client, both), 400);
  auto short_pixels = MakeBatch("cam-1", 3, 1);
  short_pixels.mutable_samples(0)->mutable_tensor()->clear_values();
  short_pixels.mutable_samples(0)->mutable_tensor()->set_pixels(std::string(15, '\x01'));
  ExpectJsonError(PostBatch(*client, short_pixels), 400);
  EXPECT_EQ(Total(f), 2u);
}

TEST_P(CloudServer, RefusesDeviceCallsWithoutClientCertificate) {
  CloudFixture f(Options());
  ExpectJsonError(PostBatch(*f.Client(), MakeBatch("cam-1", 0, 1)), 401);
}

TEST_P(CloudServer, CertificateFromAnotherCaIsRefusedAtHandshake) {
  CloudFixture f(Options());
  auto other = crypto::CreateCertificateAuthority("rogue", 10);
  auto key = crypto::GenerateTlsKeyPem();
  auto cert = crypto::SignClientCsr(*other, *crypto::CreateCsr(*key, "cam-1"), "cam-1", 7, 10);
  DeviceCredentials rogue{"cam-1", f.dir() + "/rogue.crt", f.dir() + "/rogue.key"};
  ASSERT_TRUE(WriteFileAtomic(rogue.cert_file, *cert).ok());
  ASSERT_TRUE(WriteFileAtomic(rogue.key_file, *key).ok());
  auto res = PostBatch(*f.Client(&rogue), MakeBatch("cam-1", 0, 1));
  EXPECT_TRUE(!res || res->status == 401 || res->status == 403);
  EXPECT_EQ(Total(f), 0u);
}

TEST_P(CloudServer, RevocationTakesEffectOnTheNextRequest) {
  CloudFixture f(Options());
  auto dev = f.Enroll("cam-1");
  auto client = f.Client(&dev);
  ASSERT_EQ(PostBatch(*client, MakeBatch("cam-1", 0, 1))->status, 200);
  auto rev = f.Client()->Post("/v1/devices/cam-1/revoke", f.Bearer(f.server().admin_token()), "",
                              "application/json");
  ASSERT_EQ(rev->status, 200) << rev->body;
  ExpectJsonError(PostBatch(*client, MakeBatch("cam-1", 1, 1)), 403);
  EXPECT_EQ(Total(f), 1u);
}

TEST_P(CloudServer, DeviceCannotWriteSamplesAsAnotherDevice) {
  CloudFixture f(Options());
  auto a = f.Enroll("cam-a");
  f.Enroll("cam-b");
  ExpectJsonError(PostBatch(*f.Client(&a), MakeBatch("cam-b", 0, 3)), 403);
  EXPECT_EQ(Total(f), 0u);
}

TEST_P(CloudServer, EnrollmentTokenIsSingleUseAndBoundToItsDevice) {
  CloudFixture f(Options());
  std::string token = f.EnrollmentToken("cam-1");
  auto key = crypto::GenerateTlsKeyPem();
  auto csr = *crypto::CreateCsr(*key, "x");
  auto wrong = f.Client()->Post("/v1/enroll",
                                Json{{"token", token}, {"csr", csr}, {"device_id", "cam-2"}}.dump(),
                                "application/json");
  ExpectJsonError(wrong, 403);
  auto first = f.Client()->Post("/v1/enroll", Json{{"token", token}, {"csr", csr}}.dump(),
                                "application/json");
  ASSERT_EQ(first->status, 200) << first->body;
  auto info = crypto::ParseCertificate(Json::parse(first->body)["certificate"].get<std::string>());
  EXPECT_EQ(info->common_name, "cam-1");
  ExpectJsonError(f.Client()->Post("/v1/enroll", Json{{"token", token}, {"csr", csr}}.dump(),
                                   "application/json"),
                  403);
}

// The dashboard's files at /ui/ need no token (the pages ask for one) and every answer carries
// the strict Content-Security-Policy; a build without the npm packages says how to get them.
TEST_P(CloudServer, DashboardIsServedAtUiWithAStrictContentSecurityPolicy) {
  CloudFixture f(Options());
  auto c = f.Client();
  auto index = c->Get("/ui/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->get_header_value("Content-Security-Policy"), std::string(cloud::kDashboardCsp));
  EXPECT_EQ(index->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(index->get_header_value("X-Frame-Options"), "DENY");
  EXPECT_EQ(std::string(cloud::kDashboardCsp).find("unsafe"), std::string::npos);
  auto redirect = c->Get("/ui");
  ASSERT_TRUE(redirect);
  EXPECT_EQ(redirect->status, 308);
  EXPECT_EQ(redirect->get_header_value("Location"), "/ui/");
  if (cloud::DashboardAssets().empty()) {
    EXPECT_EQ(index->status, 503);
    EXPECT_NE(index->body.find("scripts/web-install"), std::string::npos) << index->body;
    GTEST_SKIP() << "built without the dashboard (web/node_modules absent)";
  }
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->get_header_value("Content-Type"), "text/html; charset=utf-8");
  // The page loads its one script and one stylesheet from this origin, nothing inline.
  EXPECT_NE(index->body.find(R"(<script type="module" src="app.js"></script>)"), std::string::npos);
  EXPECT_EQ(index->body.find("<script>"), std::string::npos);
  EXPECT_EQ(index->body.find("style="), std::string::npos);
  EXPECT_EQ(index->body.find("<style"), std::string::npos);
  auto js = c->Get("/ui/app.js");
  ASSERT_TRUE(js && js->status == 200);
  EXPECT_EQ(js->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js->get_header_value("Content-Security-Policy"), std::string(cloud::kDashboardCsp));
  // No markup is built from strings: the bundle has no innerHTML, outerHTML or eval.
  for (const char* forbidden : {"innerHTML", "outerHTML", "insertAdjacentHTML", "eval("})
    EXPECT_EQ(js->body.find(forbidden), std::string::npos) << forbidden;
  auto css = c->Get("/ui/app.css");
  ASSERT_TRUE(css && css->status == 200);
  EXPECT_EQ(css->get_header_value("Content-Type"), "text/css; charset=utf-8");
  EXPECT_NE(css->body.find(".uplot"), std::string::npos);  // uPlot's stylesheet is bundled
  auto missing = c->Get("/ui/nothing.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(c->Get("/ui/../v1/health")->status, 404);
}

TEST_P(CloudServer, OperatorTokenWithoutScopeIsRefused) {
  CloudFixture f(Options());
  auto res = f.Client()->Post("/v1/tokens", f.Bearer(f.server().admin_token()),
                              Json{{"scope", "read"}}.dump(), "application/json");
  ASSERT_EQ(res->status, 200) << res->body;
  std::string reader = Json::parse(res->body)["token"];
  EXPECT_EQ(f.Client()->Get("/v1/devices", f.Bearer(reader))->status, 200);
  ExpectJsonError(f.Client()->Post("/v1/enrollment-tokens", f.Bearer(reader),
                                   Json{{"device_id", "x"}}.dump(), "application/json"),
                  403);
  ExpectJsonError(f.Client()->Get("/v1/devices", f.Bearer("not-a-token")), 401);
  ExpectJsonError(f.Client()->Get("/v1/devices"), 401);
  // A group or device id that could not appear in a route or topic is refused up front.
  const std::string admin = f.server().admin_token();
  for (Json bad : {Json{{"device_id", "cam-1"}, {"group", "line 1"}},
                   Json{{"device_id", "cam-1"}, {"group", "<script>"}},
                   Json{{"device_id", "cam-1"}, {"group", std::string(65, 'g')}},
                   Json{{"device_id", "cam/1"}, {"group", "line"}}})
    ExpectJsonError(
        f.Client()->Post("/v1/enrollment-tokens", f.Bearer(admin), bad.dump(), "application/json"),
        400);
  auto good = f.Client()->Post("/v1/enrollment-tokens", f.Bearer(admin),
                               Json{{"device_id", "cam-1"}, {"group", "line_1.a-b"}}.dump(),
                               "application/json");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200) << good->body;
}

TEST_P(CloudServer, BadInputGets4xxJsonAndServerKeepsServing) {
  cloud::ServerOptions options = Options();
  options.max_body_bytes = 64 * 1024;
  options.max_batch_samples = 100;
  options.max_tensor_elements = 1000;
  CloudFixture f(options);
  auto dev = f.Enroll("cam-1");
  auto client = f.Client(&dev);
  // A method the path does not take, and a path that does not exist, say so.
  auto wrong = f.Client()->Delete("/v1/health");
  ExpectJsonError(wrong, 405);
  EXPECT_EQ(wrong->get_header_value("Allow"), "GET");
  EXPECT_NE(wrong->body.find("DELETE is not allowed on /v1/health; it takes GET"),
            std::string::npos)
      << wrong->body;
  auto missing = f.Client()->Get("/v1/nothing");
  ExpectJsonError(missing, 404);
  EXPECT_NE(missing->body.find("no route for GET /v1/nothing"), std::string::npos);
  // Not zstd; zstd of garbage protobuf; absurd tensor shape; shape/value mismatch.
  ExpectJsonError(client->Post("/v1/ingest", "garbage", "application/octet-stream"), 400);
  ExpectJsonError(client->Post("/v1/ingest", Zstd(std::string("\xff\xff\xff\xff\x0f", 5)),
                               "application/octet-stream"),
                  400);
  auto absurd = MakeBatch("cam-1", 0, 1);
  absurd.mutable_samples(0)->mutable_tensor()->add_shape(1'000'000'000'000);
  ExpectJsonError(PostBatch(*client, absurd), 400);
  auto negative = MakeBatch("cam-1", 0, 1);
  negative.mutable_samples(0)->mutable_tensor()->set_shape(0, -16);
  ExpectJsonError(PostBatch(*client, negative), 400);
  auto mismatch = MakeBatch("cam-1", 0, 1);
  mismatch.mutable_samples(0)->mutable_tensor()->add_values(1.0f);
  ExpectJsonError(PostBatch(*client, mismatch), 400);
  // Too many samples, too large a body.
  ExpectJsonError(PostBatch(*client, MakeBatch("cam-1", 0, 101)), 413);
  ExpectJsonError(
      client->Post("/v1/ingest", std::string(100 * 1024, 'x'), "application/octet-stream"), 413);
  // Bad JSON on the operator API.
  ExpectJsonError(f.Client()->Post("/v1/tokens", f.Bearer(f.server().admin_token()), "{nope",
                                   "application/json"),
                  400);
  ExpectJsonError(f.Client()->Post("/v1/enroll", "[1,2", "application/json"), 400);
  // Still serving.
  EXPECT_EQ(PostBatch(*client, MakeBatch("cam-1", 0, 2))->status, 200);
  EXPECT_EQ(Total(f), 2u);
}

// Resident memory of this process (the server runs in it), from /proc.
int64_t ResidentKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

TEST_P(CloudServer, HostileDocumentsGet400NamingTheLimitWithBoundedMemory) {
  CloudFixture f(Options());
  const std::string bomb = "name: p\n" + AliasBombYaml();
  const int64_t before = ResidentKiB();
  auto res = f.Post("/v1/pipelines", bomb);
  ExpectJsonError(res, 400);
  EXPECT_NE(res->body.find("max_nodes"), std::string::npos) << res->body;
  // The same bomb wrapped in JSON, and JSON nested 10,000 deep.
  res = f.Post("/v1/pipelines", Json{{"yaml", bomb}}.dump());
  ExpectJsonError(res, 400);
  EXPECT_NE(res->body.find("max_nodes"), std::string::npos) << res->body;
  res = f.Post("/v1/tokens", std::string(10000, '[') + std::string(10000, ']'));
  ExpectJsonError(res, 400);
  EXPECT_NE(res->body.find("max_depth"), std::string::npos) << res->body;
  // The stated bound: refusing them costs less than 32 MiB of resident memory.
  EXPECT_LT(ResidentKiB() - before, 32 * 1024);
  // An empty body where a JSON object is expected says so.
  res = f.Post("/v1/tokens", "");
  ExpectJsonError(res, 400);
  EXPECT_NE(res->body.find("no body"), std::string::npos) << res->body;
  EXPECT_EQ(f.Get("/v1/health")->status, 200);
}

TEST_P(CloudServer, ReadinessAndPrometheusMetricsReflectWhatHappened) {
  CloudFixture f(Options());
  auto ready = f.Client()->Get("/v1/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto dev = f.Enroll("cam-1");
  ASSERT_EQ(PostBatch(*f.Client(&dev), MakeBatch("cam-1", 0, 7))->status, 200);
  ExpectJsonError(f.Post("/v1/tokens", "{nope"), 400);
  ExpectJsonError(f.Get("/v1/models/no-such-model"), 404);
  ExpectJsonError(f.Get("/v1/invented/path-1"), 404);
  ExpectJsonError(f.Get("/v1/invented/path-2"), 404);
  // Metrics need a token with the read scope.
  EXPECT_EQ(f.Client()->Get("/v1/metrics")->status, 401);
  auto m = f.Get("/v1/metrics");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200) << m->body;
  const std::string& text = m->body;
  EXPECT_NE(text.find("# TYPE edgeloop_http_requests_total counter"), std::string::npos);
  EXPECT_NE(text.find("edgeloop_http_requests_total{method=\"POST\",route=\"/v1/ingest\","
                      "status=\"200\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("route=\"/v1/tokens\",status=\"400\"} 1"), std::string::npos) << text;
  // Routes are labelled by their pattern; paths that match no route share one label.
  EXPECT_NE(text.find("route=\"/v1/models/:id\",status=\"404\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("route=\"unmatched\",status=\"404\"} 2"), std::string::npos) << text;
  EXPECT_EQ(text.find("invented"), std::string::npos) << text;
  EXPECT_NE(text.find("edgeloop_ingest_samples_total 7"), std::string::npos) << text;
  EXPECT_NE(text.find("edgeloop_devices{status=\"enrolled\"} 1"), std::string::npos) << text;
  EXPECT_NE(
      text.find(
          "edgeloop_http_request_duration_seconds_bucket{route=\"/v1/ingest\",le=\"+Inf\"} 1"),
      std::string::npos)
      << text;
  // The listener's own figures: at least this scrape's connection is open.
  EXPECT_NE(text.find("# TYPE edgeloop_http_connections gauge"), std::string::npos) << text;
  EXPECT_EQ(text.find("edgeloop_http_connections 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("edgeloop_http_in_flight 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("edgeloop_http_connections_refused_total 0\n"), std::string::npos) << text;
}

TEST_P(CloudServer, BatchRateLimitAnswers429) {
  cloud::ServerOptions options = Options();
  options.device_batches_per_second = 0.001;
  options.device_burst = 2;
  CloudFixture f(options);
  auto dev = f.Enroll("cam-1");
  auto client = f.Client(&dev);
  EXPECT_EQ(PostBatch(*client, MakeBatch("cam-1", 0, 1))->status, 200);
  EXPECT_EQ(PostBatch(*client, MakeBatch("cam-1", 1, 1))->status, 200);
  ExpectJsonError(PostBatch(*client, MakeBatch("cam-1", 2, 1)), 429);
}

TEST_P(CloudServer, LateLabelsUpdateEarlierSamples) {
  CloudFixture f(Options());
  auto dev = f.Enroll("cam-1");
  auto client = f.Client(&dev);
  ASSERT_EQ(PostBatch(*client, MakeBatch("cam-1", 0, 4))->status, 200);
  wire::LabelBatch labels;
  auto* l = labels.add_labels();
  l->set_sequence(2);
  l->set_label(7);
  l->set_label_source(wire::LABEL_SOURCE_HUMAN);
  auto res = client->Post("/v1/labels", labels.SerializeAsString(), "application/x-protobuf");
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Json::parse(res->body)["updated"], 1);
  auto counts = f.Client()->Get("/v1/samples/counts?by=label", f.Bearer(f.server().admin_token()));
  Json c = Json::parse(counts->body)["counts"];
  EXPECT_EQ(c["7"], 1);
  EXPECT_EQ(c["-1"], 3);
}

TEST_P(CloudServer, ArtifactsAreContentAddressedAndServedWithRange) {
  CloudFixture f(Options());
  std::string blob;
  for (int i = 0; i < 1000; ++i) blob.push_back(static_cast<char>(i * 7));
  auto up = f.Client()->Post("/v1/artifacts", f.Bearer(f.server().admin_token()), blob,
                             "application/octet-stream");
  ASSERT_EQ(up->status, 200) << up->body;
  std::string sha = Json::parse(up->body)["sha256"];
  EXPECT_EQ(sha, Sha256Hex(blob));
  auto dev = f.Enroll("cam-1");
  auto part = f.Client(&dev)->Get("/v1/artifacts/" + sha, {{"Range", "bytes=100-199"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, blob.substr(100, 100));
  ExpectJsonError(f.Client()->Get("/v1/artifacts/" + sha), 401);
  ExpectJsonError(f.Client(&dev)->Get("/v1/artifacts/" + std::string(64, 'a')), 404);
}

// A model-like pair: a large shared part and a small rewritten tail, as after a head-only
// fine-tune.
TEST_P(CloudServer, ArtifactGetServesADeltaFromTheInstalledVersionWhenSmaller) {
  CloudFixture f(Options());
  auto admin = f.Bearer(f.server().admin_token());
  std::string base = PseudoRandomBytes(200'000, 1);
  std::string target = base.substr(0, 190'000) + PseudoRandomBytes(10'000, 2);
  std::string unrelated = PseudoRandomBytes(50'000, 3);
  for (const std::string* blob : {&base, &target, &unrelated})
    ASSERT_EQ(f.Client()->Post("/v1/artifacts", admin, *blob, "application/octet-stream")->status,
              200);
  std::string from = Sha256Hex(base), to = Sha256Hex(target);
  auto dev = f.Enroll("cam-1");
  for (int round = 0; round < 2; ++round) {  // computed, then from the cache
    auto res = f.Client(&dev)->Get("/v1/artifacts/" + to + "?delta_from=" + from);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("X-Edgeloop-Delta-From"), from);
    EXPECT_EQ(res->get_header_value("X-Edgeloop-Target-Sha256"), to);
    EXPECT_EQ(res->get_header_value("X-Edgeloop-Target-Length"), std::to_string(target.size()));
    EXPECT_LT(res->body.size(), 20'000u);
    auto patched = ApplyDelta(base, res->body, target.size());
    ASSERT_TRUE(patched.ok()) << patched.error().message;
    EXPECT_EQ(Sha256Hex(*patched), to);
  }
  EXPECT_TRUE(std::filesystem::exists(f.dir() + "/data/artifacts/deltas/" + from + "-" + to));

  // No delta when it would not be smaller, the base is unknown, or it is the target itself.
  for (const std::string& other : {Sha256Hex(unrelated), std::string(64, 'b'), to}) {
    auto full = f.Client(&dev)->Get("/v1/artifacts/" + to + "?delta_from=" + other);
    ASSERT_EQ(full->status, 200) << full->body;
    EXPECT_FALSE(full->has_header("X-Edgeloop-Delta-From")) << other;
    EXPECT_EQ(full->body, target);
  }
  auto small = f.Client(&dev)->Get("/v1/artifacts/" + Sha256Hex(unrelated) + "?delta_from=" + from);
  EXPECT_FALSE(small->has_header("X-Edgeloop-Delta-From"));
  EXPECT_EQ(small->body, unrelated);
  ExpectJsonError(f.Client(&dev)->Get("/v1/artifacts/" + to + "?delta_from=../../etc"), 400);
}

TEST_P(CloudServer, DeploymentMetadataIsSignedVersionedAndPrivateToItsDevice) {
  CloudFixture f(Options());
  auto admin = f.Bearer(f.server().admin_token());
  auto up =
      f.Client()->Post("/v1/artifacts", admin, std::string(300, 'm'), "application/octet-stream");
  std::string sha = Json::parse(up->body)["sha256"];
  Json deploy = {{"name", "classifier.onnx"}, {"model_version", "2"}, {"sha256", sha}};
  ASSERT_EQ(
      f.Client()->Post("/v1/deployments/cam-a", admin, deploy.dump(), "application/json")->status,
      200);
  ASSERT_EQ(
      f.Client()->Post("/v1/deployments/cam-a", admin, deploy.dump(), "application/json")->status,
      200);
  auto a = f.Enroll("cam-a");
  auto b = f.Enroll("cam-b");
  auto mine = f.Client(&a)->Get("/v1/deployments/cam-a");
  ASSERT_EQ(mine->status, 200) << mine->body;
  auto m = VerifyUpdateMetadata(mine->body, f.server().signing_public_key_pem(), 0, 2);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->version, 2u);
  EXPECT_EQ(m->target.length, 300u);
  EXPECT_EQ(m->target.sha256, sha);
  ExpectJsonError(f.Client(&b)->Get("/v1/deployments/cam-a"), 403);
}

EDGELOOP_BOTH_DATABASES(CloudServer);

}  // namespace
}  // namespace edgeloop::testing
