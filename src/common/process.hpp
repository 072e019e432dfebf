// Child processes: the pipeline runs training in a worker process (a crash there cannot take
// the server down), and `edgeloop demo` starts a server and agents. POSIX only.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop {

struct ProcessResult {
  int exit_code = -1;  // valid when signal == 0
  int signal = 0;      // the signal that ended the child, 0 when it exited
  bool timed_out = false;
  double seconds = 0;
  std::string Describe() const;  // "exit 0", "killed by signal 9", "timed out after 12.0 s"
};

struct RunOptions {
  std::string log_path;                       // stdout and stderr appended here; empty: inherited
  std::string cwd;                            // empty: the caller's
  std::vector<std::string> env;               // extra NAME=value entries
  std::chrono::seconds timeout{0};            // 0: none; on expiry SIGTERM, then SIGKILL after 5 s
  const std::atomic<bool>* cancel = nullptr;  // set to stop the child early (as a timeout)
  // The child is killed (SIGKILL) when the thread that started it ends, as when the parent
  // is killed -9: a pipeline's worker never outlives the server that ran it (Linux).
  bool die_with_parent = false;
};

// Runs argv[0] (a path, or a name looked up in PATH) to completion.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv, const RunOptions& options);

// A child left running (a server, an agent). The destructor stops it (SIGTERM, then SIGKILL).
class ChildProcess {
 public:
  static Result<ChildProcess> Start(const std::vector<std::string>& argv,
                                    const RunOptions& options);
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running();  // false once it has exited (reaps it)
  void Signal(int sig);
  // SIGTERM, waits up to grace, then SIGKILL. Returns how it ended.
  ProcessResult Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// The absolute path of the running executable (/proc/self/exe; after the file was replaced
// on disk, the path of its replacement).
std::string SelfExecutable();

}  // namespace edgeloop
