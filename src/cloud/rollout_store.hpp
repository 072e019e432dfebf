// The rollouts table behind one interface: rows as structs, every accessor a Result, so the
// route module and the controller's tick only authorise, decide and serialise. A row whose
// columns do not parse (a number that is not one, a state that is not JSON) is an error
// naming the rollout, never an exception on a background thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloud/database.hpp"

namespace edgeloop::cloud {

struct RolloutRow {
  std::string id;
  std::string model;
  int64_t version = 0;
  std::string status;    // running, paused, completed, rolled_back, aborted
  nlohmann::json state;  // the controller's state (RolloutController::ToJson)
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

class RolloutStore {
 public:
  explicit RolloutStore(Database& db) : db_(db) {}

  Status Insert(const RolloutRow& row);
  // kNotFound naming the id when there is no such rollout.
  Result<RolloutRow> Get(const std::string& id);
  // Get, locking the row until the enclosing Transaction ends (PostgreSQL: FOR UPDATE; SQLite
  // locks the whole database for a write transaction already), so that replicas changing
  // one rollout (a tick on the leader, an operator command on any replica) go one at a time.
  Result<RolloutRow> GetForUpdate(const std::string& id);
  // Oldest first; with `status`, only rollouts in it.
  Result<std::vector<RolloutRow>> List(const std::optional<std::string>& status = std::nullopt);
  // True while a rollout is running or paused (new drift runs wait for it).
  Result<bool> AnyActive();
  // The controller's new status and state after a tick or a command; inside a Transaction
  // it commits with the actions that go with it.
  Status Save(const std::string& id, const std::string& status, const nlohmann::json& state,
              int64_t now_ms);
  // Rollouts by status, for the metrics.
  Result<std::vector<std::pair<std::string, int64_t>>> CountByStatus();

 private:
  Result<RolloutRow> FromRow(const Row& r) const;
  Database& db_;
};

}  // namespace edgeloop::cloud
