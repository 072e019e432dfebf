#include "common/worker_protocol.hpp"

#include "common/bounded_parse.hpp"

namespace edgeloop::worker {
namespace {

using Json = nlohmann::json;

Result<Json> Document(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, ParseJsonBounded(text, origin));
  if (!j.is_object()) return Error(Errc::kFormat, origin + ": a worker report is a JSON object");
  if (!j.contains("protocol") || !j["protocol"].is_number_integer())
    return Error(Errc::kFormat, origin + ": no worker protocol version (\"protocol\")");
  const int version = j["protocol"].get<int>();
  if (version != kWorkerProtocol)
    return Error(Errc::kMismatch, origin + ": the worker speaks protocol " +
                                      std::to_string(version) + ", this server " +
                                      std::to_string(kWorkerProtocol) +
                                      " (server and worker come from different builds)");
  return j;
}

Result<double> Number(const Json& parent, const char* key, const std::string& where) {
  if (!parent.is_object() || !parent.contains(key) || !parent[key].is_number())
    return Error(Errc::kFormat, where + ": " + key + " is missing or not a number");
  return parent[key].get<double>();
}

}  // namespace

Result<EvalReport> ParseEvalReport(const std::string& text, const std::string& origin) {
  EDGELOOP_ASSIGN_OR_RETURN(Json j, Document(text, origin));
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
  EDGELOOP_ASSIGN_OR_RETURN(Json j, Document(text, origin));
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
