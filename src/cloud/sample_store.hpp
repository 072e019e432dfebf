// The sample store: samples appended to segment files (each record length-prefixed and
// CRC-checked), indexed in the database by (device, sequence).
//
// Append() is idempotent by (device_id, sequence): a sample already stored is counted as a
// duplicate and not written again. When Append() returns Ok the new samples are durable: the
// segment is fsynced before the index rows commit, and the commit itself is durable. A crash
// between the two leaves unindexed bytes in a segment, never an index row without data.
//
// Group commit: concurrent Append() calls queue their batches; one caller at a time (the
// group's leader) takes every queued batch, writes all their new records, makes one
// fdatasync and commits all their index rows in one transaction, then wakes each caller with
// its own AppendResult. A sample that two batches of one group carry is stored once, for the
// first of them. An error fails every batch of its group and leaves none of its rows.
//
// Several stores (in several processes) may share one database and one folder: each appends
// only to segments it opened, numbered by the database (table sample_segments), so index rows
// of one store never point into bytes another store is appending. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cloud/database.hpp"
#include "common/result.hpp"
#include "edgeloop_wire.pb.h"

namespace edgeloop::cloud {

struct AppendResult {
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
};

struct SampleCount {
  std::string key;  // device id, label or time bucket
  uint64_t count = 0;
};

// Which samples a dataset snapshot takes (a normalized snapshot spec; empty lists match all).
struct SampleFilter {
  std::vector<std::string> devices, groups;
  std::vector<int64_t> labels, label_sources;
  std::optional<int64_t> from_ms, to_ms;  // [from, to) on the sample's timestamp
  bool labelled_only = false;
};

// An indexed sample and its place in the segments.
struct SampleLocation {
  std::string device;
  uint64_t seq = 0;
  int32_t label = -1;  // -1: unlabelled
  int segment = 0;
  uint64_t pos = 0;
  uint32_t length = 0;
};

// A dataset snapshot's row: its id (content hash) and the summary the API answers.
struct SnapshotRow {
  std::string id;
  int64_t created_ms = 0;
  nlohmann::json summary;
};

struct SampleStoreOptions {
  // A store starts a new segment once its active one holds more than this.
  uint64_t segment_bytes = 64ull << 20;
  // A group takes queued batches until it holds this many samples (at least one batch).
  size_t max_group_samples = 16384;
  // For tests: called by a group's leader before it writes, with the group's batch count.
  // An error fails the group as a segment write error would.
  std::function<Status(size_t batches)> before_group_write;
};

class SampleStore {
 public:
  // Creates <dir> if missing; the database must be migrated (migrations.hpp).
  static Result<std::unique_ptr<SampleStore>> Open(Database& db, const std::string& dir,
                                                   SampleStoreOptions options = {});
  ~SampleStore();
  SampleStore(const SampleStore&) = delete;
  SampleStore& operator=(const SampleStore&) = delete;

  // Blocks until the group holding this batch is durable (or failed).
  Result<AppendResult> Append(const std::vector<const wire::Sample*>& samples);
  // Segment fdatasyncs since Open (one per group that wrote records), and the groups and
  // batches they carried.
  uint64_t syncs() const { return syncs_.load(); }
  uint64_t synced_batches() const { return synced_batches_.load(); }
  // Batches queued now and not yet taken by a group's leader.
  size_t queued();
  // A later label for an earlier sample; kNotFound when the sample is unknown.
  Status SetLabel(const std::string& device_id, uint64_t sequence, int32_t label,
                  int32_t label_source);
  // by: "device", "label" or "hour" (timestamp bucket).
  Result<std::vector<SampleCount>> Count(const std::string& by);
  // Reads one stored sample back from its segment, checking the CRC.
  Result<wire::Sample> Read(const std::string& device_id, uint64_t sequence);
  // The samples a filter matches, by (device, sequence); and how many there are.
  Result<std::vector<SampleLocation>> Select(const SampleFilter& filter);
  Result<int64_t> CountMatching(const SampleFilter& filter);

  // Snapshots. InsertSnapshot keeps an existing row of the same id and returns the row as
  // stored (with its first created_ms), setting *created when it is new; GetSnapshot is
  // kNotFound naming the id.
  Result<SnapshotRow> InsertSnapshot(const SnapshotRow& row, bool* created);
  Result<SnapshotRow> GetSnapshot(const std::string& id);
  Result<std::vector<SnapshotRow>> ListSnapshots();  // oldest first

 private:
  SampleStore(Database& db, std::string dir, std::string owner, SampleStoreOptions options)
      : db_(db), dir_(std::move(dir)), owner_(std::move(owner)), options_(options) {}
  // One Append() call waiting in the queue; the leader fills in status and result.
  struct Pending {
    const std::vector<const wire::Sample*>* samples = nullptr;
    Status status;
    AppendResult result;
    bool done = false;  // guarded by mu_
  };
  // Allocates the next segment number in the database and creates its file.
  Status OpenSegment();
  // The leader's work: one write, one fdatasync and one transaction for the whole group.
  Status CommitGroup(const std::vector<Pending*>& group);

  Database& db_;
  std::string dir_;
  std::string owner_;  // host:pid:random, recorded with each segment this store opens
  SampleStoreOptions options_;
  std::mutex mu_;  // guards queue_ and writing_; never held across I/O
  std::condition_variable woken_;
  std::deque<Pending*> queue_;
  bool writing_ = false;  // a leader is committing a group
  // The active segment: used only by the leader (while writing_), so no lock guards it.
  int fd_ = -1;
  int segment_ = 0;
  uint64_t segment_size_ = 0;
  bool segment_failed_ = false;  // a write or fsync failed: its tail is unknown, start anew
  // Per device, the highest sequence this store indexed (leader only, like the segment):
  // a group skips the dedupe query for devices whose samples are all above it.
  std::unordered_map<std::string, uint64_t> high_water_;
  std::atomic<uint64_t> syncs_{0}, synced_batches_{0};
};

}  // namespace edgeloop::cloud
