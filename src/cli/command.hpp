// The edgeloop command line: one binary, one file per subcommand. Each file defines a
// Register<Name>(CLI::App& root) that adds its subcommand; the subcommand's callback returns
// an exit code through Run(), which turns a non-zero code into CLI11's RuntimeError so main()
// exits with it.
#pragma once

#include <signal.h>
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::cli {

// Exit codes, documented in --help and the README.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,        // the command ran and failed (training diverged, a gate failed, ...)
  kExitUsage = 2,          // bad flags or arguments
  kExitBadInput = 3,       // an input file or dataset is missing, unreadable or malformed
  kExitIo = 4,             // writing output failed (disk full, permissions)
  kExitConnect = 5,        // the edgeloop server could not be reached
  kExitRefused = 6,        // the server refused the request (token, scope)
  kExitInterrupted = 130,  // stopped by SIGINT/SIGTERM (the shell's 128 + SIGINT)
};

int ExitCodeFor(const Error& e);
// Prints "edgeloop <cmd>: error: <message>" on stderr and returns ExitCodeFor(e).
int ReportError(const std::string& command, const Error& e);

// Prints the error like ReportError and returns kExitUsage whatever its category: for a
// worker request (--request), which stands in for the command's flags.
int RequestError(const std::string& command, const Error& e);

// --request FILE on a worker command (train, finetune, export, eval, quantize, infer): the
// command's inputs as a worker request (common/worker_protocol.hpp) in place of its flags,
// which is how a pipeline runs its steps. AddTo goes after the subcommand's other options:
// the options declared required become required only without --request. Check() at the
// start of the action enforces both ways: with --request no other flag may be given but the
// "Distributed training" group (where this rank runs, not what it does), without it every
// required flag must be.
class RequestOption {
 public:
  std::string path;  // empty: the flags describe the run

  void AddTo(CLI::App* sub);
  bool given() const { return !path.empty(); }
  // 0 when the command may run, else kExitUsage after "edgeloop <cmd>: error: ..." on stderr.
  int Check() const;

 private:
  CLI::App* sub_ = nullptr;
  CLI::Option* self_ = nullptr;
  std::vector<CLI::Option*> required_;
};

// Attaches fn as the subcommand's action; fn's non-zero return becomes the process exit code.
void SetAction(CLI::App* sub, std::function<int()> fn);

// Parses argv and runs the chosen action; returns the process exit code.
int ParseAndRun(CLI::App& app, int argc, char** argv);
// Blocks SIGINT and SIGTERM (to be taken with sigwait by a waiting thread, which can stop a
// server or agent safely) and ignores SIGPIPE. Returns the blocked set.
sigset_t BlockTerminationSignals();

void RegisterTrain(CLI::App& root);
void RegisterFinetune(CLI::App& root);
void RegisterEval(CLI::App& root);
void RegisterExport(CLI::App& root);
void RegisterDatasets(CLI::App& root);
void RegisterInfer(CLI::App& root);
void RegisterInspect(CLI::App& root);
void RegisterQuantize(CLI::App& root);
void RegisterServer(CLI::App& root);
// Operator commands, clients of a running server (src/cloud/client.hpp).
void RegisterFleet(CLI::App& root);      // fleet devices|enroll-token|revoke, tokens create
void RegisterModels(CLI::App& root);     // models list|show|register|promote|card
void RegisterArtifacts(CLI::App& root);  // artifacts push, deploy
// datasets snapshot|snapshots|show-snapshot|export-snapshot, under `datasets`.
void AddSnapshotCommands(CLI::App& datasets);
void RegisterAgent(CLI::App& root);
// The agent's flags and action on `app` (the `agent` subcommand, or edgeloop-agent itself).
void AddAgentCommand(CLI::App* app);
void RegisterReport(CLI::App& root);
void RegisterPipelines(CLI::App& root);  // pipelines apply|list|run|runs|show|logs
void RegisterRollout(CLI::App& root);    // rollout start|list|status|pause|resume|abort
void RegisterDemo(CLI::App& root);       // the whole loop on this machine
void RegisterProfile(CLI::App& root);    // drift reference profile of a model
// mqtt-config: the Mosquitto broker of the MQTT device plane, from the fleet CA.
void RegisterMqttConfig(CLI::App& root);
void RegisterKeys(CLI::App& root);  // keys show|rotate-root|rotate-targets
// simulate: many virtual devices against a server (and broker) on this machine.
void RegisterSimulate(CLI::App& root);

}  // namespace edgeloop::cli
