#include "common/worker_protocol.hpp"

#include <set>

#include "common/bounded_parse.hpp"
#include "common/file.hpp"

namespace edgeloop::worker {
namespace {

using Json = nlohmann::json;

// Requests are a few paths and numbers: anything much larger or deeper is not one.
constexpr ParseLimits kRequestLimits{kMaxRequestBytes, 4, 256, 16 << 10};

// A document of this protocol: a JSON object whose "protocol" is kWorkerProtocol. `what`
// names the document ("report", "request"), `reader` the side that reads it.
Result<Json> Document(const std::string& text, const std::string& origin, const char* what,
                      const char* writer, const char* reader, const ParseLimits& limits = {}) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, ParseJsonBounded(text, origin, limits));
  if (!j.is_object())
    return Error(Errc::kFormat, origin + ": a worker " + what + " is a JSON object");
  if (!j.contains("protocol") || !j["protocol"].is_number_integer())
    return Error(Errc::kFormat, origin + ": no worker protocol version (\"protocol\")");
  const int64_t version = j["protocol"].get<int64_t>();
  if (version != kWorkerProtocol)
    return Error(Errc::kMismatch, origin + ": the " + writer + " speaks protocol " +
                                      std::to_string(version) + ", this " + reader + " " +
                                      std::to_string(kWorkerProtocol) +
                                      " (server and worker come from different builds)");
  return j;
}

Result<double> Number(const Json& parent, const char* key, const std::string& where) {
  if (!parent.is_object() || !parent.contains(key) || !parent[key].is_number())
    return Error(Errc::kFormat, where + ": " + key + " is missing or not a number");
  return parent[key].get<double>();
}

// "a train request", "an eval request".
std::string A(const std::string& kind) {
  const bool vowel = !kind.empty() && std::string("aeiou").find(kind[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + kind + " request";
}

// The fields of one request, each read once by name and type; Done() refuses the rest.
class Fields {
 public:
  Fields(const Json& j, std::string origin, const char* kind)
      : j_(j), origin_(std::move(origin)), kind_(kind) {}

  // A kind other than the expected one is a request for another command.
  Status Kind() {
    seen_.insert("protocol");
    EDGELOOP_ASSIGN_OR_RETURN(const Json* v, Get("kind"));
    if (!v->is_string()) return Bad("kind", "is not a string");
    const std::string kind = v->get<std::string>();
    if (kind != kind_)
      return Error(Errc::kFormat, origin_ + ": " + A(kind) + ", not " + A(kind_) + " (kind)");
    return Status::Ok();
  }

  // A string; empty only when allowed (a path or a name never is).
  Status Text(const char* key, std::string& out, bool may_be_empty = false) {
    EDGELOOP_ASSIGN_OR_RETURN(const Json* v, Get(key));
    if (!v->is_string()) return Bad(key, "is not a string");
    out = v->get<std::string>();
    if (out.empty() && !may_be_empty) return Bad(key, "is empty");
    return Status::Ok();
  }

  Status Integer(const char* key, int64_t& out, int64_t lo, int64_t hi) {
    EDGELOOP_ASSIGN_OR_RETURN(const Json* v, Get(key));
    if (!v->is_number_integer()) return Bad(key, "is not an integer");
    // An unsigned value over INT64_MAX is out of every range here.
    const bool huge =
        v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX);
    if (huge || v->get<int64_t>() < lo || v->get<int64_t>() > hi)
      return Bad(
          key, "is " + v->dump() + ", expected " + std::to_string(lo) + ".." + std::to_string(hi));
    out = v->get<int64_t>();
    return Status::Ok();
  }

  Status Unsigned(const char* key, uint64_t& out) {
    EDGELOOP_ASSIGN_OR_RETURN(const Json* v, Get(key));
    if (!v->is_number_unsigned()) return Bad(key, "is not a non-negative integer");
    out = v->get<uint64_t>();
    return Status::Ok();
  }

  Status Real(const char* key, double& out, double lo, double hi) {
    EDGELOOP_ASSIGN_OR_RETURN(const Json* v, Get(key));
    if (!v->is_number()) return Bad(key, "is not a number");
    out = v->get<double>();
    if (!(out >= lo && out <= hi))
      return Bad(key, "is " + v->dump() + ", expected " + Json(lo).dump() + ".." + Json(hi).dump());
    return Status::Ok();
  }

  Status Flag(const char* key, bool& out) {
    EDGELOOP_ASSIGN_OR_RETURN(const Json* v, Get(key));
    if (!v->is_boolean()) return Bad(key, "is not true or false");
    out = v->get<bool>();
    return Status::Ok();
  }

  // A field nobody asked for is a mistake (a typo, or a field of another protocol).
  Status Done() const {
    for (const auto& [key, value] : j_.items())
      if (!seen_.count(key))
        return Error(Errc::kFormat, origin_ + ": unknown field \"" + key + "\" in " + A(kind_));
    return Status::Ok();
  }

 private:
  Result<const Json*> Get(const char* key) {
    seen_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) return Error(Errc::kFormat, origin_ + ": " + key + " is missing");
    return &*it;
  }

  Error Bad(const char* key, const std::string& why) const {
    return Error(Errc::kFormat, origin_ + ": " + key + " " + why);
  }

  const Json& j_;
  std::string origin_;
  std::string kind_;
  std::set<std::string> seen_;
};

constexpr int64_t kMaxCount = int64_t{1} << 40;  // samples, limits: more than any dataset

// The request object of `kind`, its protocol and kind checked.
Result<Json> RequestDocument(const std::string& text, const std::string& origin) {
  return Document(text, origin, "request", "request", "worker", kRequestLimits);
}

Json Header(const char* kind) {
  Json j = {{"kind", kind}};
  Stamp(j);
  return j;
}

void Put(const TrainingSettings& t, Json& j) {
  j["data"] = t.data;
  j["out"] = t.out;
  j["epochs"] = t.epochs;
  j["batch_size"] = t.batch_size;
  j["lr"] = t.lr;
  j["patience"] = t.patience;
  j["seed"] = t.seed;
  j["threads"] = t.threads;
  j["nproc"] = t.nproc;
}

Status Read(Fields& f, TrainingSettings& t) {
  EDGELOOP_RETURN_IF_ERROR(f.Text("data", t.data));
  EDGELOOP_RETURN_IF_ERROR(f.Text("out", t.out));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("epochs", t.epochs, 1, 1000000));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("batch_size", t.batch_size, 1, 1 << 20));
  EDGELOOP_RETURN_IF_ERROR(f.Real("lr", t.lr, 0.0, 100.0));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("patience", t.patience, 0, 1000000));
  EDGELOOP_RETURN_IF_ERROR(f.Unsigned("seed", t.seed));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("threads", t.threads, 0, 4096));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("nproc", t.nproc, 1, 64));
  return Status::Ok();
}

}  // namespace

Json TrainRequest::ToJson() const {
  Json j = Header(kKind);
  j["name"] = name;
  Put(training, j);
  return j;
}

Json FinetuneRequest::ToJson() const {
  Json j = Header(kKind);
  j["parent"] = parent;
  j["strategy"] = strategy;
  j["k"] = k;
  j["backbone_lr_scale"] = backbone_lr_scale;
  j["min_epoch_samples"] = min_epoch_samples;
  Put(training, j);
  return j;
}

Json ExportRequest::ToJson() const {
  Json j = Header(kKind);
  j["model"] = model;
  j["out"] = out;
  return j;
}

Json EvalRequest::ToJson() const {
  Json j = Header(kKind);
  j["model"] = model;
  j["data"] = data;
  j["out"] = out;
  j["corrupt"] = corrupt;
  j["severity"] = severity;
  j["robustness"] = robustness;
  return j;
}

Json QuantizeRequest::ToJson() const {
  Json j = Header(kKind);
  j["model"] = model;
  j["calib"] = calib;
  j["out"] = out;
  j["samples"] = samples;
  j["seed"] = seed;
  return j;
}

Json InferRequest::ToJson() const {
  Json j = Header(kKind);
  j["model"] = model;
  j["input"] = input;
  j["out"] = out;
  j["limit"] = limit;
  j["warmup"] = warmup;
  return j;
}

Result<TrainRequest> ParseTrainRequest(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, RequestDocument(text, origin));
  Fields f(j, origin, TrainRequest::kKind);
  TrainRequest r;
  EDGELOOP_RETURN_IF_ERROR(f.Kind());
  EDGELOOP_RETURN_IF_ERROR(f.Text("name", r.name));
  EDGELOOP_RETURN_IF_ERROR(Read(f, r.training));
  EDGELOOP_RETURN_IF_ERROR(f.Done());
  return r;
}

Result<FinetuneRequest> ParseFinetuneRequest(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, RequestDocument(text, origin));
  Fields f(j, origin, FinetuneRequest::kKind);
  FinetuneRequest r;
  EDGELOOP_RETURN_IF_ERROR(f.Kind());
  EDGELOOP_RETURN_IF_ERROR(f.Text("parent", r.parent));
  EDGELOOP_RETURN_IF_ERROR(f.Text("strategy", r.strategy));
  if (r.strategy != "head" && r.strategy != "last-k" && r.strategy != "full")
    return Error(Errc::kFormat,
                 origin + ": strategy is \"" + r.strategy + "\", expected head, last-k or full");
  EDGELOOP_RETURN_IF_ERROR(f.Integer("k", r.k, 1, 1000));
  EDGELOOP_RETURN_IF_ERROR(f.Real("backbone_lr_scale", r.backbone_lr_scale, 0.0, 100.0));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("min_epoch_samples", r.min_epoch_samples, 0, kMaxCount));
  EDGELOOP_RETURN_IF_ERROR(Read(f, r.training));
  EDGELOOP_RETURN_IF_ERROR(f.Done());
  return r;
}

Result<ExportRequest> ParseExportRequest(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, RequestDocument(text, origin));
  Fields f(j, origin, ExportRequest::kKind);
  ExportRequest r;
  EDGELOOP_RETURN_IF_ERROR(f.Kind());
  EDGELOOP_RETURN_IF_ERROR(f.Text("model", r.model));
  EDGELOOP_RETURN_IF_ERROR(f.Text("out", r.out));
  EDGELOOP_RETURN_IF_ERROR(f.Done());
  return r;
}

Result<EvalRequest> ParseEvalRequest(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, RequestDocument(text, origin));
  Fields f(j, origin, EvalRequest::kKind);
  EvalRequest r;
  EDGELOOP_RETURN_IF_ERROR(f.Kind());
  EDGELOOP_RETURN_IF_ERROR(f.Text("model", r.model));
  EDGELOOP_RETURN_IF_ERROR(f.Text("data", r.data));
  EDGELOOP_RETURN_IF_ERROR(f.Text("out", r.out));
  EDGELOOP_RETURN_IF_ERROR(f.Text("corrupt", r.corrupt, /*may_be_empty=*/true));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("severity", r.severity, 1, 5));
  EDGELOOP_RETURN_IF_ERROR(f.Flag("robustness", r.robustness));
  EDGELOOP_RETURN_IF_ERROR(f.Done());
  return r;
}

Result<QuantizeRequest> ParseQuantizeRequest(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, RequestDocument(text, origin));
  Fields f(j, origin, QuantizeRequest::kKind);
  QuantizeRequest r;
  EDGELOOP_RETURN_IF_ERROR(f.Kind());
  EDGELOOP_RETURN_IF_ERROR(f.Text("model", r.model));
  EDGELOOP_RETURN_IF_ERROR(f.Text("calib", r.calib));
  EDGELOOP_RETURN_IF_ERROR(f.Text("out", r.out));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("samples", r.samples, 1, 100000));
  EDGELOOP_RETURN_IF_ERROR(f.Unsigned("seed", r.seed));
  EDGELOOP_RETURN_IF_ERROR(f.Done());
  return r;
}

Result<InferRequest> ParseInferRequest(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, RequestDocument(text, origin));
  Fields f(j, origin, InferRequest::kKind);
  InferRequest r;
  EDGELOOP_RETURN_IF_ERROR(f.Kind());
  EDGELOOP_RETURN_IF_ERROR(f.Text("model", r.model));
  EDGELOOP_RETURN_IF_ERROR(f.Text("input", r.input));
  EDGELOOP_RETURN_IF_ERROR(f.Text("out", r.out));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("limit", r.limit, 0, kMaxCount));
  EDGELOOP_RETURN_IF_ERROR(f.Integer("warmup", r.warmup, 0, kMaxCount));
  EDGELOOP_RETURN_IF_ERROR(f.Done());
  return r;
}

Result<std::string> ReadRequestFile(const std::string& path) {
  return ReadFile(path, kMaxRequestBytes);
}

Result<EvalReport> ParseEvalReport(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, Document(text, origin, "report", "worker", "server"));
  EvalReport r;
  const std::string where = origin + ": metrics";
  if (!j.contains("metrics") || !j["metrics"].is_object())
    return Error(Errc::kFormat, origin + ": metrics is missing or not an object");
  for (const char* k : {"accuracy", "macro_precision", "macro_recall", "macro_f1", "ece"}) {
    EDGELOOP_ASSIGN_OR_RETURN(r.metrics[k], Number(j["metrics"], k, where));
  }
  if (j.contains("robustness")) {
    EDGELOOP_ASSIGN_OR_RETURN(
        double mean, Number(j["robustness"], "mean_corruption_accuracy", origin + ": robustness"));
    r.mean_corruption_accuracy = mean;
  }
  return r;
}

Result<LatencyReport> ParseLatencyReport(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, Document(text, origin, "report", "worker", "server"));
  if (!j.contains("latency_us")) return Error(Errc::kFormat, origin + ": latency_us is missing");
  const Json& l = j["latency_us"];
  const std::string where = origin + ": latency_us";
  LatencyReport r;
  EDGELOOP_ASSIGN_OR_RETURN(r.p50_us, Number(l, "p50", where));
  EDGELOOP_ASSIGN_OR_RETURN(r.p95_us, Number(l, "p95", where));
  EDGELOOP_ASSIGN_OR_RETURN(r.p99_us, Number(l, "p99", where));
  return r;
}

}  // namespace edgeloop::worker
