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

Result<std::vector<std::string>> Server::Impl::ResolveTarget(const std::string& target) {
  EDGELOOP_ASSIGN_OR_RETURN(auto devices, fleet->ResolveTarget(target));
  if (devices.empty())
    return Error(Errc::kNotFound, "rollout target " + target + " has no enrolled devices");
  return devices;
}

Result<std::map<std::string, DeviceState>> Server::Impl::FleetStates() {
  std::map<std::string, DeviceState> out;
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, fleet->StatusRows());
  for (const auto& r : rows) {
    DeviceState d;
    d.device_id = r.device_id;
    d.model_version = r.model_version;
    d.update_phase = r.update_phase;
    d.last_seen_ms = r.last_seen_ms;
    d.accuracy = r.accuracy.value_or(-1);
    d.labelled = r.labelled;
    d.error_rate = r.error_rate;
    d.latency_p95_ms = r.latency_p95_ms;
    out[d.device_id] = d;
  }
  // Accuracy over the recent telemetry periods with the device's current model, weighted by
  // their labelled samples: one period alone (seconds of data) is too noisy to judge a model.
  EDGELOOP_ASSIGN_OR_RETURN(auto hist, fleet->TelemetrySince(NowMs() - 60 * 1000));
  std::map<std::string, std::pair<double, int64_t>> recent;  // device → (sum acc*n, n)
  for (const auto& p : hist) {
    auto it = out.find(p.device_id);
    if (it == out.end()) continue;
    if (p.ts_ms >= it->second.telemetry_ms) {  // oldest first: the newest period wins
      it->second.telemetry_ms = p.ts_ms;
      it->second.telemetry_model_version = p.model_version;
    }
    if (p.model_version != it->second.model_version || !p.accuracy) continue;
    recent[p.device_id].first += *p.accuracy * static_cast<double>(p.labelled);
    recent[p.device_id].second += p.labelled;
  }
  for (const auto& [device, sum] : recent) {
    if (sum.second <= 0) continue;
    out[device].accuracy = sum.first / static_cast<double>(sum.second);
    out[device].labelled = sum.second;
  }
  // The model the latest update event of each device was about.
  EDGELOOP_ASSIGN_OR_RETURN(auto events, fleet->LatestUpdateEvents());
  for (const auto& e : events) {
    auto it = out.find(e.device_id);
    if (it == out.end()) continue;
    it->second.update_model_version = e.model_version;
    it->second.update_phase = e.phase;
    it->second.update_ms = e.ts_ms;
  }
  return out;
}

Result<std::string> Server::Impl::StartRollout(const Json& body, const std::string& model,
                                               int64_t version) {
  RolloutSpec spec;
  spec.model = model;
  EDGELOOP_RETURN_IF_ERROR(ParseRolloutOptions(body, &spec));
  std::string variant = body.value("variant", std::string("fp32"));
  EDGELOOP_ASSIGN_OR_RETURN(ModelVersionRow v, registry->Find(model, std::to_string(version)));
  spec.model_version = v.Name();
  spec.artifact_sha256 = v.Artifact(variant);
  if (spec.artifact_sha256.empty())
    return Error(Errc::kInvalidArgument, spec.model_version + " has no " + variant + " artifact");
  auto prod = registry->Find(model, "production");
  if (prod.ok()) {
    spec.previous_model_version = prod->Name();
    spec.previous_sha256 = prod->Artifact(variant);
  } else if (prod.error().code != Errc::kNotFound) {
    return prod.error();
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
Status Server::Impl::ApplyRolloutActions(const RolloutRow& row, const Json& state,
                                         const std::vector<RolloutAction>& actions) {
  const std::string& model = row.model;
  const int64_t version = row.version;
  const std::string version_name = model + ":" + std::to_string(version);
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
  auto states = FleetStates();
  if (!states.ok()) return BackgroundFailure("rollout_tick", states.error());
  for (const RolloutRow& listed : *running) {
    // The tick works on the row as locked in its transaction: an operator's command that
    // another replica committed since the list was read is seen, never overwritten.
    RolloutRow row;
    std::optional<RolloutController> c;
    std::string before, tick_error;
    auto apply_and_save = [&](bool tick) {
      return db->Transaction([&]() -> Status {
        EDGELOOP_ASSIGN_OR_RETURN(row, rollouts->GetForUpdate(listed.id));
        std::vector<RolloutAction> todo;
        if (tick) {
          if (row.status != "running") return Status::Ok();  // paused or ended meanwhile
          EDGELOOP_ASSIGN_OR_RETURN(auto loaded, RolloutController::FromJson(row.state));
          c.emplace(std::move(loaded));
          before = c->status();
          todo = c->Tick(NowMs(), *states);
        } else {
          todo = c->Abort(NowMs(), "could not carry out the rollout: " + tick_error);
        }
        Json next = c->ToJson();
        EDGELOOP_RETURN_IF_ERROR(ApplyRolloutActions(row, next, todo));
        return rollouts->Save(row.id, c->status(), next, NowMs());
      });
    };
    // The tick's deployments, stage changes and new state commit together, so a server killed
    // at any moment restarts from the state before the tick or after it, never between.
    if (Status st = apply_and_save(true); !st.ok()) {
      BackgroundFailure("rollout_tick", st.error(), {"rollout", listed.id});
      if (!c) continue;  // the stored state could not be read: nothing to abort from
      tick_error = st.error().message;
      if (Status again = apply_and_save(false); !again.ok())
        BackgroundFailure("rollout_abort", again.error(), {"rollout", listed.id});
    }
    if (c && c->status() != before)
      log::Info("rollout_state", {{"rollout", listed.id}, {"from", before}, {"to", c->status()}});
  }
  FlushDeploymentPushes();
}

Result<Json> Server::Impl::RolloutCommand(const std::string& id, const std::string& command) {
  std::lock_guard<std::mutex> lock(rollout_mu);
  if (command != "pause" && command != "resume" && command != "abort")
    return Error(Errc::kNotFound, "unknown rollout command " + command);
  // Read, changed and saved under the row's lock, with the command's actions (an abort's
  // reverts): the leader's tick on another replica waits for it, or it for the tick.
  Json out;
  EDGELOOP_RETURN_IF_ERROR(db->Transaction([&]() -> Status {
    EDGELOOP_ASSIGN_OR_RETURN(RolloutRow row, rollouts->GetForUpdate(id));
    EDGELOOP_ASSIGN_OR_RETURN(auto c, RolloutController::FromJson(row.state));
    std::vector<RolloutAction> actions;
    if (command == "pause") {
      EDGELOOP_RETURN_IF_ERROR(c.Pause(NowMs()));
    } else if (command == "resume") {
      EDGELOOP_RETURN_IF_ERROR(c.Resume(NowMs()));
    } else {
      if (c.finished()) return Error(Errc::kInvalidArgument, "rollout " + id + " is " + c.status());
      actions = c.Abort(NowMs(), "aborted by an operator");
    }
    EDGELOOP_RETURN_IF_ERROR(ApplyRolloutActions(row, c.ToJson(), actions));
    EDGELOOP_RETURN_IF_ERROR(rollouts->Save(id, c.status(), c.ToJson(), NowMs()));
    out = c.ToJson();
    return Status::Ok();
  }));
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
           FlushDeploymentPushes();
           if (!out.ok()) return SendError(res, out.error());
           res.set_content(out->dump(), "application/json");
         });
}

}  // namespace edgeloop::cloud
