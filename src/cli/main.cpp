#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/command.hpp"
#include "common/version.hpp"

int main(int argc, char** argv) {
  using namespace edgeloop::cli;
  CLI::App app{
      "edgeloop: an end-to-end MLOps loop for edge and cloud.\n"
      "Exit codes: 0 ok, 1 failed, 2 usage error, 3 bad input data, 4 output/I-O error,\n"
      "5 server unreachable, 6 refused by the server (token or scope).",
      "edgeloop"};
  app.require_subcommand(1);
  app.set_version_flag("--version", edgeloop::CodeVersionString());
#ifdef EDGELOOP_HAS_ML
  RegisterTrain(app);
  RegisterFinetune(app);
  RegisterEval(app);
  RegisterExport(app);
  RegisterDemo(app);
#endif
  RegisterDatasets(app);
  RegisterInfer(app);
  RegisterInspect(app);
  RegisterQuantize(app);
  RegisterServer(app);
  RegisterFleet(app);
  RegisterModels(app);
  RegisterArtifacts(app);
  RegisterAgent(app);
  RegisterReport(app);
  RegisterPipelines(app);
  RegisterRollout(app);
  RegisterProfile(app);
  RegisterMqttConfig(app);
  RegisterKeys(app);
  RegisterSimulate(app);
  return ParseAndRun(app, argc, argv);
}
