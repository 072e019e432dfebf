#include "edge/spool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "common/file.hpp"
#include "edge/crc32c.hpp"

namespace edgeloop::edge {
namespace {

// Frame: u32 payload length | u32 crc32c(seq, flags, payload) | u64 seq | u32 flags | payload.
// Little-endian (the byte order of every target we build for; checked below).
constexpr size_t kHeader = 20;
constexpr uint32_t kFlagLabelled = 1;
static_assert(std::endian::native == std::endian::little, "spool frames are little-endian");

struct Header {
  uint32_t length;
  uint32_t crc;
  uint64_t seq;
  uint32_t flags;
};

void PutHeader(char* out, const Header& h) {
  std::memcpy(out, &h.length, 4);
  std::memcpy(out + 4, &h.crc, 4);
  std::memcpy(out + 8, &h.seq, 8);
  std::memcpy(out + 16, &h.flags, 4);
}

Header GetHeader(const char* in) {
  Header h{};
  std::memcpy(&h.length, in, 4);
  std::memcpy(&h.crc, in + 4, 4);
  std::memcpy(&h.seq, in + 8, 8);
  std::memcpy(&h.flags, in + 16, 4);
  return h;
}

uint32_t FrameCrc(uint64_t seq, uint32_t flags, const char* payload, size_t n) {
  uint32_t crc = Crc32c(&seq, 8);
  crc = Crc32c(&flags, 4, crc);
  return Crc32c(payload, n, crc);
}

Error ErrnoError(const std::string& what) {
  int e = errno;
  Errc code = (e == ENOSPC || e == EDQUOT) ? Errc::kResourceExhausted : Errc::kIo;
  std::string msg = what + ": " + std::strerror(e);
  if (code == Errc::kResourceExhausted) msg += " (disk full: the record was not stored)";
  return Error(code, msg);
}

std::string SegmentName(uint64_t first_seq) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "seg-%020" PRIu64 ".log", first_seq);
  return buf;
}

}  // namespace

Spool::Spool(std::string dir, SpoolOptions options)
    : dir_(std::move(dir)), opt_(std::move(options)) {}

Spool::~Spool() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<Spool>> Spool::Open(const std::string& dir, SpoolOptions options) {
  if (options.segment_bytes == 0 || options.max_bytes < kHeader + 1)
    return Error(Errc::kInvalidArgument, "spool: max_bytes and segment_bytes must be positive");
  EDGELOOP_RETURN_IF_ERROR(MakeDirs(dir));
  std::unique_ptr<Spool> s(new Spool(dir, std::move(options)));
  Status st = s->Load();
  if (!st.ok()) return st.error().WithContext("spool " + dir);
  return s;
}

Status Spool::Load() {
  std::string cursor_path = dir_ + "/cursor";
  auto cursor = ReadFile(cursor_path, 4096);
  if (cursor.ok()) {
    std::istringstream in(*cursor);
    std::string k1, k2;
    if (!(in >> k1 >> acked_seq_ >> k2 >> dropped_) || k1 != "acked" || k2 != "dropped")
      return Error(Errc::kFormat, cursor_path + ": malformed cursor file");
  } else if (cursor.error().code != Errc::kNotFound) {
    return cursor.error();
  }

  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("cursor.tmp.", 0) == 0) {
      std::filesystem::remove(e.path(), ec);  // a cursor write cut short by a crash
      continue;
    }
    uint64_t first = 0;
    if (std::sscanf(name.c_str(), "seg-%20" SCNu64 ".log", &first) != 1 ||
        name != SegmentName(first))
      continue;
    Segment seg;
    seg.first_seq = first;
    seg.path = e.path().string();
    segments_.push_back(std::move(seg));
  }
  if (ec) return Error(Errc::kIo, dir_ + ": cannot list: " + ec.message());
  std::sort(segments_.begin(), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.first_seq < b.first_seq; });

  next_seq_ = acked_seq_ + 1;
  for (auto& seg : segments_) {
    EDGELOOP_RETURN_IF_ERROR(ScanSegment(seg));
    uint64_t after = seg.entries.empty() ? seg.first_seq : seg.entries.back().seq + 1;
    next_seq_ = std::max(next_seq_, after);
  }
  EDGELOOP_RETURN_IF_ERROR(DeleteAckedSegmentsLocked());
  if (segments_.empty()) return StartSegment(next_seq_);
  fd_ = ::open(segments_.back().path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) return ErrnoError(segments_.back().path + ": open");
  return Status::Ok();
}

Status Spool::ScanSegment(Segment& seg) {
  auto data = ReadFile(seg.path, opt_.segment_bytes + opt_.max_record_bytes + 2 * kHeader);
  if (!data.ok()) return data.error();
  const std::string& d = *data;
  uint64_t off = 0;
  uint64_t expect = seg.first_seq;
  while (off + kHeader <= d.size()) {
    Header h = GetHeader(d.data() + off);
    if (h.length > opt_.max_record_bytes || off + kHeader + h.length > d.size()) break;
    if (h.seq != expect || (h.flags & ~kFlagLabelled) != 0) break;
    if (FrameCrc(h.seq, h.flags, d.data() + off + kHeader, h.length) != h.crc) break;
    seg.entries.push_back({h.seq, off + kHeader, h.length, (h.flags & kFlagLabelled) != 0});
    off += kHeader + h.length;
    ++expect;
  }
  seg.size = off;
  if (off < d.size()) {
    // A torn or corrupt tail: everything from the first bad frame on is unusable (a frame
    // boundary after it cannot be trusted), so cut it off and make the cut durable.
    int fd = ::open(seg.path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(seg.path + ": open for truncation");
    bool ok = ::ftruncate(fd, static_cast<off_t>(off)) == 0 && ::fsync(fd) == 0;
    Error err = ok ? Error() : ErrnoError(seg.path + ": truncate torn tail");
    ::close(fd);
    if (!ok) return err;
    truncated_bytes_ += d.size() - off;
  }
  return Status::Ok();
}

Status Spool::StartSegment(uint64_t first_seq) {
  Segment seg;
  seg.first_seq = first_seq;
  seg.path = dir_ + "/" + SegmentName(first_seq);
  int fd = ::open(seg.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(seg.path + ": create");
  Status st = FsyncDirectory(dir_);
  if (!st.ok()) {
    ::close(fd);
    return st;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  segments_.push_back(std::move(seg));
  return Status::Ok();
}

Status Spool::PersistCursor() {
  std::string text =
      "acked " + std::to_string(acked_seq_) + "\ndropped " + std::to_string(dropped_) + "\n";
  return WriteFileAtomic(dir_ + "/cursor", text);
}

Status Spool::DeleteAckedSegmentsLocked() {
  // The open (last) segment stays; older ones go once all their records are acknowledged.
  while (segments_.size() > 1) {
    const Segment& s = segments_.front();
    uint64_t last = segments_[1].first_seq - 1;
    if (last > acked_seq_) break;
    if (::unlink(s.path.c_str()) != 0 && errno != ENOENT) return ErrnoError(s.path + ": unlink");
    segments_.erase(segments_.begin());
  }
  return Status::Ok();
}

Status Spool::DropOldestLocked() {
  if (segments_.size() == 1) EDGELOOP_RETURN_IF_ERROR(StartSegment(next_seq_));
  const Segment& s = segments_.front();
  uint64_t last = segments_[1].first_seq - 1;
  for (const auto& e : s.entries)
    if (e.seq > acked_seq_) ++dropped_;
  acked_seq_ = std::max(acked_seq_, last);
  // Cursor first: a crash before the unlink leaves a segment that Load() deletes as acked.
  EDGELOOP_RETURN_IF_ERROR(PersistCursor());
  return DeleteAckedSegmentsLocked();
}

uint64_t Spool::TotalBytesLocked() const {
  uint64_t total = 0;
  for (const auto& s : segments_) total += s.size;
  return total;
}

Result<uint64_t> Spool::Append(std::string_view payload, bool labelled) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t need = kHeader + payload.size();
  if (payload.size() > opt_.max_record_bytes || need > opt_.max_bytes)
    return Error(Errc::kInvalidArgument, "spool: record of " + std::to_string(payload.size()) +
                                             " bytes exceeds the configured limits");
  while (TotalBytesLocked() + need > opt_.max_bytes) {
    if (opt_.drop == DropPolicy::kRejectNew) {
      ++dropped_;
      EDGELOOP_RETURN_IF_ERROR(PersistCursor());
      return Error(Errc::kResourceExhausted,
                   "spool full (" + std::to_string(opt_.max_bytes) + " bytes): new record dropped");
    }
    bool only_open_empty = segments_.size() == 1 && segments_.back().size == 0;
    if (only_open_empty) break;
    EDGELOOP_RETURN_IF_ERROR(DropOldestLocked());
  }
  const Segment& open = segments_.back();
  uint64_t open_next = open.entries.empty() ? open.first_seq : open.entries.back().seq + 1;
  // A segment holds consecutive sequence numbers; after records lost with FsyncPolicy::kNever
  // the next number may not follow on, so it starts a segment of its own.
  if (open.size >= opt_.segment_bytes || open_next != next_seq_)
    EDGELOOP_RETURN_IF_ERROR(StartSegment(next_seq_));

  Segment& seg = segments_.back();
  uint64_t seq = next_seq_;
  uint32_t flags = labelled ? kFlagLabelled : 0;
  std::string frame(kHeader + payload.size(), '\0');
  PutHeader(frame.data(), {static_cast<uint32_t>(payload.size()),
                           FrameCrc(seq, flags, payload.data(), payload.size()), seq, flags});
  std::memcpy(frame.data() + kHeader, payload.data(), payload.size());

  size_t off = 0;
  while (off < frame.size()) {
    ssize_t n = opt_.write_fn ? opt_.write_fn(fd_, frame.data() + off, frame.size() - off)
                              : ::write(fd_, frame.data() + off, frame.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      Error err = ErrnoError(seg.path + ": append");
      // Roll back the partial frame so the segment ends on a frame boundary again.
      if (::ftruncate(fd_, static_cast<off_t>(seg.size)) != 0)
        return ErrnoError(seg.path + ": roll back partial append");
      return err;
    }
    off += static_cast<size_t>(n);
  }
  if (opt_.fsync == FsyncPolicy::kEveryAppend && ::fdatasync(fd_) != 0) {
    Error err = ErrnoError(seg.path + ": fsync");
    if (::ftruncate(fd_, static_cast<off_t>(seg.size)) != 0) {
      // keep the original error; a stale tail is cut by the next Open()
    }
    return err;
  }
  seg.entries.push_back({seq, seg.size + kHeader, static_cast<uint32_t>(payload.size()), labelled});
  seg.size += frame.size();
  ++next_seq_;
  return seq;
}

Result<std::vector<SpoolRecord>> Spool::Peek(size_t max_records, size_t max_bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SpoolRecord> out;
  size_t bytes = 0;
  for (const auto& seg : segments_) {
    int fd = -1;
    for (const auto& e : seg.entries) {
      if (e.seq <= acked_seq_) continue;
      if (out.size() >= max_records || (!out.empty() && bytes + e.length > max_bytes)) {
        if (fd >= 0) ::close(fd);
        return out;
      }
      if (fd < 0) {
        fd = ::open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return ErrnoError(seg.path + ": open for reading");
      }
      char hdr[kHeader];
      SpoolRecord r;
      r.seq = e.seq;
      r.labelled = e.labelled;
      r.payload.resize(e.length);
      bool ok = ::pread(fd, hdr, kHeader, static_cast<off_t>(e.offset - kHeader)) ==
                    static_cast<ssize_t>(kHeader) &&
                ::pread(fd, r.payload.data(), e.length, static_cast<off_t>(e.offset)) ==
                    static_cast<ssize_t>(e.length);
      if (!ok) {
        Error err = ErrnoError(seg.path + ": read");
        ::close(fd);
        return err;
      }
      Header h = GetHeader(hdr);
      if (h.seq != e.seq || FrameCrc(h.seq, h.flags, r.payload.data(), e.length) != h.crc) {
        ::close(fd);
        return Error(Errc::kFormat, seg.path + ": record " + std::to_string(e.seq) +
                                        " failed its checksum on read");
      }
      bytes += e.length;
      out.push_back(std::move(r));
    }
    if (fd >= 0) ::close(fd);
  }
  return out;
}

Status Spool::Ack(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seq >= next_seq_)
    return Error(Errc::kInvalidArgument,
                 "spool: ack of " + std::to_string(seq) + " beyond the last record");
  if (seq <= acked_seq_) return Status::Ok();
  acked_seq_ = seq;
  EDGELOOP_RETURN_IF_ERROR(PersistCursor());
  return DeleteAckedSegmentsLocked();
}

SpoolStats Spool::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SpoolStats s;
  for (const auto& seg : segments_)
    for (const auto& e : seg.entries)
      if (e.seq > acked_seq_) {
        ++s.depth_records;
        s.depth_bytes += kHeader + e.length;
      }
  s.dropped_records = dropped_;
  s.next_seq = next_seq_;
  s.acked_seq = acked_seq_;
  s.truncated_bytes = truncated_bytes_;
  return s;
}

}  // namespace edgeloop::edge
