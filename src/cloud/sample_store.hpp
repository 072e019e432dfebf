// The sample store: samples appended to segment files (each record length-prefixed and
// CRC-checked), indexed in the database by (device, sequence).
//
// Append() is idempotent by (device_id, sequence): a sample already stored is counted as a
// duplicate and not written again. When Append() returns Ok the new samples are durable: the
// segment is fsynced before the index rows commit, and the commit itself is durable. A crash
// between the two leaves unindexed bytes in a segment, never an index row without data.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
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

class SampleStore {
 public:
  // Creates <dir> if missing; the database must be migrated (migrations.hpp).
  static Result<std::unique_ptr<SampleStore>> Open(Database& db, const std::string& dir);
  ~SampleStore();
  SampleStore(const SampleStore&) = delete;
  SampleStore& operator=(const SampleStore&) = delete;

  Result<AppendResult> Append(const std::vector<const wire::Sample*>& samples);
  // A later label for an earlier sample; kNotFound when the sample is unknown.
  Status SetLabel(const std::string& device_id, uint64_t sequence, int32_t label,
                  int32_t label_source);
  // by: "device", "label" or "hour" (timestamp bucket).
  Result<std::vector<SampleCount>> Count(const std::string& by);
  // Reads one stored sample back from its segment, checking the CRC.
  Result<wire::Sample> Read(const std::string& device_id, uint64_t sequence);

 private:
  SampleStore(Database& db, std::string dir) : db_(db), dir_(std::move(dir)) {}
  Status OpenSegment();

  Database& db_;
  std::string dir_;
  std::mutex mu_;  // guards the active segment; taken before the database lock
  int fd_ = -1;
  int segment_ = 0;
  uint64_t segment_size_ = 0;
};

}  // namespace edgeloop::cloud
