// The edgeloop CLI on bad input: a one-line error naming the file and the problem, a
// non-zero exit code that says what kind of failure it was, and no partial output.
#include <gtest/gtest.h>

#include <png.h>

#include <cmath>

#include <sys/wait.h>
#include <algorithm>
#include <map>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/worker_protocol.hpp"
#include "data/dataset.hpp"
#include "run_command.hpp"

namespace fs = std::filesystem;

namespace {

using edgeloop::testing::Outcome;

Outcome RunCli(const std::string& args) {
  std::string bin = std::string(std::getenv("EDGELOOP_BINARY_DIR")) + "/src/cli/edgeloop";
  return edgeloop::testing::RunCommand("'" + bin + "' " + args + " 2>&1");
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("edgeloop_cli_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(CliTest, MissingDatasetFileIsABadInputErrorNamingTheFile) {
  auto o = RunCli("train --data " + P("nope.csv") + " --out " + P("m"));
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_NE(o.output.find("nope.csv"), std::string::npos) << o.output;
  EXPECT_FALSE(fs::exists(P("m")));
}

TEST_F(CliTest, CsvWithABadRowNamesTheLineAndWritesNoModel) {
  std::ofstream(P("bad.csv")) << "a,b,label\n1,2,x\n3,oops,y\n";
  auto o = RunCli("train --data " + P("bad.csv") + " --out " + P("m"));
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("bad.csv"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("3"), std::string::npos) << o.output;
  EXPECT_FALSE(fs::exists(P("m")));
  EXPECT_FALSE(fs::exists(P("m.partial")));
}

TEST_F(CliTest, EmptyCsvIsRefused) {
  std::ofstream(P("empty.csv")) << "a,b,label\n";
  auto o = RunCli("train --data " + P("empty.csv") + " --out " + P("m"));
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.output.find("empty.csv"), std::string::npos) << o.output;
  EXPECT_FALSE(fs::exists(P("m")));
}

TEST_F(CliTest, MissingParentModelIsABadInputError) {
  auto o =
      RunCli("finetune --parent " + P("nomodel") + " --data fashion-mnist:test --out " + P("m"));
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("nomodel"), std::string::npos) << o.output;
  EXPECT_FALSE(fs::exists(P("m")));
}

TEST_F(CliTest, ParentWhoseInputShapeDoesNotFitIsRefusedInOneLine) {
  // A tiny tabular model, then fine-tune it on images.
  std::ofstream csv(P("t.csv"));
  csv << "f1,f2,label\n";
  for (int i = 0; i < 60; ++i)
    csv << i % 7 << "," << (i * 3) % 5 << "," << (i % 2 ? "a" : "b") << "\n";
  csv.close();
  auto t = RunCli("train --data " + P("t.csv") + " --out " + P("tab") + " --epochs 1");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  auto o = RunCli("finetune --parent " + P("tab") +
                  " --data fashion-mnist:test --max-samples 50 --out " + P("m"));
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("error"), std::string::npos);
  EXPECT_EQ(std::count(o.output.begin(), o.output.end(), '\n'), 2) << o.output;  // status + error
  EXPECT_FALSE(fs::exists(P("m")));
}

void WriteGrayPng(const std::string& path, int w, int h) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(w);
  img.height = static_cast<png_uint_32>(h);
  img.format = PNG_FORMAT_GRAY;
  std::vector<unsigned char> px(static_cast<size_t>(w * h), 128);
  ASSERT_TRUE(png_image_write_to_file(&img, path.c_str(), 0, px.data(), 0, nullptr));
}

TEST_F(CliTest, ImageFolderWithAWrongSizedImageNamesTheFile) {
  fs::create_directories(dir_ / "imgs" / "a");
  fs::create_directories(dir_ / "imgs" / "b");
  WriteGrayPng(P("imgs/a/1.png"), 28, 28);
  WriteGrayPng(P("imgs/b/odd.png"), 20, 24);
  auto o = RunCli("train --data " + P("imgs") + " --out " + P("m"));
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("odd.png"), std::string::npos) << o.output;
  EXPECT_FALSE(fs::exists(P("m")));
}

TEST_F(CliTest, UnknownFlagIsAUsageError) {
  auto o = RunCli("train --no-such-flag");
  EXPECT_EQ(o.exit_code, 2) << o.output;
}

TEST_F(CliTest, RuntimeCommandsRefuseMissingOrMalformedModelsInOneLine) {
  auto o = RunCli("infer --model " + P("absent.onnx") + " --input fashion-mnist:test");
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("absent.onnx"), std::string::npos) << o.output;
  {
    std::ofstream f(P("junk.onnx"), std::ios::binary);
    f << "this is not an ONNX model \xff\xff\xff\x01";
  }
  o = RunCli("inspect " + P("junk.onnx"));
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("junk.onnx"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("not a valid ONNX model"), std::string::npos) << o.output;
  EXPECT_EQ(std::count(o.output.begin(), o.output.end(), '\n'), 1) << o.output;
  o = RunCli("quantize --model " + P("junk.onnx") + " --calib " + P("missing.csv") + " --out " +
             P("q.onnx"));
  // The model is read first (calibration images are converted to its input spec).
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("junk.onnx"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("not a valid ONNX model"), std::string::npos) << o.output;
  EXPECT_FALSE(fs::exists(P("q.onnx")));
}

TEST_F(CliTest, InspectListsEveryOpAndMarksTheMissingOnesWithExit3) {
  const std::string data = "/usr/share/libonnx-testdata/data/node/";
  auto o = RunCli("inspect " + data + "test_einsum_batch_diagonal/model.onnx");
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("* Einsum"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("1 op type(s) not supported by the runtime: Einsum"), std::string::npos)
      << o.output;
  o = RunCli("inspect --json " + data + "test_einsum_batch_diagonal/model.onnx");
  EXPECT_EQ(o.exit_code, 3) << o.output;
  auto brace = o.output.find('{');
  ASSERT_NE(brace, std::string::npos) << o.output;
  auto j = nlohmann::json::parse(o.output.substr(brace, o.output.rfind('}') - brace + 1), nullptr,
                                 false);
  ASSERT_TRUE(j.is_object()) << o.output;
  EXPECT_EQ(j["unsupported"], nlohmann::json::array({"Einsum"}));
  EXPECT_EQ(j["ops"][0]["count"], 1);
  // infer refuses at load, naming the op.
  o = RunCli("infer --model " + data + "test_einsum_batch_diagonal/model.onnx --input " + data +
             "test_einsum_batch_diagonal/test_data_set_0/input_0.pb");
  EXPECT_NE(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("op 'Einsum' (1 node"), std::string::npos) << o.output;
  // A model the runtime runs: every op listed, exit 0, the planned arithmetic shown.
  o = RunCli("inspect " + data + "test_convtranspose/model.onnx");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("  ConvTranspose"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("MFLOP per inference"), std::string::npos) << o.output;
}

TEST_F(CliTest, EvalOnTheEdgeRuntimeGivesTheSameMetricsAsLibtorch) {
  auto t = RunCli("train --data fashion-mnist:train --max-samples 600 --epochs 1 --out " + P("m") +
                  " --threads 1");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  ASSERT_EQ(RunCli("export --model " + P("m") + " --out " + P("m.onnx")).exit_code, 0);
  const std::string data =
      " --data fashion-mnist:test --max-samples 300 --corrupt blur "
      "--severity 2 --json --out ";
  auto torch = RunCli("eval --model " + P("m") + data + P("torch.json"));
  auto onnx = RunCli("eval --model " + P("m.onnx") + data + P("onnx.json"));
  ASSERT_EQ(torch.exit_code, 0) << torch.output;
  ASSERT_EQ(onnx.exit_code, 0) << onnx.output;
  auto read = [&](const std::string& f) {
    auto text = edgeloop::ReadFile(P(f));
    return nlohmann::json::parse(text.ok() ? *text : "{}")["metrics"];
  };
  auto a = read("torch.json"), b = read("onnx.json");
  for (const char* k : {"accuracy", "macro_f1", "macro_precision", "macro_recall", "ece"})
    EXPECT_NEAR(a[k].get<double>(), b[k].get<double>(), 1e-4) << k;
  // The robustness suite too: the same corrupted images, the same accuracies in every cell.
  const std::string suite =
      " --data fashion-mnist:test --max-samples 300 --robustness --corruptions contrast "
      "rotation --severities 2 4 --json --out ";
  ASSERT_EQ(RunCli("eval --model " + P("m") + suite + P("torch-r.json")).exit_code, 0);
  auto r = RunCli("eval --model " + P("m.onnx") + suite + P("onnx-r.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto suite_of = [&](const std::string& f) {
    auto text = edgeloop::ReadFile(P(f));
    return nlohmann::json::parse(text.ok() ? *text : "{}")["robustness"];
  };
  auto ta = suite_of("torch-r.json"), oa = suite_of("onnx-r.json");
  ASSERT_TRUE(oa.is_object()) << r.output;
  EXPECT_EQ(oa["severities"], nlohmann::json({2, 4}));
  ASSERT_EQ(oa["corruptions"].size(), 2u);
  for (const char* c : {"contrast", "rotation"})
    for (size_t s = 0; s < 2; ++s)
      // Within one image of 300: float rounding may flip a near-tie, nothing more.
      EXPECT_NEAR(ta["corruptions"][c]["accuracy_by_severity"][s].get<double>(),
                  oa["corruptions"][c]["accuracy_by_severity"][s].get<double>(), 1.0 / 300 + 1e-9)
          << c << " " << s;
  EXPECT_NEAR(ta["mean_corruption_accuracy"].get<double>(),
              oa["mean_corruption_accuracy"].get<double>(), 1.0 / 300 + 1e-9);
  EXPECT_LT(oa["mean_corruption_accuracy"].get<double>(), oa["clean_accuracy"].get<double>());
  // A corruption that does not exist is a usage error, in one line.
  auto bad = RunCli("eval --robustness --corruptions fog --model " + P("m.onnx"));
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("unknown corruption 'fog'"), std::string::npos) << bad.output;
}

// Writes sample i of d (one channel, [0,1]) as a grey PNG.
void WriteSamplePng(const edgeloop::data::Dataset& d, size_t i, const std::string& path) {
  const int h = static_cast<int>(d.sample_shape[1]), w = static_cast<int>(d.sample_shape[2]);
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(w);
  img.height = static_cast<png_uint_32>(h);
  img.format = PNG_FORMAT_GRAY;
  std::vector<unsigned char> px(static_cast<size_t>(w * h));
  for (size_t k = 0; k < px.size(); ++k)
    px[k] = static_cast<unsigned char>(std::lround(d.sample(i)[k] * 255.0f));
  ASSERT_TRUE(png_image_write_to_file(&img, path.c_str(), 0, px.data(), 0, nullptr));
}

TEST_F(CliTest, EvalAndInferMatchAFoldersClassesToTheModelsByName) {
  auto t = RunCli("train --data fashion-mnist:train --max-samples 600 --epochs 1 --out " + P("m") +
                  " --threads 1");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  ASSERT_EQ(RunCli("export --model " + P("m") + " --out " + P("m.onnx")).exit_code, 0);
  // A folder of Bag (8) and Sneaker (7) images: sorted, Bag is the folder's class 0.
  auto test = edgeloop::data::LoadDataset("fashion-mnist:test");
  ASSERT_TRUE(test.ok());
  int bags = 0, sneakers = 0;
  for (size_t i = 0; i < test->size() && bags + sneakers < 40; ++i) {
    const int32_t y = test->y[i];
    if (y != 7 && y != 8) continue;
    const std::string cls = y == 8 ? "Bag" : "Sneaker";
    fs::create_directories(dir_ / "site" / cls);
    WriteSamplePng(*test, i, P("site/" + cls + "/" + std::to_string(i) + ".png"));
    (y == 8 ? bags : sneakers)++;
  }
  for (const std::string& model : {std::string("m"), std::string("m.onnx")}) {
    auto o = RunCli("eval --model " + P(model) + " --data " + P("site") + " --json --out " +
                    P(model + ".json"));
    ASSERT_EQ(o.exit_code, 0) << o.output;
    auto text = edgeloop::ReadFile(P(model + ".json"));
    ASSERT_TRUE(text.ok());
    std::map<std::string, int> support;
    const auto report = nlohmann::json::parse(*text);
    for (const auto& c : report["metrics"]["per_class"])
      support[c["class"].get<std::string>()] = c["support"].get<int>();
    EXPECT_EQ(support["Bag"], bags) << model;
    EXPECT_EQ(support["Sneaker"], sneakers) << model;
    EXPECT_EQ(support["T-shirt/top"], 0) << model;
  }
  // infer names its predictions by the model's classes and scores the labels by name.
  auto inf = RunCli("infer --model " + P("m.onnx") + " --input " + P("site") + " --json");
  ASSERT_EQ(inf.exit_code, 0) << inf.output;
  auto j = nlohmann::json::parse(inf.output.substr(inf.output.find('{')), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << inf.output;
  EXPECT_GT(j["accuracy"].get<double>(), 0.3);
  // A class the model does not know stops both with exit 3, naming it.
  fs::create_directories(dir_ / "site" / "Hat");
  WriteSamplePng(*test, 0, P("site/Hat/0.png"));
  for (const std::string& cmd :
       {"eval --model " + P("m") + " --data ", "eval --model " + P("m.onnx") + " --data ",
        "infer --model " + P("m.onnx") + " --input "}) {
    auto o = RunCli(cmd + P("site"));
    EXPECT_EQ(o.exit_code, 3) << cmd << o.output;
    EXPECT_NE(o.output.find("does not know: Hat"), std::string::npos) << o.output;
  }
}

// A tiny tabular dataset: two features, two classes.
void WriteTinyCsv(const std::string& path) {
  std::ofstream csv(path);
  csv << "f1,f2,label\n";
  for (int i = 0; i < 60; ++i)
    csv << i % 7 << "," << (i * 3) % 5 << "," << (i % 2 ? "a" : "b") << "\n";
}

TEST_F(CliTest, WorkerRequestsStandInForTheFlags) {
  // What a pipeline runs, step by step, each from a request file as the runner writes them.
  namespace w = edgeloop::worker;
  WriteTinyCsv(P("t.csv"));
  auto run = [&](const std::string& kind, const nlohmann::json& request) {
    const std::string file = P(kind + ".request.json");
    EXPECT_TRUE(edgeloop::WriteFileAtomic(file, request.dump(2)).ok());
    return RunCli(kind + " --request " + file);
  };
  w::TrainingSettings t;
  t.data = P("t.csv");
  t.out = P("tab");
  t.epochs = 1;
  t.batch_size = 16;
  t.lr = 1e-3;
  t.patience = 1;
  t.seed = 3;
  t.threads = 1;
  w::TrainRequest train{"tabular", t};
  auto o = run("train", train.ToJson());
  ASSERT_EQ(o.exit_code, 0) << o.output;
  auto info = edgeloop::ReadFile(P("tab/model.json"));
  ASSERT_TRUE(info.ok());
  EXPECT_NE(info->find("\"tabular\""), std::string::npos);  // the request's name

  w::FinetuneRequest ft;
  ft.parent = P("tab");
  ft.strategy = "head";
  ft.k = 1;
  ft.backbone_lr_scale = 0.1;
  ft.min_epoch_samples = 0;
  ft.training = t;
  ft.training.out = P("ft");
  o = run("finetune", ft.ToJson());
  ASSERT_EQ(o.exit_code, 0) << o.output;

  o = run("export", w::ExportRequest{P("ft"), P("ft.onnx")}.ToJson());
  ASSERT_EQ(o.exit_code, 0) << o.output;

  w::EvalRequest eval;
  eval.model = P("ft.onnx");
  eval.data = P("t.csv");
  eval.out = P("eval.json");
  o = run("eval", eval.ToJson());
  ASSERT_EQ(o.exit_code, 0) << o.output;
  auto report = edgeloop::ReadFile(P("eval.json"));
  ASSERT_TRUE(report.ok());
  auto metrics = w::ParseEvalReport(*report, "eval.json");
  ASSERT_TRUE(metrics.ok()) << metrics.error().message;
  EXPECT_GT(metrics->metrics.at("accuracy"), 0.0);

  w::InferRequest infer;
  infer.model = P("ft.onnx");
  infer.input = P("t.csv");
  infer.out = P("latency.json");
  infer.limit = 10;
  infer.warmup = 2;
  o = run("infer", infer.ToJson());
  ASSERT_EQ(o.exit_code, 0) << o.output;
  report = edgeloop::ReadFile(P("latency.json"));
  ASSERT_TRUE(report.ok());
  auto latency = w::ParseLatencyReport(*report, "latency.json");
  ASSERT_TRUE(latency.ok()) << latency.error().message;
  EXPECT_GT(latency->p95_us, 0.0);
  EXPECT_EQ(nlohmann::json::parse(*report)["samples"], 10);

  w::QuantizeRequest q;
  q.model = P("ft.onnx");
  q.calib = P("t.csv");
  q.out = P("ft.int8.onnx");
  q.samples = 20;
  o = run("quantize", q.ToJson());
  ASSERT_EQ(o.exit_code, 0) << o.output;
  EXPECT_TRUE(fs::exists(P("ft.int8.onnx")));

  // The same model (an MLP) in QDQ form: inspect shows every layer fused into the integer
  // kernels.
  o = RunCli("quantize --model " + P("ft.onnx") + " --calib " + P("t.csv") + " --samples 20 " +
             "--format qdq --out " + P("ft.qdq.onnx"));
  ASSERT_EQ(o.exit_code, 0) << o.output;
  o = RunCli("inspect " + P("ft.qdq.onnx"));
  ASSERT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("Gemm -> QLinearConv x3"), std::string::npos) << o.output;
  o = RunCli("inspect --json " + P("ft.qdq.onnx"));
  ASSERT_EQ(o.exit_code, 0) << o.output;
  auto j = nlohmann::json::parse(o.output.substr(o.output.find('{')), nullptr, false);
  ASSERT_TRUE(j.is_object()) << o.output;
  int fused_layers = 0;
  for (const auto& p : j["qdq"]) {
    if (p["op"] == "Conv" || p["op"] == "Gemm") {
      EXPECT_TRUE(p["fused"].get<bool>()) << p.dump();
      ++fused_layers;
    }
  }
  EXPECT_EQ(fused_layers, 3);
}

TEST_F(CliTest, BadWorkerRequestsAreUsageErrorsInOneLine) {
  namespace w = edgeloop::worker;
  const nlohmann::json good = w::ExportRequest{P("absent-model"), P("out.onnx")}.ToJson();
  auto with = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = good;
    change(j);
    return j.dump();
  };
  const std::string next = std::to_string(w::kWorkerProtocol + 1);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {with([&](auto& j) { j["protocol"] = w::kWorkerProtocol + 1; }), "speaks protocol " + next},
      {with([](auto& j) { j.erase("out"); }), "out is missing"},
      {with([](auto& j) { j["model"] = 7; }), "model is not a string"},
      {with([](auto& j) { j["opset"] = 13; }), "unknown field \"opset\" in an export request"},
      {with([](auto& j) { j["kind"] = "train"; }), "a train request, not an export request"},
      {"{\"protocol\": ", "request.json"},
  };
  for (const auto& [doc, message] : cases) {
    ASSERT_TRUE(edgeloop::WriteFileAtomic(P("request.json"), doc).ok());
    auto o = RunCli("export --request " + P("request.json"));
    EXPECT_EQ(o.exit_code, 2) << doc << ": " << o.output;
    EXPECT_EQ(o.output.rfind("edgeloop export: error: " + P("request.json") + ": ", 0), 0u)
        << o.output;
    EXPECT_NE(o.output.find(message), std::string::npos) << doc << ": " << o.output;
    EXPECT_EQ(std::count(o.output.begin(), o.output.end(), '\n'), 1) << o.output;
  }
  EXPECT_FALSE(fs::exists(P("out.onnx")));
  // A missing request file, a request with flags beside it, and neither.
  auto o = RunCli("train --request " + P("nope.json"));
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_NE(o.output.find("nope.json: no such file"), std::string::npos) << o.output;
  ASSERT_TRUE(edgeloop::WriteFileAtomic(P("request.json"), good.dump()).ok());
  o = RunCli("export --request " + P("request.json") + " --out " + P("other.onnx"));
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_NE(o.output.find("--request takes the place of the flags: --out"), std::string::npos)
      << o.output;
  o = RunCli("export --model " + P("m"));
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_NE(o.output.find("--out is required (or --request FILE)"), std::string::npos) << o.output;
  // The request is a documented way in, on every worker command.
  for (const char* c : {"train", "finetune", "export", "eval", "quantize", "infer"}) {
    o = RunCli(std::string(c) + " --help");
    EXPECT_NE(o.output.find("--request FILE"), std::string::npos) << c << ": " << o.output;
    EXPECT_NE(o.output.find("worker protocol " + std::to_string(w::kWorkerProtocol)),
              std::string::npos)
        << c << ": " << o.output;
  }
}

TEST_F(CliTest, EveryCommandHasHelp) {
  for (const char* c : {"train", "finetune", "eval", "export", "datasets", "infer", "inspect",
                        "quantize", "demo", "profile", "pipelines", "rollout", "report", "keys",
                        "keys show", "keys rotate-root", "keys rotate-targets"}) {
    auto o = RunCli(std::string(c) + " --help");
    EXPECT_EQ(o.exit_code, 0) << c;
    EXPECT_NE(o.output.find("Usage"), std::string::npos) << c << ": " << o.output;
  }
}

}  // namespace
