// The data-parallel flags `train` and `finetune` share: --nproc N on this host, or
// --rendezvous HOST:PORT --world-size N --rank R across hosts (ml/distributed.hpp). They sit
// in the option group kDistributedGroup, the one group a worker request (--request) may be
// combined with: the ranks that `--nproc` starts for a pipeline's step get the request and
// these flags.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "cli/command.hpp"
#include "common/result.hpp"
#include "common/url.hpp"
#include "ml/distributed.hpp"
#include "ml/rank_launcher.hpp"

namespace edgeloop::cli {

inline constexpr const char* kDistributedGroup = "Distributed training";

struct DistributedOptions {
  int nproc = 1;
  std::string rendezvous;  // HOST:PORT of rank 0
  int world_size = 0, rank = -1;
  double timeout_s = 60;

  void AddTo(CLI::App* sub) {
    sub->add_option("--nproc", nproc,
                    "train data-parallel in N processes on this host (this one is rank 0 and "
                    "starts the others; ranks share the cores when --threads is 0)")
        ->check(CLI::Range(1, 64))
        ->group(kDistributedGroup)
        ->capture_default_str();
    sub->add_option("--rendezvous", rendezvous,
                    "several hosts: HOST:PORT where rank 0 listens (rank 0 opens it; with "
                    "--world-size and --rank)")
        ->group(kDistributedGroup);
    sub->add_option("--world-size", world_size, "several hosts: the number of ranks in all")
        ->check(CLI::Range(1, 4096))
        ->group(kDistributedGroup);
    sub->add_option("--rank", rank, "several hosts: this process's rank, 0..world-size-1")
        ->group(kDistributedGroup);
    sub->add_option("--rendezvous-timeout", timeout_s,
                    "seconds to wait for every rank to join (and for a collective)")
        ->check(CLI::PositiveNumber)
        ->group(kDistributedGroup)
        ->capture_default_str();
  }

  bool enabled() const { return nproc > 1 || !rendezvous.empty(); }
  int world() const { return rendezvous.empty() ? nproc : world_size; }

  // The flags together, before any data is loaded. batch_size is the global batch.
  Status Validate(int64_t batch_size) const {
    if (nproc > 1 && !rendezvous.empty())
      return Error(Errc::kInvalidArgument,
                   "--nproc (this host) and --rendezvous (several hosts) exclude each other");
    if (rendezvous.empty() && (world_size != 0 || rank != -1))
      return Error(Errc::kInvalidArgument, "--world-size and --rank need --rendezvous HOST:PORT");
    if (!rendezvous.empty()) {
      if (world_size == 0 || rank == -1)
        return Error(Errc::kInvalidArgument,
                     "--rendezvous needs --world-size N and --rank R (0..N-1)");
      if (rank < 0 || rank >= world_size)
        return Error(Errc::kInvalidArgument, "--rank " + std::to_string(rank) +
                                                 " is outside the world of " +
                                                 std::to_string(world_size) + " (ranks 0.." +
                                                 std::to_string(world_size - 1) + ")");
      EDGELOOP_ASSIGN_OR_RETURN(auto hp, ParseHostPort(rendezvous, "--rendezvous"));
      (void)hp;
    }
    if (enabled() && batch_size % world() != 0)
      return Error(Errc::kInvalidArgument,
                   "--batch-size " + std::to_string(batch_size) +
                       " is the global batch and must split evenly across " +
                       std::to_string(world()) + " ranks; use a multiple of " +
                       std::to_string(world()));
    return Status::Ok();
  }

  // Joins the group (nullptr when not distributed); with --nproc, starts the other ranks
  // through launcher once rank 0's store listens.
  Result<std::unique_ptr<ml::DistributedGroup>> Join(ml::RankLauncher& launcher) const {
    if (!enabled()) return std::unique_ptr<ml::DistributedGroup>();
    ml::RendezvousOptions ro;
    ro.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    if (rendezvous.empty()) {
      ro.world_size = nproc;
      ro.rank = 0;
      return ml::DistributedGroup::Join(ro, [&](int port) { return launcher.Start(nproc, port); });
    }
    EDGELOOP_ASSIGN_OR_RETURN(auto hp, ParseHostPort(rendezvous, "--rendezvous"));
    ro.host = hp.host;
    ro.port = hp.port;
    ro.world_size = world_size;
    ro.rank = rank;
    return ml::DistributedGroup::Join(ro);
  }

  // The command's run: validates the flags, joins the group (starting the other ranks for
  // --nproc), runs this rank's part and waits for the others. Returns the exit code after
  // "edgeloop <command>: error: ..." on failure; a rank other than 0 names itself.
  int Run(const std::string& command, int64_t batch_size,
          const std::function<Status(ml::DistributedGroup*)>& rank_part) const {
    if (auto st = Validate(batch_size); !st.ok()) return ReportError(command, st.error());
    ml::RankLauncher launcher(command);
    auto group = Join(launcher);
    Status st = group.ok() ? rank_part(group->get()) : Status(group.error());
    st = launcher.Finish(st);
    if (st.ok()) return 0;
    const bool named = st.error().message.rfind("rank ", 0) == 0;
    return ReportError(command, rank > 0 && !named
                                    ? st.error().WithContext("rank " + std::to_string(rank))
                                    : st.error());
  }
};

}  // namespace edgeloop::cli
