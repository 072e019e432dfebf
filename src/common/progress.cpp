#include "common/progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace edgeloop {

bool ProgressBar::Enabled() {
  const char* force = std::getenv("EDGELOOP_PROGRESS");
  if (force) return std::string(force) != "0";
  return ::isatty(STDERR_FILENO) != 0;
}

std::string FormatDuration(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600,
                  (static_cast<int>(s) / 60) % 60);
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)),
      enabled_(Enabled()) {}

void ProgressBar::Update(int64_t done, const std::string& suffix) {
  done_ = done;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw(suffix);
}

void ProgressBar::Finish(const std::string& suffix) {
  if (!enabled_) return;
  done_ = total_;
  Draw(suffix);
  std::fputc('\n', stderr);
}

void ProgressBar::Draw(const std::string& suffix) {
  constexpr int kWidth = 28;
  double frac = static_cast<double>(done_) / static_cast<double>(total_);
  if (frac > 1) frac = 1;
  int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < kWidth) bar += '>';
  bar.resize(kWidth, ' ');
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
  std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %s ETA %s", label_.c_str(), bar.c_str(), frac * 100,
               suffix.c_str(), FormatDuration(eta).c_str());
  std::fflush(stderr);
}

}  // namespace edgeloop
