// Spool: the agent's durable store-and-forward queue. Records (opaque bytes plus a
// "labelled" flag) are appended to segment files with a length + CRC32C frame and get a
// sequence number that increases by one per record. The uploader reads records after the
// acknowledged cursor in order and acknowledges them once the server has them; whole
// acknowledged segments are deleted.
//
// Durability: with FsyncPolicy::kEveryAppend, a record whose Append() returned is on disk and
// survives kill -9 and power loss. On Open(), each segment is scanned; a torn or corrupt tail
// is truncated away, so a reader never sees a damaged record.
//
// Size bound and drop policy: when appending would exceed max_bytes, the oldest segment that
// still holds undelivered records is dropped whole (oldest data goes first: the newest data
// describes the device as it is now). Its records are added to the persistent drop counter.
// DropPolicy::kRejectNew instead refuses the new record (kResourceExhausted) and counts it.
//
// Disk full: a failed write is rolled back (the segment is truncated to its previous length),
// Append() returns kResourceExhausted, and the spool keeps working once space returns.
//
// Thread safety: all methods may be called from any thread (one internal mutex).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::edge {

enum class FsyncPolicy { kEveryAppend, kNever };
enum class DropPolicy { kDropOldest, kRejectNew };

struct SpoolOptions {
  uint64_t max_bytes = 64ull << 20;       // all segments together
  uint64_t segment_bytes = 4ull << 20;    // a new segment starts past this size
  uint32_t max_record_bytes = 16u << 20;  // larger appends are refused
  FsyncPolicy fsync = FsyncPolicy::kEveryAppend;
  DropPolicy drop = DropPolicy::kDropOldest;
  // Fault injection for tests only (disk full without root): replaces ::write on segments.
  std::function<ssize_t(int fd, const void* buf, size_t n)> write_fn;
};

struct SpoolRecord {
  uint64_t seq = 0;
  bool labelled = false;
  std::string payload;
};

struct SpoolStats {
  uint64_t depth_records = 0;    // appended, not yet acknowledged or dropped
  uint64_t depth_bytes = 0;      // bytes on disk of those records' segments
  uint64_t dropped_records = 0;  // lifetime, persisted
  uint64_t next_seq = 0;
  uint64_t acked_seq = 0;        // every seq <= this is delivered or dropped
  uint64_t truncated_bytes = 0;  // torn tail removed by the last Open()
};

class Spool {
 public:
  static Result<std::unique_ptr<Spool>> Open(const std::string& dir, SpoolOptions options = {});
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends one record and returns its sequence number (first record: 1).
  Result<uint64_t> Append(std::string_view payload, bool labelled = false);
  // Up to max_records records after the cursor, at most max_bytes of payload (always at
  // least one record when any is pending), in sequence order.
  Result<std::vector<SpoolRecord>> Peek(size_t max_records, size_t max_bytes) const;
  // Marks every record with seq <= `seq` delivered. Persisted atomically; idempotent.
  Status Ack(uint64_t seq);
  SpoolStats Stats() const;

 private:
  struct Segment {
    uint64_t first_seq = 0;
    std::string path;
    uint64_t size = 0;
    struct Entry {
      uint64_t seq;
      uint64_t offset;  // of the payload
      uint32_t length;
      bool labelled;
    };
    std::vector<Entry> entries;
  };
  Spool(std::string dir, SpoolOptions options);
  Status Load();
  Status ScanSegment(Segment& seg);
  Status StartSegment(uint64_t first_seq);
  Status PersistCursor();
  Status DropOldestLocked();
  Status DeleteAckedSegmentsLocked();
  uint64_t TotalBytesLocked() const;

  std::string dir_;
  SpoolOptions opt_;
  mutable std::mutex mu_;
  std::vector<Segment> segments_;  // oldest first; the last one is open for append
  int fd_ = -1;                    // the last segment, O_APPEND
  uint64_t next_seq_ = 1;
  uint64_t acked_seq_ = 0;
  uint64_t dropped_ = 0;
  uint64_t truncated_bytes_ = 0;
};

}  // namespace edgeloop::edge
