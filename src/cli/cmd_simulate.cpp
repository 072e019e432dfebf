// edgeloop simulate: a fleet of light virtual devices in one process, over HTTPS or MQTT, for
// load tests on this machine (docs/scale-out.md, "Fleet simulator and load test").
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/command.hpp"
#include "cli/simulate_fleet.hpp"
#include "common/file.hpp"

namespace edgeloop::cli {
namespace {

using sim::Clock;

double Quantile(std::vector<float> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

Status CheckOptions(const sim::SimOptions& o) {
  auto bad = [](const std::string& m) { return Error(Errc::kInvalidArgument, m); };
  if (o.transport != "https" && o.transport != "mqtt")
    return bad("--transport must be https or mqtt, not '" + o.transport + "'");
  EDGELOOP_ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(o.server));
  EDGELOOP_RETURN_IF_ERROR(sim::RequireLoopback(url.host, "--server"));
  if (o.transport == "mqtt") {
    EDGELOOP_ASSIGN_OR_RETURN(HostPort b, ParseHostPort(o.broker, "--broker"));
    EDGELOOP_RETURN_IF_ERROR(sim::RequireLoopback(b.host, "--broker"));
  }
  if (o.prefix.empty() || o.prefix.size() > 64 ||
      o.prefix.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != std::string::npos)
    return bad("--prefix must be 1-64 of [A-Za-z0-9._-] (it starts every device id)");
  return Status::Ok();
}

int Run(sim::SimOptions o) {
  const char* cmd = "simulate";
  if (auto st = CheckOptions(o); !st.ok()) {
    std::fprintf(stderr, "edgeloop simulate: error: %s\n", st.error().message.c_str());
    return kExitUsage;
  }
  // A device holds one socket (simulate_mqtt.cpp: without libmosquitto's socket pair).
  auto limit = sim::RaiseFileLimit(static_cast<uint64_t>(o.devices) + 256);
  if (!limit.ok()) return ReportError(cmd, limit.error());
  if (auto st = MakeDirs(o.state_dir); !st.ok()) return ReportError(cmd, st.error());

  sigset_t signals = BlockTerminationSignals();
  std::atomic<bool> stop{false}, finished{false};
  std::thread waiter([&] {
    timespec tick{0, 200'000'000};
    while (!finished) {
      if (sigtimedwait(&signals, nullptr, &tick) > 0) {
        std::fprintf(stderr, "simulate: stopping (signal); the devices' last batches are lost\n");
        stop = true;
      }
    }
  });
  auto finish = [&](int code) {
    finished = true;
    waiter.join();
    return code;
  };

  auto fleet = sim::LoadOrEnrollFleet(o);
  if (!fleet.ok()) return finish(ReportError(cmd, fleet.error()));
  std::vector<sim::SimDevice>& devices = *fleet;
  if (auto st = sim::StartSequences(o, devices); !st.ok())
    return finish(ReportError(cmd, st.error().WithContext("sample counts before the run")));

  std::fprintf(stderr,
               "simulate: %d devices over %s, one batch of %d synthetic 28x28 samples each every "
               "%g s, connects spread over %g s, for %g s (file limit %llu)\n",
               o.devices, o.transport.c_str(), o.batch, o.interval_s, o.ramp_s, o.duration_s,
               static_cast<unsigned long long>(*limit));
  sim::LiveCounters live;
  sim::RunStats stats;
  Status run_status = Status::Ok();
  const auto start = Clock::now();
  std::atomic<bool> run_done{false};
  std::thread driver([&] {
    run_status = o.transport == "mqtt" ? sim::RunMqtt(o, devices, live, stop, stats)
                                       : sim::RunHttps(o, devices, live, stop, stats);
    run_done = true;
  });
  auto last_line = Clock::now();
  while (!run_done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (Clock::now() - last_line < std::chrono::seconds(5) || run_done) continue;
    last_line = Clock::now();
    const double t = std::chrono::duration<double>(last_line - start).count();
    std::fprintf(stderr,
                 "simulate: %5.0f s  connected %llu/%d  acked %llu batches, %llu samples "
                 "(%.0f/s)  errors %llu\n",
                 t, static_cast<unsigned long long>(live.connected.load()), o.devices,
                 static_cast<unsigned long long>(live.batches_acked.load()),
                 static_cast<unsigned long long>(live.samples_acked.load()),
                 static_cast<double>(live.samples_acked.load()) / t,
                 static_cast<unsigned long long>(live.errors.load()));
  }
  driver.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (!run_status.ok()) return finish(ReportError(cmd, run_status.error()));
  if (auto st = sim::SaveSequences(o, devices); !st.ok())
    std::fprintf(stderr, "simulate: warning: %s (a later run may reuse sequence numbers)\n",
                 st.error().message.c_str());

  // Every acknowledged sample must be stored once: what the server holds now, less what it
  // held before, equals what this run saw acknowledged, device by device.
  auto counts = sim::StoredCounts(o);
  if (!counts.ok()) return finish(ReportError(cmd, counts.error().WithContext("verification")));
  uint64_t acked = 0, stored = 0, missing = 0, extra = 0, dropped = 0, unacked = 0;
  int devices_missing = 0;
  for (const auto& d : devices) {
    const uint64_t now = counts->count(d.id) ? counts->at(d.id) : 0;
    const uint64_t delta = now >= d.baseline ? now - d.baseline : 0;
    const uint64_t a = d.acked_this_run();
    acked += a;
    stored += delta;
    dropped += d.dropped;
    unacked += d.pending();
    if (delta < a) {
      missing += a - delta;
      ++devices_missing;
    } else {
      extra += delta - a;
    }
  }
  uint64_t errors = 0;
  for (const auto& [kind, n] : stats.errors) errors += n;
  const double p50 = Quantile(stats.ack_ms, 0.5), p99 = Quantile(stats.ack_ms, 0.99);
  const double rate = static_cast<double>(stats.samples_acked) / elapsed;
  std::printf("devices %d over %s, %.1f s: %llu batches and %llu samples acked (%.0f samples/s)\n",
              o.devices, o.transport.c_str(), elapsed,
              static_cast<unsigned long long>(stats.batches_acked),
              static_cast<unsigned long long>(stats.samples_acked), rate);
  std::printf("ack latency (%s to ack): p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
              o.transport == "mqtt" ? "publish" : "POST", p50, p99, Quantile(stats.ack_ms, 1.0));
  std::printf("errors %llu", static_cast<unsigned long long>(errors));
  for (const auto& [kind, n] : stats.errors)
    std::printf("  %s: %llu", kind.c_str(), static_cast<unsigned long long>(n));
  std::printf("\n");
  std::printf(
      "verified: %llu samples stored this run for %llu acked: %llu missing (%d devices), %llu "
      "not acked but stored; %llu still queued unacked, %llu dropped from full queues\n",
      static_cast<unsigned long long>(stored), static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(missing), devices_missing,
      static_cast<unsigned long long>(extra), static_cast<unsigned long long>(unacked),
      static_cast<unsigned long long>(dropped));
  if (!o.json_path.empty()) {
    nlohmann::json err = nlohmann::json::object();
    for (const auto& [kind, n] : stats.errors) err[kind] = n;
    nlohmann::json j = {{"devices", o.devices},
                        {"transport", o.transport},
                        {"interval_s", o.interval_s},
                        {"batch_samples", o.batch},
                        {"sample", "synthetic 28x28 grey image as 8-bit pixels, no inference"},
                        {"duration_s", o.duration_s},
                        {"ramp_s", o.ramp_s},
                        {"elapsed_s", elapsed},
                        {"threads", o.threads},
                        {"file_limit", *limit},
                        {"batches_acked", stats.batches_acked},
                        {"samples_acked", stats.samples_acked},
                        {"samples_per_s", rate},
                        {"ack_p50_ms", p50},
                        {"ack_p99_ms", p99},
                        {"ack_max_ms", Quantile(stats.ack_ms, 1.0)},
                        {"errors", errors},
                        {"errors_by_kind", err},
                        {"duplicates_reported", stats.duplicates},
                        {"verify",
                         {{"stored", stored},
                          {"acked", acked},
                          {"missing", missing},
                          {"devices_missing", devices_missing},
                          {"stored_not_acked", extra},
                          {"queued_unacked", unacked},
                          {"dropped", dropped}}}};
    if (auto st = WriteFileAtomic(o.json_path, j.dump(2) + "\n"); !st.ok())
      return finish(ReportError(cmd, st.error()));
  }
  if (missing > 0) {
    std::fprintf(stderr, "edgeloop simulate: error: %llu acknowledged samples are not stored\n",
                 static_cast<unsigned long long>(missing));
    return finish(kExitFailure);
  }
  return finish(stop ? kExitInterrupted : kExitOk);
}

}  // namespace

void RegisterSimulate(CLI::App& root) {
  auto o = std::make_shared<sim::SimOptions>();
  CLI::App* sub = root.add_subcommand(
      "simulate", "Run many virtual devices in one process against a server on this machine");
  sub->footer(
      "Each device is enrolled through POST /v1/enroll with its own key and client certificate "
      "(cached in --state, so a later run reuses them; one single-use enrollment token each, "
      "minted with the operator's admin --token or read from --enroll-tokens), keeps its own "
      "sequence numbers and an in-memory bounded queue, and sends one batch of synthetic 28x28 "
      "samples every --interval. Over https each device holds the agent's keep-alive mutual-TLS "
      "connection; over mqtt a few threads drive all the libmosquitto clients. At the end the "
      "server's sample counts are checked: every acknowledged sample stored, once. Only "
      "loopback targets are allowed. Needs one file descriptor per device (and 256 more); the "
      "soft limit is raised to the hard one. Exit codes: 0 verified, 1 acknowledged "
      "samples missing, 2 bad options, 3-6 as for other commands, 130 interrupted. See "
      "docs/scale-out.md.");
  sub->add_option("--devices", o->devices, "Number of virtual devices")
      ->check(CLI::Range(1, 200000))
      ->capture_default_str();
  sub->add_option("--transport", o->transport, "https or mqtt")->capture_default_str();
  sub->add_option("--server", o->server, "The server's URL (loopback only)")->capture_default_str();
  sub->add_option("--token", o->token,
                  "Operator token: admin to mint enrollment tokens, read for the counts "
                  "(default: EDGELOOP_TOKEN, else <data>/admin.token)");
  sub->add_option("--ca", o->ca_file, "The fleet CA certificate (default: <data>/ca.crt)");
  sub->add_option("--data", o->data_dir, "A server data folder to find the token and CA in");
  sub->add_option("--enroll-token,--enroll-tokens", o->enroll_tokens_file,
                  "A file of single-use enrollment tokens, one per line, one per device to "
                  "enroll (default: mint them with --token)");
  sub->add_option("--broker", o->broker, "The MQTT broker, HOST:PORT (loopback only)")
      ->capture_default_str();
  sub->add_option("--state", o->state_dir, "Folder for the devices' identities and sequences")
      ->capture_default_str();
  sub->add_option("--prefix", o->prefix, "Device ids are <prefix>-00000, <prefix>-00001, ...")
      ->capture_default_str();
  sub->add_option("--interval", o->interval_s, "Seconds between a device's batches")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "Samples per batch")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  sub->add_option("--duration", o->duration_s, "Seconds to make samples for")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  sub->add_option("--ramp", o->ramp_s, "Seconds over which the devices' connects are spread")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  sub->add_option("--drain", o->drain_s, "Seconds to wait at the end for the last acks")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  sub->add_option("--ack-timeout", o->ack_timeout_s, "Seconds before a batch is sent again")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  sub->add_option("--queue-batches", o->max_queued_batches,
                  "Batches a device queues unacknowledged before it drops the oldest")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_option("--threads", o->threads,
                  "Driver threads (default: 2 for mqtt, 64 blocking senders for https)")
      ->check(CLI::Range(0, 4096));
  sub->add_option("--enroll-concurrency", o->enroll_concurrency, "Enrollments at a time")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  sub->add_option("--json", o->json_path, "Write the summary as JSON to this file");
  SetAction(sub, [o] { return Run(*o); });
}

}  // namespace edgeloop::cli
