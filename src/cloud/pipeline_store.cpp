#include "cloud/pipeline_store.hpp"

namespace edgeloop::cloud {
namespace {

constexpr char kRunColumns[] = "id, pipeline, trigger, status, created_ms, finished_ms, result";

Result<RunRow> ReadRun(const Row& r) {
  if (r.size() != 7) return Error(Errc::kInternal, "pipeline_runs: expected 7 columns");
  RunRow run;
  run.id = r[0];
  run.pipeline = r[1];
  run.trigger = r[2];
  run.status = r[3];
  const std::string where = "run " + run.id;
  EDGELOOP_ASSIGN_OR_RETURN(run.created_ms, ColumnInt64(r[4], where + " created_ms"));
  if (!r[5].empty()) {
    EDGELOOP_ASSIGN_OR_RETURN(int64_t finished, ColumnInt64(r[5], where + " finished_ms"));
    run.finished_ms = finished;
  }
  run.result = nlohmann::json::parse(r[6], nullptr, false);
  if (!run.result.is_object()) return Error(Errc::kFormat, where + ": its result is not JSON");
  return run;
}

Result<std::vector<RunRow>> ReadRuns(const std::vector<Row>& rows) {
  std::vector<RunRow> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(RunRow run, ReadRun(r));
    out.push_back(std::move(run));
  }
  return out;
}

Result<PipelineRow> ReadPipeline(const Row& r) {
  PipelineRow p;
  p.name = r.at(0);
  p.yaml = r.at(1);
  const std::string where = "pipeline " + p.name;
  EDGELOOP_ASSIGN_OR_RETURN(p.created_ms, ColumnInt64(r.at(2), where + " created_ms"));
  EDGELOOP_ASSIGN_OR_RETURN(p.last_run_ms, ColumnInt64(r.at(3), where + " last_run_ms"));
  EDGELOOP_ASSIGN_OR_RETURN(p.labelled_seen, ColumnInt64(r.at(4), where + " labelled_seen"));
  return p;
}

constexpr char kPipelineColumns[] = "name, spec, created_ms, last_run_ms, labelled_seen";

}  // namespace

nlohmann::json RunRow::ToJson() const {
  return {{"id", id},
          {"pipeline", pipeline},
          {"trigger", trigger},
          {"status", status},
          {"created_ms", created_ms},
          {"finished_ms", finished_ms ? nlohmann::json(*finished_ms) : nlohmann::json()},
          {"result", result}};
}

Result<std::vector<PipelineRow>> PipelineStore::List() {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT " + std::string(kPipelineColumns) +
                                                 " FROM pipelines ORDER BY name"));
  std::vector<PipelineRow> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(PipelineRow p, ReadPipeline(r));
    out.push_back(std::move(p));
  }
  return out;
}

Result<PipelineRow> PipelineStore::Get(const std::string& name) {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT " + std::string(kPipelineColumns) +
                                                     " FROM pipelines WHERE name = ?",
                                                 {name}));
  if (rows.empty()) return Error(Errc::kNotFound, "no pipeline " + name);
  return ReadPipeline(rows[0]);
}

Status PipelineStore::Put(const PipelineRow& row) {
  return db_.Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(db_.Exec("DELETE FROM pipelines WHERE name = ?", {row.name}));
    return db_.Exec(
        "INSERT INTO pipelines (" + std::string(kPipelineColumns) + ") VALUES (?, ?, ?, ?, ?)",
        {row.name, row.yaml, std::to_string(row.created_ms), std::to_string(row.last_run_ms),
         std::to_string(row.labelled_seen)});
  });
}

Status PipelineStore::MarkTriggered(const std::string& name, int64_t now_ms,
                                    int64_t labelled_seen) {
  return db_.Exec("UPDATE pipelines SET last_run_ms = ?, labelled_seen = ? WHERE name = ?",
                  {std::to_string(now_ms), std::to_string(labelled_seen), name});
}

Status PipelineStore::InsertRun(const RunRow& row) {
  return db_.Exec(
      "INSERT INTO pipeline_runs (" + std::string(kRunColumns) + ") VALUES (?, ?, ?, ?, ?, ?, ?)",
      {row.id, row.pipeline, row.trigger, row.status, std::to_string(row.created_ms),
       row.finished_ms ? std::to_string(*row.finished_ms) : std::string(), row.result.dump()});
}

Result<RunRow> PipelineStore::GetRun(const std::string& id) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT " + std::string(kRunColumns) + " FROM pipeline_runs WHERE id = ?", {id}));
  if (rows.empty()) return Error(Errc::kNotFound, "no run " + id);
  return ReadRun(rows[0]);
}

Result<std::vector<RunRow>> PipelineStore::Runs(const std::optional<std::string>& pipeline) {
  std::string sql = "SELECT " + std::string(kRunColumns) + " FROM pipeline_runs";
  std::vector<std::string> params;
  if (pipeline) {
    sql += " WHERE pipeline = ?";
    params.push_back(*pipeline);
  }
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(sql + " ORDER BY created_ms, id", params));
  return ReadRuns(rows);
}

Result<std::vector<RunRow>> PipelineStore::RunsWithStatus(const std::string& status) {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT " + std::string(kRunColumns) +
                                                     " FROM pipeline_runs WHERE status = ? "
                                                     "ORDER BY created_ms, id",
                                                 {status}));
  return ReadRuns(rows);
}

Result<bool> PipelineStore::HasActiveRun(const std::string& pipeline) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT 1 FROM pipeline_runs WHERE pipeline = ? AND status IN "
                           "('queued', 'running') LIMIT 1",
                           {pipeline}));
  return !rows.empty();
}

Result<bool> PipelineStore::HasDriftRun(const std::string& pipeline,
                                        const std::string& model_version) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT trigger FROM pipeline_runs WHERE pipeline = ? AND trigger LIKE ?",
                {pipeline, "drift_alarm:%"}));
  // Compared here rather than with a second LIKE: a model name may hold '_' or '%'.
  const std::string suffix = " on " + model_version;
  for (const auto& r : rows) {
    const std::string& t = r.at(0);
    if (t.size() >= suffix.size() &&
        t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  }
  return false;
}

Result<std::optional<std::pair<RunRow, std::string>>> PipelineStore::ClaimNextQueued() {
  using Claimed = std::optional<std::pair<RunRow, std::string>>;
  EDGELOOP_ASSIGN_OR_RETURN(
      auto queued, db_.Query("SELECT id FROM pipeline_runs WHERE status = 'queued' ORDER BY "
                             "created_ms, id LIMIT 1"));
  if (queued.empty()) return Claimed();
  // The conditional UPDATE is the claim: of two servers racing for the run, only one sees
  // its row come back.
  EDGELOOP_ASSIGN_OR_RETURN(
      auto claimed, db_.Query("UPDATE pipeline_runs SET status = 'running' WHERE id = ? AND "
                              "status = 'queued' RETURNING id",
                              {queued[0].at(0)}));
  if (claimed.empty()) return Claimed();
  EDGELOOP_ASSIGN_OR_RETURN(RunRow run, GetRun(claimed[0].at(0)));
  EDGELOOP_ASSIGN_OR_RETURN(PipelineRow pipeline, Get(run.pipeline));
  return Claimed(std::make_pair(std::move(run), std::move(pipeline.yaml)));
}

Status PipelineStore::SaveProgress(const std::string& id, const nlohmann::json& result) {
  return db_.Exec("UPDATE pipeline_runs SET result = ? WHERE id = ?", {result.dump(), id});
}

Status PipelineStore::Finish(const std::string& id, const std::string& status, int64_t finished_ms,
                             const nlohmann::json& result) {
  return db_.Exec("UPDATE pipeline_runs SET status = ?, finished_ms = ?, result = ? WHERE id = ?",
                  {status, std::to_string(finished_ms), result.dump(), id});
}

Result<std::vector<std::pair<std::string, int64_t>>> PipelineStore::CountByStatus() {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT status, COUNT(*) FROM pipeline_runs GROUP BY status ORDER BY status"));
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(int64_t n, ColumnInt64(r.at(1), "run count"));
    out.emplace_back(r.at(0), n);
  }
  return out;
}

}  // namespace edgeloop::cloud
