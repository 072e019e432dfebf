// Ingest throughput and ack latency of the cloud server on loopback, with 1, 16 and 256
// concurrent devices, next to the limits of this machine measured in the same run: fsyncs
// per second on the data disk and a raw loopback TCP copy. Prints a table and writes
// bench/results/ingest.json.
//
// Every device has its own client certificate (enrolled through the real API); each request
// is a new mutual-TLS connection, as an agent uploading now and then would make.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "bench/bench_util.hpp"
#include "tests/cloud_test_util.hpp"
#include "tests/postgres_fixture.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// 4 KiB write + fdatasync in a loop for about a second, in the data folder.
double FsyncsPerSecond(const std::string& dir) {
  std::string path = dir + "/fsync-probe";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::string block(4096, 'x');
  int n = 0;
  auto start = Clock::now();
  while (Seconds(start, Clock::now()) < 1.0) {
    if (write(fd, block.data(), block.size()) < 0 || fdatasync(fd) != 0) break;
    ++n;
  }
  double rate = n / Seconds(start, Clock::now());
  close(fd);
  unlink(path.c_str());
  return rate;
}

// MB/s of a plain TCP copy over 127.0.0.1 (one sender thread, one receiver).
double LoopbackMegabytesPerSecond() {
  sockaddr_in addr{};
  int listener = edgeloop::testing::BindLoopback(&addr);
  listen(listener, 1);
  constexpr size_t kTotal = size_t{1} << 30;
  std::thread sender([addr] {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) return;
    std::string buf(1 << 16, 'x');
    for (size_t sent = 0; sent < kTotal;) {
      ssize_t n = send(s, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    close(s);
  });
  int conn = accept(listener, nullptr, nullptr);
  std::string buf(1 << 16, '\0');
  size_t got = 0;
  auto start = Clock::now();
  for (;;) {
    ssize_t n = recv(conn, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  double mbps = got / 1e6 / Seconds(start, Clock::now());
  sender.join();
  close(conn);
  close(listener);
  return mbps;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace edgeloop;
  using namespace edgeloop::testing;
  CLI::App app{"Cloud ingest benchmark"};
  int batch_samples = 32, elements = 784;
  double seconds = 5.0;
  std::string out, db = "sqlite";
  std::vector<int> concurrency{1, 16, 256};
  app.add_option("--batch", batch_samples, "Samples per batch")->capture_default_str();
  app.add_option("--elements", elements, "Floats per sample tensor")->capture_default_str();
  app.add_option("--seconds", seconds, "Duration per concurrency level")->capture_default_str();
  app.add_option("--devices", concurrency, "Concurrency levels")->capture_default_str();
  app.add_option("--out", out,
                 "JSON output (default bench/results/ingest.json, ingest-postgresql.json)");
  app.add_option("--db", db,
                 "sqlite (in the data folder), postgresql (a temporary server started here, "
                 "as the tests do) or a postgresql://... URL")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  cloud::ServerOptions options;
  std::unique_ptr<PostgresServer> postgres;
  if (db == "postgresql") {
    postgres = std::make_unique<PostgresServer>();
    if (!postgres->ok()) {
      std::fprintf(stderr, "ingest_bench: error: could not start a temporary PostgreSQL\n");
      return 1;
    }
    options.db_url = postgres->url();
  } else if (db.rfind("postgresql://", 0) == 0) {
    options.db_url = db;
  } else if (db != "sqlite") {
    std::fprintf(stderr, "ingest_bench: error: --db must be sqlite, postgresql or a URL\n");
    return 2;
  }
  const std::string dialect = options.db_url.empty() ? "sqlite" : "postgresql";
  if (out.empty())
    out =
        dialect == "sqlite" ? "bench/results/ingest.json" : "bench/results/ingest-postgresql.json";
  options.device_batches_per_second = 1e9;
  options.device_burst = 1e9;
  CloudFixture fixture(options);
  const double fsyncs = FsyncsPerSecond(fixture.dir());
  const double loopback = LoopbackMegabytesPerSecond();

  nlohmann::json runs = nlohmann::json::array();
  std::printf("database: %s\n", dialect.c_str());
  std::printf("%8s %12s %10s %12s %12s %8s\n", "devices", "samples/s", "MB/s", "ack p50 ms",
              "ack p99 ms", "errors");
  for (int devices : concurrency) {
    std::vector<DeviceCredentials> creds;
    for (int d = 0; d < devices; ++d)
      creds.push_back(fixture.Enroll("bench-" + std::to_string(devices) + "-" + std::to_string(d)));
    std::vector<std::vector<double>> latencies(devices);
    std::vector<uint64_t> bytes(devices, 0), errors(devices, 0);
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(seconds);
    std::vector<std::thread> threads;
    for (int d = 0; d < devices; ++d) {
      threads.emplace_back([&, d] {
        auto client = fixture.Client(&creds[d]);
        for (uint64_t b = 0; Clock::now() < deadline; ++b) {
          auto batch = MakeBatch(creds[d].device_id, b * batch_samples, batch_samples, elements);
          std::string body = Zstd(batch.SerializeAsString());
          auto t0 = Clock::now();
          auto res = client->Post("/v1/ingest", body, "application/x-edgeloop-batch+zstd");
          auto t1 = Clock::now();
          if (!res || res->status != 200) {
            ++errors[d];
            continue;
          }
          latencies[d].push_back(Seconds(t0, t1) * 1000);
          bytes[d] += batch.ByteSizeLong();
        }
      });
    }
    for (auto& t : threads) t.join();
    double elapsed = Seconds(start, Clock::now());
    std::vector<double> all;
    uint64_t total_bytes = 0, total_errors = 0;
    for (int d = 0; d < devices; ++d) {
      all.insert(all.end(), latencies[d].begin(), latencies[d].end());
      total_bytes += bytes[d];
      total_errors += errors[d];
    }
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) {
      return all.empty() ? 0.0 : all[static_cast<size_t>(p * (all.size() - 1))];
    };
    double samples_per_s = all.size() * batch_samples / elapsed;
    double mb_per_s = total_bytes / 1e6 / elapsed;
    std::printf("%8d %12.0f %10.2f %12.2f %12.2f %8llu\n", devices, samples_per_s, mb_per_s,
                pct(0.5), pct(0.99), static_cast<unsigned long long>(total_errors));
    runs.push_back({{"devices", devices},
                    {"batches", all.size()},
                    {"samples_per_s", samples_per_s},
                    {"mb_per_s_uncompressed", mb_per_s},
                    {"ack_p50_ms", pct(0.5)},
                    {"ack_p99_ms", pct(0.99)},
                    {"errors", total_errors}});
  }
  std::printf("machine: %.0f fsyncs/s on the data disk, %.0f MB/s raw loopback TCP copy\n", fsyncs,
              loopback);
  bench::WriteJson(out, {{"machine", bench::MachineInfo()},
                         {"limits", {{"fsyncs_per_s", fsyncs}, {"loopback_mb_per_s", loopback}}},
                         {"batch_samples", batch_samples},
                         {"elements_per_sample", elements},
                         {"seconds_per_level", seconds},
                         {"database", dialect},
                         {"runs", runs}});
  return 0;
}
