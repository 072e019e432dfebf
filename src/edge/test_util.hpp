// Helpers shared by the edge tests: scratch directories and the crash-test child processes.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace edgeloop::edge::testing {

// A fresh directory under the system temp dir, removed with everything in it at scope end.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    path_ =
        std::filesystem::temp_directory_path() /
        ("edgeloop-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

// A helper program built beside the test executable.
inline std::string HelperPath(const std::string& name) {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / name).string();
}

// A child process with its stdout on a pipe; killed with SIGKILL and reaped at scope end.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      // A cross-built test runs its helper programs under the same emulator as itself
      // (EDGELOOP_TEST_EMULATOR, set by CTest from CMAKE_CROSSCOMPILING_EMULATOR).
      std::vector<char*> args;
      const char* emulator = std::getenv("EDGELOOP_TEST_EMULATOR");
      if (emulator != nullptr && *emulator != '\0') args.push_back(const_cast<char*>(emulator));
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_fd_ = fds[0];
  }
  ~Child() {
    Kill();
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  bool started() const { return pid_ > 0; }
  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // Waits for the child to exit by itself; returns its exit status or -1.
  int Wait() {
    int status = 0;
    if (pid_ <= 0 || ::waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // One line of the child's output (blocking), without the newline; empty at end of output.
  std::string ReadLine() {
    std::string s;
    char c;
    while (::read(out_fd_, &c, 1) == 1 && c != '\n') s.push_back(c);
    return s;
  }
  // Everything the child wrote (call after Kill() or Wait()).
  std::string ReadAll() {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out_fd_, buf, sizeof(buf))) > 0) s.append(buf, static_cast<size_t>(n));
    return s;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
};

}  // namespace edgeloop::edge::testing
