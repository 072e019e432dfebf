#include "common/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace edgeloop {
namespace {

std::string Errno(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

Errc ErrnoCode() {
  if (errno == ENOSPC || errno == EDQUOT) return Errc::kResourceExhausted;
  if (errno == ENOENT) return Errc::kNotFound;
  if (errno == EACCES || errno == EPERM) return Errc::kPermission;
  return Errc::kIo;
}

}  // namespace

Status FsyncDirectory(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Error(ErrnoCode(), Errno(dir, "open directory"));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Error(ErrnoCode(), Errno(dir, "fsync directory"));
  return Status::Ok();
}

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error(Errc::kIo, dir + ": cannot create directory: " + ec.message());
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  std::filesystem::path target(path);
  std::string dir = target.parent_path().string();
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Error(ErrnoCode(), Errno(tmp, "create"));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Error e(ErrnoCode(), Errno(path, "write"));
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Error e(ErrnoCode(), Errno(path, "fsync"));
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e(ErrnoCode(), Errno(path, "rename"));
    ::unlink(tmp.c_str());
    return e;
  }
  return FsyncDirectory(dir);
}

Result<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Error(Errc::kNotFound, path + ": no such file");
  if (std::filesystem::is_directory(path, ec))
    return Error(Errc::kInvalidArgument, path + ": is a directory, expected a file");
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return Error(Errc::kIo, path + ": cannot stat: " + ec.message());
  if (size > max_bytes)
    return Error(Errc::kResourceExhausted, path + ": file is " + std::to_string(size) +
                                               " bytes, limit is " + std::to_string(max_bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::kIo, path + ": cannot open for reading");
  std::string out(size, '\0');
  in.read(out.data(), static_cast<std::streamsize>(size));
  if (static_cast<size_t>(in.gcount()) != size) return Error(Errc::kIo, path + ": short read");
  return out;
}

Result<std::string> ReadMaybeGzipFile(const std::string& path, size_t max_bytes) {
  auto read = ReadFile(path, max_bytes);
  if (!read.ok()) return read.error();
  std::string& raw = read.value();
  const auto* magic = reinterpret_cast<const unsigned char*>(raw.data());
  if (raw.size() < 2 || magic[0] != 0x1f || magic[1] != 0x8b) return std::move(raw);
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return Error(Errc::kInternal, "zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  std::string out;
  char buf[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return Error(Errc::kFormat, path + ": corrupt gzip data");
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&zs);
      return Error(Errc::kResourceExhausted, path + ": decompressed size exceeds limit");
    }
    if (rc != Z_STREAM_END && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return Error(Errc::kFormat, path + ": truncated gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

}  // namespace edgeloop
