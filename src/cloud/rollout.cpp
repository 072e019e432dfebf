#include "cloud/rollout.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace edgeloop::cloud {
namespace {

using Json = nlohmann::json;

// "N" devices or "P%" of total, at least one when total > 0.
Result<size_t> Share(const std::string& s, size_t total) {
  if (s.empty()) return Error(Errc::kInvalidArgument, "empty stage size");
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  bool pct = *end == '%' && end[1] == '\0';
  if (end == s.c_str() || (!pct && *end != '\0') || !(v >= 0))
    return Error(Errc::kInvalidArgument,
                 "stage size \"" + s + "\" must be a device count or a percentage");
  if (pct) {
    if (v > 100) return Error(Errc::kInvalidArgument, "stage size " + s + " is above 100%");
    v = std::ceil(v * static_cast<double>(total) / 100.0 - 1e-9);
  }
  return std::min(total, static_cast<size_t>(std::max(1.0, v)));
}

Json CriteriaJson(const RolloutCriteria& c) {
  return {{"window_seconds", c.window_seconds},
          {"stage_timeout_seconds", c.stage_timeout_seconds},
          {"max_error_rate", c.max_error_rate},
          {"max_latency_p95_ms", c.max_latency_p95_ms},
          {"min_accuracy_delta", c.min_accuracy_delta},
          {"min_labelled", c.min_labelled}};
}

bool IsFailurePhase(const std::string& phase) {
  return phase == "rolled_back" || phase == "refused" || phase == "failed";
}

}  // namespace

Status ParseRolloutOptions(const Json& j, RolloutSpec* spec) {
  if (j.is_null()) return Status::Ok();
  if (!j.is_object()) return Error(Errc::kInvalidArgument, "rollout: expected an object");
  static const std::set<std::string> kKeys = {"target", "canary", "waves", "criteria", "variant"};
  for (const auto& [k, v] : j.items())
    if (!kKeys.count(k)) return Error(Errc::kInvalidArgument, "rollout." + k + ": unknown key");
  auto as_text = [](const Json& v) {
    return v.is_string() ? v.get<std::string>() : v.is_number() ? v.dump() : std::string();
  };
  if (j.contains("canary")) spec->canary = as_text(j["canary"]);
  if (j.contains("waves")) {
    if (!j["waves"].is_array())
      return Error(Errc::kInvalidArgument, "rollout.waves: expected a list");
    spec->waves.clear();
    for (const auto& w : j["waves"]) spec->waves.push_back(as_text(w));
  }
  if (j.contains("criteria")) {
    const Json& c = j["criteria"];
    if (!c.is_object())
      return Error(Errc::kInvalidArgument, "rollout.criteria: expected an object");
    RolloutCriteria& r = spec->criteria;
    std::map<std::string, double*> nums = {{"window_seconds", &r.window_seconds},
                                           {"stage_timeout_seconds", &r.stage_timeout_seconds},
                                           {"max_error_rate", &r.max_error_rate},
                                           {"max_latency_p95_ms", &r.max_latency_p95_ms},
                                           {"min_accuracy_delta", &r.min_accuracy_delta}};
    for (const auto& [k, v] : c.items()) {
      if (k == "min_labelled" && v.is_number_integer()) {
        r.min_labelled = v.get<int64_t>();
      } else if (nums.count(k) && v.is_number()) {
        *nums[k] = v.get<double>();
      } else {
        return Error(Errc::kInvalidArgument,
                     "rollout.criteria." + k + ": unknown key or not a number");
      }
    }
  }
  return Status::Ok();
}

Result<std::vector<std::vector<std::string>>> PlanStages(const RolloutSpec& spec) {
  std::vector<std::string> devices = spec.devices;
  std::sort(devices.begin(), devices.end());
  devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
  if (devices.empty()) return Error(Errc::kInvalidArgument, "the rollout target has no devices");
  std::vector<std::vector<std::string>> stages;
  size_t done = 0;
  auto add_until = [&](size_t upto) {
    if (upto <= done) return;
    stages.emplace_back(devices.begin() + static_cast<long>(done),
                        devices.begin() + static_cast<long>(upto));
    done = upto;
  };
  EDGELOOP_ASSIGN_OR_RETURN(size_t canary, Share(spec.canary, devices.size()));
  add_until(canary);
  for (const auto& w : spec.waves) {
    EDGELOOP_ASSIGN_OR_RETURN(size_t upto, Share(w, devices.size()));
    add_until(upto);
  }
  add_until(devices.size());  // the last wave always reaches every device
  return stages;
}

Result<RolloutController> RolloutController::Create(const RolloutSpec& spec, int64_t now_ms) {
  if (spec.model_version.empty() || spec.artifact_sha256.size() != 64)
    return Error(Errc::kInvalidArgument, "a rollout needs a model version and its artifact");
  EDGELOOP_ASSIGN_OR_RETURN(auto stages, PlanStages(spec));
  RolloutController c;
  Json st = Json::array();
  for (size_t i = 0; i < stages.size(); ++i)
    st.push_back({{"name", i == 0 ? std::string("canary") : "wave-" + std::to_string(i)},
                  {"devices", stages[i]},
                  {"started_ms", -1},  // -1: not yet
                  {"updated_ms", -1},
                  {"finished_ms", -1},
                  {"result", ""}});
  c.state_ = {{"model", spec.model},
              {"model_version", spec.model_version},
              {"artifact_sha256", spec.artifact_sha256},
              {"artifact_name", spec.artifact_name},
              {"previous_model_version", spec.previous_model_version},
              {"previous_sha256", spec.previous_sha256},
              {"criteria", CriteriaJson(spec.criteria)},
              {"status", "running"},
              {"stage", 0},
              {"stages", st},
              {"baseline", Json::object()},
              {"touched", Json::array()},
              {"events", Json::array()},
              {"created_ms", now_ms},
              {"updated_ms", now_ms}};
  c.Event(now_ms, "created",
          std::to_string(stages.size()) + " stages over " + std::to_string(spec.devices.size()) +
              " devices");
  return c;
}

Result<RolloutController> RolloutController::FromJson(const Json& state) {
  if (!state.is_object() || !state.contains("stages") || !state["stages"].is_array() ||
      !state.contains("status") || !state.contains("criteria"))
    return Error(Errc::kFormat, "not a rollout state");
  RolloutController c;
  c.state_ = state;
  return c;
}

bool RolloutController::finished() const {
  std::string s = status();
  return s == "completed" || s == "rolled_back" || s == "aborted";
}

void RolloutController::Event(int64_t now_ms, const std::string& kind, const std::string& detail) {
  state_["events"].push_back({{"t_ms", now_ms}, {"kind", kind}, {"detail", detail}});
  state_["updated_ms"] = now_ms;
}

std::vector<RolloutAction> RolloutController::Fail(int64_t now_ms, const std::string& why,
                                                   const char* status) {
  size_t idx = state_["stage"].get<size_t>();
  if (idx < state_["stages"].size()) {
    state_["stages"][idx]["finished_ms"] = now_ms;
    state_["stages"][idx]["result"] = "failed";
  }
  state_["status"] = status;
  Event(now_ms, status, why);
  std::vector<std::string> touched = state_["touched"].get<std::vector<std::string>>();
  std::vector<RolloutAction> out;
  if (!touched.empty() && !state_.value("previous_sha256", "").empty())
    out.push_back({RolloutAction::kRevert, touched, why});
  out.push_back({RolloutAction::kRolledBack, {}, why});
  return out;
}

std::vector<RolloutAction> RolloutController::Tick(
    int64_t now_ms, const std::map<std::string, DeviceState>& fleet) {
  if (status() != "running") return {};
  size_t idx = state_["stage"].get<size_t>();
  if (idx >= state_["stages"].size()) return {};
  Json& stage = state_["stages"][idx];
  const Json& crit = state_["criteria"];
  const std::string version = state_["model_version"];
  auto devices = stage["devices"].get<std::vector<std::string>>();
  auto find = [&](const std::string& d) -> const DeviceState* {
    auto it = fleet.find(d);
    return it == fleet.end() ? nullptr : &it->second;
  };
  if (stage["started_ms"].get<int64_t>() < 0) {
    stage["started_ms"] = now_ms;
    for (const auto& d : devices) {
      state_["touched"].push_back(d);
      const DeviceState* s = find(d);
      bool judged = s && s->accuracy >= 0 && s->labelled >= crit["min_labelled"].get<int64_t>();
      state_["baseline"][d] = judged ? s->accuracy : -1.0;
    }
    Event(now_ms, "stage_started", stage["name"].get<std::string>());
    return {{RolloutAction::kDeploy, devices, stage["name"].get<std::string>()}};
  }
  size_t updated = 0;
  std::string waiting;
  for (const auto& d : devices) {
    const DeviceState* s = find(d);
    if (s && IsFailurePhase(s->update_phase) && s->update_model_version == version)
      return Fail(now_ms, "device " + d + " refused or rolled back " + version, "rolled_back");
    if (s && s->model_version == version && s->update_phase == "committed") {
      ++updated;
    } else if (waiting.empty()) {
      waiting = d;
    }
  }
  double since_start = static_cast<double>(now_ms - stage["started_ms"].get<int64_t>()) / 1000.0;
  if (updated < devices.size()) {
    if (since_start > crit["stage_timeout_seconds"].get<double>())
      return Fail(now_ms,
                  "device " + waiting + " did not run " + version + " within " +
                      std::to_string(static_cast<int>(since_start)) + " s",
                  "rolled_back");
    return {};
  }
  if (stage["updated_ms"].get<int64_t>() < 0) {
    stage["updated_ms"] = now_ms;
    Event(now_ms, "stage_updated", stage["name"].get<std::string>());
  }
  double observed = static_cast<double>(now_ms - stage["updated_ms"].get<int64_t>()) / 1000.0;
  if (observed < crit["window_seconds"].get<double>()) return {};
  // Judge each device only on a telemetry period of the new model that arrived after its
  // commit: until then its figures may still be the previous model's.
  for (const auto& d : devices) {
    const DeviceState& s = *find(d);
    if (s.telemetry_model_version == version && s.telemetry_ms >= s.update_ms) continue;
    if (observed > crit["stage_timeout_seconds"].get<double>())
      return Fail(now_ms,
                  "device " + d + " sent no telemetry from " + version + " since its commit, " +
                      std::to_string(static_cast<int>(observed)) + " s after the stage updated",
                  "rolled_back");
    return {};
  }
  // Judge every device of the stage on its telemetry with the new model.
  for (const auto& d : devices) {
    const DeviceState& s = *find(d);
    char buf[256];
    if (s.error_rate > crit["max_error_rate"].get<double>()) {
      std::snprintf(buf, sizeof buf, "device %s error rate %.3f above %.3f", d.c_str(),
                    s.error_rate, crit["max_error_rate"].get<double>());
      return Fail(now_ms, buf, "rolled_back");
    }
    if (s.latency_p95_ms > crit["max_latency_p95_ms"].get<double>()) {
      std::snprintf(buf, sizeof buf, "device %s latency p95 %.2f ms above %.2f ms", d.c_str(),
                    s.latency_p95_ms, crit["max_latency_p95_ms"].get<double>());
      return Fail(now_ms, buf, "rolled_back");
    }
    double before = state_["baseline"].value(d, -1.0);
    if (before >= 0 && s.accuracy >= 0 && s.labelled >= crit["min_labelled"].get<int64_t>() &&
        s.accuracy - before < crit["min_accuracy_delta"].get<double>()) {
      std::snprintf(buf, sizeof buf, "device %s accuracy %.4f vs %.4f before (delta below %.4f)",
                    d.c_str(), s.accuracy, before, crit["min_accuracy_delta"].get<double>());
      return Fail(now_ms, buf, "rolled_back");
    }
  }
  stage["finished_ms"] = now_ms;
  stage["result"] = "passed";
  Event(now_ms, "stage_passed", stage["name"].get<std::string>());
  state_["stage"] = idx + 1;
  if (idx + 1 == state_["stages"].size()) {
    state_["status"] = "completed";
    Event(now_ms, "completed", version + " runs on every target device");
    return {{RolloutAction::kPromote, {}, "all stages passed"}};
  }
  return Tick(now_ms, fleet);  // the next stage starts at once
}

Status RolloutController::Pause(int64_t now_ms) {
  if (status() != "running")
    return Error(Errc::kInvalidArgument,
                 "only a running rollout can be paused (it is " + status() + ")");
  state_["status"] = "paused";
  Event(now_ms, "paused", "");
  return Status::Ok();
}

Status RolloutController::Resume(int64_t now_ms) {
  if (status() != "paused")
    return Error(Errc::kInvalidArgument,
                 "only a paused rollout can be resumed (it is " + status() + ")");
  state_["status"] = "running";
  Event(now_ms, "resumed", "");
  return Status::Ok();
}

std::vector<RolloutAction> RolloutController::Abort(int64_t now_ms, const std::string& why) {
  if (finished()) return {};
  return Fail(now_ms, why.empty() ? "aborted by an operator" : why, "aborted");
}

}  // namespace edgeloop::cloud
