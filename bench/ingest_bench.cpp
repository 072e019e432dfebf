// Ingest throughput and ack latency of the cloud server on loopback, with 1, 16, 256 and
// 1,024 concurrent devices, next to the limits of this machine measured in the same run:
// fsyncs per second on the data disk (and the fsync-bound limit, fsyncs/s x samples per
// batch, which a store making one fsync per batch cannot pass) and a raw loopback TCP copy.
// A second table drives the sample store alone (SampleStore::Append from one thread per
// device, no HTTPS), which shows what the store's durable write allows without the cost of
// TLS. Prints both tables and writes bench/results/ingest.json.
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
#include "cloud/migrations.hpp"
#include "cloud/sample_store.hpp"
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

struct LevelResult {
  std::vector<double> latencies_ms;  // one per acknowledged batch
  uint64_t errors = 0;
  double elapsed_s = 0;
};

// Runs `devices` threads, each calling send(device, batch index) until the deadline; send
// returns false for a failed batch.
template <typename Send>
LevelResult RunLevel(int devices, double seconds, Send&& send) {
  std::vector<std::vector<double>> latencies(devices);
  std::vector<uint64_t> errors(devices, 0);
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int d = 0; d < devices; ++d) {
    threads.emplace_back([&, d] {
      for (uint64_t b = 0; Clock::now() < deadline; ++b) {
        auto t0 = Clock::now();
        bool ok = send(d, b);
        auto t1 = Clock::now();
        if (!ok) {
          ++errors[d];
          continue;
        }
        latencies[d].push_back(Seconds(t0, t1) * 1000);
      }
    });
  }
  for (auto& t : threads) t.join();
  LevelResult r;
  r.elapsed_s = Seconds(start, Clock::now());
  for (int d = 0; d < devices; ++d) {
    r.latencies_ms.insert(r.latencies_ms.end(), latencies[d].begin(), latencies[d].end());
    r.errors += errors[d];
  }
  std::sort(r.latencies_ms.begin(), r.latencies_ms.end());
  return r;
}

// One row of a table and its JSON: samples/s against the fsync-bound limit.
nlohmann::json Report(int devices, const LevelResult& r, int batch_samples, double limit,
                      double mb_per_s) {
  auto pct = [&](double p) {
    const auto& all = r.latencies_ms;
    return all.empty() ? 0.0 : all[static_cast<size_t>(p * (all.size() - 1))];
  };
  double samples_per_s = r.latencies_ms.size() * batch_samples / r.elapsed_s;
  std::printf("%8d %12.0f %10.2f %12.0f %9.1f%% %12.2f %12.2f %8llu\n", devices, samples_per_s,
              mb_per_s, limit, 100 * samples_per_s / limit, pct(0.5), pct(0.99),
              static_cast<unsigned long long>(r.errors));
  return {{"devices", devices},
          {"batches", r.latencies_ms.size()},
          {"samples_per_s", samples_per_s},
          {"mb_per_s_uncompressed", mb_per_s},
          {"fsync_bound_samples_per_s", limit},
          {"of_fsync_bound", samples_per_s / limit},
          {"ack_p50_ms", pct(0.5)},
          {"ack_p99_ms", pct(0.99)},
          {"errors", r.errors}};
}

// A counter's value from the server's /v1/metrics (0 when absent).
uint64_t ScrapeCounter(const edgeloop::testing::CloudFixture& fixture, const std::string& name) {
  auto res = fixture.Get("/v1/metrics");
  if (!res || res->status != 200) return 0;
  const std::string key = "\n" + name + " ";
  size_t at = res->body.find(key);
  return at == std::string::npos ? 0 : std::stoull(res->body.substr(at + key.size()));
}

// Batches per segment fsync, printed under a row and added to its JSON.
void AddSyncs(nlohmann::json& row, uint64_t syncs, uint64_t batches) {
  row["fsyncs"] = syncs;
  row["batches_per_fsync"] = syncs ? static_cast<double>(batches) / syncs : 0.0;
  std::printf("%8s %llu batches in %llu segment fsyncs (%.1f a fsync)\n", "",
              static_cast<unsigned long long>(batches), static_cast<unsigned long long>(syncs),
              row["batches_per_fsync"].get<double>());
}

void PrintHeader() {
  std::printf("%8s %12s %10s %12s %10s %12s %12s %8s\n", "devices", "samples/s", "MB/s",
              "fsync-bound", "of bound", "ack p50 ms", "ack p99 ms", "errors");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace edgeloop;
  using namespace edgeloop::testing;
  CLI::App app{"Cloud ingest benchmark"};
  int batch_samples = 32, elements = 784;
  double seconds = 5.0;
  std::string out, db = "sqlite";
  std::vector<int> concurrency{1, 16, 256, 1024};
  std::vector<int> store_concurrency{1, 16, 256, 1024};
  app.add_option("--batch", batch_samples, "Samples per batch")->capture_default_str();
  app.add_option("--elements", elements, "Floats per sample tensor")->capture_default_str();
  app.add_option("--seconds", seconds, "Duration per concurrency level")->capture_default_str();
  app.add_option("--devices", concurrency, "Concurrency levels over HTTPS")->capture_default_str();
  app.add_option("--store-devices", store_concurrency,
                 "Concurrency levels against the sample store alone (0: none)")
      ->capture_default_str();
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

  // A store making one fsync per batch acks at most this many samples per second.
  const double limit = fsyncs * batch_samples;
  nlohmann::json runs = nlohmann::json::array();
  std::printf("database: %s, %d samples of %d floats per batch\n", dialect.c_str(), batch_samples,
              elements);
  std::printf("server over HTTPS (a new mutual-TLS connection per batch):\n");
  PrintHeader();
  for (int devices : concurrency) {
    if (devices <= 0) continue;
    std::vector<DeviceCredentials> creds;
    for (int d = 0; d < devices; ++d)
      creds.push_back(fixture.Enroll("bench-" + std::to_string(devices) + "-" + std::to_string(d)));
    std::vector<uint64_t> bytes(devices, 0);
    std::vector<std::unique_ptr<httplib::SSLClient>> clients;
    for (int d = 0; d < devices; ++d) clients.push_back(fixture.Client(&creds[d]));
    const uint64_t syncs_before = ScrapeCounter(fixture, "edgeloop_sample_store_syncs_total");
    const uint64_t batches_before =
        ScrapeCounter(fixture, "edgeloop_sample_store_synced_batches_total");
    LevelResult r = RunLevel(devices, seconds, [&](int d, uint64_t b) {
      auto batch = MakeBatch(creds[d].device_id, b * batch_samples, batch_samples, elements);
      std::string body = Zstd(batch.SerializeAsString());
      auto res = clients[d]->Post("/v1/ingest", body, "application/x-edgeloop-batch+zstd");
      if (!res || res->status != 200) return false;
      bytes[d] += batch.ByteSizeLong();
      return true;
    });
    uint64_t total_bytes = 0;
    for (uint64_t n : bytes) total_bytes += n;
    nlohmann::json row = Report(devices, r, batch_samples, limit, total_bytes / 1e6 / r.elapsed_s);
    AddSyncs(row, ScrapeCounter(fixture, "edgeloop_sample_store_syncs_total") - syncs_before,
             ScrapeCounter(fixture, "edgeloop_sample_store_synced_batches_total") - batches_before);
    runs.push_back(row);
  }

  // The sample store alone, on its own database (SQLite in the data folder, or the same
  // PostgreSQL) and folder on the same disk.
  nlohmann::json store_runs = nlohmann::json::array();
  std::printf("sample store alone (SampleStore::Append, one thread per device):\n");
  PrintHeader();
  auto store_db = cloud::OpenDatabase(
      options.db_url.empty() ? "sqlite:" + fixture.dir() + "/store-bench.db" : options.db_url);
  if (!store_db.ok() || !cloud::Migrate(**store_db).ok()) {
    std::fprintf(stderr, "ingest_bench: error: cannot open the store's database\n");
    return 1;
  }
  auto store = cloud::SampleStore::Open(**store_db, fixture.dir() + "/store-bench");
  if (!store.ok()) {
    std::fprintf(stderr, "ingest_bench: error: %s\n", store.error().message.c_str());
    return 1;
  }
  for (int devices : store_concurrency) {
    if (devices <= 0) continue;
    // Building a batch (tens of microseconds) counts in its ack time here.
    const std::string prefix = "store-" + std::to_string(devices) + "-";
    std::vector<uint64_t> bytes(devices, 0);
    const uint64_t syncs_before = (*store)->syncs();
    const uint64_t batches_before = (*store)->synced_batches();
    LevelResult r = RunLevel(devices, seconds, [&](int d, uint64_t b) {
      thread_local wire::SampleBatch batch;
      batch = MakeBatch(prefix + std::to_string(d), b * batch_samples, batch_samples, elements);
      std::vector<const wire::Sample*> samples;
      for (const auto& s : batch.samples()) samples.push_back(&s);
      auto ack = (*store)->Append(samples);
      if (!ack.ok() || ack->accepted != samples.size()) return false;
      bytes[d] += batch.ByteSizeLong();
      return true;
    });
    uint64_t total_bytes = 0;
    for (uint64_t n : bytes) total_bytes += n;
    nlohmann::json row = Report(devices, r, batch_samples, limit, total_bytes / 1e6 / r.elapsed_s);
    AddSyncs(row, (*store)->syncs() - syncs_before, (*store)->synced_batches() - batches_before);
    store_runs.push_back(row);
  }
  std::printf("machine: %.0f fsyncs/s on the data disk, %.0f MB/s raw loopback TCP copy\n", fsyncs,
              loopback);
  bench::WriteJson(out, {{"machine", bench::MachineInfo()},
                         {"limits",
                          {{"fsyncs_per_s", fsyncs},
                           {"fsync_bound_samples_per_s", limit},
                           {"loopback_mb_per_s", loopback}}},
                         {"batch_samples", batch_samples},
                         {"elements_per_sample", elements},
                         {"seconds_per_level", seconds},
                         {"database", dialect},
                         {"runs", runs},
                         {"store_runs", store_runs}});
  return 0;
}
