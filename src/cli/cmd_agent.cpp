// `edgeloop agent --config agent.yaml` and the slim `edgeloop-agent` binary (agent_main.cpp):
// the same Agent class (src/edge/agent.hpp) behind the same flags.
#include <csignal>
#include <thread>

#include "cli/command.hpp"
#include "edge/agent.hpp"
#include "edge/agent_config.hpp"

namespace edgeloop::cli {

int RunAgent(const std::string& config_path) {
  // SIGINT/SIGTERM go to a waiting thread (sigwait), which stops the agent; Run() then stops
  // the uploader and returns with every spooled sample durable on disk.
  sigset_t signals = BlockTerminationSignals();
  auto config = edge::LoadAgentConfig(config_path);
  if (!config.ok()) return ReportError("agent", config.error());
  auto agent = edge::Agent::Create(*config);
  if (!agent.ok()) return ReportError("agent", agent.error());
  std::thread waiter([&agent, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    (*agent)->Stop();
  });
  Status st = (*agent)->Run();
  // Run() only returns after Stop() or a failure; wake the waiter in the second case.
  if (!st.ok()) pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (!st.ok()) return ReportError("agent", st.error());
  return kExitOk;
}

void AddAgentCommand(CLI::App* sub) {
  auto config = std::make_shared<std::string>();
  sub->add_option("--config", *config, "Agent configuration (YAML; see examples/agent.yaml)")
      ->required()
      ->check(CLI::ExistingFile);
  SetAction(sub, [config] { return RunAgent(*config); });
}

void RegisterAgent(CLI::App& root) {
  AddAgentCommand(root.add_subcommand(
      "agent", "Run the edge agent: inference, sampling, upload, telemetry, safe updates"));
}

}  // namespace edgeloop::cli
