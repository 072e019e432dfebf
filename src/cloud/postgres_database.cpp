#include <libpq-fe.h>

#include "cloud/database.hpp"

namespace edgeloop::cloud {
namespace {

// '?' placeholders become $1, $2, ... (our SQL never has '?' inside string literals).
std::string NumberPlaceholders(const std::string& sql) {
  std::string out;
  int n = 0;
  for (char c : sql) {
    if (c == '?')
      out += "$" + std::to_string(++n);
    else
      out += c;
  }
  return out;
}

class PostgresDatabase final : public Database {
 public:
  explicit PostgresDatabase(PGconn* conn) : conn_(conn) {}
  ~PostgresDatabase() override { PQfinish(conn_); }

  Result<std::vector<Row>> Query(const std::string& sql,
                                 const std::vector<std::string>& params) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    std::unique_ptr<PGresult, void (*)(PGresult*)> res(
        PQexecParams(conn_, NumberPlaceholders(sql).c_str(), static_cast<int>(values.size()),
                     nullptr, values.data(), nullptr, nullptr, 0),
        PQclear);
    ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
      // Class 23: integrity constraint violation (e.g. a duplicate key).
      Errc code = (state && std::string(state).rfind("23", 0) == 0) ? Errc::kMismatch : Errc::kIo;
      return Error(code, std::string("postgresql: ") + PQerrorMessage(conn_));
    }
    std::vector<Row> rows;
    int nrows = PQntuples(res.get());
    int ncols = PQnfields(res.get());
    for (int r = 0; r < nrows; ++r) {
      Row row;
      for (int c = 0; c < ncols; ++c) row.emplace_back(PQgetvalue(res.get(), r, c));
      rows.push_back(std::move(row));
    }
    return rows;
  }

  const char* BeginStatement() const override { return "BEGIN"; }
  std::string Dialect() const override { return "postgresql"; }

 private:
  PGconn* conn_;
};

}  // namespace

Result<std::unique_ptr<Database>> OpenPostgres(const std::string& url) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    return Error(Errc::kIo, "connecting to PostgreSQL: " + msg);
  }
  auto db = std::make_unique<PostgresDatabase>(conn);
  // Keep the notices of CREATE TABLE IF NOT EXISTS off stderr.
  EDGELOOP_RETURN_IF_ERROR(db->Exec("SET client_min_messages TO WARNING", {}));
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace edgeloop::cloud
