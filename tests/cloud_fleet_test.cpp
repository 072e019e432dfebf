// The fleet endpoints (src/cloud/api_fleet.cpp) on SQLite and on a real PostgreSQL:
// telemetry and update events from enrolled devices over mTLS, the fleet view per device and
// per model, the event log; bad input and missing credentials refused.
#include <gtest/gtest.h>

#include "cloud/database.hpp"
#include "cloud_test_util.hpp"
#include "database_param.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

class FleetTest : public ::testing::TestWithParam<std::string> {
 protected:
  cloud::ServerOptions Options() {
    cloud::ServerOptions o;
    if (GetParam() == "sqlite") return o;
    o.db_url = FreshPostgresUrl();
    return o;
  }
};

Json Telemetry(const std::string& model, std::optional<double> accuracy, double psi, bool alarm) {
  Json t = {{"t", 1},
            {"model_version", model},
            {"n", 100},
            {"labelled", accuracy ? 40 : 0},
            {"error_rate", 0.01},
            {"latency_ms", {{"p50", 0.5}, {"p95", 2.0}}},
            {"drift", {{"confidence", {{"psi", psi}, {"alarm", alarm}}}}},
            {"bytes_up", 5000},
            {"bytes_down", 100}};
  if (accuracy) t["accuracy"] = *accuracy;
  return t;
}

TEST_P(FleetTest, TelemetryAndEventsMakeTheFleetView) {
  CloudFixture f(Options());
  auto a = f.Enroll("cam-a");
  auto b = f.Enroll("cam-b");
  f.Enroll("cam-c");  // never reports
  auto post = [&](const DeviceCredentials& d, const std::string& path, const Json& body) {
    auto res = f.Client(&d)->Post(path, body.dump(), "application/json");
    return res ? res->status : -1;
  };
  EXPECT_EQ(post(a, "/v1/telemetry", Telemetry("m1", 0.9, 0.05, false)), 200);
  EXPECT_EQ(post(b, "/v1/telemetry", Telemetry("m1", std::nullopt, 0.4, true)), 200);
  EXPECT_EQ(
      post(b, "/v1/events", {{"phase", "downloading"}, {"version", 2}, {"model_version", "m2"}}),
      200);
  EXPECT_EQ(
      post(b, "/v1/events", {{"phase", "committed"}, {"version", 2}, {"model_version", "m2"}}),
      200);
  EXPECT_EQ(post(a, "/v1/events",
                 {{"phase", "idle"},
                  {"version", 3},
                  {"model_version", "m3"},
                  {"reason", "refused: update metadata expired"}}),
            200);

  const auto admin = f.Bearer(f.server().admin_token());
  auto fleet = Json::parse(f.Client()->Get("/v1/fleet", admin)->body)["devices"];
  ASSERT_EQ(fleet.size(), 3u);
  EXPECT_EQ(fleet[0]["device_id"], "cam-a");
  EXPECT_EQ(fleet[0]["model_version"], "m1");
  EXPECT_EQ(fleet[0]["status"], "refused");
  EXPECT_DOUBLE_EQ(fleet[0]["accuracy"].get<double>(), 0.9);
  EXPECT_EQ(fleet[0]["labelled"], 40);
  EXPECT_GT(fleet[0]["last_seen_ms"].get<int64_t>(), 0);
  EXPECT_EQ(fleet[1]["model_version"], "m2");  // committed after its telemetry
  EXPECT_EQ(fleet[1]["status"], "committed");
  EXPECT_TRUE(fleet[1]["accuracy"].is_null());
  EXPECT_TRUE(fleet[1]["drift_alarm"].get<bool>());
  EXPECT_DOUBLE_EQ(fleet[1]["drift_score"].get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(fleet[1]["latency_p95_ms"].get<double>(), 2.0);
  EXPECT_EQ(fleet[2]["status"], "never_seen");

  auto models = Json::parse(f.Client()->Get("/v1/fleet/models", admin)->body)["models"];
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0]["model_version"], "m1");
  EXPECT_EQ(models[0]["devices"], Json::array({"cam-a"}));
  EXPECT_EQ(models[1]["devices"], Json::array({"cam-b"}));

  auto events =
      Json::parse(f.Client()->Get("/v1/fleet/events?device=cam-b", admin)->body)["events"];
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["phase"], "downloading");
  EXPECT_EQ(events[1]["metadata_version"], 2);

  // The tables the rollout controller reads, by their column names.
  auto db = cloud::OpenDatabase(GetParam() == "sqlite" ? "sqlite:" + f.dir() + "/data/edgeloop.db"
                                                       : SharedPostgres().url());
  ASSERT_TRUE(db.ok());
  auto row = (*db)->Query(
      "SELECT model_version, update_phase, accuracy, labelled, drift_alarm FROM device_status "
      "WHERE device_id = ?",
      {"cam-a"});
  ASSERT_TRUE(row.ok()) << row.error().message;
  EXPECT_EQ(row->at(0), (cloud::Row{"m1", "refused", "0.9", "40", "0"}));
  auto history = (*db)->Query("SELECT COUNT(*) FROM telemetry_history");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->at(0).at(0), "2");
}

TEST_P(FleetTest, TelemetryHistoryOfOneDeviceIsReadOldestFirst) {
  CloudFixture f(Options());
  auto a = f.Enroll("cam-a");
  auto b = f.Enroll("cam-b");
  auto post = [&](const DeviceCredentials& d, Json body) {
    auto res = f.Client(&d)->Post("/v1/telemetry", body.dump(), "application/json");
    return res ? res->status : -1;
  };
  for (int i = 0; i < 5; ++i) {
    Json t =
        Telemetry(i < 3 ? "m1" : "m2", i == 1 ? std::nullopt : std::optional<double>(0.5 + 0.1 * i),
                  0.1 * i, i == 4);
    t["spool"] = {{"records", 10 * i}, {"bytes", 1000 * i}, {"dropped", i}};
    ASSERT_EQ(post(a, t), 200);
  }
  ASSERT_EQ(post(b, Telemetry("m1", 0.7, 0.0, false)), 200);
  const std::string admin = f.server().admin_token();
  auto res = f.Get("/v1/fleet/devices/cam-a/telemetry", admin);
  ASSERT_TRUE(res && res->status == 200) << (res ? res->body : "no answer");
  Json j = Json::parse(res->body);
  EXPECT_EQ(j["device_id"], "cam-a");
  const Json& p = j["points"];
  ASSERT_EQ(p.size(), 5u);  // cam-b's snapshot is not among them
  EXPECT_EQ(p[0]["model_version"], "m1");
  EXPECT_EQ(p[4]["model_version"], "m2");
  EXPECT_DOUBLE_EQ(p[0]["accuracy"].get<double>(), 0.5);
  EXPECT_TRUE(p[1]["accuracy"].is_null());  // no labelled samples in that period
  EXPECT_DOUBLE_EQ(p[2]["drift_score"].get<double>(), 0.2);
  EXPECT_FALSE(p[3]["drift_alarm"].get<bool>());
  EXPECT_TRUE(p[4]["drift_alarm"].get<bool>());
  EXPECT_DOUBLE_EQ(p[4]["latency_p95_ms"].get<double>(), 2.0);
  EXPECT_EQ(p[3]["spool_records"], 30);
  EXPECT_EQ(p[3]["spool_bytes"], 3000);
  EXPECT_EQ(p[3]["spool_dropped"], 3);
  EXPECT_EQ(p[4]["bytes_up"], 5000);
  for (size_t i = 1; i < p.size(); ++i)
    EXPECT_GE(p[i]["ts_ms"].get<int64_t>(), p[i - 1]["ts_ms"].get<int64_t>());
  // ?limit keeps the newest; ?since_ms the later ones.
  Json last2 = Json::parse(f.Get("/v1/fleet/devices/cam-a/telemetry?limit=2", admin)->body);
  ASSERT_EQ(last2["points"].size(), 2u);
  EXPECT_EQ(last2["points"][1]["spool_dropped"], 4);
  EXPECT_EQ(last2["points"][0]["spool_dropped"], 3);
  const int64_t after = p[4]["ts_ms"].get<int64_t>();
  Json none = Json::parse(
      f.Get("/v1/fleet/devices/cam-a/telemetry?since_ms=" + std::to_string(after), admin)->body);
  EXPECT_TRUE(none["points"].empty());
  // The fleet view carries the last snapshot's spool.
  auto fleet = Json::parse(f.Get("/v1/fleet", admin)->body)["devices"];
  EXPECT_EQ(fleet[0]["spool"], (Json{{"records", 40}, {"bytes", 4000}, {"dropped", 4}}));
  // Unknown device, bad parameters, a device's own certificate: refused.
  EXPECT_EQ(f.Get("/v1/fleet/devices/nobody/telemetry", admin)->status, 404);
  EXPECT_EQ(f.Get("/v1/fleet/devices/cam-a/telemetry?limit=0", admin)->status, 400);
  EXPECT_EQ(f.Get("/v1/fleet/devices/cam-a/telemetry?since_ms=-1", admin)->status, 400);
  EXPECT_EQ(f.Client(&a)->Get("/v1/fleet/devices/cam-a/telemetry")->status, 401);
}

TEST_P(FleetTest, TokenSelfNamesTheCallersScope) {
  CloudFixture f(Options());
  EXPECT_EQ(f.GetOk("/v1/tokens/self"), (Json{{"scope", "admin"}}));
  for (const char* scope : {"read", "write"}) {
    Json made = f.PostOk("/v1/tokens", {{"scope", scope}});
    auto res = f.Get("/v1/tokens/self", made["token"]);
    ASSERT_TRUE(res && res->status == 200);
    EXPECT_EQ(Json::parse(res->body)["scope"], scope);
  }
  EXPECT_EQ(f.Get("/v1/tokens/self", "not-a-token")->status, 401);
  EXPECT_EQ(f.Client()->Get("/v1/tokens/self")->status, 401);
}

TEST_P(FleetTest, BadInputAndMissingCredentialsAreRefused) {
  CloudFixture f(Options());
  auto a = f.Enroll("cam-a");
  auto dev = f.Client(&a);
  EXPECT_EQ(dev->Post("/v1/telemetry", "{not json", "application/json")->status, 400);
  EXPECT_EQ(dev->Post("/v1/telemetry", R"({"n": 3})", "application/json")->status, 400);
  auto bad_phase = dev->Post("/v1/events", R"({"phase": "exploded"})", "application/json");
  EXPECT_EQ(bad_phase->status, 400);
  EXPECT_TRUE(Json::parse(bad_phase->body)["error"].contains("message"));
  EXPECT_EQ(
      dev->Post("/v1/events", R"({"phase": "idle", "version": -1})", "application/json")->status,
      400);
  // No client certificate: 401; a device cannot read the fleet view.
  EXPECT_EQ(f.Client()->Post("/v1/telemetry", "{}", "application/json")->status, 401);
  EXPECT_EQ(dev->Get("/v1/fleet")->status, 401);
  EXPECT_EQ(f.Client()->Get("/v1/fleet/events?limit=x", f.Bearer(f.server().admin_token()))->status,
            400);
}

INSTANTIATE_TEST_SUITE_P(Databases, FleetTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace edgeloop::testing
