// edgeloop-agent: the agent alone, for devices. Links common, protocol, the data readers and
// image code, runtime and edge only (no server, no training code, no libtorch).
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "common/version.hpp"

int main(int argc, char** argv) {
  using namespace edgeloop::cli;
  CLI::App app{
      "edgeloop-agent: the edgeloop edge agent (inference, sampling, store-and-forward upload,\n"
      "telemetry, drift monitoring, signed A/B model updates).\n"
      "Exit codes: 0 ok, 1 failed, 2 usage error, 3 bad input data, 4 output/I-O error.",
      "edgeloop-agent"};
  app.set_version_flag("--version", edgeloop::CodeVersionString());
  AddAgentCommand(&app);
  return ParseAndRun(app, argc, argv);
}
