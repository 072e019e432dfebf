// What time it is on a device that may have no reliable clock (no RTC, no NTP yet after
// boot). Two readings:
//   local()   the system clock, shifted by EDGELOOP_AGENT_CLOCK_OFFSET_S seconds when that
//             variable is set. The variable exists for tests, which move a device's clock
//             years forward or back without touching the machine's; devices never set it.
//   trusted() the server's signed time (GET /v1/time, signed by the targets role, bound to a
//             fresh nonce) plus the monotonic time elapsed since it was received; nullopt
//             until one was verified in this process.
// Policy (docs/edge.md, "Clocks"): update metadata and root expiry are judged by trusted()
// only. While it is unknown the device keeps running its installed model and refuses new
// updates; the local clock never decides freshness, so a clock years behind cannot make
// expired metadata acceptable and a clock years ahead cannot brick the device.
//
// Thread safety: not thread-safe; the agent's main loop owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace edgeloop::edge {

class DeviceClock {
 public:
  DeviceClock();
  int64_t local() const;  // unix seconds
  std::optional<int64_t> trusted() const;
  // A verified server time, received now.
  void SetServerTime(int64_t server_unix);
  // local() - trusted(), when trusted() is known.
  std::optional<int64_t> skew() const;
  int64_t offset_s() const { return offset_s_; }

 private:
  int64_t offset_s_ = 0;
  std::optional<int64_t> server_unix_;
  std::chrono::steady_clock::time_point received_at_;
};

}  // namespace edgeloop::edge
