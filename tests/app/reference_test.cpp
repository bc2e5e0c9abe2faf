// docs/CONFIG.md is generated from the configuration schema (agents/params.cpp) by
// `piracy-abm reference`. This test keeps the committed file true: it runs the program and
// compares its output with the file byte for byte, so a schema change (a new key, a new
// default, a new source) that is not followed by a regeneration fails the suite.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

/// `path` quoted for /bin/sh (single quotes; an embedded ' becomes '\'').
std::string shell_quote(const std::string& path) {
  std::string out = "'";
  for (char c : path) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

struct CommandResult {
  std::string stdout_text;
  int exit_code = -1;
};

CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.stdout_text.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string read_file(const std::string& path, bool& found) {
  std::ifstream in(path, std::ios::binary);
  found = static_cast<bool>(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// 1-based number of the first line where a and b differ, with both lines, for the message.
std::string first_difference(const std::string& expected, const std::string& actual) {
  std::istringstream e(expected), a(actual);
  std::string le, la;
  for (int line = 1;; ++line) {
    const bool he = static_cast<bool>(std::getline(e, le));
    const bool ha = static_cast<bool>(std::getline(a, la));
    if (!he && !ha) return "the files differ only in their final newline";
    if (!he || !ha || le != la) {
      return "first difference at line " + std::to_string(line) + ":\n  generated: " +
             (he ? le : std::string("<end of output>")) + "\n  docs/CONFIG.md: " +
             (ha ? la : std::string("<end of file>"));
    }
  }
}

const char* const kRegenerate =
    "docs/CONFIG.md is out of date with the configuration schema (agents/params.cpp). "
    "Regenerate it from the source directory with\n"
    "    ./build/release/piracy-abm reference > docs/CONFIG.md\n"
    "(or any build's piracy-abm) and commit the result.";

}  // namespace

TEST_CASE("docs/CONFIG.md is the reference generated from the schema", "[docs]") {
  const auto generated = run_command(shell_quote(PIRACY_PROGRAM) + " reference");
  INFO("program: " << PIRACY_PROGRAM);
  REQUIRE(generated.exit_code == 0);
  // A reference that lost its table would still "match" an equally broken file: check that
  // the output documents the top-level keys and a nested one of the default scenario.
  REQUIRE(generated.stdout_text.find("| `seed` |") != std::string::npos);
  REQUIRE(generated.stdout_text.find("| `enforcement.operations[].servers` |") != std::string::npos);

  bool found = false;
  const std::string path = std::string(PIRACY_SOURCE_DIR) + "/docs/CONFIG.md";
  const std::string committed = read_file(path, found);
  INFO(kRegenerate);
  INFO("committed file: " << path);
  REQUIRE(found);
  const bool same = committed == generated.stdout_text;
  INFO((same ? std::string() : first_difference(generated.stdout_text, committed)));
  CHECK(same);
}
