// End-to-end tests of `piracy-abm calibrate` and `piracy-abm sensitivity`: the real binary
// (PIRACY_PROGRAM) on the fixtures in tests/app/fixtures/calibration/ over the tiny scenario.
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

using namespace piracy::testing;

namespace {

const fs::path kFixtures = fs::path(PIRACY_SOURCE_DIR) / "tests" / "app" / "fixtures" / "calibration";

std::string fixture(const std::string& name) { return (kFixtures / name).string(); }

}  // namespace

TEST_CASE("calibrate cli: a calibration killed midway resumes to the same files", "[calibration][cli]") {
  TempDir tmp;
  const fs::path full = tmp.path / "full";
  const Result r = run_cli({"calibrate", fixture("tiny_fit.yaml"), "-o", full.string(), "--jobs", "1"}, tmp.path);
  INFO(r.err);
  REQUIRE(r.code == 0);
  for (const char* f : {"fit.csv", "parameters.csv", "trace.csv", "calibrated_scenario.yaml", "report.txt",
                        "manifest.json", "calibration.yaml", "scenario.yaml", "journal.jsonl"})
    CHECK(fs::exists(full / f));
  const std::string fit = slurp(full / "fit.csv");
  CHECK(fit.rfind("target,statistic,observed,sigma,sim_mean,sim_sd,sim_ci_low,sim_ci_high,z,source\n", 0) == 0);
  CHECK(count_lines(fit) == 4);
  CHECK(slurp(full / "parameters.csv").rfind("name,key,estimate,se,lower,upper", 0) == 0);
  const std::string trace = slurp(full / "trace.csv");
  CHECK(trace.rfind("eval,phase,slots,chill,july,drop,p2p,objective\n", 0) == 0);
  CHECK(trace.find(",global,") != std::string::npos);
  CHECK(trace.find(",local,") != std::string::npos);
  CHECK(trace.find(",jacobian,") != std::string::npos);
  CHECK(r.out.find("J statistic") != std::string::npos);
  // The calibrated scenario runs.
  CHECK(run_cli({"check", (full / "calibrated_scenario.yaml").string()}, tmp.path).code == 0);

  // Killed (SIGKILL: no chance to clean up) once a few evaluations are journaled, then resumed.
  const fs::path cut = tmp.path / "cut";
  {
    TempDir capture;
    const pid_t pid = start({"calibrate", fixture("tiny_fit.yaml"), "-o", cut.string(), "--jobs", "1"}, tmp.path,
                            capture.path);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (count_lines(slurp(cut / "journal.jsonl")) < 1 + 5 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(::kill(pid, SIGKILL) == 0);
    CHECK(finish(pid, capture.path).code == 128 + SIGKILL);
  }
  CHECK_FALSE(fs::exists(cut / "fit.csv"));
  const auto journaled = count_lines(slurp(cut / "journal.jsonl"));
  const Result resumed = run_cli({"calibrate", fixture("tiny_fit.yaml"), "-o", cut.string(), "--resume"}, tmp.path);
  INFO(resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(journaled >= 6);
  CHECK(slurp(cut / "trace.csv") == trace);
  CHECK(slurp(cut / "fit.csv") == fit);
  CHECK(slurp(cut / "parameters.csv") == slurp(full / "parameters.csv"));
  const auto manifest = nlohmann::json::parse(slurp(cut / "manifest.json"));
  CHECK(manifest["resumed_replications"].get<long>() >= 5);

  // Without --resume or --force an existing directory is refused.
  const Result refused = run_cli({"calibrate", fixture("tiny_fit.yaml"), "-o", cut.string()}, tmp.path);
  CHECK(refused.code == 2);
  CHECK(refused.err.find("--resume") != std::string::npos);
}

TEST_CASE("calibrate cli: an impossible target is reported as a poor fit", "[calibration][cli]") {
  TempDir tmp;
  const Result r = run_cli({"calibrate", fixture("impossible.yaml"), "-o", "out", "-q"}, tmp.path);
  INFO(r.err);
  REQUIRE(r.code == 0);  // the calibration ran; its result is bad, and it says so
  const auto m = nlohmann::json::parse(slurp(tmp.path / "out" / "manifest.json"));
  CHECK(m["j_statistic"].get<double>() > 1e6);
  CHECK(m["coverage_ratio"].get<double>() == 0.0);
  const std::string report = slurp(tmp.path / "out" / "report.txt");
  CHECK(report.find("POOR FIT") != std::string::npos);
  CHECK(report.find("p = 0") != std::string::npos);  // chi-square(1) p-value underflows to 0
}

TEST_CASE("calibrate cli: invalid calibration files get located errors, exit 2 and write nothing",
          "[calibration][cli]") {
  TempDir tmp;
  struct Case {
    const char* file;
    const char* needle;   //!< where the error must point
    const char* message;  //!< part of the message
  };
  const Case cases[] = {
      {"bad_unknown_key.yaml", "optimiser", "did you mean 'optimizer'"},
      {"bad_bounds.yaml", "{name: slots", "must be greater than min"},
      {"bad_no_statistic.yaml", "{name: july", "no statistic"},
      {"bad_param_key.yaml", "groups.slots_per_efort", "slots_per_efort"},
  };
  for (const auto& c : cases) {
    const std::string file = fixture(c.file);
    const Result r = run_cli({"calibrate", file, "-o", "out"}, tmp.path);
    INFO(c.file << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK(r.err.rfind(file + ":", 0) == 0);
    CHECK_FALSE(fs::exists(tmp.path / "out"));
  }
  // The unknown key is located exactly.
  const std::string file = fixture("bad_unknown_key.yaml");
  CHECK(run_cli({"calibrate", file, "-o", "out"}, tmp.path).err.rfind(located(file, "optimiser"), 0) == 0);
}

TEST_CASE("sensitivity cli: Morris and Sobol tables over the tiny scenario, resumable", "[sensitivity][cli]") {
  TempDir tmp;
  const Result r = run_cli({"sensitivity", fixture("tiny_sensitivity.yaml"), "-o", "out", "--jobs", "2"}, tmp.path);
  INFO(r.err);
  REQUIRE(r.code == 0);
  const std::string morris = slurp(tmp.path / "out" / "morris.csv");
  const std::string sobol = slurp(tmp.path / "out" / "sobol.csv");
  CHECK(morris.rfind("output,parameter,mu,mu_star,sigma,mu_star_ci_low,mu_star_ci_high\n", 0) == 0);
  CHECK(count_lines(morris) == 1 + 2 * 2);
  CHECK(sobol.rfind("output,parameter,S1,S1_ci_low,S1_ci_high,ST,ST_ci_low,ST_ci_high\n", 0) == 0);
  CHECK(count_lines(sobol) == 1 + 2 * 2);
  // 3 trajectories x 3 points + 4 x (2 + 2) Saltelli points
  CHECK(count_lines(slurp(tmp.path / "out" / "samples.csv")) == 1 + 9 + 16);
  CHECK(fs::exists(tmp.path / "out" / "report.txt"));
  // A resume of a finished analysis reruns nothing and rewrites the same tables.
  const Result again = run_cli({"sensitivity", fixture("tiny_sensitivity.yaml"), "-o", "out", "--resume", "-q"}, tmp.path);
  REQUIRE(again.code == 0);
  CHECK(slurp(tmp.path / "out" / "morris.csv") == morris);
  CHECK(slurp(tmp.path / "out" / "sobol.csv") == sobol);
  const auto m = nlohmann::json::parse(slurp(tmp.path / "out" / "manifest.json"));
  CHECK(m["runs_this_session"].get<long>() == 0);
}
