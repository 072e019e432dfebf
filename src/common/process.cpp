#include "common/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace edgeloop {
namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Result<pid_t> Spawn(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) return Error(Errc::kInvalidArgument, "no program to run");
  int log_fd = -1;
  if (!options.log_path.empty()) {
    log_fd = ::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0)
      return Error(Errc::kIo, options.log_path + ": cannot open log: " + std::strerror(errno));
  }
  // Everything the child needs is prepared before fork: only async-signal-safe calls after.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) env_store.emplace_back(*e);
  for (const auto& e : options.env) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    if (log_fd >= 0) ::close(log_fd);
    return Error(Errc::kIo, std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);  // its own process group, so a stop reaches its children too
    if (options.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    }
    // The parent may hold SIGINT/SIGTERM blocked for a sigwait thread; the child starts with
    // the default signal handling whatever the parent did.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(127);
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  return pid;
}

ProcessResult FromStatus(int status) {
  ProcessResult r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// Waits for pid up to `limit` (negative: for ever); true when it was reaped into *status.
bool WaitFor(pid_t pid, int* status, std::chrono::milliseconds limit,
             const std::atomic<bool>* cancel = nullptr) {
  auto t0 = std::chrono::steady_clock::now();
  auto pause = std::chrono::milliseconds(2);
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // already reaped elsewhere
    if (cancel != nullptr && cancel->load()) return false;
    if (limit.count() >= 0 && std::chrono::steady_clock::now() - t0 >= limit) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
}

int Terminate(pid_t pid, std::chrono::milliseconds grace) {
  int status = 0;
  ::kill(-pid, SIGTERM);
  ::kill(pid, SIGTERM);
  if (!WaitFor(pid, &status, grace)) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    WaitFor(pid, &status, std::chrono::milliseconds(-1));
  }
  return status;
}

}  // namespace

std::string ProcessResult::Describe() const {
  char buf[64];
  if (timed_out) {
    std::snprintf(buf, sizeof buf, "timed out after %.1f s", seconds);
    return buf;
  }
  if (signal != 0) return "killed by signal " + std::to_string(signal);
  return "exit " + std::to_string(exit_code);
}

Result<ProcessResult> RunProcess(const std::vector<std::string>& argv, const RunOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  EDGELOOP_ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, options));
  int status = 0;
  auto limit = options.timeout.count() > 0
                   ? std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout)
                   : std::chrono::milliseconds(-1);
  bool done = WaitFor(pid, &status, limit, options.cancel);
  bool timed_out = !done;
  if (!done) status = Terminate(pid, std::chrono::seconds(5));
  ProcessResult r = FromStatus(status);
  r.timed_out = timed_out;
  r.seconds = Since(t0);
  return r;
}

Result<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                         const RunOptions& options) {
  EDGELOOP_ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, options));
  ChildProcess c;
  c.pid_ = pid;
  return c;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), status_(other.status_), reaped_(other.reaped_) {
  other.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !reaped_) Stop();
    pid_ = other.pid_;
    status_ = other.status_;
    reaped_ = other.reaped_;
    other.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) Stop();
}

bool ChildProcess::running() {
  if (pid_ <= 0 || reaped_) return false;
  if (WaitFor(pid_, &status_, std::chrono::milliseconds(0))) reaped_ = true;
  return !reaped_;
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

ProcessResult ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (pid_ > 0 && !reaped_) {
    status_ = Terminate(pid_, grace);
    reaped_ = true;
  }
  return FromStatus(status_);
}

std::string SelfExecutable() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<size_t>(n));
  // A binary replaced on disk while it runs (an upgrade, a rebuild) reads back with this
  // suffix; its path now names the new build, which is what a new child should run (the
  // worker reports carry a protocol version for exactly that case).
  const std::string deleted = " (deleted)";
  if (path.size() > deleted.size() &&
      path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0)
    path.resize(path.size() - deleted.size());
  return path;
}

}  // namespace edgeloop
