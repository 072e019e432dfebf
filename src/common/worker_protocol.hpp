// What the pipeline runner and its worker processes (`edgeloop train`, `finetune`, `export`,
// `eval`, `quantize`, `infer`) say to each other, as one versioned schema that both sides
// compile. The runner writes a request with ToJson to a file and runs
// `edgeloop <kind> --request FILE`; the command reads it with the matching Parse function.
// The workers write their reports with Stamp, the runner reads them with ParseEvalReport and
// ParseLatencyReport. Every Parse function refuses a missing or mistyped field and a
// different protocol version instead of reading a default; the request parsers also refuse
// fields they do not know and out-of-range values. A change to a request or a report bumps
// kWorkerProtocol.
//
// Errors of every Parse function: kFormat naming the origin and the field (limits of
// bounded_parse.hpp included), kMismatch for another protocol version. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.hpp"

namespace edgeloop::worker {

// 1: reports only (eval, infer). 2: requests for every worker step. 3: nproc in training.
inline constexpr int kWorkerProtocol = 3;

// A request document is at most this large (a file, checked before it is read).
inline constexpr size_t kMaxRequestBytes = 64 << 10;

// ---------------------------------------------------------------------------------------
// Requests. Each names its `kind` (the edgeloop command that runs it); every field is
// written by ToJson and required by Parse. What a request does not name, the command takes
// from its own defaults (see its --help).

// The training settings `train` and `finetune` share.
struct TrainingSettings {
  std::string data;  // dataset spec, e.g. snapshot:DIR:train
  std::string out;   // model directory to write
  int64_t epochs = 0, batch_size = 0, patience = 0;
  double lr = 0;
  uint64_t seed = 0;
  int64_t threads = 0;  // 0: all cores
  int64_t nproc = 1;    // data-parallel processes on this host (train/finetune --nproc)
};

// `edgeloop train`: a model from scratch.
struct TrainRequest {
  static constexpr const char* kKind = "train";
  std::string name;  // the model name recorded in the checkpoint
  TrainingSettings training;
  nlohmann::json ToJson() const;
};

// `edgeloop finetune`: transfer learning from a parent.
struct FinetuneRequest {
  static constexpr const char* kKind = "finetune";
  std::string parent;    // a model directory or an ONNX file
  std::string strategy;  // head, last-k, full
  int64_t k = 0;         // blocks to unfreeze for last-k
  double backbone_lr_scale = 0;
  int64_t min_epoch_samples = 0;
  TrainingSettings training;
  nlohmann::json ToJson() const;
};

// `edgeloop export`: a model directory as ONNX.
struct ExportRequest {
  static constexpr const char* kKind = "export";
  std::string model, out;
  nlohmann::json ToJson() const;
};

// `edgeloop eval`: metrics of a model (directory or .onnx) on one dataset, as an EvalReport
// written to `out`.
struct EvalRequest {
  static constexpr const char* kKind = "eval";
  std::string model, data, out;
  std::string corrupt;      // a corruption applied to every sample, "" for none
  int64_t severity = 3;     // 1..5, of `corrupt`
  bool robustness = false;  // the corruption suite too
  nlohmann::json ToJson() const;
};

// `edgeloop quantize`: an fp32 ONNX model to int8, calibrated on a dataset.
struct QuantizeRequest {
  static constexpr const char* kKind = "quantize";
  std::string model, calib, out;
  int64_t samples = 0;  // calibration samples, 1..100000
  uint64_t seed = 0;
  nlohmann::json ToJson() const;
};

// `edgeloop infer`: batch-1 runs of an ONNX model on the edge runtime, the report (with its
// LatencyReport) written to `out`.
struct InferRequest {
  static constexpr const char* kKind = "infer";
  std::string model, input, out;
  int64_t limit = 0;   // the first N samples, 0: all
  int64_t warmup = 0;  // untimed runs first
  nlohmann::json ToJson() const;
};

Result<TrainRequest> ParseTrainRequest(const std::string& text, const std::string& origin);
Result<FinetuneRequest> ParseFinetuneRequest(const std::string& text, const std::string& origin);
Result<ExportRequest> ParseExportRequest(const std::string& text, const std::string& origin);
Result<EvalRequest> ParseEvalRequest(const std::string& text, const std::string& origin);
Result<QuantizeRequest> ParseQuantizeRequest(const std::string& text, const std::string& origin);
Result<InferRequest> ParseInferRequest(const std::string& text, const std::string& origin);

// A request file's text, refusing a file over kMaxRequestBytes before reading it.
// Errors: those of ReadFile (kNotFound, kIo, kResourceExhausted), naming the path.
Result<std::string> ReadRequestFile(const std::string& path);

// Reads and parses a request file: ReadRequest(path, ParseTrainRequest).
template <typename Request>
Result<Request> ReadRequest(const std::string& path,
                            Result<Request> (*parse)(const std::string&, const std::string&)) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string text, ReadRequestFile(path));
  return parse(text, path);
}

// ---------------------------------------------------------------------------------------
// Reports.

// `edgeloop eval`: the model's metrics on one dataset, and the corruption suite's mean
// accuracy when it ran. Every report carries accuracy, macro_precision, macro_recall,
// macro_f1 and ece.
struct EvalReport {
  std::map<std::string, double> metrics;
  std::optional<double> mean_corruption_accuracy;
};

// `edgeloop infer`: batch-1 latency on the edge runtime, in microseconds.
struct LatencyReport {
  double p50_us = 0, p95_us = 0, p99_us = 0;
};

// The field that marks a document as a worker document of this protocol; the writers add it
// to the documents they print.
inline void Stamp(nlohmann::json& j) {
  j["protocol"] = kWorkerProtocol;
}

Result<EvalReport> ParseEvalReport(const std::string& text, const std::string& origin);
Result<LatencyReport> ParseLatencyReport(const std::string& text, const std::string& origin);

}  // namespace edgeloop::worker
