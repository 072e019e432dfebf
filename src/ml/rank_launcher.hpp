// `--nproc N` on one host: this process is rank 0 and starts ranks 1..N-1 as copies of
// itself (the same executable and arguments, minus --nproc, plus --rendezvous, --world-size
// and --rank). A rank that fails fails the whole run, with an error naming it; no rank
// outlives the run: each dies with rank 0 (PR_SET_PDEATHSIG), and rank 0 stops the others
// when it fails.
//
// While rank 0 trains, a watcher thread reaps the other ranks. When one of them exits
// non-zero or is killed, the watcher prints which rank and how it ended, stops the others
// and ends this process with exit code 1 (rank 0 may be blocked waiting for that rank, so
// there is nothing better to return to). Not copyable; Start and Finish from one thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/process.hpp"
#include "common/result.hpp"

namespace edgeloop::ml {

// The arguments of rank `rank`: args (argv[1..] of rank 0) without "--nproc N" or
// "--nproc=N", followed by the rendezvous flags for 127.0.0.1:port.
std::vector<std::string> RankArguments(const std::vector<std::string>& args, int world_size,
                                       int port, int rank);

// This process's arguments (argv[1..]) from /proc/self/cmdline.
Result<std::vector<std::string>> OwnArguments();

class RankLauncher {
 public:
  // command names the run in messages ("train": "edgeloop train: error: rank 1 ...").
  explicit RankLauncher(std::string command);
  ~RankLauncher();  // stops and reaps every rank still running
  RankLauncher(const RankLauncher&) = delete;
  RankLauncher& operator=(const RankLauncher&) = delete;

  // Starts ranks 1..world_size-1 against rank 0's store on 127.0.0.1:port.
  Status Start(int world_size, int port);
  // Rank 0 has finished with `rank0`. Waits for the other ranks (after a failure of rank 0:
  // stops them). Ok when rank 0 and every other rank succeeded; else an error naming the
  // rank that failed first (a rank that died is why rank 0 lost its peer).
  Status Finish(const Status& rank0);

 private:
  void Watch();
  void StopAll();
  std::string command_;
  std::vector<ChildProcess> ranks_;  // index i: rank i + 1
  std::vector<bool> done_;
  std::mutex mu_;  // guards ranks_ and done_ between Watch and Finish
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

}  // namespace edgeloop::ml
