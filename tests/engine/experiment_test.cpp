// Experiments (engine/experiment.hpp): plans, common random numbers, paired effects, the journal
// and the tables. The runs use tests/app/fixtures/experiments/tiny.yaml (a fraction of a second
// per run in a Release build); the command line has tests/app/experiment_cli_test.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "agents/simulation.hpp"
#include "engine/design.hpp"
#include "engine/error.hpp"
#include "engine/experiment.hpp"

using namespace piracy;
namespace ex = piracy::experiment;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(PIRACY_SOURCE_DIR) / "tests" / "app" / "fixtures" / "experiments";

std::size_t metric_index(const std::string& name) {
  const auto& names = ex::metric_names();
  const auto it = std::find(names.begin(), names.end(), name);
  REQUIRE(it != names.end());
  return static_cast<std::size_t>(it - names.begin());
}

/// Every run of the tiny two-arm experiment with 4 replicates, done once for the tests below.
const std::vector<ex::RunRecord>& arm_records(const ex::Plan& plan) {
  static std::vector<ex::RunRecord> records;
  if (records.empty()) {
    for (std::int64_t id = 0; id < plan.runs(); ++id) records.push_back(ex::execute_run(plan, id, 1));
  }
  return records;
}

const ex::Plan& arm_plan() {
  static const ex::Plan plan = ex::load_plan(kFixtures / "arms.yaml", {"replicates=4"});
  return plan;
}

struct TempFile {
  fs::path path;
  explicit TempFile(const std::string& text) {
    static int counter = 0;
    path = fs::temp_directory_path() / ("piracy_experiment_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter++) + ".yaml");
    std::ofstream(path) << text;
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

}  // namespace

TEST_CASE("experiment: paired and Welch intervals on hand-computed data", "[engine][experiment]") {
  // Baseline {1,2,3,4}, arm {3,5,4,6}: paired differences {2,3,1,2}, mean 2, sd sqrt(2/3), so the
  // 95% interval is 2 +- t(0.975; 3) * sqrt(2/3)/2 with t(0.975; 3) = 3.182446305 (any t table).
  // Both samples have variance 5/3 and n = 4, so Welch's degrees of freedom are exactly 6 and
  // the interval is 2 +- t(0.975; 6) * sqrt(2 * (5/3) / 4) with t(0.975; 6) = 2.446911851.
  // Tolerance 1e-8: the quantile is a bisection to full precision; the tables give 10 digits.
  const std::vector<double> base = {1, 2, 3, 4}, arm = {3, 5, 4, 6};
  const auto e = ex::estimate_effect(arm, base);
  CHECK(e.n == 4);
  CHECK(e.baseline_mean == Approx(2.5));
  CHECK(e.arm_mean == Approx(4.5));
  CHECK(e.mean_diff == Approx(2.0));
  const double paired_half = 3.182446305 * std::sqrt(2.0 / 3.0) / 2.0;
  CHECK(e.ci_low == Approx(2.0 - paired_half).epsilon(1e-8));
  CHECK(e.ci_high == Approx(2.0 + paired_half).epsilon(1e-8));
  const double welch_half = 2.446911851 * std::sqrt(2.0 * (5.0 / 3.0) / 4.0);
  CHECK(e.unpaired_ci_low == Approx(2.0 - welch_half).epsilon(1e-8));
  CHECK(e.unpaired_ci_high == Approx(2.0 + welch_half).epsilon(1e-8));

  // A NaN (a metric undefined in one run) drops that pair, not the arm.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto f = ex::estimate_effect(std::vector<double>{3, 5, nan, 6}, base);
  CHECK(f.n == 3);
  CHECK(f.mean_diff == Approx((2.0 + 3.0 + 2.0) / 3.0));
  // Fewer than two pairs: no interval.
  const auto g = ex::estimate_effect(std::vector<double>{1}, std::vector<double>{2});
  CHECK(g.mean_diff == Approx(-1));
  CHECK(std::isnan(g.ci_low));
  CHECK(std::isnan(g.unpaired_ci_high));
  // Identical differences: a zero-width interval, not a NaN.
  const auto h = ex::estimate_effect(std::vector<double>{2, 3, 4}, std::vector<double>{1, 2, 3});
  CHECK(h.ci_low == 1.0);
  CHECK(h.ci_high == 1.0);
  CHECK_THROWS_AS(ex::estimate_effect(std::vector<double>{1, 2}, std::vector<double>{1}), ModelError);
}

TEST_CASE("experiment: a plan of arms with common random numbers", "[engine][experiment]") {
  const auto& plan = arm_plan();
  REQUIRE(plan.kind == ex::Kind::Arms);
  REQUIRE(plan.groups.size() == 2);
  CHECK(plan.groups[0].name == "raid");
  CHECK(plan.groups[1].name == "more_chill");
  CHECK(plan.runs() == 8);
  CHECK(plan.seeds == design::replicate_seeds(11, 4));
  // The varied key is found by comparing the resolved scenarios with the baseline's.
  REQUIRE(plan.param_columns == std::vector<std::string>{"enforcement.operations[0].chill"});
  CHECK(plan.groups[0].param_values == std::vector<std::string>{"7"});
  CHECK(plan.groups[1].param_values == std::vector<std::string>{"8"});
  CHECK(plan.groups[1].scenario.enforcement.operations.at(0).chill == 8.0);
  // Replicate r of every arm has the same seed.
  for (std::int64_t r = 0; r < 4; ++r) {
    CHECK(plan.run(r).seed == plan.run(4 + r).seed);
    CHECK(plan.run(4 + r).group == 1);
    CHECK(plan.run(4 + r).replicate == r);
  }
  // The plan travels to other MPI ranks as JSON: the same digest on arrival.
  const auto copy = ex::plan_from_json(ex::plan_to_json(plan));
  CHECK(copy.digest() == plan.digest());
  CHECK(copy.groups[1].scenario_yaml == plan.groups[1].scenario_yaml);
  // A different replicate count is a different plan (a journal is not resumed across it).
  CHECK(ex::load_plan(kFixtures / "arms.yaml", {"replicates=5"}).digest() != plan.digest());
}

TEST_CASE("experiment: paired differences have a smaller variance than unpaired ones", "[engine][experiment]") {
  const auto& plan = arm_plan();
  const auto& records = arm_records(plan);
  const std::size_t reps = plan.seeds.size();

  // Common random numbers: the arms differ only from the raid on (2020-08-25), so July 2020 is
  // the same month in both arms of a replicate, to the release.
  const auto before = metric_index("crackdowns[0].releases_month_before");
  for (std::size_t r = 0; r < reps; ++r) CHECK(records[r].metrics[before] == records[reps + r].metrics[before]);

  // Total Scene releases over the reported period: most of it is before the raid and shared by
  // the paired runs, so the paired differences vary far less than the runs themselves.
  const auto m = metric_index("releases.scene_total");
  std::vector<double> base, arm;
  for (std::size_t r = 0; r < reps; ++r) {
    base.push_back(records[r].metrics[m]);
    arm.push_back(records[reps + r].metrics[m]);
  }
  const auto var = [](const std::vector<double>& x) {
    double mean = 0, s = 0;
    for (double v : x) mean += v / static_cast<double>(x.size());
    for (double v : x) s += (v - mean) * (v - mean);
    return s / static_cast<double>(x.size() - 1);
  };
  std::vector<double> diff;
  for (std::size_t r = 0; r < reps; ++r) diff.push_back(arm[r] - base[r]);
  INFO("var(diff) " << var(diff) << ", var(arm) + var(base) " << var(arm) + var(base));
  CHECK(var(diff) < 0.25 * (var(arm) + var(base)));
  const auto e = ex::estimate_effect(arm, base);
  CHECK(e.ci_high - e.ci_low < e.unpaired_ci_high - e.unpaired_ci_low);
}

TEST_CASE("experiment: runs are deterministic and independent of threads", "[engine][experiment]") {
  const auto& plan = arm_plan();
  const auto& records = arm_records(plan);
  const auto again = ex::execute_run(plan, 5, 2);  // two threads inside the run
  CHECK(again.seed == records[5].seed);
  CHECK(ex::to_journal_line(again) == ex::to_journal_line(records[5]));
  // The metrics are the summary's: releases.scene_total is the sum of the daily series.
  REQUIRE(records[0].metrics.size() == ex::metric_names().size());
  CHECK(records[0].metrics[metric_index("releases.scene_total")] > 0);
  // Series: the two requested variables, one value per month of the reported period (2020-03..12).
  REQUIRE(records[0].variables == std::vector<std::string>{"releases_scene", "releases_p2p"});
  REQUIRE(records[0].periods.size() == 10);
  CHECK(records[0].periods.front() == "2020-03");
  CHECK(records[0].periods.back() == "2020-12");
  double sum = 0;
  for (double v : records[0].series[0]) sum += v;
  CHECK(sum == records[0].metrics[metric_index("releases.scene_total")]);
}

TEST_CASE("experiment: a run without operations is measured over the baseline's window", "[engine][experiment]") {
  const auto plan = ex::load_plan(kFixtures / "arms.yaml", {"replicates=1", "series=false",
                                                            "arms[1].set=[\"enforcement.operations=[]\"]"});
  REQUIRE(plan.groups[1].scenario.enforcement.operations.empty());
  const auto none = ex::execute_run(plan, 1, 1);
  // No crackdown to summarise ...
  CHECK(std::isnan(none.metrics[metric_index("crackdowns[0].drop_ratio")]));
  // ... but the 12 months from the baseline's raid (2020-08-25, clipped at 2020-12-31) are counted,
  // so that the effect of the raid itself is a paired difference like any other.
  const double scene = none.metrics[metric_index("first_op_12m.scene_releases")];
  CHECK(std::isfinite(scene));
  CHECK(scene > 0);
  CHECK(scene < none.metrics[metric_index("releases.scene_total")]);
  CHECK(none.metrics[metric_index("first_op_12m.arrests")] >= 0);
}

TEST_CASE("experiment: journal lines round-trip and the tables do not depend on record order",
          "[engine][experiment]") {
  const auto& plan = arm_plan();
  const auto& records = arm_records(plan);
  for (const auto& r : records) {
    const auto line = ex::to_journal_line(r);
    const auto back = ex::from_journal_line(line);
    CHECK(ex::to_journal_line(back) == line);
    CHECK(back.seed == r.seed);
    for (std::size_t k = 0; k < r.metrics.size(); ++k) {
      // Exact: JSON numbers are written in shortest round-trip form; NaN travels as null.
      CHECK((back.metrics[k] == r.metrics[k] || (std::isnan(back.metrics[k]) && std::isnan(r.metrics[k]))));
    }
  }
  CHECK_THROWS_AS(ex::from_journal_line("{\"run\": 1"), IoError);
  CHECK_THROWS_AS(ex::from_journal_line("{\"digest\": \"x\"}"), IoError);

  auto shuffled = records;
  std::mt19937 rng(3);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  CHECK(ex::runs_csv(plan, shuffled) == ex::runs_csv(plan, records));
  CHECK(ex::effects_csv(plan, shuffled) == ex::effects_csv(plan, records));
  CHECK(ex::series_csv(plan, shuffled) == ex::series_csv(plan, records));

  const auto runs = ex::runs_csv(plan, records);
  CHECK(runs.rfind("run_id,arm,replicate,seed,enforcement.operations[0].chill,releases.scene_total,", 0) == 0);
  CHECK(std::count(runs.begin(), runs.end(), '\n') == 1 + plan.runs());
  const auto effects = ex::effects_csv(plan, records);
  CHECK(std::count(effects.begin(), effects.end(), '\n') ==
        1 + static_cast<long>(ex::metric_names().size()));  // one arm besides the baseline
  // An incomplete set of records is an error, not a silently short table.
  auto missing = records;
  missing.pop_back();
  CHECK_THROWS_AS(ex::runs_csv(plan, missing), ModelError);
}

TEST_CASE("experiment: design plans map the unit cube onto the parameters", "[engine][experiment]") {
  const auto lhs = ex::load_plan(kFixtures / "design_lhs.yaml");
  REQUIRE(lhs.kind == ex::Kind::Design);
  REQUIRE(lhs.groups.size() == 4);
  REQUIRE(lhs.param_columns.size() == 3);
  std::vector<long> servers;
  for (const auto& g : lhs.groups) {
    servers.push_back(g.scenario.enforcement.operations.at(0).servers);
    const double chill = g.scenario.enforcement.operations.at(0).chill;
    CHECK(chill >= 1.0);
    CHECK(chill <= 10.0);
    CHECK(g.param_values[0] == std::to_string(servers.back()));
    const auto& target = g.scenario.enforcement.operations.at(0).target;
    CHECK((target == "named_groups" || target == "sellers"));
    CHECK(g.param_values[2] == target);
  }
  // Latin hypercube: the 4 points fall in the 4 quarters of [2, 12] (one each); rounding to
  // integers keeps them in distinct quarters [2,4.5), [4.5,7), [7,9.5), [9.5,12].
  std::vector<int> quarter;
  for (long s : servers) quarter.push_back(std::min(3, static_cast<int>((static_cast<double>(s) - 2.0) / 2.5)));
  std::sort(quarter.begin(), quarter.end());
  CHECK(quarter == std::vector<int>{0, 1, 2, 3});

  // A grid over values and a log range: 2 x 3 points in product order, geometric levels.
  const auto grid = ex::load_plan(kFixtures / "design_lhs.yaml",
                                  {"design.type=grid", "design.points=0",
                                   "design.parameters[0]={key: \"enforcement.operations[0].servers\", values: [4, 8]}",
                                   "design.parameters[1].levels=3", "design.parameters[2].values=[sellers]"});
  REQUIRE(grid.groups.size() == 6);
  CHECK(grid.groups[0].param_values == std::vector<std::string>{"4", "1", "sellers"});
  CHECK(grid.groups[1].scenario.enforcement.operations.at(0).chill == Approx(std::sqrt(10.0)));
  CHECK(grid.groups[2].scenario.enforcement.operations.at(0).chill == Approx(10.0));
  CHECK(grid.groups[3].scenario.enforcement.operations.at(0).servers == 8);

  // Sobol: point 0 is the lower corner, point 1 the middle.
  const auto sob = ex::load_plan(kFixtures / "design_lhs.yaml", {"design.type=sobol"});
  CHECK(sob.groups[0].param_values == std::vector<std::string>{"2", "1", "named_groups"});
  CHECK(sob.groups[1].param_values[0] == "7");
  CHECK(sob.groups[1].scenario.enforcement.operations.at(0).chill == Approx(std::sqrt(10.0)));
  CHECK(sob.groups[1].param_values[2] == "sellers");
}

TEST_CASE("experiment: invalid experiment files get located errors", "[engine][experiment]") {
  const std::string scenario = (kFixtures / "tiny.yaml").string();
  // Each case: the file, and the "line:column" where the error must be reported.
  const std::vector<std::pair<std::string, std::string>> cases = {
      // A bad value in an arm's override: located at the value inside the quoted string.
      {"scenario: " + scenario + "\narms:\n  - name: a\n  - name: b\n    set: [\"enforcement.operations[0].servers=-3\"]\n",
       ":5:46: error: enforcement.operations[0].servers = -3: must be in"},
      // A misspelt scenario key in an override: at the key.
      {"scenario: " + scenario + "\nset:\n  - enforcement.operatoins[0].servers=3\n",
       ":3:17: error: enforcement.operatoins: unknown key; did you mean 'operations'?"},
      // A misspelt experiment key.
      {"scenario: " + scenario + "\nreplicate: 3\n", ":2:1: error: replicate: unknown key; did you mean 'replicates'?"},
      {"scenario: " + scenario + "\nreplicates: 0\n", ":2:13: error: replicates = 0: must be"},
      {"scenario: " + scenario + "\narms:\n  - name: a\n  - name: a\n", ":4:11: error: arms[1].name = a: is already"},
      {"scenario: " + scenario + "\narms:\n  - {name: a}\ndesign: {type: lhs, points: 2, parameters: [{key: sceners.beta, min: 1, max: 2}]}\n",
       "error: design: an experiment has arms or a design, not both"},
      {"scenario: nothere.yaml\n", ":1:11: error: scenario: no file"},
      {"scenario: " + scenario + "\ndesign:\n  type: lhs\n  points: 3\n  parameters:\n    - {key: sceners.beta, min: 5, max: 1}\n",
       ":6:40: error: design.parameters[0].max = 1: must be greater than min"},
      {"scenario: " + scenario + "\ndesign:\n  type: sobol\n  points: 3\n  parameters:\n    - {key: sceners.beta, values: [1, x]}\n",
       ":6:39: error: sceners.beta = x: not a number"},
      // Run seeds come from the experiment's seed: a scenario seed would be silently ignored.
      {"scenario: " + scenario + "\nset: [seed=3]\n", ":2:7: error: seed: every run's seed comes from"},
  };
  for (const auto& [text, expected] : cases) {
    TempFile f(text);
    INFO(text);
    try {
      (void)ex::load_plan(f.path);
      FAIL("no error");
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      INFO(what);
      CHECK(what.rfind(f.path.string(), 0) == 0);  // the experiment file is named first
      CHECK(what.find(expected) != std::string::npos);
    }
  }
}
