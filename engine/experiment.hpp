#pragma once
// Experiments: ensembles, policy arms and parameter designs over scenarios, run in parallel
// (oneTBB) on one machine or distributed over MPI ranks, journaled so that an interrupted
// experiment resumes without losing or repeating a run (`piracy-abm experiment FILE.yaml`).
//
// An experiment file (strict YAML, the same schema machinery and located errors as scenarios):
//
//   name: enforcement_strategies
//   scenario: sparks_2020.yaml        # a file relative to this one, else an embedded scenario
//   set: ["counterfactual.remove_groups=[]"]   # overrides applied to every run
//   seed: 20200825                    # replicate seeds are derived from it
//   replicates: 5
//   threads_per_run: 1                # threads inside one run (results never depend on it)
//   series: false                     # also write series.csv (monthly, long format)
//   arms:                             # policy arms; the FIRST arm is the baseline
//     - {name: raid, set: []}
//     - {name: sellers, set: ["enforcement.operations[0].target=sellers"]}
//     - {name: my_policy, extends: policies/my_policy.yaml, set: []}
//   # or, instead of arms, a design over any configuration keys:
//   design:
//     type: sobol                     # grid | lhs | sobol
//     points: 64                      # lhs and sobol (a grid's size is the product of its levels)
//     parameters:
//       - {key: "enforcement.operations[0].servers", min: 20, max: 120, integer: true}
//       - {key: "enforcement.operations[0].chill", min: 1, max: 10, log: true}
//       - {key: "enforcement.operations[0].target", values: [named_groups, sellers]}
//   (inside a flow map {...} a key path with [n] is quoted: YAML forbids '[' in a plain scalar
//   there; in block style `- key: enforcement.operations[0].servers` needs no quotes)
//
// Common random numbers (Law 2015, "Simulation Modeling and Analysis", 5th ed., sec. 11.2):
// replicate r of every arm and design point runs with the same seed, derived from (seed, r) by
// a Philox stream (design::replicate_seeds), so arms differ only by the policy and an arm's effect
// is estimated from paired differences. effects.csv gives, per arm and metric, the mean paired
// difference from the baseline with its 95% Student-t interval, and beside it the Welch
// (unpaired) interval that independent seeds would have given.
//
// Outputs in the experiment directory (every table is loaded in one line of pandas):
//   runs.csv        run_id, arm (or point), replicate, seed, every varied parameter, the metrics
//   effects.csv     arm, metric, n, baseline_mean, arm_mean, mean_diff, ci_low, ci_high,
//                   unpaired_ci_low, unpaired_ci_high (arms only; the baseline is arms[0])
//   means.csv       arm (or point), metric, n, mean, sd, ci_low, ci_high
//   series.csv      run_id, period, variable, value (monthly, when `series: true`)
//   experiment.yaml the resolved experiment: it replays the experiment from this directory
//   scenario.yaml, arms/<arm>.yaml   the resolved scenarios (`piracy-abm run arms/x.yaml --seed S`
//                   reruns one run of runs.csv)
//   journal.jsonl   one line per finished run (written as runs finish; --resume reads it)
//   manifest.json   program, version, git commit, counts, ranks, jobs, wall time
// runs.csv, effects.csv, means.csv and series.csv are built from the journal alone, so a resumed
// experiment's files are byte-identical to an uninterrupted one's, whatever the number of
// threads, jobs or MPI ranks.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/params.hpp"

namespace piracy {

class Simulation;

namespace config {
class Visitor;
}
namespace mpi {
class Session;
}

namespace experiment {

// ---------------------------------------------------------------------------------------------
// The experiment file

struct Arm {
  std::string name;                 //!< letters, digits, '_', '-', '.'; unique; names arms/<name>.yaml
  std::string extends = "";         //!< a scenario file for this arm instead of `scenario`
  std::vector<std::string> set = {};  //!< overrides "key=value" on top of the experiment's `set`
};

struct DesignParameter {
  std::string key;                       //!< a scenario key, e.g. enforcement.operations[0].servers
  std::vector<std::string> values = {};  //!< discrete levels (YAML values), or else min/max
  double min = 0;
  double max = 0;
  std::int64_t levels = 0;  //!< grid with min/max: evenly spaced levels (>= 2)
  bool log = false;         //!< spaced evenly in log(value) (min > 0)
  bool integer = false;     //!< rounded to the nearest integer
};

struct DesignSpec {
  std::string type = "none";  //!< none | grid | lhs | sobol
  std::int64_t points = 0;    //!< lhs and sobol
  std::vector<DesignParameter> parameters = {};
};

struct ExperimentSpec {
  std::string name = "experiment";
  std::string description = "";
  std::string scenario = "sparks_2020.yaml";
  std::vector<std::string> set = {};
  std::uint64_t seed = 1;
  std::int64_t replicates = 10;
  std::int64_t threads_per_run = 1;
  bool series = false;
  std::vector<std::string> series_variables = {};  //!< empty: every series of the run
  std::vector<Arm> arms = {};
  DesignSpec design;
};

void describe(config::Visitor& v, Arm& a);
void describe(config::Visitor& v, DesignParameter& p);
void describe(config::Visitor& v, DesignSpec& d);
void describe(config::Visitor& v, ExperimentSpec& e);

// ---------------------------------------------------------------------------------------------
// The plan: every run of the experiment, resolved

enum class Kind { Arms, Design };  //!< an ensemble is a single implicit arm "baseline"

struct RunGroup {
  std::string name;                       //!< arm name, or the design point's index
  std::vector<std::string> param_values;  //!< one per Plan::param_columns (flow YAML; "" if absent)
  std::vector<std::string> overrides;     //!< design points: the "key=value" applied to scenario.yaml
  std::string scenario_yaml;              //!< the complete resolved scenario (emit of `scenario`)
  ScenarioConfig scenario;                //!< parsed back from scenario_yaml (every rank runs the same)
};

struct RunSpec {
  std::int64_t id = 0;         //!< group * replicates + replicate
  std::int64_t group = 0;
  std::int64_t replicate = 0;
  std::uint64_t seed = 0;
};

struct Plan {
  ExperimentSpec spec;                     //!< as parsed (after --set)
  std::string source;                      //!< the experiment file as given
  Kind kind = Kind::Arms;
  std::vector<std::string> param_columns;  //!< varied keys (arms: every key that differs from the baseline)
  std::vector<RunGroup> groups;
  std::vector<std::uint64_t> seeds;        //!< replicate seeds
  std::string base_scenario_yaml;          //!< resolved `scenario` with the experiment's `set`

  [[nodiscard]] std::int64_t runs() const {
    return static_cast<std::int64_t>(groups.size()) * static_cast<std::int64_t>(seeds.size());
  }
  [[nodiscard]] RunSpec run(std::int64_t id) const;
  /// Hex FNV-1a 64 of everything that determines the results (scenarios, seeds, varied values,
  /// metrics, series settings): a journal is resumed only by the plan that started it.
  [[nodiscard]] std::string digest() const;
  /// "arm" or "point": the name of the group column of runs.csv and means.csv.
  [[nodiscard]] std::string group_column() const { return kind == Kind::Arms ? "arm" : "point"; }
  /// The resolved experiment file written to the experiment directory: `scenario: scenario.yaml`,
  /// arms extending arms/<name>.yaml, no `set` left (everything is folded into those files).
  [[nodiscard]] std::string resolved_yaml() const;
};

/// Loads an experiment file and applies "key=value" overrides to it (the same syntax as
/// scenarios: `--set replicates=3`), then resolves every arm or design point into a scenario.
/// Throws ConfigError, located in the experiment file (a bad `set` entry is reported at its
/// place in the experiment file; errors inside scenario files at theirs).
[[nodiscard]] Plan load_plan(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});

/// The plan as JSON and back (rank 0 sends it to the other ranks).
[[nodiscard]] nlohmann::json plan_to_json(const Plan& plan);
[[nodiscard]] Plan plan_from_json(const nlohmann::json& j);

// ---------------------------------------------------------------------------------------------
// Metrics

/// Names of the metrics of runs.csv, in column order. Summary metrics are named by their path in
/// summary.json (agents/summary.cpp):
///   releases.scene_total, releases.p2p_total, p2p_share.value,
///   crackdowns[0].{servers_seized, sites_seized, arrests, sites_dark, releases_month_before,
///     releases_month_after, ratio_month_after, ratio_month_plus5, drop_ratio, t50_days, t90_days,
///     half_life_days, var_half_life_days}  (the first operation of the run),
///   losses.{total_usd, scene_usd, p2p_usd, pre_release_usd},
///   losses.paired_counterfactual.caused_loss_usd (NaN unless counterfactual.remove_groups is set);
/// and metrics computed from the daily series over the 12 months that start on the day of the
/// run's first operation -- or, in a run without operations, on `window_fallback` (the baseline's
/// first operation, so that a "no operation" arm is compared over the same months) -- clipped at
/// calendar.end; NaN when there is neither:
///   first_op_12m.{scene_releases, p2p_releases, p2p_share, studio_loss_usd, arrests}.
/// A missing or null value is NaN ("nan" in the CSV).
[[nodiscard]] const std::vector<std::string>& metric_names();
/// The metrics of a finished run, in the order of metric_names().
[[nodiscard]] std::vector<double> extract_metrics(const nlohmann::json& summary, const Simulation& sim,
                                                std::optional<Date> window_fallback = std::nullopt);

// ---------------------------------------------------------------------------------------------
// Runs and their journal

struct RunRecord {
  std::int64_t id = 0;
  std::int64_t group = 0;
  std::int64_t replicate = 0;
  std::uint64_t seed = 0;
  std::vector<double> metrics;                 //!< metric_names() order
  std::vector<std::string> periods;            //!< months "YYYY-MM" (when the plan has series)
  std::vector<std::string> variables;          //!< series names
  std::vector<std::vector<double>> series;     //!< [variable][period], monthly aggregates
};

/// Runs one run of the plan (and its paired counterfactual when the scenario sets
/// counterfactual.remove_groups) in a task arena of `threads` threads, polling for interrupts.
[[nodiscard]] RunRecord execute_run(const Plan& plan, std::int64_t id, int threads);

/// One line of journal.jsonl (no trailing newline). Numbers round-trip exactly; NaN is null.
[[nodiscard]] std::string to_journal_line(const RunRecord& r);
/// Throws IoError when the line is not a run record.
[[nodiscard]] RunRecord from_journal_line(std::string_view line);

// ---------------------------------------------------------------------------------------------
// Statistics and tables

struct EffectEstimate {
  std::size_t n = 0;           //!< complete pairs (both values finite)
  double baseline_mean = 0;    //!< over the finite baseline values
  double arm_mean = 0;         //!< over the finite arm values
  double mean_diff = 0;        //!< mean of the paired differences arm - baseline
  double ci_low = 0, ci_high = 0;                    //!< paired Student-t interval
  double unpaired_ci_low = 0, unpaired_ci_high = 0;  //!< Welch interval of arm_mean - baseline_mean
};
/// Paired effect of `arm` against `baseline` (element r of both is replicate r) at confidence
/// `level`: mean difference d with d +- t_{(1+level)/2, n-1} s_d / sqrt(n) over the complete pairs;
/// beside it the Welch (1947) interval with Satterthwaite's degrees of freedom from the two
/// samples as if they were independent. Intervals are NaN with fewer than 2 values.
[[nodiscard]] EffectEstimate estimate_effect(std::span<const double> arm, std::span<const double> baseline,
                                             double level = 0.95);

/// The tables of an experiment from its records (one per run, any order).
[[nodiscard]] std::string runs_csv(const Plan& plan, const std::vector<RunRecord>& records);
[[nodiscard]] std::string effects_csv(const Plan& plan, const std::vector<RunRecord>& records);
[[nodiscard]] std::string means_csv(const Plan& plan, const std::vector<RunRecord>& records);
[[nodiscard]] std::string series_csv(const Plan& plan, const std::vector<RunRecord>& records);

// ---------------------------------------------------------------------------------------------
// Running an experiment

struct RunOptions {
  std::filesystem::path out_dir;  //!< empty: piracy-output/<experiment name>
  bool resume = false;            //!< continue the journal in out_dir (a fresh start if there is none)
  bool force = false;             //!< replace an existing experiment directory
  bool progress = true;           //!< progress line (count, rate, time left) on stderr
  int jobs = 0;                   //!< runs at a time per rank; 0: cores / threads_per_run
};

struct Outcome {
  int exit_code = 0;              //!< non-zero on ranks > 0 when the experiment failed
  std::filesystem::path dir;
  std::int64_t runs = 0;          //!< in the plan
  std::int64_t resumed = 0;       //!< found in the journal at start
  std::int64_t executed = 0;      //!< run now, by all ranks
  double wall_seconds = 0;
  std::vector<std::string> files; //!< written (rank 0)
};

/// Runs the experiment FILE with overrides: rank 0 plans, prepares the directory and journal
/// and tells every rank the runs still to do; the ranks share them round-robin and send each
/// finished run to rank 0, which journals it at once; rank 0 then writes the tables. Throws
/// on rank 0 (ConfigError, UsageError, IoError, ModelError, Interrupted); ranks > 0 return the
/// exit code instead, leaving the message to rank 0.
Outcome run_experiment(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                       const RunOptions& options, const mpi::Session& session);

}  // namespace experiment
}  // namespace piracy
