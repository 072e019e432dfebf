// Route module: staged rollouts. A rollout deploys a registered model version to its target
// devices stage by stage (see rollout.hpp); a background thread ticks every running rollout
// once a second against the fleet's reported state and persists the controller's state, so a
// restarted server carries on. The registry stage follows the rollout: production when it
// completes, archived when it is rolled back.
#include <algorithm>

#include "cloud/rollout.hpp"
#include "cloud/server_impl.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"

namespace edgeloop::cloud {
namespace {

double ToDouble(const std::string& s, double fallback) {
  if (s.empty()) return fallback;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  return end == s.c_str() ? fallback : v;
}

}  // namespace

Result<std::vector<std::string>> Server::Impl::ResolveTarget(const std::string& target) {
  std::vector<std::string> devices;
  Result<std::vector<Row>> rows = std::vector<Row>{};
  if (target == "all") {
    rows = db->Query("SELECT device_id FROM devices WHERE revoked = 0 ORDER BY 1");
  } else if (target.rfind("label:", 0) == 0) {
    rows = db->Query(
        "SELECT d.device_id FROM devices d JOIN device_labels l ON l.device_id = d.device_id "
        "WHERE d.revoked = 0 AND l.label = ? ORDER BY 1",
        {target.substr(6)});
  } else if (target.rfind("group:", 0) == 0) {
    rows = db->Query("SELECT device_id FROM devices WHERE revoked = 0 AND grp = ? ORDER BY 1",
                     {target.substr(6)});
  } else {
    rows = db->Query("SELECT device_id FROM devices WHERE revoked = 0 AND device_id = ?", {target});
  }
  if (!rows.ok()) return rows.error();
  for (const auto& r : *rows) devices.push_back(r[0]);
  if (devices.empty())
    return Error(Errc::kNotFound, "rollout target " + target + " has no enrolled devices");
  return devices;
}

Result<std::map<std::string, DeviceState>> Server::Impl::FleetStates() {
  std::map<std::string, DeviceState> out;
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db->Query("SELECT device_id, model_version, update_phase, last_seen_ms, accuracy, "
                           "labelled, error_rate, latency_p95_ms FROM device_status"));
  for (const auto& r : rows) {
    DeviceState d;
    d.device_id = r[0];
    d.model_version = r[1];
    d.update_phase = r[2];
    d.last_seen_ms = r[3].empty() ? 0 : std::stoll(r[3]);
    d.accuracy = ToDouble(r[4], -1);
    d.labelled = r[5].empty() ? 0 : std::stoll(r[5]);
    d.error_rate = ToDouble(r[6], 0);
    d.latency_p95_ms = ToDouble(r[7], 0);
    out[d.device_id] = d;
  }
  // Accuracy over the recent telemetry periods with the device's current model, weighted by
  // their labelled samples: one period alone (seconds of data) is too noisy to judge a model.
  const int64_t since = NowMs() - 60 * 1000;
  EDGELOOP_ASSIGN_OR_RETURN(auto hist,
                            db->Query("SELECT device_id, model_version, accuracy, labelled FROM "
                                      "telemetry_history WHERE ts_ms > ? ORDER BY ts_ms",
                                      {std::to_string(since)}));
  std::map<std::string, std::pair<double, int64_t>> recent;  // device → (sum acc*n, n)
  for (const auto& r : hist) {
    auto it = out.find(r[0]);
    if (it == out.end() || r[1] != it->second.model_version || r[2].empty()) continue;
    int64_t n = r[3].empty() ? 0 : std::stoll(r[3]);
    recent[r[0]].first += ToDouble(r[2], 0) * static_cast<double>(n);
    recent[r[0]].second += n;
  }
  for (const auto& [device, sum] : recent) {
    if (sum.second <= 0) continue;
    out[device].accuracy = sum.first / static_cast<double>(sum.second);
    out[device].labelled = sum.second;
  }
  // The model the latest update event of each device was about.
  EDGELOOP_ASSIGN_OR_RETURN(
      auto ev, db->Query("SELECT e.device_id, e.model_version, e.phase FROM update_events e JOIN "
                         "(SELECT device_id, MAX(id) AS id FROM update_events GROUP BY device_id) "
                         "l ON e.id = l.id"));
  for (const auto& r : ev) {
    auto it = out.find(r[0]);
    if (it == out.end()) continue;
    it->second.update_model_version = r[1];
    it->second.update_phase = r[2];
  }
  return out;
}

Result<std::string> Server::Impl::StartRollout(const Json& body, const std::string& model,
                                               int64_t version) {
  RolloutSpec spec;
  spec.model = model;
  EDGELOOP_RETURN_IF_ERROR(ParseRolloutOptions(body, &spec));
  std::string variant = body.value("variant", std::string("fp32"));
  EDGELOOP_ASSIGN_OR_RETURN(Json v, GetModelVersion(model, std::to_string(version)));
  spec.model_version = model + ":" + std::to_string(version);
  spec.artifact_sha256 = v["artifacts"].value(variant, "");
  if (spec.artifact_sha256.empty())
    return Error(Errc::kInvalidArgument, spec.model_version + " has no " + variant + " artifact");
  auto prod = GetModelVersion(model, "production");
  if (prod.ok()) {
    spec.previous_model_version = model + ":" + std::to_string((*prod)["version"].get<int64_t>());
    spec.previous_sha256 = (*prod)["artifacts"].value(variant, "");
  }
  spec.artifact_name = model + "-" + std::to_string(version) + ".onnx";
  std::string target = body.value("target", std::string("all"));
  EDGELOOP_ASSIGN_OR_RETURN(spec.devices, ResolveTarget(target));
  EDGELOOP_ASSIGN_OR_RETURN(auto c, RolloutController::Create(spec, NowMs()));
  Json state = c.ToJson();
  state["target"] = target;
  state["variant"] = variant;
  std::string id = "ro-" + crypto::RandomHex(4);
  EDGELOOP_RETURN_IF_ERROR(SetStage(model, version, "staging"));
  EDGELOOP_RETURN_IF_ERROR(
      rollouts->Insert({id, model, version, c.status(), state, NowMs(), NowMs()}));
  return id;
}

// Carries out the controller's actions: signed metadata per device, registry stages.
Status Server::Impl::ApplyRolloutActions(const Json& state,
                                         const std::vector<RolloutAction>& actions) {
  const std::string model = state["model"];
  const std::string version_name = state["model_version"];
  int64_t version = std::stoll(version_name.substr(version_name.rfind(':') + 1));
  for (const auto& a : actions) {
    if (a.kind == RolloutAction::kDeploy || a.kind == RolloutAction::kRevert) {
      bool revert = a.kind == RolloutAction::kRevert;
      // With no previous production version there is nothing to revert to: the devices'
      // updaters keep their last committed model when the new one fails its health check.
      if (revert && state.value("previous_sha256", "").empty()) continue;
      for (const auto& d : a.devices) {
        UpdateMetadata m;
        m.deployment_target = d;
        std::string previous = state.value("previous_model_version", "");
        std::replace(previous.begin(), previous.end(), ':', '-');
        m.target.artifact_name =
            revert ? previous + ".onnx" : state.value("artifact_name", "model.onnx");
        m.target.model_version = revert ? state.value("previous_model_version", "") : version_name;
        m.target.sha256 = revert ? state.value("previous_sha256", "")
                                 : state["artifact_sha256"].get<std::string>();
        EDGELOOP_RETURN_IF_ERROR(Deploy(m, 7 * 86400));
      }
    } else if (a.kind == RolloutAction::kPromote) {
      EDGELOOP_RETURN_IF_ERROR(SetStage(model, version, "production"));
      // New devices of the target get the new model too.
      std::string target = state.value("target", "");
      if (target.rfind("group:", 0) == 0) {
        UpdateMetadata m;
        m.deployment_target = target;
        m.target.artifact_name = state.value("artifact_name", "model.onnx");
        m.target.model_version = version_name;
        m.target.sha256 = state["artifact_sha256"];
        EDGELOOP_RETURN_IF_ERROR(Deploy(m, 7 * 86400));
      }
    } else if (a.kind == RolloutAction::kRolledBack) {
      EDGELOOP_RETURN_IF_ERROR(SetStage(model, version, "archived"));
    }
  }
  return Status::Ok();
}

void Server::Impl::TickRollouts() {
  std::lock_guard<std::mutex> lock(rollout_mu);
  auto running = rollouts->List("running");
  if (!running.ok()) return BackgroundFailure("rollout_tick", running.error());
  if (running->empty()) return;
  auto fleet = FleetStates();
  if (!fleet.ok()) return BackgroundFailure("rollout_tick", fleet.error());
  for (const RolloutRow& row : *running) {
    auto c = RolloutController::FromJson(row.state);
    if (!c.ok()) {
      BackgroundFailure("rollout_tick", c.error(), {"rollout", row.id});
      continue;
    }
    const std::string before = c->status();
    auto actions = c->Tick(NowMs(), *fleet);
    // The tick's deployments, stage changes and new state commit together, so a server killed
    // at any moment restarts from the state before the tick or after it, never between.
    auto apply_and_save = [&](const std::vector<RolloutAction>& todo) {
      return db->Transaction([&]() -> Status {
        Json next = c->ToJson();
        EDGELOOP_RETURN_IF_ERROR(ApplyRolloutActions(next, todo));
        return rollouts->Save(row.id, c->status(), next, NowMs());
      });
    };
    if (Status st = apply_and_save(actions); !st.ok()) {
      BackgroundFailure("rollout_tick", st.error(), {"rollout", row.id});
      auto failed = c->Abort(NowMs(), "could not carry out the rollout: " + st.error().message);
      if (Status again = apply_and_save(failed); !again.ok())
        BackgroundFailure("rollout_abort", again.error(), {"rollout", row.id});
    }
    if (c->status() != before)
      log::Info("rollout_state", {{"rollout", row.id}, {"from", before}, {"to", c->status()}});
  }
}

Result<Json> Server::Impl::RolloutCommand(const std::string& id, const std::string& command) {
  std::lock_guard<std::mutex> lock(rollout_mu);
  EDGELOOP_ASSIGN_OR_RETURN(RolloutRow row, rollouts->Get(id));
  EDGELOOP_ASSIGN_OR_RETURN(auto c, RolloutController::FromJson(row.state));
  if (command == "pause") {
    EDGELOOP_RETURN_IF_ERROR(c.Pause(NowMs()));
  } else if (command == "resume") {
    EDGELOOP_RETURN_IF_ERROR(c.Resume(NowMs()));
  } else if (command == "abort") {
    if (c.finished()) return Error(Errc::kInvalidArgument, "rollout " + id + " is " + c.status());
  } else {
    return Error(Errc::kNotFound, "unknown rollout command " + command);
  }
  // The command's actions (an abort's reverts) and the new state commit together.
  std::vector<RolloutAction> actions;
  if (command == "abort") actions = c.Abort(NowMs(), "aborted by an operator");
  EDGELOOP_RETURN_IF_ERROR(db->Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(ApplyRolloutActions(c.ToJson(), actions));
    return rollouts->Save(id, c.status(), c.ToJson(), NowMs());
  }));
  Json out = c.ToJson();
  out["id"] = id;
  return out;
}

void Server::Impl::RolloutRoutes() {
  auto& s = *http;
  s.Post("/v1/rollouts", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "admin")) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    std::string model = JsonString(*body, "model");
    auto v = body->find("version");
    if (model.empty() || v == body->end() || !v->is_number_integer())
      return SendError(res, 400, "a rollout needs model and version (a number)");
    Json opts = *body;
    opts.erase("model");
    opts.erase("version");
    auto id = StartRollout(opts, model, v->get<int64_t>());
    if (!id.ok()) return SendError(res, id.error());
    res.status = 201;
    res.set_content(Json{{"id", *id}}.dump(), "application/json");
  });
  s.Get("/v1/rollouts", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto all = rollouts->List();
    if (!all.ok()) return SendError(res, all.error());
    Json out = Json::array();
    for (const RolloutRow& r : *all)
      out.push_back({{"id", r.id},
                     {"model", r.model},
                     {"version", r.version},
                     {"status", r.status},
                     {"created_ms", r.created_ms},
                     {"updated_ms", r.updated_ms}});
    res.set_content(Json{{"rollouts", out}}.dump(), "application/json");
  });
  s.Get(R"(/v1/rollouts/([A-Za-z0-9-]+))", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto row = rollouts->Get(req.matches[1]);
    if (!row.ok()) return SendError(res, row.error());
    Json out = row->state;
    out["id"] = row->id;
    res.set_content(out.dump(), "application/json");
  });
  s.Post(R"(/v1/rollouts/([A-Za-z0-9-]+)/(pause|resume|abort))",
         [this](const http::Request& req, http::Response& res) {
           if (!RequireScope(req, res, "admin")) return;
           auto out = RolloutCommand(req.matches[1], req.matches[2]);
           if (!out.ok()) return SendError(res, out.error());
           res.set_content(out->dump(), "application/json");
         });
}

}  // namespace edgeloop::cloud
