#include "cli/command.hpp"

#include <csignal>
#include <cstdio>

#include "common/worker_protocol.hpp"

namespace edgeloop::cli {

int ExitCodeFor(const Error& e) {
  switch (e.code) {
    case Errc::kInvalidArgument:
      return kExitUsage;
    case Errc::kNotFound:
    case Errc::kFormat:
    case Errc::kMismatch:
    case Errc::kUnsupported:
      return kExitBadInput;
    case Errc::kIo:
    case Errc::kResourceExhausted:
      return kExitIo;
    case Errc::kUnavailable:
      return kExitConnect;
    case Errc::kPermission:
      return kExitRefused;
    default:
      return kExitFailure;
  }
}

int ReportError(const std::string& command, const Error& e) {
  std::fprintf(stderr, "edgeloop %s: error: %s\n", command.c_str(), e.message.c_str());
  return ExitCodeFor(e);
}

int RequestError(const std::string& command, const Error& e) {
  ReportError(command, e);
  return kExitUsage;
}

void RequestOption::AddTo(CLI::App* sub) {
  sub_ = sub;
  for (CLI::Option* o : sub->get_options()) {
    if (!o->get_required()) continue;
    o->required(false);
    o->description(o->get_description() + " (required without --request)");
    required_.push_back(o);
  }
  self_ = sub->add_option("--request", path,
                          "a worker request in place of the flags: a JSON file of kind \"" +
                              sub->get_name() + "\", worker protocol " +
                              std::to_string(worker::kWorkerProtocol) +
                              " (how a pipeline runs this step; its run folder keeps each one)")
              ->type_name("FILE");
}

int RequestOption::Check() const {
  const std::string command = sub_->get_name();
  if (given()) {
    // The data-parallel flags go with a request: they say where this rank of the step runs
    // (cli/distributed_options.hpp), not what it does.
    for (const CLI::Option* o : sub_->get_options())
      if (o != self_ && o != sub_->get_help_ptr() && o->count() > 0 &&
          o->get_group() != "Distributed training")
        return RequestError(
            command, Error(Errc::kInvalidArgument, "--request takes the place of the flags: " +
                                                       o->get_name() + " cannot go with it"));
    return 0;
  }
  for (const CLI::Option* o : required_)
    if (o->count() == 0)
      return RequestError(command, Error(Errc::kInvalidArgument,
                                         o->get_name() + " is required (or --request FILE)"));
  return 0;
}

void SetAction(CLI::App* sub, std::function<int()> fn) {
  sub->callback([fn = std::move(fn)]() {
    int rc = fn();
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

int ParseAndRun(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  return 0;
}

sigset_t BlockTerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A peer that disconnects mid-request must cost that request only, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  return signals;
}

}  // namespace edgeloop::cli
