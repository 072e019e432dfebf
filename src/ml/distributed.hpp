// Data-parallel training across processes or hosts on libtorch's c10d: a TCPStore rendezvous
// and a Gloo process group. Every rank holds a full replica of the model; after each backward
// pass the gradients are summed across ranks in one flat tensor and averaged, so the replicas
// stay bitwise identical (Gloo hands every rank the same reduced bytes).
//
// Rank 0 runs the store (it listens on the rendezvous port; port 0 picks a free one), the
// others connect to it within the timeout. Errors are values: kInvalidArgument for a rank
// outside the world, kUnavailable for a rendezvous that is not reached in time or a peer that
// is lost during a collective. Not thread-safe: one training loop uses a group at a time.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::ml {

struct RendezvousOptions {
  std::string host = "127.0.0.1";  // where rank 0's store listens (rank 0: its own address)
  int port = 0;                    // 0: rank 0 picks a free port (one host only)
  int world_size = 1;
  int rank = 0;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};  // rendezvous and collectives

  Status Validate() const;
};

// What the collectives cost, for the training report and the benchmark.
struct CollectiveStats {
  int64_t allreduce_calls = 0;
  int64_t allreduce_bytes = 0;  // payload handed to all-reduce, summed over calls
  double allreduce_seconds = 0;
};

class DistributedGroup {
 public:
  // Joins the group. on_store_ready (rank 0 only) runs once the store listens, with its port,
  // before the ranks meet: `--nproc` starts the other processes there.
  static Result<std::unique_ptr<DistributedGroup>> Join(
      const RendezvousOptions& options,
      const std::function<Status(int port)>& on_store_ready = nullptr);
  ~DistributedGroup();
  DistributedGroup(const DistributedGroup&) = delete;
  DistributedGroup& operator=(const DistributedGroup&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int port() const { return port_; }

  // In place: every rank ends with the element-wise mean over ranks. float32 or float64.
  Status AllReduceMean(torch::Tensor& flat);
  // In place: every rank ends with the element-wise sum over ranks.
  Status AllReduceSum(torch::Tensor& flat);
  // Rank 0's values of the tensors on every rank (the replicas start from rank 0's weights).
  Status BroadcastFromRankZero(std::vector<torch::Tensor>& tensors);
  // Every rank's text, in rank order (through the store; small values such as fingerprints).
  Result<std::vector<std::string>> AllGatherText(const std::string& key, const std::string& text);

  const CollectiveStats& stats() const { return stats_; }

  struct Impl;

 private:
  explicit DistributedGroup(std::unique_ptr<Impl> impl, int rank, int world_size, int port);
  std::unique_ptr<Impl> impl_;
  int rank_, world_size_, port_;
  CollectiveStats stats_;
};

// The shard of an epoch's global order that `rank` trains on, as a distributed sampler: the
// order is padded (wrapping around) to a multiple of world_size, and rank r takes positions
// r, r + world, r + 2 world, ... Every rank gets the same number of samples, so every rank
// runs the same number of steps.
std::vector<int64_t> ShardOfEpoch(const std::vector<int64_t>& order, int rank, int world_size);

// SHA-256 over the bytes of every parameter and buffer: equal on ranks with equal weights.
std::string WeightsFingerprint(torch::nn::Module& module);

}  // namespace edgeloop::ml
