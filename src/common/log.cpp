#include "common/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>

namespace edgeloop::log {
namespace {

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "?";
}

void AppendValue(std::string& out, std::string_view v) {
  bool quote = v.empty();
  for (char c : v) quote = quote || c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t';
  if (!quote) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
}

struct Window {
  int64_t start_ms = 0;
  int written = 0;
  int64_t suppressed = 0;
};

struct Logger {
  std::mutex mu;
  Options options;
  std::FILE* out = nullptr;  // nullptr: stderr
  std::map<std::string, Window, std::less<>> windows;
  ~Logger() {
    if (out != nullptr) std::fclose(out);
  }
};

Logger& TheLogger() {
  static Logger logger;
  return logger;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Field::Field(std::string_view k, double v) : key(k) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  value = buf;
}

Status Configure(const Options& options) {
  Logger& l = TheLogger();
  std::FILE* f = nullptr;
  if (!options.file.empty()) {
    f = std::fopen(options.file.c_str(), "a");
    if (f == nullptr)
      return edgeloop::Error(Errc::kIo, options.file + ": cannot open the log file");
  }
  std::lock_guard<std::mutex> lock(l.mu);
  if (l.out != nullptr) std::fclose(l.out);
  l.out = f;
  l.options = options;
  return Status::Ok();
}

Result<Level> ParseLevel(const std::string& name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return edgeloop::Error(Errc::kInvalidArgument,
                         "unknown log level '" + name + "' (debug, info, warn or error)");
}

std::string Format(int64_t unix_ms, Level level, std::string_view event,
                   std::initializer_list<Field> fields) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[96];
  std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  std::string line = std::string("ts=") + ts + " level=" + LevelName(level) + " event=";
  AppendValue(line, event);
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    AppendValue(line, f.value);
  }
  return line;
}

void Write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  Logger& l = TheLogger();
  const int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(l.mu);
  if (level < l.options.level) return;
  int64_t suppressed = 0;
  if (l.options.max_per_event_per_10s > 0) {
    auto it = l.windows.find(event);
    if (it == l.windows.end()) it = l.windows.emplace(std::string(event), Window{now, 0, 0}).first;
    Window& w = it->second;
    if (now - w.start_ms >= 10'000) {
      suppressed = w.suppressed;
      w = Window{now, 0, 0};
    }
    if (w.written >= l.options.max_per_event_per_10s) {
      ++w.suppressed;
      return;
    }
    ++w.written;
  }
  std::string line = Format(now, level, event, fields);
  if (suppressed > 0) line += " suppressed=" + std::to_string(suppressed);
  line += '\n';
  std::FILE* out = l.out != nullptr ? l.out : stderr;
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

}  // namespace edgeloop::log
