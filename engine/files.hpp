#pragma once
// Small file helpers shared by the experiment, calibration and sensitivity directories
// (engine/experiment.cpp, engine/calibration.cpp): one implementation of the atomic write, so
// every table of those directories fails the same way -- naming the file and the reason.
#include <filesystem>
#include <string>
#include <string_view>

namespace piracy::files {

/// The current UTC time as "YYYY-MM-DDTHH:MM:SSZ" (manifests).
[[nodiscard]] std::string utc_now();

/// Writes `content` to a temporary file beside `path` and renames it into place (rename(2) is
/// atomic): a reader never sees a half-written table, even after a crash. Retries interrupted
/// writes; throws IoError naming the file and the reason (e.g. "No space left on device") and
/// removes the temporary file.
void write_atomic(const std::filesystem::path& path, std::string_view content);

}  // namespace piracy::files
