#pragma once
// Global sensitivity analysis, pure statistics over the unit cube (no model inside): Morris
// elementary effects for screening and Sobol' variance-based indices with bootstrap intervals.
// `piracy-abm sensitivity` (engine/calibration.hpp, app/sensitivity_cmd.cpp) maps the unit cube
// onto scenario keys and feeds the model's outputs to these estimators; the tests feed analytic
// functions (Ishigami, linear) whose indices are known.
//
// - Morris (1991), "Factorial sampling plans for preliminary computational experiments",
//   Technometrics 33(2): r random one-at-a-time trajectories on a p-level grid with step
//   Delta = p / (2 (p - 1)); mu* (mean absolute elementary effect) from Campolongo, Cariboni &
//   Saltelli (2007), "An effective screening design for sensitivity analysis of large models",
//   Environ. Model. Softw. 22(10).
// - Sobol' indices with the radial "A, B, AB_i" scheme of Saltelli et al. (2010), "Variance based
//   sensitivity analysis of model output. Design and estimator for the total sensitivity index",
//   Comput. Phys. Commun. 181(2): first-order V_i = mean(f(B) (f(AB_i) - f(A))) (their table 2,
//   eq. (b)), total V_Ti = mean((f(A) - f(AB_i))^2) / 2 (Jansen 1999, "Analysis of variance
//   designs for model output", Comput. Phys. Commun. 117), A and B the two halves of a 2k-
//   dimensional Sobol' sequence (engine/design.hpp), N (k + 2) evaluations.
// - Confidence intervals: percentile bootstrap over the N base rows (Archer, Saltelli & Sobol'
//   1997), resampling rows with a Philox stream so the intervals depend only on the seed.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace piracy::sensitivity {

/// Entities of Purpose::Experiment streams used here (design.hpp uses 1 and 2).
inline constexpr std::uint64_t kMorrisEntity = 3;     //!< tick = trajectory
inline constexpr std::uint64_t kBootstrapEntity = 4;  //!< tick = bootstrap resample

struct MorrisDesign {
  std::size_t dims = 0;
  std::size_t trajectories = 0;
  std::size_t levels = 0;
  /// (dims + 1) points per trajectory, trajectory after trajectory, each in [0,1]^dims.
  std::vector<std::vector<double>> points;
  /// changed[t * dims + j]: the parameter that changes between point j and j + 1 of trajectory t.
  std::vector<std::size_t> changed;
};

/// r trajectories of Morris (1991) on a `levels`-level grid (levels even, >= 2): a random base
/// point on {0, 1/(p-1), ..., 1 - Delta}, then each parameter once in random order by +-Delta.
/// Throws ConfigError on a bad size.
[[nodiscard]] MorrisDesign morris_design(std::size_t dims, std::size_t trajectories, std::size_t levels,
                                         std::uint64_t seed);

struct MorrisIndex {
  double mu = 0;        //!< mean elementary effect
  double mu_star = 0;   //!< mean |elementary effect| (Campolongo et al. 2007)
  double sigma = 0;     //!< standard deviation of the elementary effects (n - 1)
  double mu_star_ci_low = 0, mu_star_ci_high = 0;  //!< percentile bootstrap over trajectories
};

/// Elementary effects EE = (y(x + Delta e_i) - y(x)) / (+-Delta) in the units of the unit cube
/// (multiply by nothing: parameters are compared on their ranges). y[i] is the output at
/// design.points[i]; non-finite effects are skipped. One index per dimension.
[[nodiscard]] std::vector<MorrisIndex> morris_indices(const MorrisDesign& design, const std::vector<double>& y,
                                                      std::size_t bootstrap = 500, double level = 0.95,
                                                      std::uint64_t seed = 1);

struct SaltelliDesign {
  std::size_t dims = 0;
  std::size_t base = 0;  //!< N
  /// N (dims + 2) points: rows 0..N-1 are A, N..2N-1 are B, then AB_1 (A with column 1 from B),
  /// ..., AB_k, each block N rows.
  std::vector<std::vector<double>> points;
};

/// Saltelli (2010) sampling from the 2k-dimensional Sobol' sequence, skipping point 0 (the
/// origin, which would put A and B on the same corner). Throws ConfigError when 2 dims > 64.
[[nodiscard]] SaltelliDesign saltelli_design(std::size_t dims, std::size_t base);

struct SobolIndex {
  double s1 = 0, s1_ci_low = 0, s1_ci_high = 0;
  double st = 0, st_ci_low = 0, st_ci_high = 0;
};

/// First-order (Saltelli 2010) and total (Jansen 1999) indices from y at design.points; rows
/// with a non-finite value are dropped from every estimate. V is the variance of f over A and B.
[[nodiscard]] std::vector<SobolIndex> sobol_indices(const SaltelliDesign& design, const std::vector<double>& y,
                                                    std::size_t bootstrap = 500, double level = 0.95,
                                                    std::uint64_t seed = 1);

/// The Ishigami (1990) function, the standard test of Sobol' estimators, on x in [0,1]^3 mapped
/// to [-pi, pi]^3: f = sin x1 + a sin^2 x2 + b x3^4 sin x1.
[[nodiscard]] double ishigami(const std::vector<double>& unit, double a = 7, double b = 0.1);
/// Its analytic indices (Sobol' & Levitan 1999): {S1, S2, S3, ST1, ST2, ST3}.
[[nodiscard]] std::vector<double> ishigami_indices(double a = 7, double b = 0.1);

}  // namespace piracy::sensitivity
