#pragma once
// Calibration by the method of simulated moments, and model-based sensitivity analysis
// (`piracy-abm calibrate FILE.yaml`, `piracy-abm sensitivity FILE.yaml`).
//
// A calibration file (strict YAML, the same schema machinery and located errors as scenarios):
//
//   name: sparks_2020
//   scenario: ../sparks_2020.yaml      # a file relative to this one, else an embedded scenario
//   set: []                            # overrides applied to every candidate
//   seed: 20200825                     # replicate seeds (common random numbers)
//   replicates: 2                      # replications per candidate
//   parameters:                        # free parameters: any scenario key, optimised in [0,1]
//     - {name: slots, key: groups.slots_per_effort, min: 0.4, max: 1.2, log: true}
//   targets:                           # statistics of the outputs with observed value, sigma, source
//     - {name: P2, series: releases_scene, month: 2020-09, observed: 30000, sigma: 5000, source: "Le Monde 2020"}
//     - {name: P3, series: releases_scene, month: 2021-01, ratio_to: 2020-07, observed: 0.9, sigma: 0.08, source: ...}
//     - {name: P6, metric: p2p_share.value, observed: 0.45, sigma: 0.05, source: ...}
//   optimizer: {global: GN_CRS2_LM, global_evals: 30, local: LN_BOBYQA, local_evals: 20}
//   # global: SOBOL evaluates global_evals Sobol' points in one parallel batch (all jobs and MPI
//   # ranks busy at once) instead of NLopt's one-candidate-at-a-time global search
//
// A statistic is either `metric` (a column of the experiment tables: a summary.json path such as
// crackdowns[0].ratio_month_after or losses.paired_counterfactual.caused_loss_usd, see
// experiment::metric_names), or `series` + `month` (a monthly total of a daily series), or that
// divided by the same series in month `ratio_to`.
//
// Method of simulated moments (McFadden 1989, Econometrica 57(5); Pakes & Pollard 1989,
// Econometrica 57(5)): J(theta) = g' W g with g the mean over R replications of the simulated
// statistics minus the observed ones and W = diag(1 / sigma^2) (weighting: uncertainty) or
// diag(1 / (sigma^2 + v)) with v a bootstrap estimate of the simulation variance of the mean at
// the centre of the box (weighting: bootstrap). Replication r of every candidate runs with the
// same seed (common random numbers), so J is smooth in theta up to the model's own
// discontinuities and a derivative-free local optimiser can work. NLopt minimises J in the unit
// cube (log-scaled where asked): a global method then a local one from the best point.
//
// Standard errors: D = dg/dtheta by central differences (CRN), and the sandwich
//   Var(theta) = (1 + 1/R) (D'WD)^-1 D'W Omega W D (D'WD)^-1
// with Omega = diag(sigma^2) the covariance of the observed moments and (1 + 1/R) the
// correction for simulation noise (Lee & Ingram 1991, J. Econometrics 47; Gourieroux & Monfort
// 1996). J statistic: J(theta_hat) / (1 + 1/R) with Omega^-1 weights, chi-square with
// (moments - parameters) degrees of freedom when over-identified. Moment coverage ratio
// (Franke & Westerhoff 2012, JEDC 36(8)): the share of replications at theta_hat whose moments
// ALL fall inside the observed intervals observed +- z sigma.
//
// Every evaluation (a candidate's R replications) is appended to journal.jsonl, keyed by the
// candidate's unit-cube coordinates; --resume replays journaled evaluations instead of running
// them. NLopt is seeded (nlopt::srand), so the optimiser asks for the same candidates again and
// the final files are identical to an uninterrupted run's. The journal's digest covers only what
// determines a replication's value (base scenario, parameters and scales, statistics, seed), so
// a calibration can also be resumed with a larger budget or other weights and reuse every run.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "agents/params.hpp"
#include "engine/config.hpp"

namespace piracy {
namespace mpi {
class Session;
}

namespace calibration {

struct FreeParameter {
  std::string name;        //!< short name (columns of trace.csv)
  std::string key;         //!< scenario key, as for --set
  double min = 0;
  double max = 0;
  bool log = false;        //!< optimised in log(value)
  bool integer = false;    //!< rounded to the nearest integer
};

struct Target {
  std::string name;
  std::string metric = "";     //!< a metric of experiment::metric_names()
  std::string series = "";     //!< or a daily series, summed over `month`
  std::string month = "";      //!< YYYY-MM
  std::string ratio_to = "";   //!< YYYY-MM: divide by the same series in this month
  double observed = 0;
  double sigma = 1;            //!< uncertainty (standard deviation) of the observed value
  std::string source = "";
};

struct OptimizerSpec {
  std::string global = "GN_CRS2_LM";  //!< NLopt global algorithm, "SOBOL" (batch) or "none"
  std::int64_t global_evals = 40;
  std::int64_t population = 0;        //!< CRS2/ISRES population (0: NLopt's default)
  std::string local = "LN_BOBYQA";    //!< NLopt local algorithm, or "none"
  std::int64_t local_evals = 20;
  double xtol = 1e-3;                 //!< relative tolerance in the unit cube (local)
  std::uint64_t seed = 1;             //!< nlopt::srand
};

struct CalibrationSpec {
  std::string name = "calibration";
  std::string description = "";
  std::string scenario = "sparks_2020.yaml";
  std::vector<std::string> set = {};
  std::uint64_t seed = 1;
  std::int64_t replicates = 2;
  std::int64_t final_replicates = 0;  //!< replications at theta_hat for the fit table (0: replicates)
  std::int64_t threads_per_run = 1;
  std::string weighting = "uncertainty";  //!< uncertainty | bootstrap
  double jacobian_step = 0.05;        //!< central-difference step in the unit cube
  double coverage_level = 0.95;       //!< observed intervals observed +- z sigma
  std::vector<FreeParameter> parameters;
  std::vector<Target> targets;
  OptimizerSpec optimizer;
};

struct Output {  //!< a statistic of a sensitivity analysis (a Target without observation)
  std::string name;
  std::string metric = "";
  std::string series = "";
  std::string month = "";
  std::string ratio_to = "";
};

struct SensitivitySpec {
  std::string name = "sensitivity";
  std::string description = "";
  std::string scenario = "sparks_2020.yaml";
  std::vector<std::string> set = {};
  std::uint64_t seed = 1;
  std::int64_t replicates = 2;   //!< replications per design point; outputs are their means
  std::int64_t threads_per_run = 1;
  std::string method = "both";   //!< morris | sobol | both
  std::int64_t trajectories = 10;   //!< Morris
  std::int64_t levels = 4;          //!< Morris grid levels (even)
  std::int64_t base_samples = 16;   //!< Sobol: N, N (k + 2) points
  std::int64_t bootstrap = 500;
  std::vector<FreeParameter> parameters;
  std::vector<Output> outputs;
};

void describe(config::Visitor& v, FreeParameter& p);
void describe(config::Visitor& v, Target& t);
void describe(config::Visitor& v, OptimizerSpec& o);
void describe(config::Visitor& v, CalibrationSpec& c);
void describe(config::Visitor& v, Output& o);
void describe(config::Visitor& v, SensitivitySpec& s);

/// A statistic to extract from a run.
struct Statistic {
  std::string name;
  std::string metric;
  std::string series;
  std::string month;
  std::string ratio_to;
};

/// The model as a function of unit-cube coordinates: the base scenario node, the free parameters
/// and the statistics. Evaluations run replicate r with seed r of the calibration (CRN).
class Model {
 public:
  Model(config::Node base, std::vector<FreeParameter> parameters, std::vector<Statistic> statistics,
        std::vector<std::uint64_t> seeds, int threads_per_run);
  /// Natural value of each parameter at unit point u (log scale and rounding applied).
  [[nodiscard]] std::vector<double> values(const std::vector<double>& unit) const;
  /// "key=value" overrides of unit point u.
  [[nodiscard]] std::vector<std::string> overrides(const std::vector<double>& unit) const;
  /// The scenario at unit point u (ConfigError when a value is invalid for the scenario).
  [[nodiscard]] ScenarioConfig scenario(const std::vector<double>& unit) const;
  [[nodiscard]] std::string scenario_yaml(const std::vector<double>& unit) const;
  /// One batch of evaluations: the statistics [point][replicate][statistic], which (point,
  /// replicate) pairs finished, and the first failure in task order (a run that threw, or
  /// SIGINT/SIGTERM), so that the caller can journal what finished before it rethrows.
  struct Batch {
    std::vector<std::vector<std::vector<double>>> values;
    std::vector<std::vector<char>> done;
    std::string error_kind;   //!< empty: no failure; else interrupted|config|usage|numerical|model|io|other
    std::string error;        //!< the failure's message
    /// Throws the failure as the error type it had (piracy::Interrupted, ConfigError, ...).
    void rethrow_failure() const;
  };
  /// Runs replicates 0..replicates-1 of `points`, `jobs` simulations at a time (TBB). With an
  /// MPI session of several ranks, task t (point t / replicates, replicate t % replicates) runs
  /// on rank t % size and every rank receives every result (all-gather), so that every rank holds
  /// the same Batch -- the values depend on (point, replicate) only, never on the rank count.
  /// Collective: every rank must call it with the same points.
  [[nodiscard]] Batch run_batch(const std::vector<std::vector<double>>& points, std::size_t replicates, int jobs,
                                const mpi::Session* session = nullptr) const;
  /// run_batch on this process alone; throws the first failure. Returns [point][replicate][statistic].
  [[nodiscard]] std::vector<std::vector<std::vector<double>>> evaluate(
      const std::vector<std::vector<double>>& points, std::size_t replicates, int jobs) const;
  [[nodiscard]] const std::vector<FreeParameter>& parameters() const { return parameters_; }
  [[nodiscard]] const std::vector<Statistic>& statistics() const { return statistics_; }
  [[nodiscard]] const std::vector<std::uint64_t>& seeds() const { return seeds_; }
  [[nodiscard]] const config::Node& base() const { return base_; }

 private:
  config::Node base_;
  std::vector<FreeParameter> parameters_;
  std::vector<Statistic> statistics_;
  std::vector<std::uint64_t> seeds_;
  int threads_per_run_;
  std::vector<std::string> series_;   //!< series needed by the statistics
};

struct RunOptions {
  std::filesystem::path out_dir;  //!< empty: piracy-output/<name>
  bool resume = false;
  bool force = false;
  bool progress = true;
  int jobs = 0;                   //!< simulations at a time; 0: all cores / threads_per_run
};

struct CalibrationResult {
  std::filesystem::path dir;
  std::vector<double> estimate;       //!< natural units
  std::vector<double> se;
  double objective = 0;
  double j_statistic = 0;
  double j_p_value = 0;
  double coverage = 0;
  std::int64_t evaluations = 0;       //!< distinct evaluations (journaled)
  std::int64_t resumed = 0;           //!< of which replayed from the journal
  double wall_seconds = 0;
  double evals_per_second = 0;        //!< evaluations run in this session / wall time
  std::string report;                 //!< report.txt
  int exit_code = 0;                  //!< ranks > 0 of an MPI run whose rank 0 refused the setup
};

/// Loads and checks a calibration (sensitivity) file as `calibrate` (`sensitivity`) does before
/// its first run -- the file, its overrides, its base scenario and its statistics -- without
/// running anything or writing a file. Throws ConfigError (located). Used by fuzz/fuzz_experiment.
void check_calibration_file(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});
void check_sensitivity_file(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});

/// Loads, validates and runs a calibration; writes the output directory. Throws ConfigError
/// (exit 2) before anything is written when the file is bad.
///
/// Under MPI (a session of several ranks) every rank loads the file and runs the same driver:
/// the optimiser is deterministic (nlopt::srand), every batch of simulations is shared
/// round-robin across the ranks and all-gathered, so every rank takes the same next step; rank 0
/// alone prepares the directory, journals and writes (the other ranks mirror its journal), and
/// prints progress. The files are byte-identical whatever the rank count (tests/mpi/mpi.cmake).
/// NLopt's global and local methods propose one candidate at a time, so an optimiser step runs
/// `replicates` simulations: ranks beyond that idle until the Jacobian and final batches (and a
/// sensitivity analysis uses every rank on every chunk of its design).
CalibrationResult run_calibration(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                                  const RunOptions& options, const mpi::Session& session);

struct SensitivityResult {
  std::filesystem::path dir;
  std::int64_t points = 0;
  std::int64_t resumed = 0;
  double wall_seconds = 0;
  std::string report;
  int exit_code = 0;                  //!< ranks > 0 of an MPI run whose rank 0 refused the setup
};

SensitivityResult run_sensitivity(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                                  const RunOptions& options, const mpi::Session& session);

/// Upper tail of the chi-square distribution, P(X > x) with `df` degrees of freedom
/// (regularised incomplete gamma Q(df/2, x/2), Numerical Recipes 3rd ed. sec. 6.2).
[[nodiscard]] double chi_square_sf(double x, double df);

}  // namespace calibration
}  // namespace piracy
