#pragma once
// Helpers of the command-line tests (tests/app/*_test.cpp): a temporary directory, whole-file
// reads and writes, and running the piracy-abm program as a child process with its stdout and
// stderr captured outside its working directory (so that "nothing was written" can be checked
// on the working directory itself). fork/exec rather than system(): no shell quoting of
// arguments. PIRACY_PROGRAM (the program's path) and PIRACY_SOURCE_DIR come from
// tests/CMakeLists.txt.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace piracy::testing {

namespace fs = std::filesystem;

inline const std::string kProgram = PIRACY_PROGRAM;
inline const fs::path kSourceDir = PIRACY_SOURCE_DIR;

/// A fresh, empty directory under the system's temporary directory, removed afterwards.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& prefix = "piracy_test") {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

/// The whole file as bytes ("" when it cannot be read).
inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void spit(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

inline long count_lines(const std::string& text) {
  return static_cast<long>(std::count(text.begin(), text.end(), '\n'));
}

/// Names of the entries of a directory (hidden ones included), sorted.
inline std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

struct Result {
  int code = -1;      //!< exit code, or 128 + signal
  std::string out;
  std::string err;
};

/// Starts the program with `args` in `cwd`, stdin from /dev/null, stdout and stderr to files in
/// `capture`; `setup` runs in the child just before exec (environment, resource limits).
inline pid_t start(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& capture,
                   const std::function<void()>& setup = {}) {
  const fs::path out_file = capture / "stdout", err_file = capture / "stderr";
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int in_fd = ::open("/dev/null", O_RDONLY);
    const int out_fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0 || ::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 ||
        ::dup2(err_fd, 2) < 0 || ::chdir(cwd.c_str()) != 0) {
      ::_exit(127);
    }
    if (setup) setup();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(kProgram.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(kProgram.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

/// Waits for a child started by start() and collects its exit code and output.
inline Result finish(pid_t pid, const fs::path& capture) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(capture / "stdout");
  r.err = slurp(capture / "stderr");
  return r;
}

/// Runs the program to completion in `cwd`.
inline Result run_cli(const std::vector<std::string>& args, const fs::path& cwd,
                      const std::function<void()>& setup = {}) {
  TempDir capture("piracy_capture");
  return finish(start(args, cwd, capture.path, setup), capture.path);
}

/// "FILE:LINE:COLUMN: error: " of the first occurrence of `needle` in `file` (1-based, as the
/// program reports locations), so that the expected location comes from the fixture itself.
inline std::string located(const std::string& file, const std::string& needle) {
  const std::string text = slurp(file);
  const auto pos = text.find(needle);
  REQUIRE(pos != std::string::npos);
  const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n');
  const auto line_start = text.rfind('\n', pos);
  const auto column = line_start == std::string::npos ? pos + 1 : pos - line_start;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: ";
}

}  // namespace piracy::testing
