// Runs a shell command line and collects its exit code and output, for tests that drive the
// edgeloop binary as a user would.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace edgeloop::testing {

struct Outcome {
  int exit_code = -1;
  std::string output;  // whatever the command line sends to stdout (add 2>&1 for stderr)
};

inline Outcome RunCommand(const std::string& cmd) {
  Outcome o;
  FILE* p = ::popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  while (p && std::fgets(buf.data(), buf.size(), p)) o.output += buf.data();
  int status = p ? ::pclose(p) : -1;
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

}  // namespace edgeloop::testing
