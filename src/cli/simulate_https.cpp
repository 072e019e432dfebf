// The HTTPS side of `edgeloop simulate`: each device uploads through its own edge::CloudClient,
// the agent's own client (mutual TLS with the device's certificate, one keep-alive connection
// that stays open between batches, POST /v1/ingest). The client is blocking, as in the agent,
// so a pool of threads shares the devices: thread t serves devices t, t + T, t + 2T, ... in
// the order their batches fall due.
#include <algorithm>
#include <memory>
#include <queue>
#include <thread>

#include "cli/simulate_fleet.hpp"

namespace edgeloop::cli::sim {
namespace {

std::string ErrorKind(const Error& e) {
  const std::string& m = e.message;
  for (const char* code : {"HTTP 4", "HTTP 5"}) {
    size_t at = m.find(code);
    if (at != std::string::npos) return "http_" + m.substr(at + 5, 3);
  }
  if (m.find("cannot reach") != std::string::npos) return "connection";
  return "other";
}

void ServeSlice(const SimOptions& o, std::vector<SimDevice*> mine, LiveCounters& live,
                const std::atomic<bool>& stop, Clock::time_point end, RunStats& stats) {
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.interval_s));
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.ack_timeout_s * 1000));
  std::vector<std::unique_ptr<edge::CloudClient>> clients(mine.size());
  std::vector<bool> counted(mine.size(), false);
  using Due = std::pair<Clock::time_point, size_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due;
  for (size_t k = 0; k < mine.size(); ++k) due.push({mine[k]->next_batch, k});
  const auto drain_end =
      end + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.drain_s));
  while (!due.empty() && !stop) {
    auto [when, k] = due.top();
    due.pop();
    SimDevice& d = *mine[k];
    const bool draining = when >= end;
    if (draining && (d.pending() == 0 || when >= drain_end)) continue;  // this device is done
    std::this_thread::sleep_until(when);
    if (stop) break;
    if (!draining) d.Produce(o.batch, o.max_queued_batches);
    if (!clients[k])
      clients[k] = std::make_unique<edge::CloudClient>(o.server, d.identity, timeout);
    auto next = std::max(when + interval, Clock::now());
    if (d.pending() > 0) {
      // Everything queued goes in one batch, as the agent's uploader sends what its spool holds.
      const uint64_t first = d.acked_through + 1, last = d.next_seq - 1;
      auto batch = MakeBatch(d, first, last);
      auto t0 = Clock::now();
      auto acked = clients[k]->Ingest(batch);
      auto t1 = Clock::now();
      if (acked.ok()) {
        if (!counted[k]) {
          counted[k] = true;
          ++live.connected;  // its keep-alive connection now stays open
        }
        d.acked_through = std::max(d.acked_through, std::min(*acked, last));
        d.failures = 0;
        ++stats.batches_acked;
        stats.samples_acked += last - first + 1;
        stats.ack_ms.push_back(std::chrono::duration<float, std::milli>(t1 - t0).count());
        ++live.batches_acked;
        live.samples_acked += last - first + 1;
      } else {
        ++stats.errors[ErrorKind(acked.error())];
        ++live.errors;
        if (acked.error().code == Errc::kPermission || acked.error().code == Errc::kInvalidArgument)
          continue;              // refused: this device stops (the error counts say why)
        d.Failed(Clock::now());  // retried after the uploader's backoff
        next = std::max(next, d.retry_at);
      }
    }
    if (draining) next = Clock::now() + std::chrono::milliseconds(200);
    due.push({next, k});
  }
}

}  // namespace

Status RunHttps(const SimOptions& o, std::vector<SimDevice>& devices, LiveCounters& live,
                const std::atomic<bool>& stop, RunStats& stats) {
  const int threads =
      std::max(1, std::min<int>(o.threads > 0 ? o.threads : 64, static_cast<int>(devices.size())));
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.duration_s));
  for (size_t i = 0; i < devices.size(); ++i)
    devices[i].next_batch =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                    o.ramp_s * static_cast<double>(i) / static_cast<double>(devices.size())));
  std::vector<RunStats> per(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    std::vector<SimDevice*> mine;
    for (size_t i = static_cast<size_t>(t); i < devices.size(); i += static_cast<size_t>(threads))
      mine.push_back(&devices[i]);
    pool.emplace_back([&, t, mine] { ServeSlice(o, mine, live, stop, end, per[t]); });
  }
  for (auto& th : pool) th.join();
  for (const auto& s : per) stats.Merge(s);
  return Status::Ok();
}

}  // namespace edgeloop::cli::sim
