#include "cloud/rollout_store.hpp"

namespace edgeloop::cloud {
namespace {

constexpr char kColumns[] = "id, model, version, status, state, created_ms, updated_ms";

}  // namespace

Result<RolloutRow> RolloutStore::FromRow(const Row& r) const {
  if (r.size() != 7) return Error(Errc::kInternal, "rollouts: expected 7 columns");
  RolloutRow row;
  row.id = r[0];
  row.model = r[1];
  const std::string where = "rollout " + row.id;
  EDGELOOP_ASSIGN_OR_RETURN(row.version, ColumnInt64(r[2], where + " version"));
  row.status = r[3];
  row.state = nlohmann::json::parse(r[4], nullptr, false);
  if (!row.state.is_object()) return Error(Errc::kFormat, where + ": its state is not JSON");
  EDGELOOP_ASSIGN_OR_RETURN(row.created_ms, ColumnInt64(r[5], where + " created_ms"));
  EDGELOOP_ASSIGN_OR_RETURN(row.updated_ms, ColumnInt64(r[6], where + " updated_ms"));
  return row;
}

Status RolloutStore::Insert(const RolloutRow& row) {
  return db_.Exec(
      "INSERT INTO rollouts (" + std::string(kColumns) + ") VALUES (?, ?, ?, ?, ?, ?, ?)",
      {row.id, row.model, std::to_string(row.version), row.status, row.state.dump(),
       std::to_string(row.created_ms), std::to_string(row.updated_ms)});
}

Result<RolloutRow> RolloutStore::Get(const std::string& id) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT " + std::string(kColumns) + " FROM rollouts WHERE id = ?", {id}));
  if (rows.empty()) return Error(Errc::kNotFound, "no rollout " + id);
  return FromRow(rows[0]);
}

Result<RolloutRow> RolloutStore::GetForUpdate(const std::string& id) {
  const char* lock = db_.Dialect() == "postgresql" ? " FOR UPDATE" : "";
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT " + std::string(kColumns) + " FROM rollouts WHERE id = ?" + lock, {id}));
  if (rows.empty()) return Error(Errc::kNotFound, "no rollout " + id);
  return FromRow(rows[0]);
}

Result<std::vector<RolloutRow>> RolloutStore::List(const std::optional<std::string>& status) {
  std::string sql = "SELECT " + std::string(kColumns) + " FROM rollouts";
  std::vector<std::string> params;
  if (status) {
    sql += " WHERE status = ?";
    params.push_back(*status);
  }
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(sql + " ORDER BY created_ms, id", params));
  std::vector<RolloutRow> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(RolloutRow row, FromRow(r));
    out.push_back(std::move(row));
  }
  return out;
}

Result<bool> RolloutStore::AnyActive() {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT 1 FROM rollouts WHERE status IN ('running', 'paused') LIMIT 1"));
  return !rows.empty();
}

Status RolloutStore::Save(const std::string& id, const std::string& status,
                          const nlohmann::json& state, int64_t now_ms) {
  return db_.Exec("UPDATE rollouts SET status = ?, state = ?, updated_ms = ? WHERE id = ?",
                  {status, state.dump(), std::to_string(now_ms), id});
}

Result<std::vector<std::pair<std::string, int64_t>>> RolloutStore::CountByStatus() {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                            db_.Query("SELECT status, COUNT(*) FROM rollouts GROUP BY status "
                                      "ORDER BY status"));
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(int64_t n, ColumnInt64(r.at(1), "rollout count"));
    out.emplace_back(r.at(0), n);
  }
  return out;
}

}  // namespace edgeloop::cloud
