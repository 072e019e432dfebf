// Route module: pipelines and runs.
#include "cloud/server_impl.hpp"

namespace edgeloop::cloud {

Status Server::Impl::PipelineSchema() {
  return Status::Ok();
}

void Server::Impl::PipelineRoutes() {}

}  // namespace edgeloop::cloud
