// `edgeloop server`: the cloud control plane in one process. Embedded defaults: SQLite and
// a data folder; `--db postgresql://...` puts the metadata on PostgreSQL instead.
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <future>
#include <cstdio>
#include <thread>

#include "cli/command.hpp"
#include "cloud/server.hpp"
#include "common/log.hpp"

namespace edgeloop::cli {
namespace {

int RunServer(const cloud::ServerOptions& options, double deadline_s) {
  // SIGINT/SIGTERM are taken by a waiting thread (sigwait), which may call Stop() safely.
  sigset_t signals = BlockTerminationSignals();
  auto server = cloud::Server::Create(options);
  if (!server.ok()) return ReportError("server", server.error());
  Status st = (*server)->Start();
  if (!st.ok()) return ReportError("server", st.error());
  std::printf("edgeloop server listening on https://%s:%d (data %s)\n", options.host.c_str(),
              (*server)->port(), options.data_dir.c_str());
  std::printf("admin token in %s/admin.token, CA certificate in %s/ca.crt\n",
              options.data_dir.c_str(), options.data_dir.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  // Stop accepting, let in-flight requests and pipeline steps finish, but never for longer
  // than the deadline: a client trickling bytes must not keep the process alive.
  std::fprintf(stderr, "edgeloop server: %s received, stopping (deadline %.1f s)\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM", deadline_s);
  auto started = std::chrono::steady_clock::now();
  std::promise<void> stopped;
  auto done = stopped.get_future();
  std::thread stopper([&] {
    (*server)->Stop();
    stopped.set_value();
  });
  if (done.wait_for(std::chrono::duration<double>(deadline_s)) == std::future_status::timeout) {
    std::fprintf(stderr,
                 "edgeloop server: requests still in flight after %.1f s; exiting without them "
                 "(committed data is durable)\n",
                 deadline_s);
    std::fflush(stderr);
    std::_Exit(kExitOk);
  }
  stopper.join();
  std::fprintf(stderr, "edgeloop server: stopped in %.2f s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return kExitOk;
}

}  // namespace

void RegisterServer(CLI::App& root) {
  auto options = std::make_shared<cloud::ServerOptions>();
  CLI::App* sub = root.add_subcommand("server", "Run the cloud control plane (HTTPS, mTLS)");
  sub->add_option("--data", options->data_dir, "Data folder (keys, samples, SQLite database)")
      ->capture_default_str();
  sub->add_option("--db", options->db_url,
                  "Metadata database: sqlite:<path> or postgresql://... (default: SQLite in "
                  "the data folder)");
  sub->add_option("--host", options->host, "Address to listen on")->capture_default_str();
  sub->add_option("--port", options->port, "Port (0: any free port)")->capture_default_str();
  sub->add_option("--ca-cert", options->ca_cert_file, "Use this fleet CA certificate (PEM)");
  sub->add_option("--ca-key", options->ca_key_file, "Use this fleet CA private key (PEM)");
  sub->add_option("--signing-key", options->signing_key_file,
                  "Use this Ed25519 update-signing key (PEM)");
  sub->add_option("--max-body-bytes", options->max_body_bytes, "Largest request body (413)")
      ->capture_default_str();
  sub->add_option("--max-batch-samples", options->max_batch_samples,
                  "Most samples per ingest batch (413)")
      ->capture_default_str();
  sub->add_option("--device-rate", options->device_batches_per_second,
                  "Ingest batches per second per device (429 above)")
      ->capture_default_str();
  sub->add_option("--device-burst", options->device_burst, "Batch burst per device")
      ->capture_default_str();
  sub->add_option("--max-decompressed-bytes", options->max_decompressed_bytes,
                  "Largest ingest batch after zstd (413)")
      ->capture_default_str();
  sub->add_option("--max-tensor-elements", options->max_tensor_elements,
                  "Most values in one sample's tensor (400)")
      ->capture_default_str();
  sub->add_option("--worker-executable", options->worker_executable,
                  "Program that runs pipeline steps (default: this edgeloop binary)");
  sub->add_option("--background-interval-ms", options->background_interval_ms,
                  "How often pipeline triggers and rollouts are checked")
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
  auto log_options = std::make_shared<std::pair<std::string, std::string>>("info", "");
  sub->add_option("--log-level", log_options->first, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  sub->add_option("--log-file", log_options->second,
                  "Append the structured log to this file (default: stderr)");
  sub->parse_complete_callback([log_options] {
    log::Options o;
    o.level = *log::ParseLevel(log_options->first);
    o.file = log_options->second;
    if (Status st = log::Configure(o); !st.ok()) throw CLI::ValidationError("--log-file", st.error().message);
  });
  auto deadline = std::make_shared<double>(10.0);
  sub->add_option("--shutdown-deadline", *deadline,
                  "Seconds to finish in-flight requests after SIGTERM/SIGINT, then exit anyway")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  SetAction(sub, [options, deadline] { return RunServer(*options, *deadline); });
}

}  // namespace edgeloop::cli
