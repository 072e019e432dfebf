// Agent footprint: RSS and CPU of a real `edgeloop-agent` process running inference at a set
// rate and uploading every sample to a real `edgeloop server` on loopback; the stripped size
// of edgeloop-agent and the shared libraries it links (ldd).
//
//   ./build/bench/agent_bench [--seconds 30] [--rate 100]
//                             [--model base.onnx --data fashion-mnist:test]
//
// Without --model the agent runs a small classifier built here over a generated CSV dataset.
// Writes bench/results/agent.json.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "agent_test_util.hpp"
#include "bench/bench_util.hpp"
#include "server_process.hpp"

using namespace edgeloop;
using namespace edgeloop::testing;
using namespace edgeloop::bench;
using Json = nlohmann::json;

namespace {

// utime + stime of a process in seconds, and its RSS in KiB.
bool ReadProc(pid_t pid, double* cpu_s, uint64_t* rss_kb) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  *cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) *rss_kb = std::stoull(line.substr(6));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Agent RSS and CPU at a set inference rate with uploads to a real server"};
  int seconds = 30;
  double rate = 100;
  std::string model, data, out = "bench/results/agent.json";
  app.add_option("--seconds", seconds, "Measured run time")->capture_default_str();
  app.add_option("--rate", rate, "Samples per second")->capture_default_str();
  app.add_option("--model", model, "ONNX model for the agent (default: a small built-in one)");
  app.add_option("--data", data, "Dataset to replay with --model (e.g. fashion-mnist:test)");
  app.add_option("--out", out, "JSON result")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!model.empty() && data.empty()) {
    std::fprintf(stderr, "agent_bench: error: --model needs --data\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  TempDir dir;
  const std::string server_data = dir.path() + "/server";
  int port = FreeLoopbackPort();
  ServerProcess server(server_data, port);
  if (!server.WaitReady()) {
    std::fprintf(stderr, "agent_bench: error: the server did not start\n");
    return 1;
  }
  // What the JSON names: the user's files, or the built-in ones (not their temporary paths).
  std::string model_name = model, data_name = data;
  if (model.empty()) {
    model_name = "built-in 4->3 linear classifier";
    data_name = "built-in generated CSV (2000 rows)";
    model = dir.path() + "/model.onnx";
    (void)WriteFileAtomic(model, LinearModelOnnx(0));
    data = dir.path() + "/data.csv";
    WriteCsvDataset(data, 2000);
  }
  Operator op(port, server_data);
  const std::string config = dir.path() + "/agent.yaml";
  (void)WriteFileAtomic(
      config, AgentYaml("bench-1", dir.path() + "/agent", port, op.EnrollmentToken("bench-1"),
                        server_data + "/ca.crt", model,
                        "source: {kind: replay, dataset: " + data +
                            ", rate_hz: " + std::to_string(rate) + ", loop: true}\n",
                        "sampling: {policy: all}\ntelemetry: {interval_s: 5}\n"
                        "update: {poll_s: 10}\n"));
  const std::string log = dir.path() + "/agent.log";
  AgentProcess agent(EDGELOOP_AGENT_BINARY, config, log);
  if (!WaitFor([&] { return CountInFile(log, "inferring with model") > 0; }, 120)) {
    std::fprintf(stderr, "agent_bench: error: the agent did not start:\n%s\n",
                 ReadFile(log).ok() ? ReadFile(log)->c_str() : "");
    return 1;
  }
  sleep(2);  // past start-up
  double cpu0 = 0, cpu1 = 0;
  uint64_t rss = 0, rss_max = 0, uploaded0 = op.SampleCount("bench-1");
  std::vector<double> rss_samples;
  ReadProc(agent.pid(), &cpu0, &rss);
  auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < seconds; ++s) {
    sleep(1);
    ReadProc(agent.pid(), &cpu1, &rss);
    rss_max = std::max(rss_max, rss);
    rss_samples.push_back(static_cast<double>(rss));
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t uploaded = op.SampleCount("bench-1") - uploaded0;
  agent.Kill(SIGTERM);

  const std::string bin = EDGELOOP_AGENT_BINARY;
  const std::string stripped = dir.path() + "/edgeloop-agent.stripped";
  Capture("strip -o " + stripped + " " + bin);
  auto stripped_bytes = std::filesystem::file_size(stripped);
  std::vector<std::string> libs;
  std::istringstream ldd(Capture("ldd " + bin));
  std::string line;
  while (std::getline(ldd, line)) {
    auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    libs.push_back(line.substr(start, line.find(' ', start) - start));
  }

  double cpu_pct = 100.0 * (cpu1 - cpu0) / wall;
  double rss_p50 = Percentile(rss_samples, 50) / 1024.0;
  std::printf(
      "| rate (samples/s) | uploaded/s | CPU %% (one core) | RSS p50 MiB | RSS max MiB "
      "| stripped edgeloop-agent MiB | shared libraries |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  std::printf("| %.0f | %.1f | %.1f | %.1f | %.1f | %.2f | %zu |\n", rate,
              static_cast<double>(uploaded) / wall, cpu_pct, rss_p50,
              static_cast<double>(rss_max) / 1024.0,
              static_cast<double>(stripped_bytes) / (1 << 20), libs.size());
  std::printf("links: ");
  for (const auto& l : libs) std::printf("%s ", l.c_str());
  std::printf("\n");
  Json j = {{"machine", MachineInfo()},
            {"model", model_name},
            {"data", data_name},
            {"seconds", wall},
            {"rate_hz", rate},
            {"uploaded_per_s", static_cast<double>(uploaded) / wall},
            {"cpu_percent_of_one_core", cpu_pct},
            {"rss_p50_mib", rss_p50},
            {"rss_max_mib", static_cast<double>(rss_max) / 1024.0},
            {"stripped_bytes", stripped_bytes},
            {"shared_libraries", libs}};
  WriteJson(out, j);
  return 0;
}
