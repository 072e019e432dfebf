#include <sqlite3.h>

#include <memory>
#include <unordered_map>

#include "cloud/database.hpp"

namespace edgeloop::cloud {
namespace {

class SqliteDatabase final : public Database {
 public:
  explicit SqliteDatabase(sqlite3* db) : db_(db) {}
  ~SqliteDatabase() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Result<std::vector<Row>> Query(const std::string& sql,
                                 const std::vector<std::string>& params) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    auto prepared = Prepare(sql);
    if (!prepared.ok()) return prepared.error();
    sqlite3_stmt* stmt = *prepared;
    // Reset on every way out, so that a cached statement never holds a read transaction open.
    std::unique_ptr<sqlite3_stmt, void (*)(sqlite3_stmt*)> guard(stmt, [](sqlite3_stmt* s) {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
    });
    for (size_t i = 0; i < params.size(); ++i)
      sqlite3_bind_text(stmt, static_cast<int>(i + 1), params[i].data(),
                        static_cast<int>(params[i].size()), SQLITE_TRANSIENT);
    std::vector<Row> rows;
    for (;;) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        Errc code = (rc == SQLITE_CONSTRAINT) ? Errc::kMismatch : Errc::kIo;
        return Error(code, std::string("sqlite: ") + sqlite3_errmsg(db_));
      }
      Row row;
      int n = sqlite3_column_count(stmt);
      row.reserve(static_cast<size_t>(n));
      for (int c = 0; c < n; ++c) {
        const unsigned char* text = sqlite3_column_text(stmt, c);
        row.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  const char* BeginStatement() const override { return "BEGIN IMMEDIATE"; }
  std::string Dialect() const override { return "sqlite"; }

 private:
  // The same statements run again and again (ingest runs a few thousand a second): each is
  // parsed once and kept, up to kCachedStatements, after which the cache starts over. SQLite
  // prepares a kept statement again by itself when the schema changes (prepare_v2).
  static constexpr size_t kCachedStatements = 128;
  Result<sqlite3_stmt*> Prepare(const std::string& sql) {
    auto found = statements_.find(sql);
    if (found != statements_.end()) return found->second;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return Error(Errc::kInternal, std::string("sqlite prepare: ") + sqlite3_errmsg(db_));
    }
    if (statements_.size() >= kCachedStatements) {
      for (auto& [text, kept] : statements_) sqlite3_finalize(kept);
      statements_.clear();
    }
    statements_.emplace(sql, stmt);
    return stmt;
  }

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<Database>> OpenSqlite(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close_v2(raw);
    return Error(Errc::kIo, "opening " + path + ": " + msg);
  }
  auto db = std::make_unique<SqliteDatabase>(raw);
  // WAL with synchronous=FULL: a returned COMMIT is on disk (fsync), which ingest acks rely on.
  EDGELOOP_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL", {}));
  EDGELOOP_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL", {}));
  EDGELOOP_RETURN_IF_ERROR(db->Exec("PRAGMA busy_timeout=5000", {}));
  // 64 MiB of pages (the default is 2 MiB): the samples index of a busy fleet is large, and
  // every group commit looks up and inserts rows of many devices across it.
  EDGELOOP_RETURN_IF_ERROR(db->Exec("PRAGMA cache_size=-65536", {}));
  return std::unique_ptr<Database>(std::move(db));
}

Result<std::unique_ptr<Database>> OpenDatabase(const std::string& url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0)
    return OpenPostgres(url);
  if (url.rfind("sqlite:", 0) == 0) return OpenSqlite(url.substr(7));
  return OpenSqlite(url);
}

}  // namespace edgeloop::cloud
