// `edgeloop simulate --transport mqtt` in a build without libmosquitto (EDGELOOP_WITH_MQTT off).
#include "cli/simulate_fleet.hpp"

namespace edgeloop::cli::sim {

Status RunMqtt(const SimOptions&, std::vector<SimDevice>&, LiveCounters&, const std::atomic<bool>&,
               RunStats&) {
  return Error(Errc::kUnavailable,
               "--transport mqtt: this edgeloop was built without MQTT (EDGELOOP_WITH_MQTT off; "
               "apt-get install libmosquitto-dev and rebuild)");
}

}  // namespace edgeloop::cli::sim
