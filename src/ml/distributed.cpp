#include "ml/distributed.hpp"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

#include "common/hash.hpp"

namespace edgeloop::ml {

struct DistributedGroup::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

Status RendezvousOptions::Validate() const {
  if (world_size < 1)
    return Error(Errc::kInvalidArgument,
                 "world size must be at least 1, not " + std::to_string(world_size));
  if (rank < 0 || rank >= world_size)
    return Error(Errc::kInvalidArgument, "rank " + std::to_string(rank) +
                                             " is outside the world of " +
                                             std::to_string(world_size) + " (ranks 0.." +
                                             std::to_string(world_size - 1) + ")");
  if (port < 0 || port > 65535)
    return Error(Errc::kInvalidArgument,
                 "rendezvous port " + std::to_string(port) + " is outside 0..65535");
  if (port == 0 && rank != 0)
    return Error(Errc::kInvalidArgument,
                 "rank " + std::to_string(rank) + " needs the rendezvous port of rank 0, not 0");
  if (host.empty()) return Error(Errc::kInvalidArgument, "the rendezvous host is empty");
  if (timeout.count() <= 0) return Error(Errc::kInvalidArgument, "the timeout must be positive");
  return Status::Ok();
}

namespace {

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// The address this rank's Gloo pairs listen on: loopback for a one-host run; on several hosts
// the interface named by GLOO_SOCKET_IFNAME (as in PyTorch), else the one the host name
// resolves to.
std::shared_ptr<::gloo::transport::Device> GlooDevice(const std::string& host) {
  if (IsLoopback(host)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

std::string Where(const RendezvousOptions& o) {
  return o.host + ":" + std::to_string(o.port);
}

}  // namespace

DistributedGroup::DistributedGroup(std::unique_ptr<Impl> impl, int rank, int world_size, int port)
    : impl_(std::move(impl)), rank_(rank), world_size_(world_size), port_(port) {}

DistributedGroup::~DistributedGroup() = default;

Result<std::unique_ptr<DistributedGroup>> DistributedGroup::Join(
    const RendezvousOptions& o, const std::function<Status(int port)>& on_store_ready) {
  EDGELOOP_RETURN_IF_ERROR(o.Validate());
  auto impl = std::make_unique<Impl>();
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.port);
  so.isServer = o.rank == 0;
  so.numWorkers = static_cast<size_t>(o.world_size);
  so.waitWorkers = false;  // the ranks meet in the process group below
  so.timeout = o.timeout;
  const double secs = static_cast<double>(o.timeout.count()) / 1000.0;
  char timeout_text[32];
  std::snprintf(timeout_text, sizeof timeout_text, "%.0f s", secs);
  try {
    impl->store = c10::make_intrusive<c10d::TCPStore>(o.host, so);
  } catch (const std::exception& e) {
    if (o.rank == 0)
      return Error(Errc::kUnavailable, "rank 0 cannot listen for the rendezvous on port " +
                                           std::to_string(o.port) + " (in use?): " + e.what());
    return Error(Errc::kUnavailable,
                 "rank " + std::to_string(o.rank) + " cannot reach the rendezvous at " + Where(o) +
                     " within " + timeout_text + " (is rank 0 running there?): " + e.what());
  }
  const int port = impl->store->getPort();
  if (o.rank == 0 && on_store_ready) EDGELOOP_RETURN_IF_ERROR(on_store_ready(port));
  try {
    auto pgo = c10d::ProcessGroupGloo::Options::create(o.timeout);
    pgo->devices.push_back(GlooDevice(o.host));
    pgo->threads = 1;
    // A prefix keeps a later group on the same store from reading this one's keys.
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("edgeloop/train", impl->store);
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, o.rank, o.world_size, pgo);
  } catch (const std::exception& e) {
    return Error(Errc::kUnavailable, "rank " + std::to_string(o.rank) + " of " +
                                         std::to_string(o.world_size) +
                                         ": the ranks did not all meet at " + Where(o) +
                                         " within " + timeout_text + ": " + e.what());
  }
  return std::unique_ptr<DistributedGroup>(
      new DistributedGroup(std::move(impl), o.rank, o.world_size, port));
}

Status DistributedGroup::AllReduceSum(torch::Tensor& flat) {
  auto t0 = std::chrono::steady_clock::now();
  try {
    std::vector<at::Tensor> tensors{flat};
    impl_->group->allreduce(tensors)->wait();
  } catch (const std::exception& e) {
    return Error(Errc::kUnavailable, "rank " + std::to_string(rank_) +
                                         ": all-reduce failed (a peer rank stopped?): " + e.what());
  }
  stats_.allreduce_calls += 1;
  stats_.allreduce_bytes += static_cast<int64_t>(flat.numel() * flat.element_size());
  stats_.allreduce_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Status::Ok();
}

Status DistributedGroup::AllReduceMean(torch::Tensor& flat) {
  EDGELOOP_RETURN_IF_ERROR(AllReduceSum(flat));
  flat.div_(static_cast<double>(world_size_));
  return Status::Ok();
}

Status DistributedGroup::BroadcastFromRankZero(std::vector<torch::Tensor>& tensors) {
  if (tensors.empty()) return Status::Ok();
  try {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      impl_->group->broadcast(one)->wait();
    }
  } catch (const std::exception& e) {
    return Error(Errc::kUnavailable, "rank " + std::to_string(rank_) +
                                         ": broadcast failed (a peer rank stopped?): " + e.what());
  }
  return Status::Ok();
}

Result<std::vector<std::string>> DistributedGroup::AllGatherText(const std::string& key,
                                                                 const std::string& text) {
  try {
    const std::string prefix = "edgeloop/gather/" + key + "/";
    impl_->store->set(prefix + std::to_string(rank_),
                      std::vector<uint8_t>(text.begin(), text.end()));
    std::vector<std::string> out;
    for (int r = 0; r < world_size_; ++r) {
      auto v = impl_->store->get(prefix + std::to_string(r));
      out.emplace_back(v.begin(), v.end());
    }
    return out;
  } catch (const std::exception& e) {
    return Error(Errc::kUnavailable, "rank " + std::to_string(rank_) + ": exchanging '" + key +
                                         "' failed: " + e.what());
  }
}

std::vector<int64_t> ShardOfEpoch(const std::vector<int64_t>& order, int rank, int world_size) {
  const size_t n = order.size();
  const size_t world = static_cast<size_t>(world_size);
  const size_t per_rank = (n + world - 1) / world;
  std::vector<int64_t> shard;
  shard.reserve(per_rank);
  for (size_t i = 0; i < per_rank; ++i)
    shard.push_back(order[(i * world + static_cast<size_t>(rank)) % n]);
  return shard;
}

std::string WeightsFingerprint(torch::nn::Module& module) {
  Sha256 h;
  auto add = [&](const torch::Tensor& t) {
    auto c = t.detach().contiguous();
    h.Update(std::string_view(static_cast<const char*>(c.data_ptr()),
                              static_cast<size_t>(c.numel() * c.element_size())));
  };
  for (auto& p : module.parameters()) add(p);
  for (auto& b : module.buffers()) add(b);
  return h.HexDigest();
}

}  // namespace edgeloop::ml
