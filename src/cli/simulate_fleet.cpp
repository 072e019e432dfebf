#include "cli/simulate_fleet.hpp"

#include <arpa/inet.h>
#include <sys/resource.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "cloud/client.hpp"
#include "common/file.hpp"
#include "common/sample_record.hpp"
#include "edgeloop_wire.pb.h"

namespace edgeloop::cli::sim {
namespace {

constexpr int kImages = 16;

// kImages serialized wire::Samples: 28x28 grey images of soft stripes at different angles,
// quantized to 1/255 like camera pixels (so zstd sees what it would see from a sensor), sent
// as the agent sends them (SetTensorValues: 8-bit pixels).
const std::vector<std::string>& SamplePayloads() {
  static const std::vector<std::string> payloads = [] {
    std::vector<std::string> out;
    for (int k = 0; k < kImages; ++k) {
      wire::Sample s;
      auto* t = s.mutable_tensor();
      for (int d : {1, 28, 28}) t->add_shape(d);
      const double angle = k * 3.14159265358979 / kImages;
      std::vector<float> values;
      values.reserve(28 * 28);
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) {
          double v = 0.5 + 0.5 * std::sin((x * std::cos(angle) + y * std::sin(angle)) / 2.5);
          values.push_back(static_cast<float>(std::round(v * 255) / 255));
        }
      // The agent's own encoding: values that are all b / 255 travel as 8-bit pixels.
      SetTensorValues(t, values.data(), values.size());
      s.set_timestamp_ms(1'700'000'000'000);
      s.set_prediction(k % 10);
      s.set_confidence(0.5f);
      s.set_model_version("simulated");
      out.push_back(s.SerializeAsString());
    }
    return out;
  }();
  return payloads;
}

Result<cloud::OperatorClient> Operator(const SimOptions& o) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto co, cloud::ResolveClientOptions({o.server, o.token, o.ca_file, o.data_dir}));
  return cloud::OperatorClient::Create(co);
}

std::string DeviceId(const SimOptions& o, int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "-%05d", i);
  return o.prefix + buf;
}

}  // namespace

Status RequireLoopback(const std::string& host, const std::string& option) {
  if (host == "localhost") return Status::Ok();
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127)
    return Status::Ok();
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6)) return Status::Ok();
  return Error(Errc::kInvalidArgument,
               option + " " + host +
                   ": the simulator only targets loopback (127.0.0.0/8, ::1 or localhost); a "
                   "load test must never reach another machine");
}

void SimDevice::Produce(int batch, int max_queued_batches) {
  next_seq += static_cast<uint64_t>(batch);
  const uint64_t bound = static_cast<uint64_t>(batch) * static_cast<uint64_t>(max_queued_batches);
  // The queue is bounded like the agent's spool: the oldest samples not in flight go first.
  // (Dropped samples keep their sequence numbers, so the server sees a gap, never a reuse.)
  if (pending() > bound && !in_flight) {
    const uint64_t drop = pending() - bound;
    acked_through += drop;  // never sent: counted as dropped, not as acked
    dropped += drop;
  }
}

void SimDevice::Failed(Clock::time_point now) {
  failures = std::min<uint32_t>(failures + 1, 30);
  const double cap =
      std::min(60000.0, 500.0 * static_cast<double>(1ull << std::min(failures, 17u)));
  // A per-device generator would cost 5 KB a device (mt19937); a hash of the device's id and
  // its failure count spreads the retries as well.
  const uint64_t h = std::hash<std::string>()(id) ^ (0x9e3779b97f4a7c15ull * (failures + next_seq));
  const double share = static_cast<double>(h % 10007) / 10007.0;
  retry_at = now + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double, std::milli>(cap * share));
}

void RunStats::Merge(const RunStats& other) {
  batches_acked += other.batches_acked;
  samples_acked += other.samples_acked;
  duplicates += other.duplicates;
  ack_ms.insert(ack_ms.end(), other.ack_ms.begin(), other.ack_ms.end());
  for (const auto& [kind, n] : other.errors) errors[kind] += n;
}

edge::UploadBatch MakeBatch(const SimDevice& device, uint64_t first, uint64_t last) {
  edge::UploadBatch b;
  b.device_id = device.id;
  const auto& payloads = SamplePayloads();
  for (uint64_t seq = first; seq <= last; ++seq)
    b.records.push_back({seq, false, payloads[seq % payloads.size()]});
  return b;
}

Result<std::map<std::string, uint64_t>> StoredCounts(const SimOptions& o) {
  EDGELOOP_ASSIGN_OR_RETURN(auto op, Operator(o));
  EDGELOOP_ASSIGN_OR_RETURN(nlohmann::json j, op.GetJson("/v1/samples/counts?by=device"));
  std::map<std::string, uint64_t> out;
  if (!j.contains("counts") || !j["counts"].is_object())
    return Error(Errc::kFormat, "GET /v1/samples/counts: answer without counts");
  for (const auto& [device, n] : j["counts"].items())
    if (n.is_number_unsigned()) out[device] = n.get<uint64_t>();
  return out;
}

Result<std::vector<SimDevice>> LoadOrEnrollFleet(const SimOptions& o) {
  std::vector<std::string> given_tokens;
  if (!o.enroll_tokens_file.empty()) {
    EDGELOOP_ASSIGN_OR_RETURN(std::string text, ReadFile(o.enroll_tokens_file, 64 << 20));
    size_t at = 0;
    while (at < text.size()) {
      size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(at, end - at);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) given_tokens.push_back(line);
      at = end + 1;
    }
  }
  std::vector<SimDevice> devices(static_cast<size_t>(o.devices));
  std::vector<int> missing;
  for (int i = 0; i < o.devices; ++i) {
    devices[i].id = DeviceId(o, i);
    auto id = edge::LoadIdentity(o.state_dir + "/" + devices[i].id);
    if (id.ok()) {
      devices[i].identity = std::move(*id);
    } else if (id.error().code == Errc::kNotFound) {
      missing.push_back(i);
    } else {
      return id.error().WithContext("identity of " + devices[i].id);
    }
  }
  if (missing.empty()) return devices;
  if (!o.enroll_tokens_file.empty() && given_tokens.size() < missing.size())
    return Error(Errc::kInvalidArgument, std::to_string(missing.size()) +
                                             " devices need enrolling but " + o.enroll_tokens_file +
                                             " holds " + std::to_string(given_tokens.size()) +
                                             " tokens (one single-use token per device)");
  std::optional<cloud::OperatorClient> op;
  if (given_tokens.empty()) {
    auto c = Operator(o);
    if (!c.ok()) return c.error().WithContext("minting enrollment tokens");
    op = std::move(*c);
  }
  // The fleet CA to trust for enrollment: --ca, else the server's data folder.
  std::string ca_file = o.ca_file;
  if (ca_file.empty() && !o.data_dir.empty()) ca_file = o.data_dir + "/ca.crt";
  if (ca_file.empty())
    return Error(Errc::kInvalidArgument,
                 "enrolling needs the fleet CA certificate: --ca FILE or --data DIR");
  std::fprintf(stderr, "simulate: enrolling %zu devices (%d at a time) into %s\n", missing.size(),
               o.enroll_concurrency, o.state_dir.c_str());
  std::mutex mu;
  size_t next = 0, done = 0;
  std::optional<Error> failure;
  auto worker = [&] {
    for (;;) {
      size_t k;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (next >= missing.size() || failure) return;
        k = next++;
      }
      SimDevice& d = devices[missing[k]];
      std::string token;
      if (!given_tokens.empty()) {
        token = given_tokens[k];
      } else {
        auto t =
            op->PostJson("/v1/enrollment-tokens", {{"device_id", d.id}, {"ttl_seconds", 3600}});
        if (!t.ok() || !(*t)["token"].is_string()) {
          std::lock_guard<std::mutex> lock(mu);
          failure = t.ok() ? Error(Errc::kFormat, "enrollment token answer without token")
                           : t.error().WithContext("enrollment token for " + d.id);
          return;
        }
        token = (*t)["token"].get<std::string>();
      }
      auto id = edge::LoadOrEnroll({o.server, o.state_dir + "/" + d.id, d.id, token, ca_file});
      std::lock_guard<std::mutex> lock(mu);
      if (!id.ok()) {
        failure = id.error().WithContext("enrolling " + d.id);
        return;
      }
      d.identity = std::move(*id);
      if (++done % 1000 == 0 || done == missing.size())
        std::fprintf(stderr, "simulate: enrolled %zu/%zu\n", done, missing.size());
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, o.enroll_concurrency); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (failure) return *failure;
  return devices;
}

Status StartSequences(const SimOptions& o, std::vector<SimDevice>& devices) {
  EDGELOOP_ASSIGN_OR_RETURN(auto stored, StoredCounts(o));
  nlohmann::json used = nlohmann::json::object();
  if (auto text = ReadFile(o.state_dir + "/sequences.json", 64 << 20); text.ok()) {
    used = nlohmann::json::parse(*text, nullptr, false);
    if (!used.is_object())
      return Error(Errc::kFormat, o.state_dir + "/sequences.json: not a JSON object");
  }
  for (auto& d : devices) {
    d.baseline = stored.count(d.id) ? stored[d.id] : 0;
    uint64_t last = d.baseline;
    if (used.contains(d.id) && used[d.id].is_number_unsigned())
      last = std::max(last, used[d.id].get<uint64_t>());
    d.next_seq = last + 1;
    d.acked_through = d.start_through = last;
  }
  return Status::Ok();
}

Status SaveSequences(const SimOptions& o, const std::vector<SimDevice>& devices) {
  nlohmann::json used = nlohmann::json::object();
  for (const auto& d : devices) used[d.id] = d.next_seq - 1;
  return WriteFileAtomic(o.state_dir + "/sequences.json", used.dump() + "\n");
}

Result<uint64_t> RaiseFileLimit(uint64_t needed) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return Error(Errc::kIo, std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < needed) {
    rlimit higher{needed, needed};  // allowed with CAP_SYS_RESOURCE (root), up to fs.nr_open
    if (setrlimit(RLIMIT_NOFILE, &higher) == 0) return needed;
  }
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    return Error(Errc::kIo, std::string("setrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed)
    return Error(Errc::kUnavailable, "this run needs about " + std::to_string(needed) +
                                         " file descriptors but the hard limit (ulimit -Hn) is " +
                                         std::to_string(rl.rlim_cur) +
                                         ": raise it, or run fewer devices");
  return static_cast<uint64_t>(rl.rlim_cur);
}

}  // namespace edgeloop::cli::sim
