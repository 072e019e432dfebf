// Route module: dataset snapshots and exports.
#include "cloud/server_impl.hpp"

namespace edgeloop::cloud {

Status Server::Impl::DatasetSchema() {
  return Status::Ok();
}

void Server::Impl::DatasetRoutes() {}

}  // namespace edgeloop::cloud
