// Route module: telemetry, update events, fleet view.
#include "cloud/server_impl.hpp"

namespace edgeloop::cloud {

Status Server::Impl::FleetSchema() {
  return Status::Ok();
}

void Server::Impl::FleetRoutes() {}

}  // namespace edgeloop::cloud
