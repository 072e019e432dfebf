#include "common/worker_protocol.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace edgeloop::worker
