// Route module: staged rollouts.
#include "cloud/server_impl.hpp"

namespace edgeloop::cloud {

Status Server::Impl::RolloutSchema() {
  return Status::Ok();
}

void Server::Impl::RolloutRoutes() {}

}  // namespace edgeloop::cloud
