#include "ml/rank_launcher.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

namespace edgeloop::ml {

std::vector<std::string> RankArguments(const std::vector<std::string>& args, int world_size,
                                       int port, int rank) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  out.insert(out.end(), {"--rendezvous", "127.0.0.1:" + std::to_string(port), "--world-size",
                         std::to_string(world_size), "--rank", std::to_string(rank)});
  return out;
}

Result<std::vector<std::string>> OwnArguments() {
  // A /proc file reports size 0: read it as a stream.
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t i = 0; i < raw.size(); ++i)
    if (raw[i] == '\0') {
      args.push_back(raw.substr(start, i - start));
      start = i + 1;
    }
  if (args.empty()) return Error(Errc::kInternal, "/proc/self/cmdline is empty");
  args.erase(args.begin());  // the executable, taken from /proc/self/exe instead
  return args;
}

RankLauncher::RankLauncher(std::string command) : command_(std::move(command)) {}

RankLauncher::~RankLauncher() {
  stop_ = true;
  if (watcher_.joinable()) watcher_.join();
  StopAll();
}

Status RankLauncher::Start(int world_size, int port) {
  EDGELOOP_ASSIGN_OR_RETURN(auto args, OwnArguments());
  const std::string exe = SelfExecutable();
  for (int rank = 1; rank < world_size; ++rank) {
    std::vector<std::string> argv = {exe};
    for (auto& a : RankArguments(args, world_size, port, rank)) argv.push_back(a);
    RunOptions ro;
    ro.die_with_parent = true;  // killed with rank 0, even by kill -9
    auto child = ChildProcess::Start(argv, ro);
    if (!child.ok()) {
      StopAll();
      return child.error().WithContext("starting rank " + std::to_string(rank));
    }
    std::fprintf(stderr, "%s: started rank %d of %d (pid %d)\n", command_.c_str(), rank, world_size,
                 static_cast<int>(child->pid()));
    std::lock_guard<std::mutex> lock(mu_);
    ranks_.push_back(std::move(*child));
    done_.push_back(false);
  }
  watcher_ = std::thread([this] { Watch(); });
  return Status::Ok();
}

void RankLauncher::StopAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& r : ranks_)
    if (r.running()) r.Stop(std::chrono::seconds(2));
}

void RankLauncher::Watch() {
  while (!stop_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < ranks_.size(); ++i) {
        if (done_[i] || ranks_[i].running()) continue;
        done_[i] = true;
        ProcessResult how = ranks_[i].Stop();  // reaped already: how it ended
        if (how.exit_code == 0 && how.signal == 0) continue;
        std::fprintf(stderr,
                     "edgeloop %s: error: rank %zu (pid %d) %s; stopping the run (its own "
                     "message, if any, is above)\n",
                     command_.c_str(), i + 1, static_cast<int>(ranks_[i].pid()),
                     how.Describe().c_str());
        for (auto& r : ranks_)
          if (r.running()) r.Stop(std::chrono::seconds(2));
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status RankLauncher::Finish(const Status& rank0) {
  if (ranks_.empty()) return rank0;  // one process, or several hosts: nothing started here
  if (!rank0.ok()) {
    // A peer that died is the likely cause of rank 0's failure: give its exit a moment to be
    // seen (the watcher then reports it and ends the run).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop_ = true;
    if (watcher_.joinable()) watcher_.join();
    StopAll();
    return rank0;
  }
  // Rank 0 is done; the others end at the same point of the run.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool all = true;
      for (bool d : done_) all = all && d;
      if (all) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop_ = true;
  if (watcher_.joinable()) watcher_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < ranks_.size(); ++i)
    if (!done_[i]) {
      ranks_[i].Stop(std::chrono::seconds(2));
      return Error(Errc::kInternal, "rank " + std::to_string(i + 1) +
                                        " did not finish within 120 s of rank 0; stopped it");
    }
  return Status::Ok();
}

}  // namespace edgeloop::ml
