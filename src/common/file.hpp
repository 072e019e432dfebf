// Files. WriteFileAtomic is the one durable-write pattern of the project: write a temporary
// file beside the target, fsync it, rename it over the target, fsync the directory. A reader
// sees the old content or the new, never a partial file.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace edgeloop {

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);
// Reads a whole file, refusing files larger than max_bytes (checked before allocating).
Result<std::string> ReadFile(const std::string& path, size_t max_bytes = size_t{1} << 31);
// Reads a file that may be gzip-compressed (decided by its magic bytes, not its name).
Result<std::string> ReadMaybeGzipFile(const std::string& path, size_t max_bytes = size_t{1} << 31);
Status FsyncDirectory(const std::string& dir);
Status MakeDirs(const std::string& dir);

}  // namespace edgeloop
