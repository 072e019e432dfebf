// `edgeloop server` as a real child process on a loopback port, for the crash and fault
// tests: started on a data folder, polled until healthy, killed with any signal.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "cloud_test_util.hpp"
#include "common/free_port.hpp"

namespace edgeloop::testing {

// The edgeloop binary: EDGELOOP_CLI_BINARY as compiled in.
inline std::string CliBinary() {
  return EDGELOOP_CLI_BINARY;
}

class ServerProcess {
 public:
  ServerProcess(const std::string& data_dir, int port, std::vector<std::string> extra = {})
      : data_dir_(data_dir), port_(port) {
    std::vector<std::string> args = {
        EDGELOOP_CLI_BINARY,  "server",        "--data", data_dir,         "--port",
        std::to_string(port), "--device-rate", "100000", "--device-burst", "100000"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~ServerProcess() { Kill(SIGKILL); }

  // Polls /v1/health until the server answers (or the child died).
  bool WaitReady() {
    for (int i = 0; i < 600; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      if (access((data_dir_ + "/ca.crt").c_str(), F_OK) == 0) {
        httplib::SSLClient c("127.0.0.1", port_);
        c.enable_server_certificate_verification(false);
        auto res = c.Get("/v1/health");
        if (res && res->status == 200) return true;
      }
      usleep(50'000);
    }
    return false;
  }

  // Sends sig and waits up to timeout_s for the process to end; returns its exit status
  // (-1 if it did not end in time; it is then killed) and how long it took.
  int Terminate(int sig, double timeout_s, double* elapsed_s) {
    auto start = std::chrono::steady_clock::now();
    kill(pid_, sig);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      *elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (*elapsed_s > timeout_s) {
        Kill(SIGKILL);
        return -1;
      }
      usleep(20'000);
    }
    *elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  pid_t pid() const { return pid_; }

  void Kill(int sig) {
    if (pid_ > 0) {
      kill(pid_, sig);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  std::string data_dir_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace edgeloop::testing
