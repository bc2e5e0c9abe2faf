// End-to-end tests of `piracy-abm experiment`: the real binary (PIRACY_PROGRAM) is started in a
// fresh temporary directory and its files are checked -- the tables, the replay from the
// resolved experiment, resume after SIGKILL and SIGINT, and errors. The experiments are the
// fixtures in tests/app/fixtures/experiments/ over tiny.yaml (a fraction of a second per run in
// a Release build). MPI runs (1, 2, 4 ranks) are ctest entries of tests/mpi/mpi.cmake.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/cli.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

using namespace piracy::testing;

namespace {

const fs::path kFixtures = fs::path(PIRACY_SOURCE_DIR) / "tests" / "app" / "fixtures" / "experiments";

std::string fixture(const std::string& name) { return (kFixtures / name).string(); }

/// Kills an experiment with `sig` once its journal holds `runs` finished runs; returns its result.
Result kill_midway(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& journal, long runs,
                   int sig) {
  TempDir capture;
  const pid_t pid = start(args, cwd, capture.path);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_lines(slurp(journal)) < 1 + runs && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(::kill(pid, sig) == 0);
  return finish(pid, capture.path);
}

}  // namespace

TEST_CASE("experiment cli: an arms experiment writes its tables and replays from its directory",
          "[cli][experiment]") {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  const Result r = run_cli({"experiment", fixture("arms.yaml"), "-o", out.string(), "--jobs", "2"}, tmp.path);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("experiment finished: 6 runs (0 resumed from the journal, 6 run now)") != std::string::npos);
  CHECK(r.out.find("more_chill:") != std::string::npos);
  for (const auto* f : {"runs.csv", "effects.csv", "means.csv", "series.csv", "experiment.yaml", "scenario.yaml",
                        "arms/raid.yaml", "arms/more_chill.yaml", "journal.jsonl", "manifest.json"}) {
    INFO(f);
    CHECK(fs::is_regular_file(out / f));
  }
  const std::string runs = slurp(out / "runs.csv");
  CHECK(runs.rfind("run_id,arm,replicate,seed,enforcement.operations[0].chill,releases.scene_total,", 0) == 0);
  CHECK(count_lines(runs) == 1 + 6);
  CHECK(runs.find("\n0,raid,0,") != std::string::npos);
  CHECK(runs.find("\n5,more_chill,2,") != std::string::npos);
  const std::string effects = slurp(out / "effects.csv");
  CHECK(effects.rfind("arm,metric,n,baseline_mean,arm_mean,mean_diff,ci_low,ci_high,unpaired_ci_low,unpaired_ci_high\n", 0) == 0);
  CHECK(effects.find("\nmore_chill,losses.total_usd,3,") != std::string::npos);
  const std::string series = slurp(out / "series.csv");
  CHECK(series.rfind("run_id,period,variable,value\n0,2020-03,releases_scene,", 0) == 0);
  CHECK(count_lines(series) == 1 + 6 * 2 * 10);  // runs x variables x months (2020-03..12)
  CHECK(count_lines(slurp(out / "journal.jsonl")) == 1 + 6);
  const json manifest = json::parse(slurp(out / "manifest.json"));
  CHECK(manifest["runs"] == 6);
  CHECK(manifest["mpi_ranks"] == 1);
  CHECK(manifest["replicate_seeds"].size() == 3);

  // The resolved experiment replays the same runs from the directory alone.
  const Result replay = run_cli({"experiment", (out / "experiment.yaml").string(), "-o", "again", "-q"}, tmp.path);
  INFO(replay.err);
  REQUIRE(replay.code == 0);
  CHECK(replay.out.empty());  // -q
  CHECK(slurp(tmp.path / "again" / "runs.csv") == runs);
  CHECK(slurp(tmp.path / "again" / "series.csv") == series);

  // A non-empty directory is kept unless --resume or --force; --resume of a finished experiment
  // runs nothing and writes the same tables.
  const Result again = run_cli({"experiment", fixture("arms.yaml"), "-o", out.string(), "-q"}, tmp.path);
  CHECK(again.code == 2);
  CHECK(again.err.find("is not empty") != std::string::npos);
  const Result resume = run_cli({"experiment", fixture("arms.yaml"), "-o", out.string(), "--resume"}, tmp.path);
  CHECK(resume.code == 0);
  CHECK(resume.out.find("6 resumed from the journal, 0 run now") != std::string::npos);
  CHECK(slurp(out / "runs.csv") == runs);
  // ... but not by a different experiment.
  const Result other = run_cli({"experiment", fixture("arms.yaml"), "-o", out.string(), "--resume", "--set",
                                "replicates=4"}, tmp.path);
  CHECK(other.code == 2);
  CHECK(other.err.find("was started by a different experiment") != std::string::npos);
}

TEST_CASE("experiment cli: an experiment killed midway resumes to the same files", "[cli][experiment]") {
  TempDir tmp;
  // 20 runs, one at a time, so that the kill certainly lands while runs are still to do.
  const std::vector<std::string> base = {"experiment", fixture("arms.yaml"), "--set", "replicates=10", "--jobs", "1",
                                         "-q"};
  auto with_dir = [&](const std::string& dir, std::vector<std::string> extra = {}) {
    auto args = base;
    args.push_back("-o");
    args.push_back((tmp.path / dir).string());
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const Result whole = run_cli(with_dir("whole"), tmp.path);
  INFO(whole.err);
  REQUIRE(whole.code == 0);
  const std::string runs = slurp(tmp.path / "whole" / "runs.csv");
  REQUIRE(count_lines(runs) == 1 + 20);

  SECTION("SIGKILL: no chance to clean up") {
    const Result killed = kill_midway(with_dir("cut"), tmp.path, tmp.path / "cut" / "journal.jsonl", 3, SIGKILL);
    CHECK(killed.code == 128 + SIGKILL);
    const long journaled = count_lines(slurp(tmp.path / "cut" / "journal.jsonl")) - 1;
    CHECK(journaled >= 3);
    CHECK(journaled < 20);  // killed midway
    CHECK(!fs::exists(tmp.path / "cut" / "runs.csv"));
    const Result resumed = run_cli(with_dir("cut", {"--resume"}), tmp.path);
    INFO(resumed.err);
    REQUIRE(resumed.code == 0);
    CHECK(count_lines(slurp(tmp.path / "cut" / "journal.jsonl")) == 1 + 20);  // no run lost or repeated
    CHECK(slurp(tmp.path / "cut" / "runs.csv") == runs);
    CHECK(slurp(tmp.path / "cut" / "effects.csv") == slurp(tmp.path / "whole" / "effects.csv"));
    CHECK(slurp(tmp.path / "cut" / "series.csv") == slurp(tmp.path / "whole" / "series.csv"));
  }
  SECTION("SIGINT: a clean stop with exit code 130 and a hint") {
    const Result stopped = kill_midway(with_dir("int"), tmp.path, tmp.path / "int" / "journal.jsonl", 2, SIGINT);
    CHECK(stopped.code == 130);
    CHECK(stopped.err.find("continue with --resume") != std::string::npos);
    const long journaled = count_lines(slurp(tmp.path / "int" / "journal.jsonl")) - 1;
    CHECK(journaled >= 2);
    CHECK(journaled < 20);
    // A torn last line (a crash in the middle of a write) is dropped and that run made again.
    { std::ofstream(tmp.path / "int" / "journal.jsonl", std::ios::app) << "{\"run\": 19, \"gro"; }
    const Result resumed = run_cli(with_dir("int", {"--resume"}), tmp.path);
    INFO(resumed.err);
    REQUIRE(resumed.code == 0);
    CHECK(count_lines(slurp(tmp.path / "int" / "journal.jsonl")) == 1 + 20);
    CHECK(slurp(tmp.path / "int" / "runs.csv") == runs);
  }
  SECTION("SIGTERM (a batch scheduler's stop): kept like SIGINT, and --resume completes") {
    const Result stopped = kill_midway(with_dir("term"), tmp.path, tmp.path / "term" / "journal.jsonl", 2, SIGTERM);
    CHECK(stopped.code == 130);
    CHECK(stopped.err.find("continue with --resume") != std::string::npos);
    const long journaled = count_lines(slurp(tmp.path / "term" / "journal.jsonl")) - 1;
    CHECK(journaled >= 2);
    CHECK(journaled < 20);
    CHECK(!fs::exists(tmp.path / "term" / "runs.csv"));
    const Result resumed = run_cli(with_dir("term", {"--resume"}), tmp.path);
    INFO(resumed.err);
    REQUIRE(resumed.code == 0);
    CHECK(count_lines(slurp(tmp.path / "term" / "journal.jsonl")) == 1 + 20);
    CHECK(slurp(tmp.path / "term" / "runs.csv") == runs);
    CHECK(slurp(tmp.path / "term" / "effects.csv") == slurp(tmp.path / "whole" / "effects.csv"));
  }
}

TEST_CASE("experiment cli: invalid experiment files get located errors, exit 2 and write nothing",
          "[cli][experiment]") {
  TempDir tmp;
  struct Case {
    const char* file;
    const char* needle;   // where the error must be located in the fixture
    const char* message;  // what it must say
  };
  const std::vector<Case> cases = {
      {"bad_arm_value.yaml", "-3\"]", "enforcement.operations[0].servers = -3: must be in [0, 1000000]"},
      {"bad_key.yaml", "replicate: 3", "replicate: unknown key; did you mean 'replicates'?"},
      {"bad_design.yaml", "key: enforcement", "design.parameters[0].levels: a grid over min/max needs levels >= 2"},
      {"bad_scenario_key.yaml", "operatoins", "enforcement.operatoins: unknown key; did you mean 'operations'?"},
  };
  for (const auto& c : cases) {
    const Result r = run_cli({"experiment", fixture(c.file), "-o", "out"}, tmp.path);
    INFO(c.file << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.rfind(located(fixture(c.file), c.needle) + c.message, 0) == 0);
    CHECK(!fs::exists(tmp.path / "out"));
  }
  // The same through --dry-run, which validates without running.
  const Result dry = run_cli({"experiment", fixture("bad_key.yaml"), "--dry-run"}, tmp.path);
  CHECK(dry.code == 2);
}

TEST_CASE("experiment cli: dry run, usage errors and refusals", "[cli][experiment]") {
  TempDir tmp;
  const Result dry = run_cli({"experiment", fixture("design_lhs.yaml"), "--dry-run"}, tmp.path);
  INFO(dry.err);
  REQUIRE(dry.code == 0);
  CHECK(dry.out.find("design lhs, 4 x 1 replicates = 4 runs") != std::string::npos);
  CHECK(dry.out.find("point 3: enforcement.operations[0].servers=") != std::string::npos);
  CHECK(fs::is_empty(tmp.path));  // nothing written

  const Result both = run_cli({"experiment", fixture("arms.yaml"), "--resume", "--force"}, tmp.path);
  CHECK(both.code == 2);
  CHECK(both.err.find("--resume and --force") != std::string::npos);

  // --force replaces experiment directories only, never some other folder.
  fs::create_directories(tmp.path / "precious");
  { std::ofstream(tmp.path / "precious" / "notes.txt") << "keep me"; }
  const Result force = run_cli({"experiment", fixture("arms.yaml"), "-o", "precious", "--force", "-q"}, tmp.path);
  CHECK(force.code == 2);
  CHECK(force.err.find("not an experiment directory") != std::string::npos);
  CHECK(slurp(tmp.path / "precious" / "notes.txt") == "keep me");
  const Result resume = run_cli({"experiment", fixture("arms.yaml"), "-o", "precious", "--resume", "-q"}, tmp.path);
  CHECK(resume.code == 2);
  CHECK(resume.err.find("no journal.jsonl") != std::string::npos);
}
