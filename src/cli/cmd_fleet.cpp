// `edgeloop fleet devices|enroll-token|revoke` and `edgeloop tokens create`: devices and
// operator tokens of a running server.
#include <chrono>
#include <cstdio>

#include "cli/command.hpp"
#include "cli/server_client.hpp"

namespace edgeloop::cli {
namespace {

using Json = nlohmann::json;
constexpr auto Run = RunServerRequest;

}  // namespace

void RegisterFleet(CLI::App& root) {
  auto* fleet = root.add_subcommand("fleet", "Devices of a running server: list, enroll, revoke");
  fleet->require_subcommand(1);

  auto* devices = fleet->add_subcommand("devices", "List enrolled devices");
  auto df = AddServerFlags(devices);
  SetAction(devices, [df] {
    return Run(
        "fleet devices", *df, [](const auto& c) { return c.GetJson("/v1/devices"); },
        [](const Json& j) {
          std::vector<std::vector<std::string>> rows;
          const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
          for (const auto& d : j["devices"]) {
            // "expires in N days" (or "expired"); "-" for a device enrolled before the
            // server recorded certificate expiries.
            const int64_t not_after = d.value("cert_not_after_ms", int64_t{0});
            char expires[48] = "-";
            if (not_after > 0 && not_after <= now_ms)
              std::snprintf(expires, sizeof expires, "expired");
            else if (not_after > 0)
              std::snprintf(expires, sizeof expires, "in %lld days",
                            static_cast<long long>((not_after - now_ms) / 86'400'000));
            rows.push_back(
                {d["device_id"], d["group"].get<std::string>().empty() ? "-" : Cell(d["group"]),
                 d["revoked"].get<bool>() ? "revoked" : "active", Cell(d["enrolled_ms"]), expires});
          }
          PrintTable({"DEVICE", "GROUP", "STATE", "ENROLLED_MS", "CERT_EXPIRES"}, rows);
        });
  });

  auto* status = fleet->add_subcommand(
      "status", "The fleet view: per device its model, update state, last seen, accuracy, drift");
  auto sf = AddServerFlags(status);
  SetAction(status, [sf] {
    return Run(
        "fleet status", *sf, [](const auto& c) { return c.GetJson("/v1/fleet"); },
        [](const Json& j) {
          std::vector<std::vector<std::string>> rows;
          int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
          for (const auto& d : j["devices"]) {
            int64_t seen = d.value("last_seen_ms", int64_t{0});
            char ago[32] = "never", acc[32] = "-", lat[32], drift[32];
            if (seen > 0)
              std::snprintf(ago, sizeof ago, "%llds ago", (long long)((now - seen) / 1000));
            if (d["accuracy"].is_number())
              std::snprintf(acc, sizeof acc, "%.3f (%lld)", d["accuracy"].get<double>(),
                            (long long)d.value("labelled", int64_t{0}));
            std::snprintf(lat, sizeof lat, "%.2f", d.value("latency_p95_ms", 0.0));
            std::snprintf(drift, sizeof drift, "%.3f%s", d.value("drift_score", 0.0),
                          d.value("drift_alarm", false) ? " ALARM" : "");
            rows.push_back({Cell(d["device_id"]), Cell(d["model_version"]), Cell(d["status"]), ago,
                            acc, lat, drift});
          }
          PrintTable({"DEVICE", "MODEL", "STATUS", "LAST_SEEN", "ACCURACY (N)", "P95_MS", "DRIFT"},
                     rows);
        });
  });

  auto* label = fleet->add_subcommand(
      "label", "Set a device's labels (replacing them), for rollout targets label:<name>");
  auto lf = AddServerFlags(label);
  auto labelled = std::make_shared<std::string>();
  auto labels = std::make_shared<std::vector<std::string>>();
  label->add_option("device", *labelled, "device id")->required();
  label->add_option("labels", *labels, "labels (none: clear them)");
  SetAction(label, [lf, labelled, labels] {
    return Run(
        "fleet label", *lf,
        [&](const auto& c) {
          return c.PutJson("/v1/devices/" + *labelled + "/labels", Json{{"labels", *labels}});
        },
        [](const Json& j) {
          std::string l;
          for (const auto& x : j["labels"]) l += (l.empty() ? "" : ",") + Cell(x);
          std::printf("%s: %s\n", Cell(j["device_id"]).c_str(),
                      l.empty() ? "(no labels)" : l.c_str());
        });
  });

  auto* where = fleet->add_subcommand("models", "Which model version runs where");
  auto wf = AddServerFlags(where);
  SetAction(where, [wf] {
    return Run(
        "fleet models", *wf, [](const auto& c) { return c.GetJson("/v1/fleet/models"); },
        [](const Json& j) {
          std::vector<std::vector<std::string>> rows;
          for (const auto& m : j["models"]) {
            std::string devices;
            for (const auto& d : m["devices"]) devices += (devices.empty() ? "" : ",") + Cell(d);
            rows.push_back({Cell(m["model_version"]), Cell(m["count"]), devices});
          }
          PrintTable({"MODEL", "DEVICES", "WHERE"}, rows);
        });
  });

  auto* enroll = fleet->add_subcommand(
      "enroll-token", "Make a single-use enrollment token for one device or a group");
  auto ef = AddServerFlags(enroll);
  auto device = std::make_shared<std::string>();
  auto group = std::make_shared<std::string>();
  auto ttl = std::make_shared<int64_t>(3600);
  enroll->add_option("--device", *device, "the device id the token is for (empty: any)");
  enroll->add_option("--group", *group, "the group the device joins");
  enroll->add_option("--ttl", *ttl, "seconds the token stays valid")->capture_default_str();
  SetAction(enroll, [ef, device, group, ttl] {
    return Run(
        "fleet enroll-token", *ef,
        [&](const auto& c) {
          return c.PostJson("/v1/enrollment-tokens",
                            {{"device_id", *device}, {"group", *group}, {"ttl_seconds", *ttl}});
        },
        [](const Json& j) { std::printf("%s\n", j["token"].get<std::string>().c_str()); });
  });

  auto* revoke = fleet->add_subcommand("revoke", "Revoke a device's certificate at once");
  auto rf = AddServerFlags(revoke);
  auto id = std::make_shared<std::string>();
  revoke->add_option("device", *id, "device id")->required();
  SetAction(revoke, [rf, id] {
    return Run(
        "fleet revoke", *rf,
        [&](const auto& c) { return c.PostJson("/v1/devices/" + *id + "/revoke", Json::object()); },
        [&](const Json&) { std::printf("revoked %s\n", id->c_str()); });
  });

  auto* tokens = root.add_subcommand("tokens", "Operator tokens of a running server");
  tokens->require_subcommand(1);
  auto* create = tokens->add_subcommand("create", "Make an operator token with a scope");
  auto tf = AddServerFlags(create);
  auto scope = std::make_shared<std::string>();
  create->add_option("--scope", *scope, "read, write or admin")
      ->required()
      ->check(CLI::IsMember({"read", "write", "admin"}));
  SetAction(create, [tf, scope] {
    return Run(
        "tokens create", *tf,
        [&](const auto& c) {
          return c.PostJson("/v1/tokens", {{"scope", *scope}});
        },
        [](const Json& j) { std::printf("%s\n", j["token"].get<std::string>().c_str()); });
  });
}

}  // namespace edgeloop::cli
