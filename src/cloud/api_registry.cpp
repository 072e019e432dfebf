// Route module: models, versions, stages, model cards.
#include "cloud/server_impl.hpp"

namespace edgeloop::cloud {

Status Server::Impl::RegistrySchema() {
  return Status::Ok();
}

void Server::Impl::RegistryRoutes() {}

}  // namespace edgeloop::cloud
