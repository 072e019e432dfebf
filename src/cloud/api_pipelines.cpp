// Route module: pipelines and their runs. Pipelines are stored as YAML (checked on upload);
// a background thread fires triggers (new labelled samples, drift alarms, a schedule) and
// executes queued runs one at a time, each step's heavy work in a worker process.
#include <filesystem>

#include "cloud/pipeline.hpp"
#include "cloud/pipeline_runner.hpp"
#include "cloud/server_impl.hpp"
#include "common/crypto.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/process.hpp"

namespace edgeloop::cloud {
namespace {

// The server side of a run: snapshots, registry, artifacts, rollouts, progress records.
class ServerHost : public PipelineHost {
 public:
  ServerHost(Server::Impl& impl, std::string run_id) : impl_(impl), run_id_(std::move(run_id)) {}

  Result<SnapshotRef> CreateSnapshot(const Json& spec) override {
    EDGELOOP_ASSIGN_OR_RETURN(SnapshotInfo info, impl_.CreateSnapshot(spec));
    const Json& summary = info.summary;
    auto count = [&](const char* split) -> Result<int64_t> {
      if (!summary.contains("splits") || !summary["splits"].is_object() ||
          !summary["splits"].contains(split) || !summary["splits"][split].is_number_integer())
        return Error(Errc::kInternal,
                     "snapshot " + info.id + ": its summary has no sample count for " + split);
      return summary["splits"][split].get<int64_t>();
    };
    SnapshotRef ref;
    ref.id = info.id;
    ref.dir = info.dir;
    EDGELOOP_ASSIGN_OR_RETURN(ref.train, count("train"));
    EDGELOOP_ASSIGN_OR_RETURN(ref.val, count("val"));
    EDGELOOP_ASSIGN_OR_RETURN(ref.test, count("test"));
    return ref;
  }

  Result<ModelRef> ResolveModel(const std::string& ref) override {
    auto at = ref.find_first_of("@:");
    if (at == std::string::npos || at == 0)
      return Error(Errc::kInvalidArgument, "model reference " + ref + " is not <model>@<stage>");
    ModelRef out;
    out.model = ref.substr(0, at);
    EDGELOOP_ASSIGN_OR_RETURN(Json v, impl_.GetModelVersion(out.model, ref.substr(at + 1)));
    if (!v.contains("version") || !v["version"].is_number_integer() || !v.contains("artifacts") ||
        !v["artifacts"].is_object())
      return Error(Errc::kInternal, "model " + ref +
                                        ": the registry record has no version or "
                                        "artifacts");
    out.version = v["version"].get<int64_t>();
    out.name = out.model + ":" + std::to_string(out.version);
    for (const auto& [variant, sha] : v["artifacts"].items()) {
      if (!sha.is_string())
        return Error(Errc::kInternal, out.name + ": artifact " + variant + " is not a sha256");
      out.artifacts[variant] = sha.get<std::string>();
    }
    auto artifact = [&](const char* variant) {
      auto it = out.artifacts.find(variant);
      return it == out.artifacts.end() ? std::string() : it->second;
    };
    // The training checkpoint travels as two artifacts (three for a model imported from ONNX,
    // whose graph is its structure); unpacked once per content, weights.pt last.
    const std::string art = impl_.options.data_dir + "/artifacts/";
    std::string meta = artifact("torch_meta"), weights = artifact("torch_weights");
    if (!meta.empty() && !weights.empty()) {
      std::string dir =
          impl_.options.data_dir + "/models/" + meta.substr(0, 16) + "-" + weights.substr(0, 16);
      if (!std::filesystem::exists(dir + "/weights.pt")) {
        EDGELOOP_RETURN_IF_ERROR(MakeDirs(dir));
        EDGELOOP_ASSIGN_OR_RETURN(std::string m, ReadFile(art + meta));
        EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/model.json", m));
        if (std::string graph = artifact("torch_graph"); !graph.empty()) {
          EDGELOOP_ASSIGN_OR_RETURN(std::string g, ReadFile(art + graph));
          EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/graph.onnx", g));
        }
        EDGELOOP_ASSIGN_OR_RETURN(std::string w, ReadFile(art + weights));
        EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/weights.pt", w));
      }
      out.training_dir = dir;
    }
    // A version registered with only its ONNX file (trained elsewhere) fine-tunes from that
    // file, which the worker imports.
    if (std::string fp32 = artifact("fp32"); !fp32.empty()) out.onnx_path = art + fp32;
    return out;
  }

  Result<std::string> StoreArtifact(const std::string& path) override {
    EDGELOOP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
    std::string sha = Sha256Hex(bytes);
    std::string dir = impl_.options.data_dir + "/artifacts";
    EDGELOOP_RETURN_IF_ERROR(MakeDirs(dir));
    if (!std::filesystem::exists(dir + "/" + sha))
      EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + sha, bytes));
    return sha;
  }

  Result<RegisteredVersion> RegisterVersion(const std::string& model, const NewVersion& version,
                                            const std::string& stage) override {
    ModelVersionSpec spec;
    spec.model = model;
    spec.artifacts = version.artifacts;
    spec.parent = version.parent;
    spec.dataset_snapshot = version.dataset_snapshot;
    spec.code_version = version.code_version;
    spec.hyperparameters = version.hyperparameters;
    spec.hyperparameters["pipeline"] = version.pipeline;
    spec.hyperparameters["run"] = version.run;
    spec.metrics = version.metrics;
    Json gates = Json::array();
    for (const auto& g : version.gates)
      gates.push_back({{"expr", g.expr}, {"value", g.value}, {"passed", g.passed}});
    spec.metrics["gates"] = gates;
    EDGELOOP_ASSIGN_OR_RETURN(int64_t n, impl_.RegisterModelVersion(spec));
    if (stage != "candidate") EDGELOOP_RETURN_IF_ERROR(impl_.SetStage(model, n, stage));
    return RegisteredVersion{model, n, model + ":" + std::to_string(n)};
  }

  Result<std::string> StartRollout(const Json& spec, const std::string& model,
                                   int64_t version) override {
    return impl_.StartRollout(spec, model, version);
  }

  // The steps so far. The run's status stays "running" here: its final status is written
  // together with finished_ms when the run returns, so no reader sees a finished run without
  // its finish time.
  void OnProgress(const RunResult& run) override {
    Status saved = impl_.pipelines->SaveProgress(run_id_, run.ToJson());
    if (!saved.ok()) impl_.BackgroundFailure("run_progress", saved.error(), {"run", run_id_});
  }

 private:
  Server::Impl& impl_;
  std::string run_id_;
};

}  // namespace

Status Server::Impl::RecoverInterruptedRuns() {
  // Runs that were running when the server stopped cannot be resumed mid-step: they failed,
  // at the step they were in, and the record says why.
  EDGELOOP_ASSIGN_OR_RETURN(auto interrupted, pipelines->RunsWithStatus("running"));
  const int64_t now = NowMs();
  for (RunRow& run : interrupted) {
    Json& result = run.result;
    std::string at;
    if (result.contains("steps") && result["steps"].is_array())
      for (auto& step : result["steps"]) {
        if (!step.is_object()) continue;
        std::string st = step.value("status", "");
        if (st == "running") {
          at = step.value("name", "");
          step["status"] = "failed";
        } else if (st == "pending") {
          step["status"] = "skipped";
        }
      }
    const std::string reason =
        "the server stopped during the run" + (at.empty() ? "" : " (in " + at + ")");
    result["status"] = "failed";
    result["failed_step"] = at;
    result["reason"] = reason;
    EDGELOOP_RETURN_IF_ERROR(pipelines->Finish(run.id, "failed", now, result));
    log::Warn("run_interrupted", {{"run", run.id}, {"step", at}, {"reason", reason}});
  }
  return Status::Ok();
}

Result<std::string> Server::Impl::QueueRun(const std::string& pipeline,
                                           const std::string& trigger) {
  if (auto p = pipelines->Get(pipeline); !p.ok()) return p.error();
  RunRow run;
  run.created_ms = NowMs();
  run.id = "run-" + std::to_string(run.created_ms) + "-" + crypto::RandomHex(2);
  run.pipeline = pipeline;
  run.trigger = trigger;
  run.status = "queued";
  EDGELOOP_RETURN_IF_ERROR(pipelines->InsertRun(run));
  return run.id;
}

// A drift alarm fires a run once per version of the parent model: the alarm must come from a
// device running the parent's current version, no rollout may be under way (devices still on
// the old model keep their alarms until they update), and no earlier run may have been fired
// by drift on that version. "" when nothing fires.
std::string Server::Impl::DriftTrigger(const PipelineSpec& spec, int64_t last_run_ms) {
  auto busy = rollouts->AnyActive();
  if (!busy.ok() || *busy) return "";
  std::string parent;
  if (!spec.train.parent.empty()) {
    auto at = spec.train.parent.find_first_of("@:");
    if (at == std::string::npos) return "";
    auto v = GetModelVersion(spec.train.parent.substr(0, at), spec.train.parent.substr(at + 1));
    if (!v.ok()) return "";
    if (!v->contains("version") || !(*v)["version"].is_number_integer()) return "";
    parent = spec.train.parent.substr(0, at) + ":" + std::to_string((*v)["version"].get<int64_t>());
  }
  auto alarms = fleet->DriftAlarms(last_run_ms, parent);
  if (!alarms.ok()) {
    BackgroundFailure("trigger_check", alarms.error(), {"pipeline", spec.name});
    return "";
  }
  if (alarms->empty()) return "";
  const std::string on = parent.empty() ? alarms->front().model_version : parent;
  auto before = pipelines->HasDriftRun(spec.name, on);
  if (!before.ok()) {
    BackgroundFailure("trigger_check", before.error(), {"pipeline", spec.name});
    return "";
  }
  if (*before) return "";
  // Enough labelled samples from after the drift began (the first alarm of those raised):
  // samples from before it would retrain on the domain the model already knows.
  int64_t since = 0;
  for (const auto& a : *alarms)
    if (a.since_ms > 0 && (since == 0 || a.since_ms < since)) since = a.since_ms;
  Json recent = spec.dataset.is_object() ? spec.dataset : Json::object();
  if (since > 0 && (!recent.contains("from_ms") || !recent["from_ms"].is_number_integer() ||
                    recent["from_ms"].get<int64_t>() < since))
    recent["from_ms"] = since;
  auto fresh = CountLabelled(recent);
  if (!fresh.ok() || *fresh < spec.trigger.min_labelled_samples) return "";
  return "drift_alarm:" + alarms->front().device_id + " on " + on;
}

void Server::Impl::CheckTriggers() {
  auto rows = pipelines->List();
  if (!rows.ok()) return BackgroundFailure("trigger_check", rows.error());
  for (const PipelineRow& p : *rows) {
    auto spec = ParsePipeline(p.yaml, p.name);
    if (!spec.ok()) {
      BackgroundFailure("trigger_check", spec.error(), {"pipeline", p.name});
      continue;
    }
    // One run per pipeline at a time: nothing new while one is queued or running.
    auto active = pipelines->HasActiveRun(p.name);
    if (!active.ok()) {
      BackgroundFailure("trigger_check", active.error(), {"pipeline", p.name});
      continue;
    }
    if (*active) continue;
    // Only samples the run would learn from count: those of the pipeline's dataset filter
    // (its device groups, devices, label sources).
    auto count = CountLabelled(spec->dataset);
    if (!count.ok()) {
      BackgroundFailure("trigger_check", count.error(), {"pipeline", p.name});
      continue;
    }
    const int64_t labelled = *count, fresh = labelled - p.labelled_seen;
    std::string trigger;
    const TriggerSpec& t = spec->trigger;
    if (t.new_labelled_samples > 0 && fresh >= t.new_labelled_samples) {
      trigger = "new_labelled_samples";
    } else if (t.drift_alarm && fresh >= t.min_labelled_samples) {
      trigger = DriftTrigger(*spec, p.last_run_ms);
    }
    if (trigger.empty() && t.schedule_seconds > 0 &&
        NowMs() - p.last_run_ms >= t.schedule_seconds * 1000 && fresh >= t.min_labelled_samples)
      trigger = "schedule";
    if (trigger.empty()) continue;
    auto queued = QueueRun(p.name, trigger);
    if (!queued.ok()) {
      BackgroundFailure("trigger_check", queued.error(), {"pipeline", p.name});
      continue;
    }
    log::Info("run_queued", {{"run", *queued},
                             {"pipeline", p.name},
                             {"trigger", trigger},
                             {"labelled", labelled},
                             {"labelled_seen", p.labelled_seen}});
    Status marked = pipelines->MarkTriggered(p.name, NowMs(), labelled);
    if (!marked.ok()) BackgroundFailure("trigger_check", marked.error(), {"pipeline", p.name});
  }
}

void Server::Impl::ExecuteQueuedRun() {
  auto claimed = pipelines->ClaimNextQueued();
  if (!claimed.ok()) return BackgroundFailure("run_start", claimed.error());
  if (!*claimed) return;
  const RunRow& run = (*claimed)->first;
  const std::string& yaml = (*claimed)->second;
  log::Info("run_started", {{"run", run.id}, {"pipeline", run.pipeline}, {"trigger", run.trigger}});
  const auto t0 = std::chrono::steady_clock::now();
  ServerHost host(*this, run.id);
  auto spec = ParsePipeline(yaml, run.pipeline);
  RunResult result;
  if (!spec.ok()) {
    result.status = "failed";
    result.reason = spec.error().message;
  } else {
    RunContext ctx;
    ctx.run_id = run.id;
    ctx.work_dir = options.data_dir + "/runs/" + run.id;
    ctx.executable =
        options.worker_executable.empty() ? SelfExecutable() : options.worker_executable;
    ctx.trigger = run.trigger;
    ctx.cancel = &run_cancel;
    result = RunPipeline(*spec, ctx, host);
  }
  if (!leader && !stopping) {
    // The lease was lost during the run: the next leader settles it (RecoverInterruptedRuns),
    // and this replica must not write beside it.
    log::Warn("run_abandoned", {{"run", run.id},
                                {"replica", replica_id},
                                {"reason", "the leader lease was lost during the run"}});
    return;
  }
  Status done = pipelines->Finish(run.id, result.status, NowMs(), result.ToJson());
  if (!done.ok()) BackgroundFailure("run_finish", done.error(), {"run", run.id});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics.ObserveRun(result.status, seconds);
  for (const auto& step : result.steps)
    if (step.status == "succeeded" || step.status == "failed")
      metrics.ObserveRunStep(step.name, step.duration_s);
  log::Write(result.status == "failed" ? log::Level::kWarn : log::Level::kInfo, "run_finished",
             {{"run", run.id},
              {"pipeline", run.pipeline},
              {"status", result.status},
              {"seconds", seconds},
              {"failed_step", result.failed_step},
              {"reason", result.reason},
              {"model_version", result.model_version}});
}

void Server::Impl::BackgroundFailure(const char* where, const Error& e, log::Field context) {
  metrics.CountBackgroundError(where);
  log::Warn("background_failure",
            {{"where", where}, context, {"code", ErrcName(e.code)}, {"error", e.message}});
}

void Server::Impl::Guarded(const char* where, const std::function<void()>& fn) {
  // Nothing a background loop calls may end the process: an exception is logged, counted
  // and the loop goes on with its next round.
  try {
    fn();
  } catch (const std::exception& e) {
    BackgroundFailure(where, Error(Errc::kInternal, std::string("exception: ") + e.what()));
  } catch (...) {
    BackgroundFailure(where, Error(Errc::kInternal, "unknown exception"));
  }
}

void Server::Impl::PollLease() {
  const bool held = lease->Poll();
  if (held && !leader) {
    // The previous leader's runs first: nothing of this replica runs until they are settled.
    run_cancel = false;
    if (Status st = RecoverInterruptedRuns(); !st.ok()) {
      // Not leader yet: the next poll tries again (the lease stays held meanwhile).
      BackgroundFailure("leader_takeover", st.error(), {"replica", replica_id});
      return;
    }
    leader = true;
    lease_error.clear();
    metrics.CountLeaderChange("acquired");
    log::Info("leader_acquired", {{"replica", replica_id}});
  } else if (!held && leader) {
    leader = false;
    run_cancel = true;  // a run in progress stops at its next step boundary
    metrics.CountLeaderChange("lost");
    log::Warn("leader_lost",
              {{"replica", replica_id},
               {"reason", lease->last_error().empty() ? "the lease is held by another replica"
                                                      : lease->last_error()},
               {"hint",
                "background work stops here; the replica that takes the lease next "
                "recovers the runs that were in progress"}});
  }
  // The database cannot be reached for the lease: said once per distinct reason, not every
  // interval.
  if (!held && lease->last_error() != lease_error) {
    lease_error = lease->last_error();
    if (!lease_error.empty())
      BackgroundFailure("leader_lease", Error(Errc::kIo, lease_error), {"replica", replica_id});
  }
}

void Server::Impl::StartWorkers() {
  stopping = false;
  run_cancel = false;
  auto pause = [this] {
    for (int i = 0; i < options.background_interval_ms / 50 && !stopping; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  };
  // The lease first, once, so that a sole server (SQLite) or the first replica leads at once.
  Guarded("leader_lease", [this] { PollLease(); });
  workers.emplace_back([this, pause] {
    while (!stopping) {
      pause();
      if (!stopping) Guarded("leader_lease", [this] { PollLease(); });
      // Every replica: update metadata whose push failed goes out once the broker is back.
      if (!stopping) Guarded("update_push", [this] { FlushDeploymentPushes(); });
    }
  });
  workers.emplace_back([this, pause] {
    while (!stopping) {
      if (leader) Guarded("trigger_check", [this] { CheckTriggers(); });
      if (leader) Guarded("pipeline_run", [this] { ExecuteQueuedRun(); });
      pause();
    }
  });
  workers.emplace_back([this, pause] {
    while (!stopping) {
      if (leader) Guarded("rollout_tick", [this] { TickRollouts(); });
      pause();
    }
  });
}

void Server::Impl::StopWorkers() {
  stopping = true;
  run_cancel = true;
  for (auto& w : workers)
    if (w.joinable()) w.join();
  workers.clear();
  // Given up at once, so another replica takes over at its next poll rather than when this
  // process's connection times out.
  if (lease && leader) log::Info("leader_released", {{"replica", replica_id}});
  leader = false;
  if (lease) lease->Release();
}

void Server::Impl::PipelineRoutes() {
  auto& s = *http;
  // Body: the pipeline YAML (Content-Type anything) or JSON {"yaml": "..."}.
  s.Post("/v1/pipelines", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "write")) return;
    std::string yaml = req.body;
    if (!req.body.empty() && req.body.front() == '{') {
      auto j = ParseJsonBounded(req.body, "pipeline");
      if (!j.ok()) return SendError(res, 400, j.error().message);
      if (j->contains("yaml") && (*j)["yaml"].is_string()) yaml = (*j)["yaml"].get<std::string>();
    }
    auto spec = ParsePipeline(yaml, "pipeline");
    if (!spec.ok()) return SendError(res, 400, spec.error().message);
    Status st = db->Transaction([&]() -> Status {
      auto old = pipelines->Get(spec->name);
      if (!old.ok() && old.error().code != Errc::kNotFound) return old.error();
      // A new pipeline counts labelled samples from now on; a changed one keeps its count
      // unless its dataset filter changed.
      PipelineRow row;
      row.name = spec->name;
      row.yaml = yaml;
      row.created_ms = NowMs();
      EDGELOOP_ASSIGN_OR_RETURN(row.labelled_seen, CountLabelled(spec->dataset));
      row.last_run_ms = row.created_ms;
      if (old.ok()) {
        row.last_run_ms = old->last_run_ms;
        auto before = ParsePipeline(old->yaml, spec->name);
        if (before.ok() && before->dataset == spec->dataset) row.labelled_seen = old->labelled_seen;
      }
      return pipelines->Put(row);
    });
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(Json{{"name", spec->name}, {"gates", spec->gates.size()}}.dump(),
                    "application/json");
  });
  s.Get("/v1/pipelines", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto rows = pipelines->List();
    if (!rows.ok()) return SendError(res, rows.error());
    Json out = Json::array();
    for (const auto& p : *rows)
      out.push_back({{"name", p.name}, {"yaml", p.yaml}, {"labelled_seen", p.labelled_seen}});
    res.set_content(Json{{"pipelines", out}}.dump(), "application/json");
  });
  s.Post(R"(/v1/pipelines/([a-z0-9_-]+)/runs)",
         [this](const http::Request& req, http::Response& res) {
           if (!RequireScope(req, res, "write")) return;
           auto id = QueueRun(req.matches[1], "manual");
           if (!id.ok()) return SendError(res, id.error());
           res.status = 202;
           res.set_content(Json{{"id", *id}, {"status", "queued"}}.dump(), "application/json");
         });
  s.Get("/v1/runs", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    std::optional<std::string> pipeline;
    if (req.has_param("pipeline")) pipeline = req.get_param_value("pipeline");
    auto rows = pipelines->Runs(pipeline);
    if (!rows.ok()) return SendError(res, rows.error());
    Json out = Json::array();
    for (const auto& run : *rows) out.push_back(run.ToJson());
    res.set_content(Json{{"runs", out}}.dump(), "application/json");
  });
  s.Get(R"(/v1/runs/([A-Za-z0-9-]+))", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto run = pipelines->GetRun(req.matches[1]);
    if (!run.ok()) return SendError(res, run.error());
    res.set_content(run->ToJson().dump(), "application/json");
  });
  s.Get(R"(/v1/runs/([A-Za-z0-9-]+)/logs/([a-z]+))",
        [this](const http::Request& req, http::Response& res) {
          if (!RequireScope(req, res, "read")) return;
          auto log = ReadFile(options.data_dir + "/runs/" + std::string(req.matches[1]) + "/" +
                                  std::string(req.matches[2]) + ".log",
                              16u << 20);
          if (!log.ok()) return SendError(res, 404, "no such log");
          res.set_content(*log, "text/plain");
        });
}

}  // namespace edgeloop::cloud
