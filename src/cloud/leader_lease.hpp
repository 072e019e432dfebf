// Which server replica does the background work (trigger checks, run execution, rollout
// ticks), and the file locks that keep replicas sharing one data folder from racing.
//
// On PostgreSQL the lease is a session-level advisory lock (pg_try_advisory_lock) held on a
// connection of its own: when the holder dies its connection closes, PostgreSQL releases the
// lock, and the next replica to poll takes it. The holder checks at every poll that the lock
// is still held on a live connection, so a replica cut off from the database stops its
// background work instead of carrying on beside a new leader. On SQLite one server owns the
// data folder (LockDataFolder) and is always the leader.
//
// Thread safety: a LeaderLease is polled from one thread; held() may be read from any.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace edgeloop::cloud {

class LeaderLease {
 public:
  virtual ~LeaderLease() = default;
  // One round: takes the lease when it is free, or checks that the one held is still held.
  // Returns whether this replica holds it now. A database that cannot be reached means "not
  // held"; why is in last_error() (empty when the lease is merely held elsewhere).
  virtual bool Poll() = 0;
  // Gives the lease up (at shutdown), so another replica takes over at its next poll.
  virtual void Release() = 0;
  bool held() const { return held_.load(); }
  const std::string& last_error() const { return last_error_; }

 protected:
  std::atomic<bool> held_{false};
  std::string last_error_;
};

// The lease of a server that owns its data folder alone (SQLite): always held.
std::unique_ptr<LeaderLease> SoleServerLease();

// The advisory lock `key` on the PostgreSQL database at url, on a dedicated connection with
// TCP keepalives and a statement timeout of timeout_ms, so a lost database is noticed within
// a few seconds rather than at the kernel's TCP timeout. Errors: kIo when the first
// connection fails (a bad url is refused at start, not polled forever).
Result<std::unique_ptr<LeaderLease>> OpenPostgresLease(const std::string& url, int64_t key,
                                                       int timeout_ms);

// The advisory lock key of edgeloop's background work ("edgeloop" in ASCII).
inline constexpr int64_t kBackgroundLeaseKey = 0x6564676c6f6f70;

// An exclusive flock(2) on a file, released when destroyed (or when the process dies).
class FileLock {
 public:
  // wait: block until the lock is free; otherwise fail at once with kUnavailable when
  // another process holds it. The file is created (mode 0600) when missing.
  static Result<FileLock> Acquire(const std::string& path, bool wait);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// The lock of a server on its SQLite data folder (<data_dir>/server.lock), held for the
// server's life. Errors: kUnavailable naming the folder when another server has it.
Result<FileLock> LockDataFolder(const std::string& data_dir);

}  // namespace edgeloop::cloud
