// The structured log: one line per event, `ts=... level=... event=... key=value ...`, to
// stderr or a file, with a level threshold and a rate limit per event name (so a failing
// background loop cannot flood the disk; what was suppressed is counted on the next line of
// that event). Values with spaces, quotes or '=' are quoted. Thread-safe; the logger is the
// one piece of global mutable state (STYLE.md).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.hpp"

namespace edgeloop::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError };

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, int64_t v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, int v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, uint64_t v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, double v);
  std::string key, value;
};

struct Options {
  Level level = Level::kInfo;
  std::string file;                // empty: stderr
  int max_per_event_per_10s = 20;  // rate limit per event name; 0: no limit
};

// Applies options (opens the file for appending). Errors: kIo naming the file.
Status Configure(const Options& options);
Result<Level> ParseLevel(const std::string& name);  // debug, info, warn, error

void Write(Level level, std::string_view event, std::initializer_list<Field> fields);
inline void Debug(std::string_view e, std::initializer_list<Field> f = {}) {
  Write(Level::kDebug, e, f);
}
inline void Info(std::string_view e, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, e, f);
}
inline void Warn(std::string_view e, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, e, f);
}
inline void Error(std::string_view e, std::initializer_list<Field> f = {}) {
  Write(Level::kError, e, f);
}

// The line Write would emit (without rate limiting), for tests.
std::string Format(int64_t unix_ms, Level level, std::string_view event,
                   std::initializer_list<Field> fields);

}  // namespace edgeloop::log
