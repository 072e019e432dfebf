#include "cli/command.hpp"

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

}  // namespace edgeloop::cli
