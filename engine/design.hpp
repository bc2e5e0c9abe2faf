#pragma once
// Experimental designs over the unit cube: full factorial grids, Latin hypercubes and Sobol
// quasi-random sequences, plus the replicate seeds of common random numbers. The experiment
// layer (engine/experiment.hpp) maps the unit-cube coordinates onto parameter ranges.
//
// Every random draw comes from a Philox stream of Purpose::Experiment (engine/rng.hpp), so a
// design depends only on its seed and size: never on thread count, MPI rank or run order.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace piracy::design {

/// Entities of Purpose::Experiment streams (append, never renumber: that changes every design).
inline constexpr std::uint64_t kReplicateSeedEntity = 1;  //!< tick = replicate index
inline constexpr std::uint64_t kLatinHypercubeEntity = 2; //!< tick = dimension

/// Seeds of replicates 0..count-1 for an experiment seed: replicate r of every arm or design
/// point runs with seed r (common random numbers), so an arm's effect is a paired difference.
/// Seed r is the first 64 bits of the Philox stream (seed, Experiment, kReplicateSeedEntity, r);
/// a seed equal to an earlier one (probability about count^2 / 2^65) is replaced by the next
/// 64 bits of the same stream, so the seeds are distinct, and seed r does not depend on count
/// except in that vanishingly rare case. Throws ConfigError when count > 2^32.
[[nodiscard]] std::vector<std::uint64_t> replicate_seeds(std::uint64_t seed, std::size_t count);

/// Full factorial design: every combination of the level indices, one row per point, the
/// LAST dimension varying fastest (the order of itertools.product). `levels[d]` is the number
/// of levels of dimension d (each >= 1). Size: the product of the levels; ConfigError above
/// 10,000,000 points (a mistake, not an experiment).
[[nodiscard]] std::vector<std::vector<std::size_t>> grid_indices(const std::vector<std::size_t>& levels);

/// Latin hypercube of `points` points in [0,1)^dims (McKay, Beckman & Conover 1979, "A
/// comparison of three methods for selecting values of input variables in the analysis of output
/// from a computer code", Technometrics 21(2)): in every dimension each of the `points` strata
/// [k/n, (k+1)/n) holds exactly one point, placed uniformly inside its stratum; the strata are
/// matched across dimensions by independent random permutations (Fisher-Yates with Lemire's
/// unbiased bounded integers, Lemire 2019, "Fast random integer generation in an interval",
/// ACM TOMACS 29(1)). Row i is point i. Dimension d draws from the stream
/// (seed, Experiment, kLatinHypercubeEntity, d).
[[nodiscard]] std::vector<std::vector<double>> latin_hypercube(std::size_t points, std::size_t dims,
                                                               std::uint64_t seed);

/// Sobol' low-discrepancy sequence (Sobol' 1967) in up to kSobolMaxDims dimensions with the
/// direction numbers of Joe & Kuo (2008), "Constructing Sobol sequences with better
/// two-dimensional projections", SIAM J. Sci. Comput. 30(5):2635-2654 -- the table
/// new-joe-kuo-6.21201 (first 64 dimensions), generated in Gray-code order (Antonov & Saleev
/// 1979; Bratley & Fox 1988, ACM TOMS algorithm 659) with 32 bits of resolution, exactly as
/// Joe and Kuo's reference program sobol.cc: point 0 is the origin (kept, as Owen 2020, "On
/// dropping the first Sobol' point", recommends), point 1 is (1/2, ..., 1/2). Unscrambled, so
/// the design is deterministic and needs no seed. Balance properties hold for 2^m points.
inline constexpr std::size_t kSobolMaxDims = 64;

class Sobol {
 public:
  /// Throws ConfigError when dims is 0 or above kSobolMaxDims.
  explicit Sobol(std::size_t dims);
  /// The next point (the first call returns point 0). Throws ModelError after 2^32 - 1 points.
  std::vector<double> next();
  [[nodiscard]] std::size_t dims() const { return dims_; }

 private:
  std::size_t dims_;
  std::uint64_t index_ = 0;                   //!< index of the next point
  std::vector<std::uint32_t> x_;              //!< current point, 32-bit fixed point
  std::vector<std::vector<std::uint32_t>> v_; //!< direction numbers v_[d][bit], scaled by 2^32
};

/// The first `points` points of the Sobol' sequence in `dims` dimensions.
[[nodiscard]] std::vector<std::vector<double>> sobol(std::size_t points, std::size_t dims);

}  // namespace piracy::design
