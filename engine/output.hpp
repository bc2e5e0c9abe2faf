#pragma once
// Output layer: an atomic output directory and the number/CSV formatting every writer shares.
//
// A run writes every file into a hidden staging directory beside the target and renames it
// to the target only when everything was written (rename(2) of a directory on one file system
// is atomic). A failure, an exception or Ctrl-C therefore leaves either the complete result
// or nothing: never a half-written directory that a notebook could mistake for a result.
#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace piracy {

class OutputDir {
 public:
  /// Prepares `target` (creating missing parent directories) and creates the staging directory
  /// `.<name>.tmp-<pid>-<counter>` beside it.
  /// Throws UsageError when the target is a non-empty directory and !force, when it exists and
  /// is not a directory (even with force: a file is never silently replaced by a directory),
  /// or when it is ".", ".." or a root; IoError when the staging directory cannot be created.
  OutputDir(std::filesystem::path target, bool force);
  ~OutputDir();  ///< not committed: removes the staging directory recursively (never throws)

  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;
  OutputDir(OutputDir&& other) noexcept;
  OutputDir& operator=(OutputDir&&) = delete;

  [[nodiscard]] const std::filesystem::path& target() const { return target_; }
  /// Where files are written until commit(); writers that stream may create files here directly.
  [[nodiscard]] const std::filesystem::path& staging() const { return staging_; }
  [[nodiscard]] bool committed() const { return committed_; }

  /// Writes `content` to `filename` (a relative path, sub-directories are created) inside the
  /// staging directory, replacing an earlier file of that name. Every write(2) and close(2) is
  /// checked: a full disk gives IoError "cannot write <target>/<filename>: No space left on device".
  /// Throws ModelError for an absolute filename, one containing "..", or after commit().
  void write(std::string_view filename, std::string_view content);

  /// Renames the staging directory to the target. With force and an existing target, the old
  /// target is first renamed aside (`.<name>.old-<pid>-<counter>`), the staging directory is
  /// renamed into place, then the old one is removed; if the second rename fails the old target
  /// is put back. Throws IoError on failure (the staging directory is then still removed by the
  /// destructor) and ModelError when called twice.
  /// Files are not fsync'ed: the guarantee is against the process failing, not the machine.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path staging_;
  bool force_ = false;
  bool committed_ = false;
};

/// Appends a number the same way on every run, platform and locale: finite integral values of
/// an `integer` column as integers (rounded to nearest: integer columns hold counts); every
/// other value in the shortest form that reads back to the same double (fmt "{}", Dragonbox,
/// Jeon 2020), e.g. 0.1, 2.5e-07, 1e+20. -0 prints as 0; NaN and infinities as nan, inf, -inf.
void append_number(fmt::memory_buffer& out, double value, bool integer = false);
[[nodiscard]] std::string format_number(double value, bool integer = false);

/// Appends one CSV field with RFC 4180 quoting: a field holding a comma, a double quote, CR or
/// LF is enclosed in double quotes and its double quotes are doubled; others are copied as is.
void append_csv_field(fmt::memory_buffer& out, std::string_view field);
[[nodiscard]] std::string csv_field(std::string_view field);

}  // namespace piracy
