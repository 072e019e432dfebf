#include "edge/uploader.hpp"

#include <algorithm>
#include <functional>

namespace edgeloop::edge {

Uploader::Uploader(Spool& spool, std::shared_ptr<UploadTransport> transport,
                   UploaderOptions options)
    : spool_(spool),
      transport_(std::move(transport)),
      opt_(std::move(options)),
      rng_(opt_.seed != 0 ? opt_.seed : std::hash<std::string>()(opt_.device_id) | 1) {}

std::chrono::milliseconds Uploader::Backoff() {
  uint32_t n = std::min<uint32_t>(stats_.consecutive_failures, 30);
  double cap =
      std::min(static_cast<double>(opt_.max_delay.count()),
               static_cast<double>(opt_.base_delay.count()) * static_cast<double>(1ull << n));
  std::uniform_real_distribution<double> jitter(0.0, cap);
  return std::chrono::milliseconds(static_cast<int64_t>(jitter(rng_)));
}

Result<size_t> Uploader::Step() {
  auto batch = spool_.Peek(opt_.max_records, opt_.max_bytes);
  if (!batch.ok()) return batch.error().WithContext("uploader");
  if (batch->empty()) {
    next_delay_ = std::chrono::milliseconds(-1);  // idle
    return size_t{0};
  }
  UploadBatch b{opt_.device_id, std::move(*batch)};
  uint64_t first = b.records.front().seq, last = b.records.back().seq;
  auto acked = transport_->Send(b);
  ++stats_.batches_sent;
  if (!acked.ok()) {
    ++stats_.failures;
    ++stats_.consecutive_failures;
    stats_.last_error = acked.error().message;
    next_delay_ = Backoff();
    return acked.error();
  }
  stats_.consecutive_failures = 0;
  uint64_t through = std::min(*acked, last);
  size_t confirmed = 0;
  if (through >= first) {
    Status st = spool_.Ack(through);
    if (!st.ok()) return st.error().WithContext("uploader: acknowledging");
    confirmed = static_cast<size_t>(through - first + 1);
    stats_.records_acked += confirmed;
  }
  next_delay_ = std::chrono::milliseconds(0);
  return confirmed;
}

void Uploader::Run(std::chrono::milliseconds idle_poll) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    (void)Step();  // errors are in stats() and decide the backoff
    lock.lock();
    auto wait = next_delay_.count() < 0 ? idle_poll : next_delay_;
    if (wait.count() > 0) cv_.wait_for(lock, wait, [this] { return stop_ || woken_; });
    woken_ = false;
  }
}

void Uploader::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

void Uploader::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

}  // namespace edgeloop::edge
