// Data-parallel training on c10d/Gloo: the sampler and the launcher's arguments as pure
// logic, a two-rank group inside one process, and `edgeloop train --nproc 2` as real
// processes on real Fashion-MNIST samples.
#include "ml/distributed.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "../../tests/run_command.hpp"
#include "common/free_port.hpp"
#include "common/process.hpp"
#include "common/worker_protocol.hpp"
#include "data/dataset.hpp"
#include "ml/rank_launcher.hpp"

namespace edgeloop::ml {
namespace {

namespace fs = std::filesystem;
using edgeloop::testing::RunCommand;

TEST(ShardOfEpoch, EveryRankGetsTheSameCountAndTogetherTheyCoverTheEpoch) {
  std::vector<int64_t> order = {7, 3, 9, 0, 5, 1, 8};  // 7 samples over 3 ranks: padded to 9
  std::multiset<int64_t> seen;
  for (int r = 0; r < 3; ++r) {
    auto shard = ShardOfEpoch(order, r, 3);
    ASSERT_EQ(shard.size(), 3u) << "rank " << r;
    seen.insert(shard.begin(), shard.end());
  }
  for (int64_t v : order) EXPECT_GE(seen.count(v), 1u) << v;
  EXPECT_EQ(seen.size(), 9u);
  EXPECT_EQ(ShardOfEpoch(order, 1, 3), (std::vector<int64_t>{3, 5, 7}));  // padding wraps
  EXPECT_EQ(ShardOfEpoch(order, 0, 1), order);
}

TEST(RankArguments, DropNprocAndAddTheRendezvous) {
  auto args = RankArguments({"train", "--nproc", "2", "--out", "m", "--nproc=2"}, 2, 4242, 1);
  EXPECT_EQ(args, (std::vector<std::string>{"train", "--out", "m", "--rendezvous", "127.0.0.1:4242",
                                            "--world-size", "2", "--rank", "1"}));
}

TEST(Rendezvous, RefusesARankOutsideTheWorld) {
  RendezvousOptions o;
  o.world_size = 2;
  o.rank = 2;
  auto g = DistributedGroup::Join(o);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, Errc::kInvalidArgument);
  EXPECT_NE(g.error().message.find("rank 2 is outside the world of 2"), std::string::npos)
      << g.error().message;
}

TEST(Rendezvous, UnreachableRankZeroTimesOutWithAClearError) {
  RendezvousOptions o;
  o.port = FreeLoopbackPort();  // nobody listens there
  o.world_size = 2;
  o.rank = 1;
  o.timeout = std::chrono::seconds(2);
  auto g = DistributedGroup::Join(o);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, Errc::kUnavailable);
  EXPECT_NE(g.error().message.find("cannot reach the rendezvous at 127.0.0.1:"), std::string::npos)
      << g.error().message;
  EXPECT_NE(g.error().message.find("within 2 s"), std::string::npos) << g.error().message;
}

// Two ranks in two threads of this process: the same store and Gloo pairs as two processes.
TEST(DistributedGroup, AllReduceMeanGivesEveryRankTheSameAverage) {
  std::unique_ptr<DistributedGroup> g0, g1;
  Status s0, s1;
  std::atomic<int> port{0};
  std::thread rank0([&] {
    RendezvousOptions o;
    o.world_size = 2;
    o.timeout = std::chrono::seconds(30);
    auto g = DistributedGroup::Join(o, [&](int p) {
      port = p;
      return Status::Ok();
    });
    if (g.ok())
      g0 = std::move(*g);
    else
      s0 = g.error();
  });
  while (port == 0 && s0.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(s0.ok()) << s0.error().message;
  RendezvousOptions o1;
  o1.port = port;
  o1.world_size = 2;
  o1.rank = 1;
  o1.timeout = std::chrono::seconds(30);
  auto g = DistributedGroup::Join(o1);
  rank0.join();
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_TRUE(g0);
  g1 = std::move(*g);

  torch::Tensor a = torch::tensor({1.0f, 2.0f, 3.0f}), b = torch::tensor({3.0f, 6.0f, -3.0f});
  std::thread t([&] { s0 = g0->AllReduceMean(a); });
  s1 = g1->AllReduceMean(b);
  t.join();
  ASSERT_TRUE(s0.ok() && s1.ok());
  EXPECT_TRUE(torch::equal(a, torch::tensor({2.0f, 4.0f, 0.0f}))) << a;
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(g0->stats().allreduce_calls, 1);
  EXPECT_EQ(g0->stats().allreduce_bytes, 12);
}

// ---- edgeloop train as real processes ------------------------------------------------------

const std::string kCli = EDGELOOP_CLI_BINARY;

struct Workdir {
  fs::path path;
  explicit Workdir(const std::string& name)
      : path(fs::temp_directory_path() /
             ("edgeloop-dist-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Workdir() { fs::remove_all(path); }
};

// A small cnn on the first 4000 Fashion-MNIST training images, 1000 of them held out.
std::string TrainCommand(const fs::path& out, int nproc, int threads) {
  return kCli +
         " train --data fashion-mnist:train --max-samples 4000 --val-fraction 0.25 --epochs 3 "
         "--patience 0 --batch-size 64 --seed 7 --widths 8 16 --embed 32 --json --threads " +
         std::to_string(threads) + " --out " + out.string() +
         (nproc > 1 ? " --nproc " + std::to_string(nproc) : "") + " 2>" + out.string() + ".log";
}

nlohmann::json Training(const std::string& output) {
  auto j = nlohmann::json::parse(output, nullptr, false);
  if (j.is_discarded() || !j.contains("training")) return {};
  return j["training"];
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Processes whose command line mentions `marker` (a test's own work folder).
std::vector<pid_t> ProcessesMentioning(const std::string& marker) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (!std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string cmd = ReadAll(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(marker) != std::string::npos && cmd.find(kCli) != std::string::npos)
      out.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return out;
}

TEST(DistributedTrain, TwoProcessesEndWithIdenticalWeights) {
  Workdir w("same");
  auto r = RunCommand(TrainCommand(w.path / "m2", 2, 1));
  ASSERT_EQ(r.exit_code, 0) << ReadAll(w.path / "m2.log");
  auto t = Training(r.output);
  ASSERT_TRUE(t.contains("distributed")) << r.output;
  const auto& d = t["distributed"];
  EXPECT_EQ(d["world_size"], 2);
  ASSERT_EQ(d["rank_fingerprints"].size(), 2u);
  EXPECT_EQ(d["rank_fingerprints"][0], d["rank_fingerprints"][1]);
  // One flat all-reduce per step of every trainable parameter's float32 gradient.
  EXPECT_GT(d["allreduce_bytes_per_step"].get<int64_t>(), 0);
  EXPECT_EQ(d["allreduce_bytes_per_step"].get<int64_t>() % 4, 0);
  // 3000 training samples, 32 per rank and step: 47 steps an epoch.
  EXPECT_EQ(d["steps"], 3 * 47);
  EXPECT_TRUE(fs::exists(w.path / "m2" / "model.json"));
  EXPECT_TRUE(ProcessesMentioning(w.path.string()).empty());
}

// One process and two at the same global batch (64) and seed. They differ only in what the
// batch statistics of batch norm see (32 samples a rank instead of 64), the dropout masks and
// the order of float sums, so accuracy must agree within noise: on 1000 validation images
// one run's accuracy has a binomial standard deviation of about 0.013 near 0.8, so two
// independent runs differ by more than 0.04 (3 standard deviations of the difference) in
// fewer than 1 in 300 cases; the runs here are far from independent (same data, same start).
TEST(DistributedTrain, OneAndTwoProcessesReachTheSameAccuracy) {
  Workdir w("acc");
  auto one = RunCommand(TrainCommand(w.path / "m1", 1, 1));
  ASSERT_EQ(one.exit_code, 0) << ReadAll(w.path / "m1.log");
  auto two = RunCommand(TrainCommand(w.path / "m2", 2, 1));
  ASSERT_EQ(two.exit_code, 0) << ReadAll(w.path / "m2.log");
  const double a1 = Training(one.output)["best_val_accuracy"].get<double>();
  const double a2 = Training(two.output)["best_val_accuracy"].get<double>();
  EXPECT_GT(a1, 0.7);  // it learned something
  EXPECT_NEAR(a1, a2, 0.04) << "1 process " << a1 << ", 2 processes " << a2;
  std::printf("val accuracy: 1 process %.4f, 2 processes %.4f\n", a1, a2);
  EXPECT_EQ(Training(one.output)["distributed"]["steps"],
            3 * 47);  // the same number of optimizer steps
}

// A pipeline's train step: the worker request carries nproc, and the ranks the worker starts
// get the request together with the rendezvous flags.
TEST(DistributedTrain, AWorkerRequestWithNprocRunsTwoRanks) {
  Workdir w("request");
  // A request names its data alone (no --max-samples): a small IDX copy keeps the run short.
  const std::string prefix = (w.path / "small").string();
  auto full = data::LoadDataset("fashion-mnist:train");
  ASSERT_TRUE(full.ok()) << full.error().message;
  auto small = data::SamplePerClass(*full, 200, 1);
  ASSERT_TRUE(
      data::WriteIdx(small, prefix + "-images-idx3-ubyte", prefix + "-labels-idx1-ubyte").ok());
  worker::TrainRequest req;
  req.name = "dist";
  req.training.data = "idx:" + prefix + "-images-idx3-ubyte," + prefix + "-labels-idx1-ubyte";
  req.training.out = (w.path / "m").string();
  req.training.epochs = 1;
  req.training.batch_size = 64;
  req.training.lr = 0.002;
  req.training.patience = 0;
  req.training.seed = 3;
  req.training.threads = 1;
  req.training.nproc = 2;
  {
    std::ofstream f(w.path / "train.json");
    f << req.ToJson().dump(2);
  }
  auto r = RunCommand(kCli + " train --request " + (w.path / "train.json").string() + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("started rank 1 of 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 ranks"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(w.path / "m" / "model.json"));
  EXPECT_TRUE(ProcessesMentioning(w.path.string()).empty());
}

// `train --nproc 2` long enough to be killed while it trains; its output goes to log.
Result<ChildProcess> StartLongRun(const fs::path& dir, const fs::path& log) {
  RunOptions ro;
  ro.log_path = log.string();
  return ChildProcess::Start(
      {kCli, "train", "--data", "fashion-mnist:train", "--max-samples", "20000", "--epochs", "20",
       "--threads", "1", "--out", (dir / "m").string(), "--nproc", "2"},
      ro);
}

TEST(DistributedTrain, AKilledRankFailsTheRunNamingItAndLeavesNoProcess) {
  Workdir w("kill");
  const fs::path log = w.path / "run.log";
  auto run = StartLongRun(w.path, log);
  ASSERT_TRUE(run.ok()) << run.error().message;
  // Wait until both ranks train, then kill rank 1.
  pid_t rank1 = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline && run->running()) {
    std::string text = ReadAll(log);
    auto at = text.find("started rank 1 of 2 (pid ");
    if (at != std::string::npos && text.find("training cnn") != std::string::npos) {
      rank1 = std::stoi(text.substr(at + 25));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(rank1, 0) << ReadAll(log);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (run->running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ProcessResult how = run->Stop();
  EXPECT_EQ(how.exit_code, 1) << how.Describe();
  const std::string text = ReadAll(log);
  EXPECT_NE(text.find("rank 1 (pid " + std::to_string(rank1) + ") killed by signal 9"),
            std::string::npos)
      << text;
  EXPECT_TRUE(ProcessesMentioning(w.path.string()).empty());
  EXPECT_FALSE(fs::exists(w.path / "m" / "model.json"));
}

// kill -9 of rank 0 (the command the user started) takes the ranks it started with it.
TEST(DistributedTrain, KillingRankZeroLeavesNoRankBehind) {
  Workdir w("kill0");
  const fs::path log = w.path / "run.log";
  auto run = StartLongRun(w.path, log);
  ASSERT_TRUE(run.ok()) << run.error().message;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline && run->running() &&
         ReadAll(log).find("training cnn") == std::string::npos)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(ProcessesMentioning(w.path.string()).size(), 2u) << ReadAll(log);
  run->Signal(SIGKILL);
  run->Stop();
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!ProcessesMentioning(w.path.string()).empty() &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(ProcessesMentioning(w.path.string()).empty());
}

TEST(DistributedTrain, BadArgumentsGiveClearErrors) {
  Workdir w("args");
  const std::string base = kCli + " train --out " + (w.path / "m").string() + " ";
  auto r = RunCommand(base + "--rendezvous 127.0.0.1:29400 --world-size 2 --rank 2 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--rank 2 is outside the world of 2 (ranks 0..1)"), std::string::npos)
      << r.output;
  r = RunCommand(base + "--nproc 2 --batch-size 63 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("must split evenly across 2 ranks"), std::string::npos) << r.output;
  r = RunCommand(base + "--nproc 2 --rendezvous 127.0.0.1:29400 --world-size 2 --rank 0 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("exclude each other"), std::string::npos) << r.output;
  r = RunCommand(base + "--rendezvous 127.0.0.1:" + std::to_string(FreeLoopbackPort()) +
                 " --world-size 2 --rank 1 --rendezvous-timeout 2 2>&1");
  EXPECT_EQ(r.exit_code, 5);  // kExitConnect
  EXPECT_NE(r.output.find("rank 1 cannot reach the rendezvous at 127.0.0.1:"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("within 2 s"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(w.path / "m"));
}

}  // namespace
}  // namespace edgeloop::ml
