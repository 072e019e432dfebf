// The fleet load test (issue 14): `edgeloop simulate` with 1,000 and 10,000 connected devices,
// one batch per device every 10 s, over HTTPS and over MQTT, against a real `edgeloop server`
// and a real Mosquitto broker on loopback. For each run: samples/s, ack p50/p99, errors and
// the verification (nothing acked missing), the CPU of server, broker and simulator (from
// /proc/<pid>/stat) and their peak RSS (VmRSS sampled every 250 ms), next to this machine's
// limits measured in the same run: fsyncs per second on the data disk, cores, the file limit.
// Prints a table and writes bench/results/fleet.json.
//
// One server and one broker serve every run (devices enrolled once, cached in the state
// folder); runs go from the smallest fleet up.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/bench_util.hpp"
#include "common/file.hpp"
#include "common/free_port.hpp"
#include "common/process.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Data-disk durability rate: 4 KiB pwrite at the start of a file, then fdatasync, for 1 s.
double DataDiskSyncRate(const std::string& dir) {
  const std::string path = dir + "/sync-probe";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 0;
  const std::string block(4096, 'y');
  int done = 0;
  const auto t0 = Clock::now();
  for (; Seconds(t0, Clock::now()) < 1.0; ++done)
    if (pwrite(fd, block.data(), block.size(), 0) < 0 || fdatasync(fd) != 0) break;
  const double rate = done / Seconds(t0, Clock::now());
  close(fd);
  unlink(path.c_str());
  return rate;
}

// utime + stime of a process, in seconds; VmRSS in bytes.
double CpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream rest(text.substr(close_paren + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stod(field);
    if (i == 15) {
      stime = std::stod(field);
      break;
    }
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

size_t RssBytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

struct Watched {
  const char* name;
  pid_t pid;
  double cpu0 = 0, cpu1 = 0;
  size_t peak = 0;
};

bool WaitForFile(const std::string& path, double seconds) {
  for (auto end = Clock::now() + std::chrono::duration<double>(seconds); Clock::now() < end;) {
    if (access(path.c_str(), F_OK) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

edgeloop::RunOptions LogTo(const std::string& path) {
  edgeloop::RunOptions o;
  o.log_path = path;
  return o;
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fleet_bench: error: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace edgeloop;
  CLI::App app{"Fleet load test: edgeloop simulate against a real server and broker"};
  std::vector<int> fleets{1000, 10000};
  std::vector<std::string> transports{"https", "mqtt"};
  double interval = 10, duration = 60, ramp = 20;
  int batch = 32;
  std::string out = "bench/results/fleet.json", edgeloop_bin = EDGELOOP_CLI_BINARY, work;
  app.add_option("--devices", fleets, "Fleet sizes")->capture_default_str();
  app.add_option("--transports", transports, "https, mqtt")->capture_default_str();
  app.add_option("--interval", interval, "Seconds between a device's batches")
      ->capture_default_str();
  app.add_option("--batch", batch, "Samples per batch")->capture_default_str();
  app.add_option("--duration", duration, "Seconds each run makes samples for")
      ->capture_default_str();
  app.add_option("--ramp", ramp, "Seconds over which each run's connects are spread")
      ->capture_default_str();
  int mqtt_workers = 0;
  app.add_option("--mqtt-workers", mqtt_workers,
                 "The server's MQTT ingest workers (0: its default)")
      ->capture_default_str();
  int https_senders = 0;
  app.add_option("--https-senders", https_senders,
                 "The simulator's blocking HTTPS senders (0: its default, 64)")
      ->capture_default_str();
  app.add_option("--edgeloop", edgeloop_bin, "The edgeloop binary")->capture_default_str();
  app.add_option("--work", work, "Folder for the server, broker and devices (default: a temp)");
  app.add_option("--out", out, "JSON output")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Server, broker and simulator inherit this limit (raised as far as allowed): 10,000
  // devices need a descriptor each in the simulator and in the server or broker.
  rlimit rl{1 << 20, 1 << 20};
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if (work.empty()) {
    char tmpl[] = "/tmp/fleet-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Fail("mkdtemp failed");
    work = tmpl;
  }
  if (auto st = MakeDirs(work); !st.ok()) Fail(st.error().message);
  const std::string data = work + "/server", broker_dir = work + "/broker";
  const int port = FreeLoopbackPort(), broker_port = FreeLoopbackPort();
  const std::string server_url = "https://127.0.0.1:" + std::to_string(port);
  const std::string broker_addr = "127.0.0.1:" + std::to_string(broker_port);
  auto cfg = RunProcess({edgeloop_bin, "mqtt-config", "--data", data, "--out", broker_dir, "--port",
                         std::to_string(broker_port), "--log-file", broker_dir + "/mosquitto.log"},
                        LogTo(work + "/mqtt-config.log"));
  if (!cfg.ok() || cfg->exit_code != 0) Fail("edgeloop mqtt-config failed, see " + work);
  const RunOptions blog = LogTo(broker_dir + "/stdout.log");
  auto broker = ChildProcess::Start(
      {access("/usr/sbin/mosquitto", X_OK) == 0 ? "/usr/sbin/mosquitto" : "mosquitto", "-c",
       broker_dir + "/mosquitto.conf"},
      blog);
  if (!broker.ok()) Fail("mosquitto: " + broker.error().message);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const RunOptions slog = LogTo(work + "/server.log");
  std::vector<std::string> server_args = {
      edgeloop_bin,    "server", "--data",         data,     "--port",        std::to_string(port),
      "--device-rate", "100000", "--device-burst", "100000", "--mqtt-broker", broker_addr};
  if (mqtt_workers > 0) {
    server_args.push_back("--mqtt-workers");
    server_args.push_back(std::to_string(mqtt_workers));
  }
  auto server = ChildProcess::Start(server_args, slog);
  if (!server.ok()) Fail("edgeloop server: " + server.error().message);
  if (!WaitForFile(data + "/admin.token", 60)) Fail("the server did not start, see " + work);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double syncs = DataDiskSyncRate(data);

  nlohmann::json runs = nlohmann::json::array();
  std::printf("%-6s %7s %10s %9s %9s %8s %8s %8s %9s %9s %7s %7s\n", "", "devices", "samples/s",
              "p50 ms", "p99 ms", "srv CPU", "brk CPU", "sim CPU", "srv RSS", "brk RSS", "errors",
              "missing");
  std::sort(fleets.begin(), fleets.end());
  for (int devices : fleets) {
    for (const std::string& transport : transports) {
      const std::string json = work + "/" + transport + "-" + std::to_string(devices) + ".json";
      const RunOptions ro =
          LogTo(work + "/simulate-" + transport + "-" + std::to_string(devices) + ".log");
      std::vector<std::string> sim_args = {edgeloop_bin,
                                           "simulate",
                                           "--devices",
                                           std::to_string(devices),
                                           "--transport",
                                           transport,
                                           "--server",
                                           server_url,
                                           "--broker",
                                           broker_addr,
                                           "--data",
                                           data,
                                           "--state",
                                           work + "/devices",
                                           "--interval",
                                           std::to_string(interval),
                                           "--batch",
                                           std::to_string(batch),
                                           "--duration",
                                           std::to_string(duration),
                                           "--ramp",
                                           std::to_string(ramp),
                                           "--enroll-concurrency",
                                           "16",
                                           "--json",
                                           json};
      if (transport == "https" && https_senders > 0) {
        sim_args.push_back("--threads");
        sim_args.push_back(std::to_string(https_senders));
      }
      // The first run of a fleet size enrolls it; its figures would include that, so the
      // identities are made first by a short run that is not measured.
      if (!std::filesystem::exists(work + "/devices/sim-" + [&] {
            char b[16];
            std::snprintf(b, sizeof(b), "%05d", devices - 1);
            return std::string(b);
          }() + "/identity/identity.json")) {
        std::fprintf(stderr, "fleet_bench: enrolling %d devices first\n", devices);
        auto enroll = RunProcess({edgeloop_bin,
                                  "simulate",
                                  "--devices",
                                  std::to_string(devices),
                                  "--transport",
                                  "https",
                                  "--server",
                                  server_url,
                                  "--data",
                                  data,
                                  "--state",
                                  work + "/devices",
                                  "--enroll-concurrency",
                                  "16",
                                  "--duration",
                                  "0.1",
                                  "--ramp",
                                  "0",
                                  "--interval",
                                  "3600"},
                                 LogTo(work + "/enroll.log"));
        if (!enroll.ok() || enroll->exit_code != 0) Fail("enrolling failed, see " + work);
      }
      auto sim = ChildProcess::Start(sim_args, ro);
      if (!sim.ok()) Fail("edgeloop simulate: " + sim.error().message);
      std::vector<Watched> watched = {
          {"server", server->pid()}, {"broker", broker->pid()}, {"simulator", sim->pid()}};
      for (auto& w : watched) w.cpu0 = CpuSeconds(w.pid);
      const auto t0 = Clock::now();
      while (sim->running()) {
        for (auto& w : watched) {
          w.peak = std::max(w.peak, RssBytes(w.pid));
          double c = CpuSeconds(w.pid);
          if (c > 0) w.cpu1 = c;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
      const double wall = Seconds(t0, Clock::now());
      ProcessResult pr = sim->Stop();
      auto text = ReadFile(json);
      nlohmann::json s = text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nullptr;
      if (!s.is_object()) {
        std::fprintf(stderr, "fleet_bench: %s with %d devices: %s, no summary (see %s)\n",
                     transport.c_str(), devices, pr.Describe().c_str(), ro.log_path.c_str());
        continue;
      }
      nlohmann::json procs = nlohmann::json::object();
      for (const auto& w : watched)
        procs[w.name] = {{"cpu_percent_of_one_core", 100.0 * (w.cpu1 - w.cpu0) / wall},
                         {"peak_rss_bytes", w.peak}};
      const uint64_t errors = s["errors"];
      const uint64_t missing = s["verify"]["missing"];
      std::printf(
          "%-6s %7d %10.0f %9.1f %9.1f %7.0f%% %7.0f%% %7.0f%% %7.0fMB %7.0fMB %7llu %7llu\n",
          transport.c_str(), devices, s["samples_per_s"].get<double>(),
          s["ack_p50_ms"].get<double>(), s["ack_p99_ms"].get<double>(),
          procs["server"]["cpu_percent_of_one_core"].get<double>(),
          procs["broker"]["cpu_percent_of_one_core"].get<double>(),
          procs["simulator"]["cpu_percent_of_one_core"].get<double>(), watched[0].peak / 1e6,
          watched[1].peak / 1e6, static_cast<unsigned long long>(errors),
          static_cast<unsigned long long>(missing));
      std::fflush(stdout);
      runs.push_back({{"transport", transport},
                      {"devices", devices},
                      {"simulator_exit", pr.Describe()},
                      {"offered_samples_per_s", devices * batch / interval},
                      {"summary", s},
                      {"processes", procs}});
    }
  }
  const unsigned cores = std::thread::hardware_concurrency();
  std::printf(
      "machine: %.0f fsyncs/s on the data disk (x %d samples a batch = %.0f samples/s "
      "at one fsync per batch), %u cores, file limit %llu\n",
      syncs, batch, syncs * batch, cores, static_cast<unsigned long long>(rl.rlim_cur));
  bench::WriteJson(out, {{"machine", bench::MachineInfo()},
                         {"limits",
                          {{"fsyncs_per_s", syncs},
                           {"cores", cores},
                           {"file_limit", static_cast<uint64_t>(rl.rlim_cur)}}},
                         {"interval_s", interval},
                         {"batch_samples", batch},
                         {"duration_s", duration},
                         {"ramp_s", ramp},
                         {"mqtt_workers", mqtt_workers},
                         {"goal", "10,000 connected devices, ack p99 < 250 ms, nothing lost"},
                         {"runs", runs}});
  server->Stop();
  broker->Stop();
  return 0;
}
