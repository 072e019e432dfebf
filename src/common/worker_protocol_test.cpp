#include "common/worker_protocol.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <functional>

#include "common/file.hpp"

namespace edgeloop::worker {
namespace {

using Json = nlohmann::json;

Json Eval() {
  Json j = {{"metrics",
             {{"accuracy", 0.9},
              {"macro_precision", 0.8},
              {"macro_recall", 0.7},
              {"macro_f1", 0.75},
              {"ece", 0.05}}}};
  Stamp(j);
  return j;
}

TEST(WorkerProtocol, ReportsReadBackAsWritten) {
  Json j = Eval();
  auto r = ParseEvalReport(j.dump(), "eval.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_DOUBLE_EQ(r->metrics.at("accuracy"), 0.9);
  EXPECT_DOUBLE_EQ(r->metrics.at("ece"), 0.05);
  EXPECT_FALSE(r->mean_corruption_accuracy);
  j["robustness"] = {{"mean_corruption_accuracy", 0.6}};
  r = ParseEvalReport(j.dump(), "eval.json");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(*r->mean_corruption_accuracy, 0.6);
  Json l = {{"latency_us", {{"p50", 10.0}, {"p95", 20.0}, {"p99", 30.0}}}};
  Stamp(l);
  auto lat = ParseLatencyReport(l.dump(), "infer.json");
  ASSERT_TRUE(lat.ok());
  EXPECT_DOUBLE_EQ(lat->p95_us, 20.0);
}

TEST(WorkerProtocol, MissingFieldsOtherVersionsAndHostileDocumentsAreErrors) {
  Json no_version = Eval();
  no_version.erase("protocol");
  Json future = Eval();
  future["protocol"] = kWorkerProtocol + 1;
  Json no_f1 = Eval();
  no_f1["metrics"].erase("macro_f1");
  Json text_accuracy = Eval();
  text_accuracy["metrics"]["accuracy"] = "0.9";
  Json bad_robustness = Eval();
  bad_robustness["robustness"] = {{"mean", 0.5}};
  const std::vector<std::pair<std::string, std::string>> cases = {
      {no_version.dump(), "no worker protocol version"},
      {future.dump(), "speaks protocol " + std::to_string(kWorkerProtocol + 1)},
      {no_f1.dump(), "macro_f1 is missing"},
      {text_accuracy.dump(), "accuracy is missing or not a number"},
      {bad_robustness.dump(), "mean_corruption_accuracy is missing"},
      {"[1, 2]", "a worker report is a JSON object"},
      {"{\"protocol\": 1, ", "eval.json"},
      {std::string(100000, '['), "max_depth"},
  };
  for (const auto& [doc, message] : cases) {
    auto r = ParseEvalReport(doc, "eval.json");
    ASSERT_FALSE(r.ok()) << doc.substr(0, 80);
    EXPECT_NE(r.error().message.find(message), std::string::npos) << r.error().message;
  }
  Json l = {{"latency_us", {{"p50", 10.0}}}};
  Stamp(l);
  auto lat = ParseLatencyReport(l.dump(), "infer.json");
  ASSERT_FALSE(lat.ok());
  EXPECT_NE(lat.error().message.find("p95 is missing"), std::string::npos);
}

// One request of every kind, every field set to something other than its zero value.
TrainingSettings Settings() {
  TrainingSettings t;
  t.data = "snapshot:/data/datasets/abc:train";
  t.out = "/data/runs/r1/model";
  t.epochs = 6;
  t.batch_size = 64;
  t.lr = 0.002;
  t.patience = 4;
  t.seed = 18446744073709551615u;  // the largest seed survives the round trip
  t.threads = 2;
  t.nproc = 2;
  return t;
}

TrainRequest Train() {
  TrainRequest r;
  r.name = "fashion-cnn";
  r.training = Settings();
  return r;
}

FinetuneRequest Finetune() {
  FinetuneRequest r;
  r.parent = "/data/models/aa-bb";
  r.strategy = "last-k";
  r.k = 2;
  r.backbone_lr_scale = 0.25;
  r.min_epoch_samples = 2048;
  r.training = Settings();
  return r;
}

EvalRequest EvalOf() {
  EvalRequest r;
  r.model = "/data/runs/r1/model.onnx";
  r.data = "fashion-mnist:test";
  r.out = "/data/runs/r1/eval-1.json";
  r.corrupt = "blur";
  r.severity = 4;
  r.robustness = true;
  return r;
}

QuantizeRequest Quantize() {
  QuantizeRequest r;
  r.model = "/data/runs/r1/model.onnx";
  r.calib = "snapshot:/data/datasets/abc:train";
  r.out = "/data/runs/r1/model.int8.onnx";
  r.samples = 500;
  r.seed = 7;
  return r;
}

InferRequest Infer() {
  InferRequest r;
  r.model = "/data/runs/r1/model.onnx";
  r.input = "snapshot:/data/datasets/abc:test";
  r.out = "/data/runs/r1/latency-3.json";
  r.limit = 300;
  r.warmup = 20;
  return r;
}

void ExpectSame(const TrainingSettings& a, const TrainingSettings& b) {
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.epochs, b.epochs);
  EXPECT_EQ(a.batch_size, b.batch_size);
  EXPECT_DOUBLE_EQ(a.lr, b.lr);
  EXPECT_EQ(a.patience, b.patience);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.threads, b.threads);
  EXPECT_EQ(a.nproc, b.nproc);
}

TEST(WorkerProtocol, RequestsReadBackAsWritten) {
  auto train = ParseTrainRequest(Train().ToJson().dump(2), "train.json");
  ASSERT_TRUE(train.ok()) << train.error().message;
  EXPECT_EQ(train->name, "fashion-cnn");
  ExpectSame(train->training, Settings());

  auto ft = ParseFinetuneRequest(Finetune().ToJson().dump(2), "finetune.json");
  ASSERT_TRUE(ft.ok()) << ft.error().message;
  EXPECT_EQ(ft->parent, "/data/models/aa-bb");
  EXPECT_EQ(ft->strategy, "last-k");
  EXPECT_EQ(ft->k, 2);
  EXPECT_DOUBLE_EQ(ft->backbone_lr_scale, 0.25);
  EXPECT_EQ(ft->min_epoch_samples, 2048);
  ExpectSame(ft->training, Settings());

  auto ex = ParseExportRequest(ExportRequest{"/m", "/m.onnx"}.ToJson().dump(), "export.json");
  ASSERT_TRUE(ex.ok()) << ex.error().message;
  EXPECT_EQ(ex->model, "/m");
  EXPECT_EQ(ex->out, "/m.onnx");

  auto ev = ParseEvalRequest(EvalOf().ToJson().dump(), "eval.json");
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  EXPECT_EQ(ev->model, EvalOf().model);
  EXPECT_EQ(ev->data, "fashion-mnist:test");
  EXPECT_EQ(ev->out, EvalOf().out);
  EXPECT_EQ(ev->corrupt, "blur");
  EXPECT_EQ(ev->severity, 4);
  EXPECT_TRUE(ev->robustness);
  // No corruption is an empty name, not a missing field.
  EvalRequest clean = EvalOf();
  clean.corrupt = "";
  clean.robustness = false;
  ev = ParseEvalRequest(clean.ToJson().dump(), "eval.json");
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  EXPECT_EQ(ev->corrupt, "");
  EXPECT_FALSE(ev->robustness);

  auto q = ParseQuantizeRequest(Quantize().ToJson().dump(), "quantize.json");
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->model, Quantize().model);
  EXPECT_EQ(q->calib, Quantize().calib);
  EXPECT_EQ(q->out, Quantize().out);
  EXPECT_EQ(q->samples, 500);
  EXPECT_EQ(q->seed, 7u);

  auto in = ParseInferRequest(Infer().ToJson().dump(), "infer.json");
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->model, Infer().model);
  EXPECT_EQ(in->input, Infer().input);
  EXPECT_EQ(in->out, Infer().out);
  EXPECT_EQ(in->limit, 300);
  EXPECT_EQ(in->warmup, 20);

  // Every request names its protocol and kind.
  for (const Json& j : {Train().ToJson(), Finetune().ToJson(), EvalOf().ToJson(),
                        Quantize().ToJson(), Infer().ToJson(), ExportRequest{"a", "b"}.ToJson()}) {
    EXPECT_EQ(j["protocol"], kWorkerProtocol);
    EXPECT_TRUE(j["kind"].is_string());
  }
}

// Parses a request document with the parser of its kind.
using Parser = std::function<Status(const std::string&)>;
template <typename Request>
Parser Of(Result<Request> (*parse)(const std::string&, const std::string&)) {
  return [parse](const std::string& text) -> Status {
    auto r = parse(text, "request.json");
    if (!r.ok()) return r.error();
    return Status::Ok();
  };
}

struct Refusal {
  std::string name;
  Json doc;
  Parser parse;
  std::string message;
  Errc code = Errc::kFormat;
};

TEST(WorkerProtocol, RequestsWithMissingMistypedUnknownOrForeignFieldsAreRefused) {
  auto with = [](Json j, const std::function<void(Json&)>& change) {
    change(j);
    return j;
  };
  const Parser train = Of(ParseTrainRequest), finetune = Of(ParseFinetuneRequest),
               exp = Of(ParseExportRequest), eval = Of(ParseEvalRequest),
               quantize = Of(ParseQuantizeRequest), infer = Of(ParseInferRequest);
  const std::string next = std::to_string(kWorkerProtocol + 1);
  const std::vector<Refusal> cases = {
      // Missing fields, in every kind.
      {"no out", with(Train().ToJson(), [](Json& j) { j.erase("out"); }), train, "out is missing"},
      {"no parent", with(Finetune().ToJson(), [](Json& j) { j.erase("parent"); }), finetune,
       "parent is missing"},
      {"no model", with(ExportRequest{"a", "b"}.ToJson(), [](Json& j) { j.erase("model"); }), exp,
       "model is missing"},
      {"no severity", with(EvalOf().ToJson(), [](Json& j) { j.erase("severity"); }), eval,
       "severity is missing"},
      {"no samples", with(Quantize().ToJson(), [](Json& j) { j.erase("samples"); }), quantize,
       "samples is missing"},
      {"no warmup", with(Infer().ToJson(), [](Json& j) { j.erase("warmup"); }), infer,
       "warmup is missing"},
      {"no kind", with(Infer().ToJson(), [](Json& j) { j.erase("kind"); }), infer,
       "kind is missing"},
      // Wrong types.
      {"epochs as text", with(Train().ToJson(), [](Json& j) { j["epochs"] = "6"; }), train,
       "epochs is not an integer"},
      {"epochs as a fraction", with(Train().ToJson(), [](Json& j) { j["epochs"] = 6.5; }), train,
       "epochs is not an integer"},
      {"negative seed", with(Quantize().ToJson(), [](Json& j) { j["seed"] = -1; }), quantize,
       "seed is not a non-negative integer"},
      {"lr as text", with(Finetune().ToJson(), [](Json& j) { j["lr"] = "0.1"; }), finetune,
       "lr is not a number"},
      {"robustness as 1", with(EvalOf().ToJson(), [](Json& j) { j["robustness"] = 1; }), eval,
       "robustness is not true or false"},
      {"model as null", with(Infer().ToJson(), [](Json& j) { j["model"] = nullptr; }), infer,
       "model is not a string"},
      {"empty out", with(ExportRequest{"a", "b"}.ToJson(), [](Json& j) { j["out"] = ""; }), exp,
       "out is empty"},
      // Values the command's flags would refuse.
      {"zero epochs", with(Train().ToJson(), [](Json& j) { j["epochs"] = 0; }), train,
       "epochs is 0, expected 1.."},
      {"severity 9", with(EvalOf().ToJson(), [](Json& j) { j["severity"] = 9; }), eval,
       "severity is 9, expected 1..5"},
      {"strategy", with(Finetune().ToJson(), [](Json& j) { j["strategy"] = "all"; }), finetune,
       "strategy is \"all\""},
      {"huge limit", with(Infer().ToJson(), [](Json& j) { j["limit"] = UINT64_MAX; }), infer,
       "limit is 18446744073709551615, expected 0.."},
      // Unknown fields: a typo, or a field of another protocol.
      {"typo", with(Train().ToJson(), [](Json& j) { j["epoch"] = 6; }), train,
       "unknown field \"epoch\" in a train request"},
      {"extra", with(EvalOf().ToJson(), [](Json& j) { j["json"] = true; }), eval,
       "unknown field \"json\" in an eval request"},
      // Another kind, another protocol, not a request at all.
      {"kind", Train().ToJson(), finetune, "a train request, not a finetune request"},
      {"future", with(Train().ToJson(), [&](Json& j) { j["protocol"] = kWorkerProtocol + 1; }),
       train, "speaks protocol " + next, Errc::kMismatch},
      {"reports only", with(Quantize().ToJson(), [](Json& j) { j["protocol"] = 1; }), quantize,
       "speaks protocol 1", Errc::kMismatch},
      {"no protocol", with(Infer().ToJson(), [](Json& j) { j.erase("protocol"); }), infer,
       "no worker protocol version"},
      {"array", Json::array({1, 2}), exp, "a worker request is a JSON object"},
  };
  for (const auto& c : cases) {
    Status st = c.parse(c.doc.dump());
    ASSERT_FALSE(st.ok()) << c.name;
    EXPECT_EQ(st.error().code, c.code) << c.name << ": " << st.error().message;
    EXPECT_NE(st.error().message.find(c.message), std::string::npos)
        << c.name << ": " << st.error().message;
    EXPECT_EQ(st.error().message.rfind("request.json: ", 0), 0u) << st.error().message;
  }
}

TEST(WorkerProtocol, OversizedOrHostileRequestsAreRefusedBeforeTheyAreRead) {
  // A document over the size limit, a string over the string limit, nesting and truncation.
  Json big = Train().ToJson();
  big["name"] = std::string(kMaxRequestBytes, 'x');
  Json long_path = Train().ToJson();
  long_path["out"] = std::string(20000, 'p');
  for (const auto& [doc, message] :
       std::vector<std::pair<std::string, std::string>>{{big.dump(), "max_bytes"},
                                                        {long_path.dump(), "max_string"},
                                                        {std::string(1000, '['), "max_depth"},
                                                        {"{\"protocol\": 2, ", "request.json"}}) {
    auto r = ParseTrainRequest(doc, "request.json");
    ASSERT_FALSE(r.ok()) << doc.substr(0, 60);
    EXPECT_EQ(r.error().code, Errc::kFormat);
    EXPECT_NE(r.error().message.find(message), std::string::npos) << r.error().message;
  }
  // A file over the limit is refused by its size, not read.
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("edgeloop_worker_protocol_" + std::to_string(::getpid())))
                              .string();
  ASSERT_TRUE(MakeDirs(dir).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/big.json", big.dump()).ok());
  auto file = ReadRequest(dir + "/big.json", ParseTrainRequest);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().code, Errc::kResourceExhausted);
  EXPECT_NE(file.error().message.find("big.json"), std::string::npos) << file.error().message;
  ASSERT_TRUE(WriteFileAtomic(dir + "/ok.json", Train().ToJson().dump(2)).ok());
  auto ok = ReadRequest(dir + "/ok.json", ParseTrainRequest);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->name, "fashion-cnn");
  auto absent = ReadRequest(dir + "/absent.json", ParseTrainRequest);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, Errc::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgeloop::worker
