#include "cloud/database.hpp"

namespace edgeloop::cloud {

Result<int64_t> ColumnInt64(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    const int64_t v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return Error(Errc::kFormat, what + " is not a number: '" + text.substr(0, 40) + "'");
}

Result<double> ColumnDouble(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return Error(Errc::kFormat, what + " is not a number: '" + text.substr(0, 40) + "'");
}

Result<uint64_t> ColumnUint64(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    if (!text.empty() && text[0] != '-') {
      const uint64_t v = std::stoull(text, &used);
      if (used == text.size()) return v;
    }
  } catch (const std::exception&) {
  }
  return Error(Errc::kFormat, what + " is not a non-negative number: '" + text.substr(0, 40) + "'");
}

std::string Placeholders(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += i ? ", ?" : "?";
  return s;
}

Status Database::Exec(const std::string& sql, const std::vector<std::string>& params) {
  auto rows = Query(sql, params);
  if (!rows.ok()) return rows.error();
  return Status::Ok();
}

Status Database::Transaction(const std::function<Status()>& fn) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  struct Depth {
    int& d;
    explicit Depth(int& depth) : d(depth) { ++d; }
    ~Depth() { --d; }
  };
  if (transaction_depth_ > 0) {
    Depth nested(transaction_depth_);
    return fn();
  }
  EDGELOOP_RETURN_IF_ERROR(Exec(BeginStatement()));
  Status st = [&] {
    Depth outer(transaction_depth_);
    try {
      return fn();
    } catch (...) {
      (void)Exec("ROLLBACK");
      throw;
    }
  }();
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

}  // namespace edgeloop::cloud
