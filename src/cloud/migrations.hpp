// The metadata schema as numbered migrations. Every schema change is a new entry at the end
// of the list, never an edit of an old one; the database records what it has applied in
// schema_migrations (version, name, applied_ms). Migrate() applies what is missing, each
// migration in its own transaction (on PostgreSQL under an advisory lock, so replicas that
// start together apply it once), and refuses a database that is newer than this server.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cloud/database.hpp"

namespace edgeloop::cloud {

struct Migration {
  int64_t version;
  const char* name;
  std::function<Status(Database&)> apply;
};

// The list, in order: versions 1, 2, 3, ...
const std::vector<Migration>& SchemaMigrations();

// Returns the schema version after migrating. Errors: a failed migration (its transaction is
// rolled back and the error names it), kMismatch for a database whose version is
// newer than the newest migration known here.
Result<int64_t> Migrate(Database& db);

// The versions recorded as applied, in order.
Result<std::vector<int64_t>> AppliedMigrations(Database& db);

}  // namespace edgeloop::cloud
