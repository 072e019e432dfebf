// The metadata database behind a small interface, so the same server runs on embedded
// SQLite (one machine) or PostgreSQL (several replicas).
//
// SQL uses '?' placeholders; implementations translate them. Parameters and results travel
// as text (NULL reads as ""). Thread-safe: calls may come from any thread; Transaction()
// runs fn atomically with respect to other callers of the same Database.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::cloud {

using Row = std::vector<std::string>;

class Database {
 public:
  virtual ~Database() = default;
  virtual Result<std::vector<Row>> Query(const std::string& sql,
                                         const std::vector<std::string>& params = {}) = 0;
  Status Exec(const std::string& sql, const std::vector<std::string>& params = {});
  // Commits when fn returns Ok, rolls back otherwise. The commit is durable when it returns.
  // A Transaction inside fn joins the outer one: everything commits or rolls back together.
  Status Transaction(const std::function<Status()>& fn);
  // "sqlite" or "postgresql": schema differences are kept to types named in DDL.
  virtual std::string Dialect() const = 0;

 protected:
  // The statement that opens a write transaction in this dialect.
  virtual const char* BeginStatement() const = 0;
  // One connection per Database, serialized; recursive so Transaction's fn can query.
  std::recursive_mutex mu_;
  int transaction_depth_ = 0;  // guarded by mu_
};

// "?, ?, ..., ?": n placeholders, for IN lists and multi-row VALUES.
std::string Placeholders(size_t n);

// A BIGINT column's text as a number. Errors: kFormat naming `what` when it is not one.
Result<int64_t> ColumnInt64(const std::string& text, const std::string& what);
// The same for a REAL column (written as JSON numbers) and an unsigned BIGINT.
Result<double> ColumnDouble(const std::string& text, const std::string& what);
Result<uint64_t> ColumnUint64(const std::string& text, const std::string& what);

// url: "sqlite:<path>" or a path (SQLite), "postgresql://..." (PostgreSQL).
Result<std::unique_ptr<Database>> OpenDatabase(const std::string& url);
Result<std::unique_ptr<Database>> OpenSqlite(const std::string& path);
Result<std::unique_ptr<Database>> OpenPostgres(const std::string& url);

}  // namespace edgeloop::cloud
