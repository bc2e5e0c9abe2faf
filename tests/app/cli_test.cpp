// End-to-end tests of the command-line program: the real piracy-abm binary (PIRACY_PROGRAM) is
// started in a fresh temporary directory, its stdout, stderr and exit code are captured, and
// the files it writes are checked. The scenario is tests/app/fixtures/small.yaml: the embedded
// Sparks 2020 scenario shrunk so that one run takes about a second.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "piracy/version.hpp"

#include "support/cli.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

using namespace piracy::testing;

namespace {

const fs::path kFixtures = fs::path(PIRACY_SOURCE_DIR) / "tests" / "app" / "fixtures";

std::string fixture(const std::string& name) { return (kFixtures / name).string(); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

/// 1-based line and column of the first occurrence of `needle` in `text` (a YAML or CSV file),
/// so that the expected error location comes from the fixture itself.
std::pair<int, int> locate(const std::string& text, const std::string& needle) {
  const auto pos = text.find(needle);
  REQUIRE(pos != std::string::npos);
  const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n');
  const auto line_start = text.rfind('\n', pos == 0 ? 0 : pos - 1);
  const auto column = line_start == std::string::npos || pos == 0 ? pos + 1 : pos - line_start;
  return {static_cast<int>(line), static_cast<int>(column)};
}

std::string located(const std::string& file, std::pair<int, int> at) {
  return file + ":" + std::to_string(at.first) + ":" + std::to_string(at.second) + ": error: ";
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

/// Date of a "YYYY-MM-DD" text, checked independently of piracy::Date.
std::chrono::year_month_day ymd(const std::string& text) {
  REQUIRE(std::regex_match(text, std::regex(R"(\d{4}-\d{2}-\d{2})")));
  const std::chrono::year_month_day d{std::chrono::year{std::stoi(text.substr(0, 4))},
                                      std::chrono::month{static_cast<unsigned>(std::stoi(text.substr(5, 2)))},
                                      std::chrono::day{static_cast<unsigned>(std::stoi(text.substr(8, 2)))}};
  REQUIRE(d.ok());
  return d;
}

/// The base run of small.yaml (seed 7 from the file, 2 threads, not quiet), done once and shared
/// by the tests that only read its outputs: a run takes about 0.3 s in a Release build but about
/// 5 s in a Debug build (unoptimised Eigen in the film market), so the suite runs as few as it can.
/// `-o` is an absolute path here; `-o NAME` relative to the working directory has a test of its own.
struct BaseRun {
  TempDir dir;
  fs::path out = dir.path / "out";
  Result result;
};
const BaseRun& base_run() {
  static BaseRun base;
  static bool done = false;
  if (!done) {
    base.result = run_cli({"run", fixture("small.yaml"), "-o", base.out.string(), "--threads", "2"}, base.dir.path);
    done = true;
  }
  INFO(base.result.err);
  REQUIRE(base.result.code == 0);
  return base;
}

const std::vector<std::string> kOutputFiles = {"config.yaml", "daily.csv",   "events.csv",   "manifest.json",
                                               "monthly.csv", "summary.json", "weekly.csv"};

}  // namespace

TEST_CASE("cli: run writes every output file of the small scenario", "[cli]") {
  const BaseRun& base = base_run();
  const Result& r = base.result;
  // Not quiet: the headline summary goes to stdout.
  CHECK(r.out.find("scenario small (seed 7), 2019-07-01 to 2020-12-31") != std::string::npos);
  CHECK(r.out.find("sparks_2020 on 2020-08-25: ") != std::string::npos);
  CHECK(r.out.find("outputs in " + base.out.string()) != std::string::npos);
  CHECK(entries(base.dir.path) == std::vector<std::string>{"out"});  // no staging directory left behind
  const fs::path& out = base.out;
  // small.yaml has no paired counterfactual (remove_groups: []), so no counterfactual_monthly.csv.
  CHECK(entries(out) == kOutputFiles);

  SECTION("daily.csv: one row per reported day, 2019-07-01 to 2020-12-31") {
    const auto rows = lines_of(slurp(out / "daily.csv"));
    REQUIRE(rows.size() == 1 + 550);  // header + 184 days of 2019 from July 1 + 366 days of 2020
    CHECK(starts_with(rows[0], "date,releases_scene,releases_p2p"));
    CHECK(starts_with(rows[1], "2019-07-01,"));
    CHECK(starts_with(rows.back(), "2020-12-31,"));
    const auto columns = std::count(rows[0].begin(), rows[0].end(), ',');
    for (const auto& row : rows) CHECK(std::count(row.begin(), row.end(), ',') == columns);
  }
  SECTION("weekly.csv: week_start column of Mondays") {
    const auto rows = lines_of(slurp(out / "weekly.csv"));
    REQUIRE(rows.size() > 70);  // 79 weeks touch the reported period
    CHECK(starts_with(rows[0], "week_start,"));
    for (std::size_t i = 1; i < rows.size(); ++i) {
      const auto date = rows[i].substr(0, rows[i].find(','));
      INFO(rows[i]);
      CHECK(std::chrono::weekday{std::chrono::sys_days{ymd(date)}} == std::chrono::Monday);
    }
  }
  SECTION("monthly.csv: month column YYYY-MM, 2019-07 to 2020-12") {
    const auto rows = lines_of(slurp(out / "monthly.csv"));
    REQUIRE(rows.size() == 1 + 18);
    CHECK(starts_with(rows[0], "month,"));
    for (std::size_t i = 1; i < rows.size(); ++i) {
      INFO(rows[i]);
      CHECK(std::regex_search(rows[i], std::regex(R"(^\d{4}-(0[1-9]|1[0-2]),)")));
    }
    CHECK(starts_with(rows[1], "2019-07,"));
    CHECK(starts_with(rows.back(), "2020-12,"));
  }
  SECTION("events.csv: header and the operation of 2020-08-25") {
    const auto text = slurp(out / "events.csv");
    const auto rows = lines_of(text);
    REQUIRE(!rows.empty());
    CHECK(rows[0] == "date,type,entity,detail");
    CHECK(text.find("\n2020-08-25,operation,sparks_2020,") != std::string::npos);
  }
  SECTION("summary.json: crackdowns, losses, p2p_share") {
    const json s = json::parse(slurp(out / "summary.json"));
    REQUIRE(s.contains("crackdowns"));
    REQUIRE(s["crackdowns"].is_array());
    REQUIRE(s["crackdowns"].size() == 1);
    CHECK(s["crackdowns"][0]["date"] == "2020-08-25");
    CHECK(s["crackdowns"][0]["servers_seized"].get<int>() <= 8);  // small.yaml: servers: 8
    CHECK(s["losses"].is_object());
    CHECK(s["losses"].contains("total_usd"));
    CHECK(s["p2p_share"].is_object());
    CHECK(s["seed"] == 7);
  }
  SECTION("manifest.json: seed, threads, version, git_commit, wall_seconds") {
    const json m = json::parse(slurp(out / "manifest.json"));
    CHECK(m["seed"] == 7);
    CHECK(m["threads"] == 2);
    CHECK(m["version"] == piracy::kVersion);
    CHECK(m["git_commit"] == piracy::kGitCommit);
    CHECK(!m["git_commit"].get<std::string>().empty());
    REQUIRE(m["wall_seconds"].is_number());
    CHECK(m["wall_seconds"].get<double>() > 0);
    CHECK(m["config_source"] == fixture("small.yaml"));
  }
  SECTION("config.yaml: the resolved configuration, every key present") {
    const YAML::Node c = YAML::LoadFile((out / "config.yaml").string());
    CHECK(c["name"].as<std::string>() == "small");
    CHECK(c["seed"].as<int>() == 7);
    CHECK(c["calendar"]["start"].as<std::string>() == "2019-07-01");
    CHECK(c["topsites"]["tier_sizes"].size() == 6);
    CHECK(c["enforcement"]["operations"][0]["servers"].as<int>() == 8);
    CHECK(!c["extends"]);  // resolved: the parent is merged in
    // Not in small.yaml: from the embedded sparks_2020.yaml.
    const YAML::Node parent = YAML::LoadFile((fs::path(PIRACY_SOURCE_DIR) / "configs" / "sparks_2020.yaml").string());
    CHECK(c["sceners"]["beta"].as<double>() == parent["sceners"]["beta"].as<double>());
    CHECK(c["description"].as<std::string>() == parent["description"].as<std::string>());
  }
}

TEST_CASE("cli: outputs are reproducible from config.yaml and independent of --threads", "[cli]") {
  const fs::path& base = base_run().out;  // small.yaml, 2 threads

  SECTION("rerunning the resolved config.yaml gives byte-identical outputs") {
    TempDir tmp;
    const fs::path again = tmp.path / "again";
    const Result r = run_cli({"run", (base / "config.yaml").string(), "-o", again.string(), "-q", "--threads", "2"},
                             tmp.path);
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.empty());  // -q
    for (const char* f : {"daily.csv", "summary.json", "events.csv", "monthly.csv"}) {
      INFO(f);
      CHECK(slurp(again / f) == slurp(base / f));
    }
    // The resolved configuration is a fixed point: resolving it again changes nothing.
    CHECK(slurp(again / "config.yaml") == slurp(base / "config.yaml"));
  }
  SECTION("--threads 1 gives the same bytes as --threads 2") {
    TempDir tmp;
    const fs::path one = tmp.path / "one";
    const Result r = run_cli({"run", fixture("small.yaml"), "-o", one.string(), "-q", "--threads", "1"}, tmp.path);
    INFO(r.err);
    REQUIRE(r.code == 0);
    for (const char* f : {"daily.csv", "events.csv", "summary.json", "weekly.csv"}) {
      INFO(f);
      CHECK(slurp(one / f) == slurp(base / f));
    }
    CHECK(json::parse(slurp(one / "manifest.json"))["threads"] == 1);
  }
}

TEST_CASE("cli: output directory named relative to the working directory", "[cli]") {
  TempDir tmp;
  // Fewer films: the film market dominates the run time and nothing here depends on it.
  const std::string fewer_films = "categories.movie.titles_per_day=1";
  SECTION("-o NAME creates NAME in the working directory") {
    const Result r = run_cli({"run", fixture("small.yaml"), "-o", "out", "-q", "--set", fewer_films}, tmp.path);
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(entries(tmp.path) == std::vector<std::string>{"out"});
    CHECK(fs::exists(tmp.path / "out" / "summary.json"));
  }
  SECTION("without -o: piracy-output/<scenario name>") {
    const Result r = run_cli({"run", fixture("small.yaml"), "-q", "--set", fewer_films}, tmp.path);
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(entries(tmp.path) == std::vector<std::string>{"piracy-output"});
    CHECK(entries(tmp.path / "piracy-output") == std::vector<std::string>{"small"});
    CHECK(fs::exists(tmp.path / "piracy-output" / "small" / "summary.json"));
  }
}

TEST_CASE("cli: a non-empty output directory is kept unless --force", "[cli]") {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  fs::create_directories(out);
  spit(out / "notes.txt", "an earlier result\n");

  const Result refused = run_cli({"run", fixture("small.yaml"), "-o", "out", "-q"}, tmp.path);
  CHECK(refused.code == 2);
  CHECK(refused.err.find("--force") != std::string::npos);
  CHECK(entries(tmp.path) == std::vector<std::string>{"out"});  // no staging directory either
  CHECK(entries(out) == std::vector<std::string>{"notes.txt"});
  CHECK(slurp(out / "notes.txt") == "an earlier result\n");

  const Result forced = run_cli({"run", fixture("small.yaml"), "-o", "out", "-q", "--force"}, tmp.path);
  INFO(forced.err);
  REQUIRE(forced.code == 0);
  CHECK(entries(tmp.path) == std::vector<std::string>{"out"});  // the old directory is gone too
  CHECK(entries(out) == kOutputFiles);                           // replaced, not merged
}

TEST_CASE("cli: configuration errors are located, exit 2 and write nothing", "[cli]") {
  struct Case {
    const char* fixture;
    const char* needle;  // text at the expected error location in the fixture
    const char* key;     // the dotted key the message must name
    const char* also;    // another part of the message
  };
  // Unknown keys are located at the key, bad values at the value (engine/config.hpp).
  const Case cases[] = {
      {"unknown_key.yaml", "enforcment:", "enforcment: unknown key", "did you mean 'enforcement'?"},
      {"bad_type.yaml", "many", "enforcement.operations[0].servers = many", "whole number"},
      {"out_of_range.yaml", "-3", "enforcement.operations[0].servers = -3", "must be in [0, 1000000]"},
      {"bad_probability.yaml", "1.5", "enforcement.operations[0].dark_share = 1.5", "must be in [0, 1]"},
      {"bad_date.yaml", "2020-13-45", "enforcement.operations[0].date = 2020-13-45", "YYYY-MM-DD"},
      {"outside_horizon.yaml", "2030-06-01", "enforcement.operations[0].date = 2030-06-01",
       "outside the horizon [2019-01-01, 2020-12-31]"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.fixture) {
      TempDir tmp;
      const std::string file = fixture(c.fixture);
      const Result r = run_cli({"run", file, "-q"}, tmp.path);  // default output dir: piracy-output/small
      INFO(r.err);
      CHECK(r.code == 2);
      CHECK(starts_with(r.err, located(file, locate(slurp(file), c.needle)) + c.key));
      CHECK(r.err.find(c.also) != std::string::npos);
      CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one message, no cascade
      CHECK(r.out.empty());
      CHECK(entries(tmp.path).empty());
    }
  }

  SECTION("malformed YAML") {
    TempDir tmp;
    const std::string file = fixture("malformed.yaml");
    const Result r = run_cli({"run", file, "-o", "out"}, tmp.path);
    INFO(r.err);
    CHECK(r.code == 2);
    // yaml-cpp notices the unterminated flow list `[1, 2, 3` where the next key starts, on the
    // line after it; a location on either line points the user at the mistake.
    const std::regex where("^" + std::regex_replace(file, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                           R"(:(\d+):(\d+): error: )");
    std::smatch m;
    REQUIRE(std::regex_search(r.err, m, where));
    const int line = std::stoi(m[1]);
    const int bracket_line = locate(slurp(file), "[1, 2, 3").first;
    CHECK((line == bracket_line || line == bracket_line + 1));
    CHECK(std::stoi(m[2]) >= 1);
    CHECK(entries(tmp.path).empty());
  }
  SECTION("missing file") {
    TempDir tmp;
    const std::string file = (tmp.path / "no_such.yaml").string();
    const Result r = run_cli({"run", file, "-o", "out"}, tmp.path);
    CHECK(r.code == 2);
    // No line: the file has none. The message names the file and the reason.
    CHECK(starts_with(r.err, file + ": error: cannot open"));
    CHECK(r.err.find("No such file") != std::string::npos);
    CHECK(entries(tmp.path).empty());
  }
  SECTION("extends cycle") {
    TempDir tmp;
    const std::string a = fixture("cycle_a.yaml");
    const std::string b = fixture("cycle_b.yaml");
    const Result r = run_cli({"run", a, "-o", "out"}, tmp.path);
    INFO(r.err);
    CHECK(r.code == 2);
    // a -> b -> a: detected while loading b, at b's `extends` key.
    CHECK(starts_with(r.err, located(b, locate(slurp(b), "extends:")) + "extends: cycle"));
    CHECK(r.err.find(a + " -> " + b + " -> " + a) != std::string::npos);
    CHECK(entries(tmp.path).empty());
  }
  SECTION("--set with an unknown key") {
    TempDir tmp;
    const Result r = run_cli({"run", fixture("small.yaml"), "-o", "out", "--set", "sceners.initial_scener=100"}, tmp.path);
    INFO(r.err);
    CHECK(r.code == 2);
    // Located in the argument: `initial_scener` starts at character 9 of "sceners.initial_scener=100".
    CHECK(starts_with(r.err, "--set:1:9: error: sceners.initial_scener: unknown key"));
    CHECK(r.err.find("did you mean 'initial_sceners'?") != std::string::npos);
    CHECK(entries(tmp.path).empty());
  }
  SECTION("--set with a bad value") {
    TempDir tmp;
    const Result r = run_cli({"run", fixture("small.yaml"), "-o", "out", "--set", "sceners.initial_sceners=lots"}, tmp.path);
    INFO(r.err);
    CHECK(r.code == 2);
    // The value starts after '=': character 25 of "sceners.initial_sceners=lots".
    CHECK(starts_with(r.err, "--set:1:25: error: sceners.initial_sceners = lots"));
    CHECK(entries(tmp.path).empty());
  }
  SECTION("check reports the same located error") {
    TempDir tmp;
    const std::string file = fixture("out_of_range.yaml");
    const Result r = run_cli({"check", file}, tmp.path);
    CHECK(r.code == 2);
    CHECK(starts_with(r.err, located(file, locate(slurp(file), "-3")) + "enforcement.operations[0].servers"));
    CHECK(r.out.empty());
  }
}

TEST_CASE("cli: --set beats the file, and an extending file beats its parent", "[cli]") {
  SECTION("--set and --seed in the resolved config.yaml of a run") {
    TempDir tmp;
    const Result r = run_cli({"run", fixture("small.yaml"), "-o", (tmp.path / "out").string(), "-q", "--seed", "11", "--set",
                              "sceners.initial_sceners=321", "--set", "enforcement.operations[0].servers=5"},
                             tmp.path);
    INFO(r.err);
    REQUIRE(r.code == 0);
    const YAML::Node c = YAML::LoadFile((tmp.path / "out" / "config.yaml").string());
    CHECK(c["seed"].as<int>() == 11);                                     // file: 7
    CHECK(c["sceners"]["initial_sceners"].as<int>() == 321);              // file: 500
    CHECK(c["enforcement"]["operations"][0]["servers"].as<int>() == 5);   // file: 8
    CHECK(c["enforcement"]["operations"][0]["date"].as<std::string>() == "2020-08-25");  // untouched sibling
    CHECK(c["sceners"]["entry_per_day"].as<double>() == 0.3);             // untouched: from the file
    const json m = json::parse(slurp(tmp.path / "out" / "manifest.json"));
    CHECK(m["seed"] == 11);
    CHECK(m["overrides"] == json::array({"sceners.initial_sceners=321", "enforcement.operations[0].servers=5"}));
    const json s = json::parse(slurp(tmp.path / "out" / "summary.json"));
    CHECK(s["crackdowns"][0]["servers_seized"].get<int>() <= 5);
  }
  SECTION("extends: child over small.yaml over the embedded sparks_2020.yaml") {
    TempDir tmp;
    const Result r = run_cli({"check", fixture("precedence_child.yaml")}, tmp.path);
    INFO(r.err);
    REQUIRE(r.code == 0);
    const YAML::Node c = YAML::Load(r.out);
    CHECK(c["seed"].as<int>() == 99);                           // child (small.yaml: 7)
    CHECK(c["groups"]["initial_groups"].as<int>() == 55);       // child (small.yaml: 60)
    CHECK(c["groups"]["slots_per_effort"].as<double>() == 0.69); // sibling kept: deep merge (sparks_2020.yaml, calibrated)
    CHECK(c["sceners"]["initial_sceners"].as<int>() == 500);    // small.yaml (sparks_2020: 6000)
    CHECK(c["name"].as<std::string>() == "small");              // small.yaml
    // Only sparks_2020.yaml has observed points (the embedded copy is built from this file).
    const YAML::Node parent = YAML::LoadFile((fs::path(PIRACY_SOURCE_DIR) / "configs" / "sparks_2020.yaml").string());
    REQUIRE(parent["observed"].size() > 0);
    CHECK(c["observed"].size() == parent["observed"].size());
    CHECK(c["observed"][0]["value"].as<double>() == parent["observed"][0]["value"].as<double>());
    CHECK(c["calendar"]["end"].as<std::string>() == "2020-12-31");
  }
  SECTION("check applies --set too") {
    TempDir tmp;
    const Result r = run_cli({"check", fixture("precedence_child.yaml"), "--set", "seed=3"}, tmp.path);
    REQUIRE(r.code == 0);
    CHECK(YAML::Load(r.out)["seed"].as<int>() == 3);
    CHECK(entries(tmp.path).empty());
  }
}

TEST_CASE("cli: check, --version, --help and usage errors", "[cli]") {
  TempDir tmp;
  SECTION("check prints the resolved YAML") {
    const Result r = run_cli({"check", fixture("small.yaml")}, tmp.path);
    INFO(r.err);
    CHECK(r.code == 0);
    const YAML::Node c = YAML::Load(r.out);
    CHECK(c["name"].as<std::string>() == "small");
    CHECK(c["calendar"]["burn_in_start"].as<std::string>() == "2019-01-01");
    CHECK(c["categories"]["tv"]["titles_per_day"].as<double>() == 77);
    CHECK(c["named_groups"][0]["founded"].as<std::string>() == "2019-02-01");
    CHECK(entries(tmp.path).empty());
  }
  SECTION("--version") {
    const Result r = run_cli({"--version"}, tmp.path);
    CHECK(r.code == 0);
    CHECK(r.out.find(std::string("piracy-abm ") + piracy::kVersion) != std::string::npos);
  }
  SECTION("--help") {
    const Result r = run_cli({"--help"}, tmp.path);
    CHECK(r.code == 0);
    for (const char* word : {"run", "check", "recovery", "Exit codes"}) {
      INFO(word);
      CHECK(r.out.find(word) != std::string::npos);
    }
  }
  SECTION("unknown subcommand") {
    const Result r = run_cli({"frobnicate"}, tmp.path);
    CHECK(r.code == 2);
    CHECK(!r.err.empty());
  }
  SECTION("no subcommand") {
    const Result r = run_cli({}, tmp.path);
    CHECK(r.code == 2);
  }
  SECTION("negative --threads") {
    const Result r = run_cli({"run", fixture("small.yaml"), "--threads", "-1"}, tmp.path);
    CHECK(r.code == 2);
    CHECK(entries(tmp.path).empty());
  }
}

TEST_CASE("cli: recovery estimates on an observed monthly series", "[cli]") {
  TempDir tmp;
  SECTION("observed.csv around 2020-08-25") {
    const Result r = run_cli({"recovery", fixture("observed.csv"), "--event", "2020-08-25"}, tmp.path);
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = json::parse(r.out);
    // Monthly points are dated on the 15th. Pre-event window [2020-06-26, 2020-08-25): 2020-07-15
    // and 2020-08-15, mean 69,000. Trough: 2020-09-15 (21 d after), 30,000. t50 (34,500) by linear
    // interpolation to 2020-10-15 (51 d, 41,000): 21 + 30 * 4,500/11,000; t90 (62,100) between
    // 2020-12-15 (112 d, 60,000) and 2021-01-15 (143 d, 65,000): 112 + 31 * 2,100/5,000. Hand
    // computations: the tolerance only absorbs floating-point rounding.
    CHECK(j["pre_level"].get<double>() == Approx(69000).epsilon(1e-12));
    CHECK(j["trough"].get<double>() == Approx(30000).epsilon(1e-12));
    CHECK(j["trough_day"].get<double>() == Approx(21).epsilon(1e-12));
    CHECK(j["drop_ratio"].get<double>() == Approx(30.0 / 69.0).epsilon(1e-12));
    CHECK(j["t50_days"].get<double>() == Approx(21 + 30 * 4500.0 / 11000.0).epsilon(1e-9));
    CHECK(j["t90_days"].get<double>() == Approx(112 + 31 * 2100.0 / 5000.0).epsilon(1e-9));
    // The exponential fit itself is checked in tests/economics/recovery_test.cpp; here only that
    // it ran: from 30,000 the gap to 70,000 roughly halves every 45-65 days (ratios of the gaps
    // at 1, 2 and 3 months), so a half-life outside [20, 150] days would be wrong.
    REQUIRE(j["half_life_days"].is_number());
    const double hl = j["half_life_days"].get<double>();
    CHECK(hl > 20);
    CHECK(hl < 150);
    REQUIRE(j["half_life_ci_low"].is_number());
    CHECK(j["half_life_ci_low"].get<double>() <= hl);
    CHECK(j["fit_ok"] == true);
  }
  SECTION("a bad CSV is a located error") {
    const std::string file = fixture("bad_observed.csv");
    const Result r = run_cli({"recovery", file, "--event", "2020-08-25"}, tmp.path);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK(starts_with(r.err, located(file, locate(slurp(file), "seventy thousand"))));
    CHECK(r.out.empty());
  }
  SECTION("a bad --event is a usage error") {
    const Result r = run_cli({"recovery", fixture("observed.csv"), "--event", "2020-02-30"}, tmp.path);
    CHECK(r.code == 2);
    CHECK(r.err.find("--event 2020-02-30") != std::string::npos);
  }
}

TEST_CASE("cli: a run stopped by SIGINT leaves neither output nor staging directory", "[cli]") {
  TempDir tmp;
  const fs::path log = tmp.path.parent_path() / (tmp.path.filename().string() + ".log");
  // A longer run than small.yaml (burn-in from 2000: about ten times the simulated days, some 3 s
  // in a Release build), so that it is certainly still running when the signal arrives.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0 || ::chdir(tmp.path.c_str()) != 0) ::_exit(127);
    const std::string small = fixture("small.yaml");
    const std::string out = (tmp.path / "out").string();
    ::execl(kProgram.c_str(), kProgram.c_str(), "run", small.c_str(), "-o", out.c_str(), "-q", "--set",
            "calendar.burn_in_start=2000-01-01", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the staging directory exists, i.e. the configuration was read and the run started;
  // then give it a moment more: app/main.cpp installs the signal handlers just AFTER creating the
  // staging directory, and a SIGINT in between would kill the process the default way.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool staging_seen = false;
  while (!staging_seen && std::chrono::steady_clock::now() < deadline) {
    for (const auto& name : entries(tmp.path)) staging_seen = staging_seen || starts_with(name, ".out.tmp-");
    if (!staging_seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(staging_seen);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE(::kill(pid, SIGINT) == 0);

  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (done == 0) {  // ignored the signal: do not leave it running
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL("piracy-abm did not stop within 30 s of SIGINT");
  }
  INFO(slurp(log));
  std::error_code ec;
  fs::remove(log, ec);
  // Exit code 130 for an interrupted run (app/main.cpp), by a clean unwind, not death by signal.
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  CHECK(entries(tmp.path).empty());  // neither out/ nor .out.tmp-*
}
