#include "cli/command.hpp"

#include <csignal>
#include <cstdio>

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
