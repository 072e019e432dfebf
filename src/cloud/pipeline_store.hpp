// The pipelines and their runs behind one interface: rows as structs, every accessor a
// Result. A queued run is claimed with one conditional UPDATE, so of several servers sharing
// a database exactly one starts it. A column that does not parse is an error naming the run,
// never an exception on a background thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cloud/database.hpp"

namespace edgeloop::cloud {

struct PipelineRow {
  std::string name;
  std::string yaml;  // the spec as submitted (pipeline.hpp parses it)
  int64_t created_ms = 0;
  int64_t last_run_ms = 0;    // when a trigger last queued a run (creation at first)
  int64_t labelled_seen = 0;  // labelled samples counted when it did
};

struct RunRow {
  std::string id;
  std::string pipeline;
  std::string trigger;  // manual, new_labelled_samples, schedule, drift_alarm:<device> on <m>
  std::string status;   // queued, running, succeeded, rejected, failed
  int64_t created_ms = 0;
  std::optional<int64_t> finished_ms;
  nlohmann::json result = nlohmann::json::object();  // RunResult::ToJson, {} until it starts
  // What GET /v1/runs/{id} answers.
  nlohmann::json ToJson() const;
};

class PipelineStore {
 public:
  explicit PipelineStore(Database& db) : db_(db) {}

  // Pipelines, by name. Get: kNotFound naming it. Put replaces the pipeline of that name.
  Result<std::vector<PipelineRow>> List();
  Result<PipelineRow> Get(const std::string& name);
  Status Put(const PipelineRow& row);
  // A trigger queued a run: the time and the labelled count it saw.
  Status MarkTriggered(const std::string& name, int64_t now_ms, int64_t labelled_seen);

  // Runs. GetRun: kNotFound naming the id. Runs: oldest first, of one pipeline when given.
  Status InsertRun(const RunRow& row);
  Result<RunRow> GetRun(const std::string& id);
  Result<std::vector<RunRow>> Runs(const std::optional<std::string>& pipeline = std::nullopt);
  Result<std::vector<RunRow>> RunsWithStatus(const std::string& status);
  // True while a run of the pipeline is queued or running.
  Result<bool> HasActiveRun(const std::string& pipeline);
  // True when a run of the pipeline was fired by a drift alarm on `model_version`.
  Result<bool> HasDriftRun(const std::string& pipeline, const std::string& model_version);
  // Moves the oldest queued run to running and returns it with its pipeline's YAML; nullopt
  // when none is queued. Safe against other servers claiming at the same time.
  Result<std::optional<std::pair<RunRow, std::string>>> ClaimNextQueued();
  // The steps so far (status stays running), and the end: status, finish time and result
  // written together, so no reader sees a finished run without its finish time.
  Status SaveProgress(const std::string& id, const nlohmann::json& result);
  Status Finish(const std::string& id, const std::string& status, int64_t finished_ms,
                const nlohmann::json& result);
  // Runs by status, for the metrics.
  Result<std::vector<std::pair<std::string, int64_t>>> CountByStatus();

 private:
  Database& db_;
};

}  // namespace edgeloop::cloud
