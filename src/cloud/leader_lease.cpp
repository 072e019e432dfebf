#include "cloud/leader_lease.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace edgeloop::cloud {
namespace {

class SoleLease final : public LeaderLease {
 public:
  SoleLease() { held_ = true; }
  bool Poll() override { return held_.load(); }
  void Release() override { held_ = false; }
};

class PostgresLease final : public LeaderLease {
 public:
  PostgresLease(std::string url, int64_t key, int timeout_ms)
      : url_(std::move(url)), key_(key), timeout_ms_(timeout_ms) {}
  ~PostgresLease() override { Release(); }

  Status Connect() {
    Close();
    const std::string connect_s = std::to_string(std::max(2, timeout_ms_ / 1000));
    const std::string options = "-c statement_timeout=" + std::to_string(timeout_ms_);
    const std::string user_timeout = std::to_string(timeout_ms_);
    // dbname carries the url (expand_dbname); the keys after it add what the url lacks. The
    // keepalives and tcp_user_timeout apply to TCP connections (not to a Unix socket, where
    // the peer's death closes the socket at once).
    const char* keys[] = {"dbname",           "connect_timeout",
                          "options",          "keepalives",
                          "keepalives_idle",  "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout",
                          "application_name", nullptr};
    const char* values[] = {
        url_.c_str(), connect_s.c_str(),    options.c_str(),         "1",    "1", "1",
        "3",          user_timeout.c_str(), "edgeloop-leader-lease", nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(conn_);
      Close();
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return Error(Errc::kIo, "leader lease: connecting to PostgreSQL: " + msg);
    }
    return Status::Ok();
  }

  bool Poll() override {
    last_error_.clear();
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
      held_ = false;  // a closed connection holds no lock
      if (Status st = Connect(); !st.ok()) {
        last_error_ = st.error().message;
        return false;
      }
    }
    const std::string key = std::to_string(key_);
    const std::string hi = std::to_string(static_cast<uint64_t>(key_) >> 32);
    const std::string lo = std::to_string(static_cast<uint64_t>(key_) & 0xffffffffu);
    // Held: is it still held, by this very session? Not held: try to take it.
    auto answer = held_ ? Scalar(
                              "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                              "granted AND pid = pg_backend_pid() AND classid::bigint = $1 AND "
                              "objid::bigint = $2 AND objsubid = 1",
                              {hi.c_str(), lo.c_str()})
                        : Scalar("SELECT pg_try_advisory_lock($1::bigint)", {key.c_str()});
    if (!answer.ok()) {
      last_error_ = answer.error().message;
      Close();  // whatever it held is gone with it, or about to be
      held_ = false;
      return false;
    }
    held_ = *answer == "t" || *answer == "1";
    return held_;
  }

  void Release() override { Close(); }

 private:
  Result<std::string> Scalar(const char* sql, std::vector<const char*> params) {
    std::unique_ptr<PGresult, void (*)(PGresult*)> res(
        PQexecParams(conn_, sql, static_cast<int>(params.size()), nullptr, params.data(), nullptr,
                     nullptr, 0),
        PQclear);
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK || PQntuples(res.get()) != 1) {
      std::string msg = PQerrorMessage(conn_);
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return Error(Errc::kIo, "leader lease: " + (msg.empty() ? std::string("no answer") : msg));
    }
    return std::string(PQgetvalue(res.get(), 0, 0));
  }

  void Close() {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = nullptr;
    held_ = false;
  }

  std::string url_;
  int64_t key_;
  int timeout_ms_;
  PGconn* conn_ = nullptr;
};

}  // namespace

std::unique_ptr<LeaderLease> SoleServerLease() {
  return std::make_unique<SoleLease>();
}

Result<std::unique_ptr<LeaderLease>> OpenPostgresLease(const std::string& url, int64_t key,
                                                       int timeout_ms) {
  auto lease = std::make_unique<PostgresLease>(url, key, timeout_ms);
  EDGELOOP_RETURN_IF_ERROR(lease->Connect());
  return std::unique_ptr<LeaderLease>(std::move(lease));
}

Result<FileLock> FileLock::Acquire(const std::string& path, bool wait) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Error(Errc::kIo, "opening lock file " + path + ": " + std::strerror(errno));
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      return Error(Errc::kUnavailable, path + " is locked by another process");
    return Error(Errc::kIo, "locking " + path + ": " + std::strerror(err));
  }
  return FileLock(fd);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<FileLock> LockDataFolder(const std::string& data_dir) {
  auto lock = FileLock::Acquire(data_dir + "/server.lock", false);
  if (!lock.ok() && lock.error().code == Errc::kUnavailable)
    return Error(Errc::kUnavailable,
                 "another edgeloop server is running on the data folder " + data_dir +
                     " (it holds " + data_dir +
                     "/server.lock); with SQLite one server owns a folder: stop it, or run "
                     "replicas on PostgreSQL (--db postgresql://...)");
  return lock;
}

}  // namespace edgeloop::cloud
