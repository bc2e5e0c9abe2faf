#include "engine/output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <system_error>
#include <utility>

#include "engine/error.hpp"

namespace piracy {
namespace fs = std::filesystem;

namespace {

/// Distinguishes staging directories of several OutputDirs of one process (the pid
/// distinguishes processes writing beside the same target).
std::atomic<unsigned> g_sibling_counter{0};

std::string errno_text(int e) { return std::system_category().message(e); }

/// `.<name>.<kind>-<pid>-<counter>` beside `target`: hidden, and on the same file system
/// as the target so that rename(2) is atomic.
fs::path sibling(const fs::path& target, std::string_view kind) {
  return target.parent_path() /
         fmt::format(".{}.{}-{}-{}", target.filename().string(), kind, static_cast<long>(::getpid()),
                     g_sibling_counter.fetch_add(1, std::memory_order_relaxed));
}

/// "out/", "./out" and "out" name the same target; the trailing separator would otherwise
/// make filename() empty.
fs::path normalise_target(const fs::path& raw) {
  fs::path t = raw.lexically_normal();
  if (!t.has_filename() && t.has_relative_path()) t = t.parent_path();
  const std::string name = t.filename().string();
  if (raw.empty() || name.empty() || name == "." || name == "..") {
    throw UsageError(fmt::format(
        "output directory '{}' cannot be used: -o must name a directory to create (e.g. -o results/run1)",
        raw.string()));
  }
  return t;
}

}  // namespace

OutputDir::OutputDir(fs::path target, bool force) : target_(normalise_target(target)), force_(force) {
  std::error_code ec;
  const fs::file_status link_status = fs::symlink_status(target_, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw IoError(fmt::format("cannot access output directory '{}': {}", target_.string(), ec.message()));
  }
  if (fs::exists(link_status)) {
    if (!fs::is_directory(fs::status(target_, ec))) {
      throw UsageError(fmt::format(
          "output path '{}' exists and is not a directory; remove it or choose another -o", target_.string()));
    }
    // --force on an ancestor of the working directory (-o .. from a sub-folder, -o $HOME)
    // would delete the folder the user is standing in: never what was meant.
    const fs::path here = fs::current_path(ec);
    const fs::path real = fs::canonical(target_, ec);
    if (!ec && std::mismatch(real.begin(), real.end(), here.begin(), here.end()).first == real.end()) {
      throw UsageError(fmt::format("output directory '{}' contains the working directory; choose another -o",
                                   target_.string()));
    }
    const bool empty = fs::is_empty(target_, ec);
    if (ec) {
      throw IoError(fmt::format("cannot read output directory '{}': {}", target_.string(), ec.message()));
    }
    if (!empty && !force) {
      throw UsageError(fmt::format(
          "output directory '{}' exists and is not empty; use --force to replace it or choose another -o",
          target_.string()));
    }
  }

  const fs::path parent = target_.parent_path();  // empty for a target in the working directory
  ec.clear();  // symlink_status above leaves "no such file" for a target that does not exist yet
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) {
    throw IoError(fmt::format("cannot create directory '{}' for output '{}': {}", parent.string(),
                              target_.string(), ec.message()));
  }
  // A stale directory of the same name (a killed run of a process with the same pid) is
  // skipped, never reused: its contents are unknown.
  for (int attempt = 0;; ++attempt) {
    fs::path candidate = sibling(target_, "tmp");
    if (::mkdir(candidate.c_str(), 0777) == 0) {
      staging_ = std::move(candidate);
      break;
    }
    const int e = errno;
    if (e != EEXIST || attempt >= 1000) {
      throw IoError(fmt::format("cannot create staging directory '{}' for output '{}': {}",
                                candidate.string(), target_.string(), errno_text(e)));
    }
  }
}

OutputDir::OutputDir(OutputDir&& other) noexcept
    : target_(std::move(other.target_)),
      staging_(std::move(other.staging_)),
      force_(other.force_),
      committed_(other.committed_) {
  other.staging_.clear();  // the moved-from object must not remove what it no longer owns
  other.committed_ = true;
}

OutputDir::~OutputDir() {
  if (committed_ || staging_.empty()) return;
  try {
    std::error_code ec;
    fs::remove_all(staging_, ec);  // best effort: a destructor must not throw
  } catch (...) {
  }
}

void OutputDir::write(std::string_view filename, std::string_view content) {
  if (committed_) {
    throw ModelError(fmt::format("cannot write '{}': output directory '{}' was already committed", filename,
                                 target_.string()));
  }
  const fs::path rel = fs::path(filename).lexically_normal();
  bool escapes = rel.empty() || rel.is_absolute() || !rel.has_filename();
  for (const auto& part : rel) escapes = escapes || part == "..";
  if (escapes) {
    throw ModelError(fmt::format("output file name '{}' must be a relative path inside the output directory",
                                 filename));
  }
  const fs::path shown = target_ / rel;  // users know the target, not the staging name
  const fs::path path = staging_ / rel;
  if (rel.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) throw IoError(fmt::format("cannot write {}: {}", shown.string(), ec.message()));
  }

  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw IoError(fmt::format("cannot write {}: {}", shown.string(), errno_text(errno)));
  const char* data = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      ::close(fd);
      throw IoError(fmt::format("cannot write {}: {}", shown.string(), errno_text(e)));
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  // close(2) can report a deferred write error (NFS, quotas); its failure is a failed write.
  // It must not be retried on EINTR (Linux has already released the descriptor).
  if (::close(fd) != 0) throw IoError(fmt::format("cannot write {}: {}", shown.string(), errno_text(errno)));
}

void OutputDir::commit() {
  if (committed_) {
    throw ModelError(fmt::format("output directory '{}' was already committed", target_.string()));
  }
  fs::path old;
  std::error_code ec;
  if (force_ && fs::exists(fs::symlink_status(target_, ec))) {
    old = sibling(target_, "old");
    if (::rename(target_.c_str(), old.c_str()) != 0) {
      throw IoError(fmt::format("cannot move the old output '{}' aside to replace it: {}", target_.string(),
                                errno_text(errno)));
    }
  }
  // Without force, rename(2) still replaces an EMPTY directory and fails with ENOTEMPTY or
  // EEXIST if something was written to the target while the run was going.
  if (::rename(staging_.c_str(), target_.c_str()) != 0) {
    const int e = errno;
    if (!old.empty()) ::rename(old.c_str(), target_.c_str());  // put the old result back
    if (e == ENOTEMPTY || e == EEXIST) {
      throw IoError(fmt::format(
          "cannot write output directory '{}': it was filled by someone else during the run; "
          "use --force to replace it or choose another -o",
          target_.string()));
    }
    throw IoError(fmt::format("cannot rename '{}' to '{}': {}", staging_.string(), target_.string(),
                              errno_text(e)));
  }
  committed_ = true;
  if (!old.empty()) {
    fs::remove_all(old, ec);
    // The new result is complete and in place, so this is not a failure of the run.
    if (ec) {
      fmt::print(stderr, "warning: could not remove the replaced output '{}': {}\n", old.string(), ec.message());
    }
  }
}

void append_number(fmt::memory_buffer& out, double value, bool integer) {
  auto it = std::back_inserter(out);
  if (value == 0.0) {  // also -0.0, whose sign carries no meaning in a table
    out.push_back('0');
  } else if (std::isnan(value)) {
    // The sign bit of a NaN depends on the operation and CPU (0.0/0.0 is -nan on x86).
    fmt::format_to(it, "nan");
  } else if (integer && std::fabs(value) < 9.2e18) {  // inside long long; inf fails the test
    fmt::format_to(it, "{}", std::llround(value));
  } else {
    // Shortest round-trip representation; locale-independent because there is no 'L'.
    fmt::format_to(it, "{}", value);
  }
}

std::string format_number(double value, bool integer) {
  fmt::memory_buffer out;
  append_number(out, value, integer);
  return fmt::to_string(out);
}

void append_csv_field(fmt::memory_buffer& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (const char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string csv_field(std::string_view field) {
  fmt::memory_buffer out;
  append_csv_field(out, field);
  return fmt::to_string(out);
}

}  // namespace piracy
