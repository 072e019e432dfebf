// The edgeloop server binary as a child process on a free loopback port, for tests that
// need a real process (kill -9, CLI commands against it). Killed at destruction.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "cloud_test_util.hpp"

namespace edgeloop::testing {

inline int FreePort() {
  sockaddr_in addr{};
  close(BindLoopback(&addr));
  return ntohs(addr.sin_port);
}

// The edgeloop binary: EDGELOOP_CLI_BINARY as compiled in.
inline std::string CliBinary() {
  return EDGELOOP_CLI_BINARY;
}

// The server binary as a child process.
class ServerProcess {
 public:
  ServerProcess(const std::string& data_dir, int port) : data_dir_(data_dir), port_(port) {
    std::string binary = CliBinary();
    std::string port_text = std::to_string(port);
    pid_ = fork();
    if (pid_ == 0) {
      execl(binary.c_str(), binary.c_str(), "server", "--data", data_dir.c_str(), "--port",
            port_text.c_str(), "--device-rate", "100000", "--device-burst", "100000",
            static_cast<char*>(nullptr));
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
