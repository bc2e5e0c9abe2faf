#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <locale>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/output.hpp"

namespace fs = std::filesystem;
using piracy::OutputDir;

namespace {

/// A fresh, empty directory per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("piracy_output_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  /// Names of the entries of the directory (hidden ones included), sorted.
  [[nodiscard]] std::vector<std::string> entries() const { return list(path); }
  static std::vector<std::string> list(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("OutputDir stages files and renames them into place on commit", "[engine][output]") {
  TempDir tmp;
  const fs::path target = tmp.path / "run1";
  OutputDir out(target, false);
  CHECK(out.staging().parent_path() == target.parent_path());  // same file system: atomic rename
  CHECK(out.staging().filename().string().rfind(".run1.tmp-", 0) == 0);
  out.write("daily.csv", "date,x\n2020-01-01,1\n");
  out.write("runs/seed_1/events.csv", "date,type,entity,detail\n");
  // Until commit nothing is visible at the target.
  CHECK_FALSE(fs::exists(target));
  CHECK(fs::exists(out.staging() / "daily.csv"));
  out.commit();
  CHECK(out.committed());
  CHECK(slurp(target / "daily.csv") == "date,x\n2020-01-01,1\n");
  CHECK(slurp(target / "runs/seed_1/events.csv") == "date,type,entity,detail\n");
  CHECK(tmp.entries() == std::vector<std::string>{"run1"});  // no staging directory left
}

TEST_CASE("OutputDir destroyed without commit leaves neither target nor staging", "[engine][output]") {
  TempDir tmp;
  const fs::path target = tmp.path / "run1";
  {
    OutputDir out(target, false);
    out.write("a.csv", "1\n");
    out.write("sub/b.csv", "2\n");
    REQUIRE(fs::exists(out.staging() / "sub/b.csv"));
  }
  CHECK(tmp.entries().empty());
}

TEST_CASE("an exception midway through writing leaves nothing", "[engine][output]") {
  TempDir tmp;
  const fs::path target = tmp.path / "run1";
  try {
    OutputDir out(target, false);
    out.write("a.csv", "1\n");
    throw std::runtime_error("simulation failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(tmp.entries().empty());
}

TEST_CASE("OutputDir refuses a non-empty directory without force and replaces it with force",
          "[engine][output]") {
  TempDir tmp;
  const fs::path target = tmp.path / "run1";
  fs::create_directories(target);
  std::ofstream(target / "old.txt") << "old result";

  SECTION("without force: UsageError (exit 2), nothing touched") {
    try {
      OutputDir out(target, false);
      FAIL("expected UsageError");
    } catch (const piracy::UsageError& e) {
      CHECK(e.exit_code() == 2);
      CHECK(std::string(e.what()) == "output directory '" + target.string() +
                                         "' exists and is not empty; use --force to replace it or choose another -o");
    }
    CHECK(slurp(target / "old.txt") == "old result");
    CHECK(tmp.entries() == std::vector<std::string>{"run1"});
  }
  SECTION("with force: the old result survives until commit, then only the new one is left") {
    {
      OutputDir out(target, true);
      out.write("new.txt", "new result");
      CHECK(slurp(target / "old.txt") == "old result");
      out.commit();
    }
    CHECK(TempDir::list(target) == std::vector<std::string>{"new.txt"});
    CHECK(slurp(target / "new.txt") == "new result");
    CHECK(tmp.entries() == std::vector<std::string>{"run1"});  // the moved-aside old one is gone
  }
  SECTION("with force but no commit: the old result is kept") {
    {
      OutputDir out(target, true);
      out.write("new.txt", "new result");
    }
    CHECK(TempDir::list(target) == std::vector<std::string>{"old.txt"});
    CHECK(tmp.entries() == std::vector<std::string>{"run1"});
  }
}

TEST_CASE("OutputDir accepts an existing empty directory and a trailing slash", "[engine][output]") {
  TempDir tmp;
  fs::create_directories(tmp.path / "empty");
  {
    OutputDir out(tmp.path / "empty", false);
    out.write("x.csv", "x");
    out.commit();
  }
  CHECK(slurp(tmp.path / "empty" / "x.csv") == "x");
  {
    OutputDir out(tmp.path.string() + "/slash/", false);
    CHECK(out.target().filename() == "slash");
    out.write("y.csv", "y");
    out.commit();
  }
  CHECK(slurp(tmp.path / "slash" / "y.csv") == "y");
  {
    // Missing parents are created, like mkdir -p.
    OutputDir out(tmp.path / "deep" / "er" / "run", false);
    out.commit();
  }
  CHECK(fs::is_directory(tmp.path / "deep" / "er" / "run"));
}

TEST_CASE("OutputDir rejects files, '.' and '..' as targets even with force", "[engine][output]") {
  TempDir tmp;
  std::ofstream(tmp.path / "file") << "data";
  CHECK_THROWS_AS(OutputDir(tmp.path / "file", true), piracy::UsageError);
  CHECK(slurp(tmp.path / "file") == "data");
  CHECK_THROWS_AS(OutputDir(".", true), piracy::UsageError);
  CHECK_THROWS_AS(OutputDir("..", true), piracy::UsageError);
  CHECK_THROWS_AS(OutputDir(fs::path("a") / "..", true), piracy::UsageError);  // that is "."
  // An ancestor of the working directory is refused too: replacing it would delete where we stand.
  fs::create_directories(tmp.path / "outer" / "inner");
  const fs::path cwd = fs::current_path();
  fs::current_path(tmp.path / "outer" / "inner");
  bool refused = false;
  try {
    OutputDir out(tmp.path / "outer", true);
  } catch (const piracy::UsageError&) {
    refused = true;
  }
  fs::current_path(cwd);
  CHECK(refused);
  fs::remove_all(tmp.path / "outer");
  CHECK_THROWS_AS(OutputDir("", false), piracy::UsageError);
  CHECK(tmp.entries() == std::vector<std::string>{"file"});
}

TEST_CASE("OutputDir under an unwritable parent gives IoError naming the path", "[engine][output]") {
  // Tests run as root, for whom chmod does not deny anything; a path through a regular file
  // fails for everyone (ENOTDIR).
  TempDir tmp;
  std::ofstream(tmp.path / "somefile") << "x";
  const fs::path target = tmp.path / "somefile" / "sub";
  try {
    OutputDir out(target, false);
    FAIL("expected IoError");
  } catch (const piracy::IoError& e) {
    const std::string msg = e.what();
    CHECK(msg.find(target.string()) != std::string::npos);
    CHECK(msg.find("Not a directory") != std::string::npos);
    CHECK(e.exit_code() == 1);
  }
  // /proc accepts no new directories, not even from root.
  CHECK_THROWS_AS(OutputDir("/proc/piracy_output_test/run", false), piracy::IoError);
}

TEST_CASE("a full disk makes write() throw IoError with the errno text", "[engine][output]") {
  if (!fs::exists("/dev/full")) {
    WARN("no /dev/full on this system; full-disk test skipped");
    return;
  }
  TempDir tmp;
  const fs::path target = tmp.path / "run1";
  {
    OutputDir out(target, false);
    // A file in the staging directory that is really /dev/full: every write(2) fails with ENOSPC.
    fs::create_symlink("/dev/full", out.staging() / "daily.csv");
    try {
      out.write("daily.csv", std::string(100000, 'x'));
      FAIL("expected IoError");
    } catch (const piracy::IoError& e) {
      CHECK(std::string(e.what()) ==
            "cannot write " + (target / "daily.csv").string() + ": No space left on device");
    }
  }
  CHECK(tmp.entries().empty());
  CHECK(fs::is_character_file("/dev/full"));  // removing the staging directory removed only the link
}

TEST_CASE("OutputDir rejects misuse", "[engine][output]") {
  TempDir tmp;
  OutputDir out(tmp.path / "run1", false);
  CHECK_THROWS_AS(out.write("../escape.csv", "x"), piracy::ModelError);
  CHECK_THROWS_AS(out.write("/etc/escape.csv", "x"), piracy::ModelError);
  CHECK_THROWS_AS(out.write("", "x"), piracy::ModelError);
  CHECK_FALSE(fs::exists(tmp.path / "escape.csv"));
  out.commit();
  CHECK_THROWS_AS(out.commit(), piracy::ModelError);
  CHECK_THROWS_AS(out.write("late.csv", "x"), piracy::ModelError);
  // A moved-from OutputDir owns nothing; the new owner commits.
  OutputDir a(tmp.path / "run2", false);
  OutputDir b(std::move(a));
  b.commit();
  CHECK(fs::is_directory(tmp.path / "run2"));
}

namespace {
/// A locale whose decimal point is a comma, as in de_DE; built in code because the machine may
/// have no locales installed.
struct CommaDecimal : std::numpunct<char> {
  char do_decimal_point() const override { return ','; }
  char do_thousands_sep() const override { return '.'; }
  std::string do_grouping() const override { return "\3"; }
};
}  // namespace

TEST_CASE("numbers print the same everywhere: integers as integers, doubles shortest round-trip",
          "[engine][output]") {
  using piracy::format_number;
  // Expected strings: Python's repr(), which is also the shortest round-trip form.
  CHECK(format_number(0.1) == "0.1");
  CHECK(format_number(1.0 / 3.0) == "0.3333333333333333");
  CHECK(format_number(2.5e-7) == "2.5e-07");
  CHECK(format_number(42.0) == "42");
  CHECK(format_number(-0.0) == "0");
  CHECK(format_number(1e17) == "1e+17");
  CHECK(format_number(1e17, true) == "100000000000000000");
  CHECK(format_number(123456789012.0, true) == "123456789012");
  CHECK(format_number(2.6, true) == "3");
  CHECK(format_number(-2.5, true) == "-3");  // llround: halves away from zero
  CHECK(format_number(std::numeric_limits<double>::quiet_NaN()) == "nan");
  CHECK(format_number(-std::numeric_limits<double>::quiet_NaN(), true) == "nan");
  CHECK(format_number(std::numeric_limits<double>::infinity(), true) == "inf");
  CHECK(format_number(-std::numeric_limits<double>::infinity()) == "-inf");
  // Round trip: what is printed reads back to the same bits.
  for (const double x : {0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, 299792.458, -7.0 / 3.0}) {
    CHECK(std::strtod(format_number(x).c_str(), nullptr) == x);
  }
  // The global locale must not change anything (a comma decimal point would break the CSV).
  const std::locale previous = std::locale::global(std::locale(std::locale::classic(), new CommaDecimal));
  const std::string in_comma_locale = format_number(1234.5);
  std::locale::global(previous);
  CHECK(in_comma_locale == "1234.5");
}

TEST_CASE("CSV fields are quoted per RFC 4180", "[engine][output]") {
  using piracy::csv_field;
  CHECK(csv_field("plain text") == "plain text");
  CHECK(csv_field("") == "");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_field("two\nlines") == "\"two\nlines\"");
  CHECK(csv_field("cr\r") == "\"cr\r\"");
}
