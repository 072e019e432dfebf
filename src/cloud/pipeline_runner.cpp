#include "cloud/pipeline_runner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/bounded_parse.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "common/version.hpp"
#include "common/worker_protocol.hpp"

namespace edgeloop::cloud {
namespace {

using Json = nlohmann::json;

// Runs the steps in order; the first failure ends the run.
class Runner {
 public:
  Runner(const PipelineSpec& spec, const RunContext& ctx, PipelineHost& host)
      : spec_(spec), ctx_(ctx), host_(host) {
    for (const char* s :
         {"snapshot", "train", "export", "evaluate", "gates", "package", "register", "rollout"})
      run_.steps.push_back({s, "pending", 0, "", ctx.work_dir + "/" + s + ".log"});
  }

  RunResult Go() {
    Status st = MakeDirs(ctx_.work_dir);
    if (!st.ok()) return Finish("failed", "snapshot", st.error().message);
    using Fn = Status (Runner::*)(StepRecord&);
    const Fn steps[] = {&Runner::Snapshot, &Runner::Train,   &Runner::Export,   &Runner::Evaluate,
                        &Runner::Gates,    &Runner::Package, &Runner::Register, &Runner::Rollout};
    for (size_t i = 0; i < run_.steps.size(); ++i) {
      StepRecord& step = run_.steps[i];
      if (ctx_.cancel != nullptr && ctx_.cancel->load())
        return Finish("failed", step.name, "cancelled (server stopping)");
      step.status = "running";
      host_.OnProgress(run_);
      auto t0 = std::chrono::steady_clock::now();
      Status s = (this->*steps[i])(step);
      step.duration_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!s.ok()) {
        step.status = "failed";
        step.detail = s.error().message;
        // A failed gate is a verdict on the model, not a fault of the pipeline.
        return Finish(step.name == "gates" ? "rejected" : "failed", step.name, s.error().message);
      }
      if (step.status == "running") step.status = "succeeded";
      host_.OnProgress(run_);
    }
    return Finish("succeeded", "", "");
  }

 private:
  // A model under evaluation: its ONNX file and where its metrics go.
  struct Who {
    std::string onnx;
    std::map<std::string, double>* into;
  };

  RunResult Finish(const std::string& status, const std::string& step, const std::string& why) {
    run_.status = status;
    run_.failed_step = step;
    run_.reason = why;
    for (auto& s : run_.steps)
      if (s.status == "pending") s.status = "skipped";
    host_.OnProgress(run_);
    return run_;
  }

  // Runs `edgeloop <kind> --request FILE`, the request written to FILE in the run folder. The
  // step's log gets the command and the request, then the worker's output.
  template <typename Request>
  Status Worker(StepRecord& step, const Request& request) {
    const std::string kind = Request::kKind;
    const std::string file =
        ctx_.work_dir + "/request-" + std::to_string(requests_++) + "-" + kind + ".json";
    const std::string body = request.ToJson().dump(2) + "\n";
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(file, body));
    const std::vector<std::string> args = {ctx_.executable, kind, "--request", file};
    std::string cmd;
    for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
    {
      std::ofstream log(step.log, std::ios::app | std::ios::binary);
      log << "$ " << cmd << "\n" << body;
      if (!log.flush()) return Error(Errc::kIo, step.log + ": cannot write the step's log");
    }
    std::error_code ec;
    const auto worker_output = std::filesystem::file_size(step.log, ec);
    RunOptions o;
    o.die_with_parent = true;
    o.log_path = step.log;
    o.cancel = ctx_.cancel;
    o.timeout = std::chrono::seconds(3600);
    EDGELOOP_ASSIGN_OR_RETURN(ProcessResult r, RunProcess(args, o));
    if (r.exit_code == 0 && r.signal == 0 && !r.timed_out) return Status::Ok();
    // The last line the worker wrote says why, in its own words.
    std::string last;
    if (auto log = ReadFile(step.log); log.ok() && !ec && log->size() > worker_output) {
      std::string text = log->substr(worker_output);
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      last = text.substr(
          text.find_last_of('\n') == std::string::npos ? 0 : text.find_last_of('\n') + 1);
    }
    return Error(Errc::kInternal, "worker " + kind + " " + r.Describe() +
                                      (last.empty() ? "" : ": " + last) + " (log " + step.log +
                                      ")");
  }

  std::string Split(const char* split) const { return data_ + ":" + split; }

  // The class names of a parent's training checkpoint (model.json), or none.
  static std::vector<std::string> ParentClassNames(const ModelRef& parent) {
    if (parent.training_dir.empty()) return {};
    const std::string path = parent.training_dir + "/model.json";
    auto text = ReadFile(path, 16 << 20);
    if (!text.ok()) return {};
    ParseLimits limits;
    limits.max_bytes = 16 << 20;
    auto parsed = ParseJsonBounded(*text, path, limits);
    if (!parsed.ok()) return {};
    const Json& m = *parsed;
    if (!m.is_object() || !m.contains("class_names") || !m["class_names"].is_array()) return {};
    std::vector<std::string> names;
    for (const auto& n : m["class_names"])
      if (n.is_string()) names.push_back(n.get<std::string>());
    return names;
  }

  Status Snapshot(StepRecord& step) {
    Json dataset = spec_.dataset;
    // Devices label samples with class indices of the model they run: the parent's. The
    // snapshot records those classes by name, unless the pipeline names them itself.
    if (spec_.train.mode == "finetune" &&
        (!dataset.contains("class_names") || dataset["class_names"].empty())) {
      // Resolved once for the run: the train step fine-tunes this same version.
      auto parent = host_.ResolveModel(spec_.train.parent);
      if (parent.ok()) {
        parent_ = *parent;
        auto names = ParentClassNames(*parent_);
        if (!names.empty()) dataset["class_names"] = names;
      }
    }
    EDGELOOP_ASSIGN_OR_RETURN(SnapshotRef snap, host_.CreateSnapshot(dataset));
    run_.snapshot_id = snap.id;
    data_ = "snapshot:" + snap.dir;
    step.detail = "snapshot " + run_.snapshot_id.substr(0, 12) + ": " + std::to_string(snap.train) +
                  " train, " + std::to_string(snap.test) + " test";
    if (snap.train == 0 || snap.test == 0)
      return Error(Errc::kInvalidArgument,
                   "snapshot " + run_.snapshot_id.substr(0, 12) +
                       " has no training or no test samples (labelled data missing?)");
    return Status::Ok();
  }

  // The settings train and finetune share.
  worker::TrainingSettings Training() const {
    const TrainSpec& t = spec_.train;
    worker::TrainingSettings s;
    s.data = Split("train");
    s.out = model_dir_;
    s.epochs = t.epochs;
    s.batch_size = t.batch_size;
    s.lr = t.lr;
    s.patience = t.patience;
    s.seed = t.seed;
    s.threads = ctx_.threads;
    s.nproc = t.nproc;
    return s;
  }

  Status Train(StepRecord& step) {
    const TrainSpec& t = spec_.train;
    model_dir_ = ctx_.work_dir + "/model";
    if (t.mode != "finetune") {
      worker::TrainRequest r;
      r.name = spec_.register_model;
      r.training = Training();
      EDGELOOP_RETURN_IF_ERROR(Worker(step, r));
      step.detail = "trained from scratch";
      return Status::Ok();
    }
    if (!parent_) {
      EDGELOOP_ASSIGN_OR_RETURN(ModelRef parent, host_.ResolveModel(t.parent));
      parent_ = std::move(parent);
    }
    worker::FinetuneRequest r;
    // The training checkpoint when there is one, else the version's ONNX file.
    r.parent = !parent_->training_dir.empty() ? parent_->training_dir : parent_->onnx_path;
    if (r.parent.empty())
      return Error(Errc::kNotFound, "parent " + parent_->name +
                                        " has neither a training checkpoint nor an ONNX file");
    r.strategy = t.strategy;
    r.k = t.k;
    r.backbone_lr_scale = t.backbone_lr_scale;
    r.min_epoch_samples = t.min_epoch_samples;
    r.training = Training();
    EDGELOOP_RETURN_IF_ERROR(Worker(step, r));
    step.detail = "fine-tuned " + parent_->name + " (" + t.strategy + ")";
    return Status::Ok();
  }

  Status Export(StepRecord& step) {
    onnx_ = ctx_.work_dir + "/model.onnx";
    EDGELOOP_RETURN_IF_ERROR(Worker(step, worker::ExportRequest{model_dir_, onnx_}));
    run_.metrics["model_bytes"] = static_cast<double>(std::filesystem::file_size(onnx_));
    return Status::Ok();
  }

  // Accuracy and friends of one model on one dataset, with the given metric prefix.
  Status EvalInto(StepRecord& step, const std::string& model_dir, const std::string& data,
                  const EvalSet* set, bool robustness, const std::string& prefix,
                  std::map<std::string, double>& into) {
    worker::EvalRequest r;
    r.model = model_dir;
    r.data = data;
    r.out = ctx_.work_dir + "/eval-" + std::to_string(evals_++) + ".json";
    if (set != nullptr && !set->corrupt.empty()) {
      r.corrupt = set->corrupt;
      if (set->severity > 0) r.severity = set->severity;  // else eval's own default
    }
    r.robustness = robustness;
    EDGELOOP_RETURN_IF_ERROR(Worker(step, r));
    EDGELOOP_ASSIGN_OR_RETURN(std::string text, ReadFile(r.out, 64 << 20));
    EDGELOOP_ASSIGN_OR_RETURN(worker::EvalReport report, worker::ParseEvalReport(text, r.out));
    for (const auto& [k, v] : report.metrics) into[prefix + k] = v;
    if (report.mean_corruption_accuracy)
      into["mean_corruption_accuracy"] = *report.mean_corruption_accuracy;
    return Status::Ok();
  }

  // One batch-1 latency measurement of a model on the edge runtime: {p50, p95} in us.
  Result<std::pair<double, double>> LatencyOnce(StepRecord& step, const std::string& onnx) {
    worker::InferRequest r;
    r.model = onnx;
    r.input = Split("test");
    r.out = ctx_.work_dir + "/latency-" + std::to_string(evals_++) + ".json";
    r.limit = spec_.evaluate.latency_samples;
    r.warmup = 20;
    EDGELOOP_RETURN_IF_ERROR(Worker(step, r));
    EDGELOOP_ASSIGN_OR_RETURN(std::string text, ReadFile(r.out, 64 << 20));
    EDGELOOP_ASSIGN_OR_RETURN(worker::LatencyReport report,
                              worker::ParseLatencyReport(text, r.out));
    return std::make_pair(report.p50_us, report.p95_us);
  }

  // Latency of every model, measured in alternating rounds (candidate, champion, candidate,
  // ...) so that both see the same load on a shared machine rather than one of them a busier
  // minute; each figure is the median over the rounds.
  Status LatencyInto(StepRecord& step, const std::vector<Who>& who) {
    constexpr int kRounds = 3;
    std::vector<std::vector<double>> p50(who.size()), p95(who.size());
    for (int round = 0; round < kRounds; ++round)
      for (size_t i = 0; i < who.size(); ++i) {
        EDGELOOP_ASSIGN_OR_RETURN(auto q, LatencyOnce(step, who[i].onnx));
        p50[i].push_back(q.first);
        p95[i].push_back(q.second);
      }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    for (size_t i = 0; i < who.size(); ++i) {
      (*who[i].into)["latency_p50_us"] = median(p50[i]);
      (*who[i].into)["latency_p95_us"] = median(p95[i]);
    }
    return Status::Ok();
  }

  // Candidate and champion on exactly the same data.
  Status Evaluate(StepRecord& step) {
    const EvaluateSpec& e = spec_.evaluate;
    auto champion = host_.ResolveModel(spec_.register_model + "@production");
    if (champion.ok() && !champion->training_dir.empty()) champion_ = *champion;
    std::vector<Who> who = {{onnx_, &run_.metrics}};
    std::string champion_onnx;
    if (champion_) {
      champion_onnx = ctx_.work_dir + "/champion.onnx";
      EDGELOOP_RETURN_IF_ERROR(
          Worker(step, worker::ExportRequest{champion_->training_dir, champion_onnx}));
      who.push_back({champion_onnx, &run_.champion_metrics});
    }
    // On the exported ONNX with the edge runtime (what devices will run, and several times
    // faster than libtorch here), the robustness suite included.
    for (auto& w : who) {
      EDGELOOP_RETURN_IF_ERROR(
          EvalInto(step, w.onnx, Split("test"), nullptr, e.robustness, "", *w.into));
      for (const auto& set : e.sets)
        EDGELOOP_RETURN_IF_ERROR(
            EvalInto(step, w.onnx, set.data, &set, false, set.name + ".", *w.into));
    }
    if (e.latency) EDGELOOP_RETURN_IF_ERROR(LatencyInto(step, who));
    char buf[160];
    std::snprintf(buf, sizeof buf, "candidate accuracy %.4f", run_.metrics["accuracy"]);
    step.detail = buf;
    if (champion_) {
      std::snprintf(buf, sizeof buf, ", champion %s %.4f", champion_->name.c_str(),
                    run_.champion_metrics["accuracy"]);
      step.detail += buf;
    }
    return Status::Ok();
  }

  Status Gates(StepRecord& step) {
    const auto* champion = champion_ ? &run_.champion_metrics : nullptr;
    std::string failed;
    for (const auto& g : spec_.gates) {
      run_.gates.push_back(EvaluateGate(g, run_.metrics, champion));
      const GateResult& r = run_.gates.back();
      if (!r.passed) {
        char buf[200];
        std::snprintf(buf, sizeof buf, "%s (%.6g vs %.6g)%s%s", g.text.c_str(), r.value,
                      r.threshold, r.detail.empty() ? "" : ": ", r.detail.c_str());
        failed += (failed.empty() ? "" : "; ") + std::string(buf);
      }
    }
    step.detail = std::to_string(spec_.gates.size()) + " gates";
    if (!failed.empty()) return Error(Errc::kInvalidArgument, "gate failed: " + failed);
    return Status::Ok();
  }

  Status Package(StepRecord& step) {
    artifacts_.clear();
    EDGELOOP_ASSIGN_OR_RETURN(std::string fp32, host_.StoreArtifact(onnx_));
    artifacts_["fp32"] = fp32;
    // The training checkpoint too, so a later run can fine-tune from this version.
    EDGELOOP_ASSIGN_OR_RETURN(std::string meta, host_.StoreArtifact(model_dir_ + "/model.json"));
    EDGELOOP_ASSIGN_OR_RETURN(std::string weights, host_.StoreArtifact(model_dir_ + "/weights.pt"));
    artifacts_["torch_meta"] = meta;
    artifacts_["torch_weights"] = weights;
    if (std::filesystem::exists(model_dir_ + "/graph.onnx")) {
      EDGELOOP_ASSIGN_OR_RETURN(std::string graph, host_.StoreArtifact(model_dir_ + "/graph.onnx"));
      artifacts_["torch_graph"] = graph;
    }
    run_.artifacts = artifacts_;
    if (!spec_.package_int8) {
      step.status = "succeeded";
      step.detail = "fp32 only";
      return Status::Ok();
    }
    std::string int8 = ctx_.work_dir + "/model.int8.onnx";
    worker::QuantizeRequest quantize;
    quantize.model = onnx_;
    quantize.calib = Split("train");
    quantize.out = int8;
    quantize.samples = spec_.calib_samples;
    quantize.seed = 0;
    EDGELOOP_RETURN_IF_ERROR(Worker(step, quantize));
    EDGELOOP_ASSIGN_OR_RETURN(std::string q, host_.StoreArtifact(int8));
    artifacts_["int8"] = q;
    run_.artifacts["int8"] = q;
    run_.metrics["int8_model_bytes"] = static_cast<double>(std::filesystem::file_size(int8));
    step.detail = "fp32 + int8";
    return Status::Ok();
  }

  Status Register(StepRecord& step) {
    NewVersion v;
    v.artifacts = artifacts_;
    v.parent = parent_ ? parent_->name : "";
    v.dataset_snapshot = run_.snapshot_id;
    v.code_version = CodeVersionString();
    v.hyperparameters = {{"mode", spec_.train.mode},
                         {"strategy", spec_.train.strategy},
                         {"k", spec_.train.k},
                         {"epochs", spec_.train.epochs},
                         {"batch_size", spec_.train.batch_size},
                         {"lr", spec_.train.lr},
                         {"seed", spec_.train.seed},
                         {"nproc", spec_.train.nproc}};
    v.metrics = run_.metrics;
    v.gates = run_.gates;
    v.pipeline = spec_.name;
    v.run = ctx_.run_id;
    EDGELOOP_ASSIGN_OR_RETURN(registered_,
                              host_.RegisterVersion(spec_.register_model, v, spec_.register_stage));
    run_.model_version = registered_.name;
    step.detail = run_.model_version + " (" + spec_.register_stage + ")";
    return Status::Ok();
  }

  Status Rollout(StepRecord& step) {
    if (spec_.rollout.is_null()) {
      step.status = "skipped";
      step.detail = "no rollout in the pipeline";
      return Status::Ok();
    }
    EDGELOOP_ASSIGN_OR_RETURN(
        run_.rollout_id,
        host_.StartRollout(spec_.rollout, spec_.register_model, registered_.version));
    step.detail = "rollout " + run_.rollout_id + " started";
    return Status::Ok();
  }

  const PipelineSpec& spec_;
  const RunContext& ctx_;
  PipelineHost& host_;
  RunResult run_;
  std::string data_, model_dir_, onnx_;
  std::optional<ModelRef> parent_, champion_;
  std::map<std::string, std::string> artifacts_;  // variant → sha256
  RegisteredVersion registered_;
  int evals_ = 0, requests_ = 0;
};

}  // namespace

Json RunResult::ToJson() const {
  Json steps_j = Json::array();
  for (const auto& s : steps)
    steps_j.push_back({{"name", s.name},
                       {"status", s.status},
                       {"duration_s", s.duration_s},
                       {"detail", s.detail},
                       {"log", s.log}});
  Json gates_j = Json::array();
  for (const auto& g : gates)
    gates_j.push_back({{"expr", g.expr},
                       {"value", g.value},
                       {"threshold", std::isnan(g.threshold) ? Json() : Json(g.threshold)},
                       {"passed", g.passed},
                       {"detail", g.detail}});
  return {{"status", status},
          {"failed_step", failed_step},
          {"reason", reason},
          {"steps", steps_j},
          {"gates", gates_j},
          {"metrics", metrics},
          {"champion_metrics", champion_metrics},
          {"snapshot_id", snapshot_id},
          {"model_version", model_version},
          {"rollout_id", rollout_id},
          {"artifacts", artifacts}};
}

RunResult RunPipeline(const PipelineSpec& spec, const RunContext& ctx, PipelineHost& host) {
  return Runner(spec, ctx, host).Go();
}

}  // namespace edgeloop::cloud
