#pragma once
// Shared by the libFuzzer targets: a private temporary folder for inputs that the loaders read
// from disk, and the rule every target enforces -- a piracy::Error (a clear, located message)
// is the only acceptable way to refuse an input; anything else escaping is a bug, and so is any
// AddressSanitizer / UndefinedBehaviorSanitizer report (the build has both).
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "engine/error.hpp"

namespace piracy::fuzz {

/// A folder created once per fuzzing process (removed at exit).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::string templ = (std::filesystem::temp_directory_path() / "piracy_fuzz_XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      std::perror("piracy fuzz: mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return std::filesystem::path(templ);
  }();
  return dir;
}

/// Writes the input to `name` in the scratch folder and returns its path.
inline std::filesystem::path write_input(std::string_view name, const std::uint8_t* data, std::size_t size) {
  const auto path = scratch_dir() / std::string(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::perror("piracy fuzz: cannot write the input file");
    std::abort();
  }
  return path;
}

/// Runs `body`; a piracy::Error is the expected refusal of a bad input. Any other exception is a
/// finding: report it and abort so that libFuzzer saves the input.
template <class F>
void expect_clean(F&& body) {
  try {
    body();
  } catch (const piracy::Error&) {
    // a clear error: what hostile input must get
  } catch (const std::exception& e) {
    std::fprintf(stderr, "piracy fuzz: non-piracy exception escaped: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "piracy fuzz: unknown exception escaped\n");
    std::abort();
  }
}

}  // namespace piracy::fuzz
