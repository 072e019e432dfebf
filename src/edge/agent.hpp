// The edge agent: source → runtime inference → sampler → spool → uploader, with periodic
// telemetry (drift scores when the model ships a reference profile), deployment polling and
// safe updates (updater.hpp), every update state change reported to the cloud.
//
// State folder (device.data_dir):
//   identity/   enrollment result (cloud_client.hpp); the first start enrolls with the token
//   spool/      samples waiting for upload (spool.hpp)
//   models/     the updater's A/B slots and state.json (updater.hpp)
//
// Threads: Run() drives source, inference, telemetry and updates on the calling thread; the
// uploader drains the spool on its own thread (the spool is thread-safe). Stop() may be
// called from any thread (a signal-waiting thread); Run() then stops the uploader and
// returns. Every spooled sample is durable when Append() returned (fsync: every_append), so
// nothing is left to flush at exit beyond stopping cleanly.
//
// Log lines go to stderr, one per event, prefixed "edgeloop-agent: ".
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "edge/agent_config.hpp"

namespace edgeloop::edge {

class Agent {
 public:
  // Enrolls (first start) or loads the identity, opens spool and updater (installing the
  // factory model from model.path when none is installed), loads the active model and opens
  // the source. Errors: kInvalidArgument for configuration problems, kNotFound for missing
  // files, kPermission for a refused enrollment, kIo when the server cannot be reached on
  // the first start.
  static Result<std::unique_ptr<Agent>> Create(const AgentConfig& config);
  ~Agent();

  // Runs until Stop(). A finite source that ends leaves the agent uploading, reporting and
  // updating until stopped. Returns an error only for failures it cannot carry on after.
  Status Run();
  void Stop();

 private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeloop::edge
