#include "cloud/sample_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <tuple>
#include <type_traits>

#include "common/crypto.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/sample_record.hpp"

namespace edgeloop::cloud {
namespace {

// Statement sizes: SQLite allows 32,766 parameters, PostgreSQL 65,535.
constexpr size_t kSeqsPerQuery = 512;
constexpr size_t kRowsPerInsert = 256;  // 8 parameters a row
// Devices whose newest indexed sequence the store remembers; past this it starts over.
constexpr size_t kMaxHighWaterDevices = 1 << 20;

// How many of `left` items the next statement takes, at most `most`: a power of two (or
// `most`), so that a handful of statement texts serve every group and the database keeps
// them prepared (a batch of 32 samples is one query of 32 sequences).
size_t ChunkSize(size_t left, size_t most) {
  if (left >= most) return most;
  size_t n = 1;
  while (n * 2 <= left) n *= 2;
  return n;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) return Error(Errc::kIo, std::string("segment write: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SampleStore>> SampleStore::Open(Database& db, const std::string& dir,
                                                       SampleStoreOptions options) {
  EDGELOOP_RETURN_IF_ERROR(MakeDirs(dir));
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "unknown-host");
  std::unique_ptr<SampleStore> store(new SampleStore(
      db, dir, std::string(host) + ":" + std::to_string(getpid()) + ":" + crypto::RandomHex(4),
      options));
  // Always start a fresh segment: the tail of the previous one may hold a torn record.
  EDGELOOP_RETURN_IF_ERROR(store->OpenSegment());
  return store;
}

SampleStore::~SampleStore() {
  if (fd_ >= 0) ::close(fd_);
}

Status SampleStore::OpenSegment() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // The number comes from the database, in one transaction with its row, so that stores in
  // several processes on one data folder never share a segment. Files without a row (from a
  // server before migration 5, or from a transaction that did not commit) are skipped.
  int segment = 0;
  int fd = -1;
  Status st = db_.Transaction([&]() -> Status {
    if (db_.Dialect() == "postgresql")
      EDGELOOP_RETURN_IF_ERROR(db_.Exec("LOCK TABLE sample_segments IN EXCLUSIVE MODE"));
    EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                              db_.Query("SELECT COALESCE(MAX(segment), 0) FROM sample_segments"));
    EDGELOOP_ASSIGN_OR_RETURN(int64_t newest, ColumnInt64(rows.at(0).at(0), "newest segment"));
    segment = static_cast<int>(newest) + 1;
    for (;; ++segment) {
      std::string path = SampleSegmentPath(dir_, segment);
      // O_EXCL: a file that exists belongs to someone else, even if the database forgot it.
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) break;
      if (errno != EEXIST)
        return Error(Errc::kIo, "creating " + path + ": " + std::strerror(errno));
    }
    return db_.Exec("INSERT INTO sample_segments (segment, owner, opened_ms) VALUES (?, ?, ?)",
                    {std::to_string(segment), owner_, std::to_string(NowMs())});
  });
  if (!st.ok()) {
    if (fd >= 0) ::close(fd);
    return st.error().WithContext("opening a sample segment in " + dir_);
  }
  fd_ = fd;
  segment_ = segment;
  segment_size_ = 0;
  log::Info("sample_segment", {{"segment", segment_}, {"owner", owner_}, {"dir", dir_}});
  return FsyncDirectory(dir_);
}

Result<AppendResult> SampleStore::Append(const std::vector<const wire::Sample*>& samples) {
  Pending mine;
  mine.samples = &samples;
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&mine);
  while (!mine.done) {
    if (writing_) {
      woken_.wait(lock);
      continue;
    }
    // Lead a group: every batch queued now, up to the group's size. The batches queue up
    // while the previous group's leader writes, so the busier the store, the larger a group.
    writing_ = true;
    std::vector<Pending*> group;
    size_t group_samples = 0;
    while (!queue_.empty() && (group.empty() || group_samples + queue_.front()->samples->size() <=
                                                    options_.max_group_samples)) {
      group_samples += queue_.front()->samples->size();
      group.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    Status st = [&]() -> Status {
      try {
        return CommitGroup(group);
      } catch (const std::exception& e) {
        return Error(Errc::kInternal, std::string("sample store group commit: ") + e.what());
      }
    }();
    if (!st.ok()) {
      log::Error("sample_group_failed", {{"batches", static_cast<uint64_t>(group.size())},
                                         {"samples", static_cast<uint64_t>(group_samples)},
                                         {"segment", segment_},
                                         {"error", st.error().message}});
    }
    lock.lock();
    for (Pending* p : group) {
      if (!st.ok()) p->status = st;
      p->done = true;
    }
    writing_ = false;
    woken_.notify_all();
  }
  if (!mine.status.ok()) return mine.status.error();
  return mine.result;
}

size_t SampleStore::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

Status SampleStore::CommitGroup(const std::vector<Pending*>& group) {
  // Deduplicate against the index and within the group itself: one query per device and
  // chunk of sequence numbers, not one per sample (a round trip each on PostgreSQL). Outside
  // a transaction, so the database is not held during the fsync; a row another store indexes
  // meanwhile is caught by ON CONFLICT below.
  std::map<std::string, std::set<uint64_t>> by_device;
  for (const Pending* p : group)
    for (const wire::Sample* s : *p->samples) by_device[s->device_id()].insert(s->sequence());
  std::set<std::pair<std::string, uint64_t>> seen;
  for (const auto& [device, seq_set] : by_device) {
    // Samples newer than any this store indexed for the device (its usual batch) cannot be
    // in the index unless another store put them there, which ON CONFLICT catches: no query.
    auto known = high_water_.find(device);
    if (known != high_water_.end() && *seq_set.begin() > known->second) continue;
    std::vector<uint64_t> seqs(seq_set.begin(), seq_set.end());
    for (size_t at = 0, n = 0; at < seqs.size(); at += n) {
      n = ChunkSize(seqs.size() - at, kSeqsPerQuery);
      std::vector<std::string> params = {device};
      for (size_t i = 0; i < n; ++i) params.push_back(std::to_string(seqs[at + i]));
      EDGELOOP_ASSIGN_OR_RETURN(
          auto rows, db_.Query("SELECT seq FROM samples WHERE device_id = ? AND seq IN (" +
                                   Placeholders(n) + ")",
                               params));
      for (const auto& r : rows) {
        EDGELOOP_ASSIGN_OR_RETURN(uint64_t seq, ColumnUint64(r.at(0), "sample sequence"));
        seen.emplace(device, seq);
      }
    }
  }
  // The new samples in queue order, each with the batch it counts for.
  std::vector<std::pair<const wire::Sample*, Pending*>> fresh;
  for (Pending* p : group) {
    p->result = AppendResult{};
    for (const wire::Sample* s : *p->samples) {
      if (seen.emplace(s->device_id(), s->sequence()).second)
        fresh.emplace_back(s, p);
      else
        ++p->result.duplicates;
    }
  }
  if (fresh.empty()) return Status::Ok();
  if (segment_failed_ || segment_size_ > options_.segment_bytes) {
    EDGELOOP_RETURN_IF_ERROR(OpenSegment());
    segment_failed_ = false;
  }
  if (options_.before_group_write) {
    Status hook = options_.before_group_write(group.size());
    if (!hook.ok()) {
      segment_failed_ = true;
      return hook;
    }
  }
  std::string buf;
  std::vector<std::pair<uint64_t, uint32_t>> places;
  places.reserve(fresh.size());
  for (const auto& [s, p] : fresh) {
    const uint64_t at = segment_size_ + buf.size();
    places.emplace_back(at, AppendSampleRecord(*s, buf));
  }
  Status written = WriteAll(fd_, buf);
  if (written.ok() && ::fdatasync(fd_) != 0)
    written = Error(Errc::kIo, std::string("segment fsync: ") + std::strerror(errno));
  if (!written.ok()) {
    // How much of the buffer reached the file is unknown: later records go to a new segment.
    segment_failed_ = true;
    return written.error().WithContext("segment " + std::to_string(segment_) + " in " + dir_);
  }
  segment_size_ += buf.size();
  syncs_.fetch_add(1);
  synced_batches_.fetch_add(group.size());
  // The index rows of the whole group in one transaction, many per statement. Another store
  // on the same database may have indexed the same (device, seq) since the query above (a
  // device retrying on another server): its row stays, and this sample counts as a duplicate.
  std::set<std::pair<std::string, uint64_t>> inserted;
  Status committed = db_.Transaction([&]() -> Status {
    inserted.clear();
    for (size_t at = 0, n = 0; at < fresh.size(); at += n) {
      n = ChunkSize(fresh.size() - at, kRowsPerInsert);
      std::string sql =
          "INSERT INTO samples (device_id, seq, ts_ms, label, label_source, segment, pos, "
          "length) VALUES ";
      std::vector<std::string> params;
      params.reserve(n * 8);
      for (size_t i = at; i < at + n; ++i) {
        const wire::Sample* s = fresh[i].first;
        sql += (i == at ? "(" : ", (") + Placeholders(8) + ")";
        for (std::string v :
             {s->device_id(), std::to_string(s->sequence()), std::to_string(s->timestamp_ms()),
              std::to_string(s->has_label() ? s->label() : -1),
              std::to_string(s->has_label() ? static_cast<int>(s->label_source()) : 0),
              std::to_string(segment_), std::to_string(places[i].first),
              std::to_string(places[i].second)})
          params.push_back(std::move(v));
      }
      sql += " ON CONFLICT (device_id, seq) DO NOTHING RETURNING device_id, seq";
      EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));
      for (const auto& r : rows) {
        EDGELOOP_ASSIGN_OR_RETURN(uint64_t seq, ColumnUint64(r.at(1), "inserted sequence"));
        inserted.emplace(r.at(0), seq);
      }
    }
    return Status::Ok();
  });
  EDGELOOP_RETURN_IF_ERROR(committed);
  if (high_water_.size() > kMaxHighWaterDevices) high_water_.clear();
  for (const auto& [s, p] : fresh) {
    if (inserted.count({s->device_id(), s->sequence()})) {
      ++p->result.accepted;
      uint64_t& top = high_water_[s->device_id()];
      top = std::max(top, s->sequence());
    } else {
      ++p->result.duplicates;
    }
  }
  return Status::Ok();
}

Status SampleStore::SetLabel(const std::string& device_id, uint64_t sequence, int32_t label,
                             int32_t label_source) {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                            db_.Query("SELECT 1 FROM samples WHERE device_id = ? AND seq = ?",
                                      {device_id, std::to_string(sequence)}));
  if (rows.empty())
    return Error(Errc::kNotFound, "no sample " + device_id + "/" + std::to_string(sequence));
  return db_.Exec(
      "UPDATE samples SET label = ?, label_source = ? WHERE device_id = ? AND seq = ?",
      {std::to_string(label), std::to_string(label_source), device_id, std::to_string(sequence)});
}

Result<std::vector<SampleCount>> SampleStore::Count(const std::string& by) {
  std::string key;
  if (by == "device")
    key = "device_id";
  else if (by == "label")
    key = "label";
  else if (by == "hour")
    key = "(ts_ms / 3600000) * 3600";
  else
    return Error(Errc::kInvalidArgument, "count by device, label or hour, not '" + by + "'");
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT " + key + ", COUNT(*) FROM samples GROUP BY " + key + " ORDER BY 1"));
  std::vector<SampleCount> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(uint64_t n, ColumnUint64(r.at(1), "sample count"));
    out.push_back({r.at(0), n});
  }
  return out;
}

Result<wire::Sample> SampleStore::Read(const std::string& device_id, uint64_t sequence) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT segment, pos, length, label, label_source FROM samples WHERE "
                           "device_id = ? AND seq = ?",
                           {device_id, std::to_string(sequence)}));
  if (rows.empty())
    return Error(Errc::kNotFound, "no sample " + device_id + "/" + std::to_string(sequence));
  const Row& r = rows[0];
  const std::string where = "sample " + device_id + "/" + std::to_string(sequence);
  EDGELOOP_ASSIGN_OR_RETURN(int64_t segment, ColumnInt64(r.at(0), where + " segment"));
  EDGELOOP_ASSIGN_OR_RETURN(uint64_t pos, ColumnUint64(r.at(1), where + " pos"));
  EDGELOOP_ASSIGN_OR_RETURN(uint64_t len, ColumnUint64(r.at(2), where + " length"));
  EDGELOOP_ASSIGN_OR_RETURN(int64_t label, ColumnInt64(r.at(3), where + " label"));
  EDGELOOP_ASSIGN_OR_RETURN(int64_t source, ColumnInt64(r.at(4), where + " label_source"));
  std::string path = SampleSegmentPath(dir_, static_cast<int>(segment));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error(Errc::kIo, "opening " + path + ": " + std::strerror(errno));
  auto sample = ReadSampleRecord(fd, pos, static_cast<uint32_t>(len), path);
  ::close(fd);
  if (!sample.ok()) return sample.error();
  // The index holds the current label (labels may arrive later).
  sample->set_has_label(label >= 0);
  sample->set_label(label >= 0 ? static_cast<int32_t>(label) : 0);
  sample->set_label_source(static_cast<wire::LabelSource>(source));
  return sample;
}

namespace {

// The WHERE clause of a filter over samples s joined with devices d.
void AppendFilter(const SampleFilter& f, std::string& sql, std::vector<std::string>& params) {
  auto in_list = [&](const char* column, const auto& values) {
    if (values.empty()) return;
    sql += std::string(" AND ") + column + " IN (" + Placeholders(values.size()) + ")";
    for (const auto& v : values) {
      if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>)
        params.push_back(v);
      else
        params.push_back(std::to_string(v));
    }
  };
  in_list("s.device_id", f.devices);
  in_list("d.grp", f.groups);
  in_list("s.label", f.labels);
  in_list("s.label_source", f.label_sources);
  if (f.from_ms) {
    sql += " AND s.ts_ms >= ?";
    params.push_back(std::to_string(*f.from_ms));
  }
  if (f.to_ms) {
    sql += " AND s.ts_ms < ?";
    params.push_back(std::to_string(*f.to_ms));
  }
  if (f.labelled_only) sql += " AND s.label >= 0";
}

Result<SnapshotRow> ReadSnapshot(const Row& r) {
  SnapshotRow row;
  row.id = r.at(0);
  EDGELOOP_ASSIGN_OR_RETURN(row.created_ms,
                            ColumnInt64(r.at(1), "snapshot " + row.id + " created_ms"));
  row.summary = nlohmann::json::parse(r.at(2), nullptr, false);
  if (!row.summary.is_object())
    return Error(Errc::kFormat, "snapshot " + row.id + ": its summary is not JSON");
  row.summary["created_ms"] = row.created_ms;
  return row;
}

}  // namespace

Result<std::vector<SampleLocation>> SampleStore::Select(const SampleFilter& filter) {
  std::string sql =
      "SELECT s.device_id, s.seq, s.label, s.segment, s.pos, s.length FROM samples s "
      "LEFT JOIN devices d ON d.device_id = s.device_id WHERE 1 = 1";
  std::vector<std::string> params;
  AppendFilter(filter, sql, params);
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));
  std::vector<SampleLocation> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    SampleLocation s;
    s.device = r.at(0);
    const std::string where = "sample of " + s.device;
    EDGELOOP_ASSIGN_OR_RETURN(s.seq, ColumnUint64(r.at(1), where + " seq"));
    EDGELOOP_ASSIGN_OR_RETURN(int64_t label, ColumnInt64(r.at(2), where + " label"));
    EDGELOOP_ASSIGN_OR_RETURN(int64_t segment, ColumnInt64(r.at(3), where + " segment"));
    EDGELOOP_ASSIGN_OR_RETURN(s.pos, ColumnUint64(r.at(4), where + " pos"));
    EDGELOOP_ASSIGN_OR_RETURN(uint64_t length, ColumnUint64(r.at(5), where + " length"));
    s.label = static_cast<int32_t>(label);
    s.segment = static_cast<int>(segment);
    s.length = static_cast<uint32_t>(length);
    out.push_back(std::move(s));
  }
  // Sorted here, not in SQL: text collation differs between SQLite and PostgreSQL.
  std::sort(out.begin(), out.end(), [](const SampleLocation& a, const SampleLocation& b) {
    return std::tie(a.device, a.seq) < std::tie(b.device, b.seq);
  });
  return out;
}

Result<int64_t> SampleStore::CountMatching(const SampleFilter& filter) {
  std::string sql =
      "SELECT COUNT(*) FROM samples s LEFT JOIN devices d ON d.device_id = s.device_id "
      "WHERE 1 = 1";
  std::vector<std::string> params;
  AppendFilter(filter, sql, params);
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));
  return ColumnInt64(rows.at(0).at(0), "sample count");
}

Result<SnapshotRow> SampleStore::InsertSnapshot(const SnapshotRow& row, bool* created) {
  Result<SnapshotRow> out = Error(Errc::kInternal, "snapshot not stored");
  *created = false;
  Status st = db_.Transaction([&]() -> Status {
    auto found = GetSnapshot(row.id);
    if (found.ok()) {
      out = std::move(found);
      return Status::Ok();
    }
    if (found.error().code != Errc::kNotFound) return found.error();
    nlohmann::json summary = row.summary;
    summary.erase("created_ms");
    EDGELOOP_RETURN_IF_ERROR(
        db_.Exec("INSERT INTO snapshots (id, created_ms, summary) VALUES (?, ?, ?)",
                 {row.id, std::to_string(row.created_ms), summary.dump()}));
    SnapshotRow stored = row;
    stored.summary["created_ms"] = row.created_ms;
    *created = true;
    out = std::move(stored);
    return Status::Ok();
  });
  if (!st.ok()) return st.error();
  return out;
}

Result<SnapshotRow> SampleStore::GetSnapshot(const std::string& id) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT id, created_ms, summary FROM snapshots WHERE id = ?", {id}));
  if (rows.empty()) return Error(Errc::kNotFound, "no dataset snapshot " + id);
  return ReadSnapshot(rows[0]);
}

Result<std::vector<SnapshotRow>> SampleStore::ListSnapshots() {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT id, created_ms, summary FROM snapshots ORDER BY created_ms, id"));
  std::vector<SnapshotRow> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(SnapshotRow row, ReadSnapshot(r));
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace edgeloop::cloud
