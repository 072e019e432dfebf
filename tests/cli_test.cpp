// The edgeloop CLI on bad input: a one-line error naming the file and the problem, a
// non-zero exit code that says what kind of failure it was, and no partial output.
#include <gtest/gtest.h>

#include <png.h>
#include <sys/wait.h>
#include <algorithm>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/file.hpp"
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
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("missing.csv"), std::string::npos) << o.output;
  EXPECT_FALSE(fs::exists(P("q.onnx")));
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

TEST_F(CliTest, EveryCommandHasHelp) {
  for (const char* c : {"train", "finetune", "eval", "export", "datasets", "infer", "inspect",
                        "quantize", "demo", "profile", "pipelines", "rollout", "report"}) {
    auto o = RunCli(std::string(c) + " --help");
    EXPECT_EQ(o.exit_code, 0) << c;
    EXPECT_NE(o.output.find("Usage"), std::string::npos) << c << ": " << o.output;
  }
}

}  // namespace
