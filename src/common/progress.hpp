// A one-line terminal progress bar ("epoch 3/10 [=====>    ] 45% 1234 samples/s loss 0.31
// ETA 12s"). Draws only when stderr is a terminal (or when forced), at most 10 times a second,
// so it costs nothing in logs and CI. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace edgeloop {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  // Sets the done count and a free-form suffix ("loss 0.31"); redraws if due.
  void Update(int64_t done, const std::string& suffix = "");
  // Draws the final state and ends the line.
  void Finish(const std::string& suffix = "");
  static bool Enabled();

 private:
  void Draw(const std::string& suffix);
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool enabled_;
};

std::string FormatDuration(double seconds);

}  // namespace edgeloop
