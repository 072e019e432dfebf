#include "edge/device_clock.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>

namespace edgeloop::edge {

DeviceClock::DeviceClock() {
  if (const char* env = std::getenv("EDGELOOP_AGENT_CLOCK_OFFSET_S")) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(env, env + std::strlen(env), v);
    if (ec == std::errc() && *end == '\0') offset_s_ = v;
  }
}

int64_t DeviceClock::local() const {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() +
         offset_s_;
}

std::optional<int64_t> DeviceClock::trusted() const {
  if (!server_unix_) return std::nullopt;
  return *server_unix_ + std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::steady_clock::now() - received_at_)
                             .count();
}

void DeviceClock::SetServerTime(int64_t server_unix) {
  server_unix_ = server_unix;
  received_at_ = std::chrono::steady_clock::now();
}

std::optional<int64_t> DeviceClock::skew() const {
  auto t = trusted();
  if (!t) return std::nullopt;
  return local() - *t;
}

}  // namespace edgeloop::edge
