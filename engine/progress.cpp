#include "engine/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace piracy {
namespace {
constexpr auto kSilentFor = std::chrono::seconds(1);           // short tasks print nothing
constexpr auto kMinInterval = std::chrono::milliseconds(200);  // ~5 updates per second
}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0.0) return "?";
  // Tenths below 10 s ("0.4s"); 9.96 s would round to "10.0s", so it takes the integer branch.
  if (seconds < 9.95) return fmt::format("{:.1f}s", seconds);
  const auto total = static_cast<long long>(std::llround(seconds));
  const long long h = total / 3600, m = (total % 3600) / 60, s = total % 60;
  if (h > 0) return fmt::format("{}h{:02}m{:02}s", h, m, s);
  if (m > 0) return fmt::format("{}m{:02}s", m, s);
  return fmt::format("{}s", s);
}

std::string format_progress_line(const std::string& label, std::int64_t done, std::int64_t total,
                                 double elapsed_seconds) {
  std::string line = total > 0 ? fmt::format("{} {}/{} ({:.1f}%)", label, done, total,
                                             100.0 * static_cast<double>(done) / static_cast<double>(total))
                               : fmt::format("{} {}", label, done);
  if (done > 0 && elapsed_seconds > 0.0) {
    const double rate = static_cast<double>(done) / elapsed_seconds;
    line += rate >= 10.0 ? fmt::format(" {:.0f}/s", rate) : fmt::format(" {:.2g}/s", rate);
    if (total > 0 && done <= total) {
      line += fmt::format(", {} left", format_duration(static_cast<double>(total - done) / rate));
    }
  }
  return line;
}

Progress::Progress(std::string label, std::int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      active_(enabled && ::isatty(STDERR_FILENO) == 1),
      start_(Clock::now()),
      last_print_(start_) {}

Progress::~Progress() { finish(); }

void Progress::update(std::int64_t done) {
  if (!active_) return;
  const Clock::time_point now = Clock::now();
  if (now - start_ < kSilentFor || now - last_print_ < kMinInterval) return;
  last_print_ = now;
  const std::string line =
      format_progress_line(label_, done, total_, std::chrono::duration<double>(now - start_).count());
  // Pad with spaces to overwrite the tail of a longer previous line (no terminal escape codes).
  const std::size_t pad = printed_width_ > line.size() ? printed_width_ - line.size() : 0;
  std::fprintf(stderr, "\r%s%*s", line.c_str(), static_cast<int>(pad), "");
  std::fflush(stderr);
  printed_width_ = std::max(printed_width_, line.size());
}

void Progress::finish() {
  if (active_ && printed_width_ > 0) {
    std::fprintf(stderr, "\r%*s\r", static_cast<int>(printed_width_), "");
    std::fflush(stderr);
  }
  active_ = false;
  printed_width_ = 0;
}

}  // namespace piracy
