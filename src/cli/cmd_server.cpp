// `edgeloop server`: the cloud control plane in one process. Embedded defaults: SQLite and
// a data folder; `--db postgresql://...` puts the metadata on PostgreSQL instead.
#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/command.hpp"
#include "cloud/server.hpp"

namespace edgeloop::cli {
namespace {

int RunServer(const cloud::ServerOptions& options) {
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
  (*server)->Stop();
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
  SetAction(sub, [options] { return RunServer(*options); });
}

}  // namespace edgeloop::cli
