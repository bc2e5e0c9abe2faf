#pragma once
// A progress line on stderr for long runs (simulations, experiments, calibration).
//
// It appears only when it helps and can do no harm: when enabled (no --quiet), when stderr is
// a terminal (never in logs, pipes or CI output, which '\r' would garble) and once the task has
// run for more than a second (short runs stay silent). One line, rewritten in place with '\r'
// at most ~5 times per second; finish() clears it so that the next message starts on a clean line.
#include <chrono>
#include <cstdint>
#include <string>

namespace piracy {

/// "0.4s", "9.9s", "42s", "1m05s", "2h03m07s"; "?" for a negative or non-finite duration.
[[nodiscard]] std::string format_duration(double seconds);

/// The text of a progress line: "label 1200/4000 (30.0%) 512/s, 5s left". With total <= 0 the
/// total, percentage and time left are omitted; the rate and time left are omitted while
/// nothing is done yet.
[[nodiscard]] std::string format_progress_line(const std::string& label, std::int64_t done, std::int64_t total,
                                               double elapsed_seconds);

class Progress {
 public:
  Progress(std::string label, std::int64_t total, bool enabled);
  ~Progress();  ///< calls finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// Reports `done` units out of total. Cheap to call every tick: a disabled Progress returns
  /// at once; an enabled one reads a monotonic clock and prints at most every 200 ms.
  void update(std::int64_t done);
  /// Clears the line if one was printed. Idempotent.
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  std::int64_t total_ = 0;
  bool active_ = false;  // enabled && stderr is a terminal && not finished
  Clock::time_point start_;
  Clock::time_point last_print_;
  std::size_t printed_width_ = 0;  // characters of the line on screen, 0 if none
};

}  // namespace piracy
