// Experimental designs (engine/design.hpp): replicate seeds, full grids, Latin hypercubes and
// the Sobol' sequence with Joe & Kuo's direction numbers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "engine/design.hpp"
#include "engine/error.hpp"
#include "engine/rng.hpp"

using namespace piracy;

TEST_CASE("design: replicate seeds are distinct, reproducible and derived from (seed, r)", "[engine][design]") {
  const auto a = design::replicate_seeds(20200825, 10000);
  const auto b = design::replicate_seeds(20200825, 10000);
  REQUIRE(a.size() == 10000);
  CHECK(a == b);  // reproducible
  CHECK(std::set<std::uint64_t>(a.begin(), a.end()).size() == a.size());  // distinct
  // Seed r depends on (seed, r) only: a shorter experiment has the same first seeds, so adding
  // replicates later keeps the runs already made.
  const auto five = design::replicate_seeds(20200825, 5);
  CHECK(std::equal(five.begin(), five.end(), a.begin()));
  // The documented derivation: the first 64 bits of the Philox stream (seed, Experiment, 1, r).
  for (std::int64_t r : {0, 1, 4999}) {
    Stream s(20200825, Purpose::Experiment, design::kReplicateSeedEntity, r);
    CHECK(a[static_cast<std::size_t>(r)] == s.next_u64());
  }
  // Another experiment seed gives other replicate seeds.
  const auto other = design::replicate_seeds(20200826, 5);
  for (std::size_t r = 0; r < 5; ++r) CHECK(other[r] != five[r]);
  CHECK(design::replicate_seeds(1, 0).empty());
}

TEST_CASE("design: a grid holds every combination once, last dimension fastest", "[engine][design]") {
  const std::vector<std::size_t> levels = {2, 3, 4};
  const auto g = design::grid_indices(levels);
  REQUIRE(g.size() == 2 * 3 * 4);  // the product of the levels
  std::set<std::vector<std::size_t>> unique(g.begin(), g.end());
  CHECK(unique.size() == g.size());
  for (const auto& p : g) {
    REQUIRE(p.size() == 3);
    for (std::size_t d = 0; d < 3; ++d) CHECK(p[d] < levels[d]);
  }
  // itertools.product order: (0,0,0), (0,0,1), ..., (0,0,3), (0,1,0), ..., (1,2,3).
  CHECK(g[0] == std::vector<std::size_t>{0, 0, 0});
  CHECK(g[1] == std::vector<std::size_t>{0, 0, 1});
  CHECK(g[4] == std::vector<std::size_t>{0, 1, 0});
  CHECK(g[12] == std::vector<std::size_t>{1, 0, 0});
  CHECK(g.back() == std::vector<std::size_t>{1, 2, 3});
  CHECK(design::grid_indices({5}).size() == 5);
  CHECK_THROWS_AS(design::grid_indices({2, 0, 3}), ConfigError);
  CHECK_THROWS_AS(design::grid_indices(std::vector<std::size_t>(8, 10)), ConfigError);  // 10^8 points
}

TEST_CASE("design: a Latin hypercube puts one point in each stratum of every dimension", "[engine][design]") {
  for (const std::size_t n : {1u, 2u, 7u, 50u}) {
    const std::size_t dims = 4;
    const auto x = design::latin_hypercube(n, dims, 99);
    REQUIRE(x.size() == n);
    for (std::size_t d = 0; d < dims; ++d) {
      std::vector<std::size_t> strata;
      for (const auto& p : x) {
        REQUIRE(p.size() == dims);
        CHECK(p[d] > 0.0);
        CHECK(p[d] < 1.0);
        strata.push_back(static_cast<std::size_t>(std::floor(p[d] * static_cast<double>(n))));
      }
      std::sort(strata.begin(), strata.end());
      for (std::size_t k = 0; k < n; ++k) CHECK(strata[k] == k);  // each stratum exactly once
    }
  }
  const auto a = design::latin_hypercube(50, 3, 99);
  CHECK(a == design::latin_hypercube(50, 3, 99));  // reproducible
  CHECK(a != design::latin_hypercube(50, 3, 100)); // seeded
  // Dimensions are permuted independently: two columns in the same stratum order would make the
  // design a diagonal (a wrong implementation reusing one permutation).
  std::size_t same = 0;
  for (const auto& p : a) same += std::floor(p[0] * 50) == std::floor(p[1] * 50) ? 1 : 0;
  CHECK(same < 10);
}

TEST_CASE("design: Sobol points match Joe & Kuo's sequence", "[engine][design]") {
  // Reference values: the first points of the Sobol' sequence with the direction numbers
  // new-joe-kuo-6.21201, as printed by Joe & Kuo's sobol.cc (and scipy.stats.qmc.Sobol with
  // scramble=False); they are dyadic rationals, so the comparison is exact.
  const std::vector<std::vector<double>> first = {
      {0, 0, 0, 0},
      {0.5, 0.5, 0.5, 0.5},
      {0.75, 0.25, 0.25, 0.25},
      {0.25, 0.75, 0.75, 0.75},
      {0.375, 0.375, 0.625, 0.875},
      {0.875, 0.875, 0.125, 0.375},
      {0.625, 0.125, 0.875, 0.625},
      {0.125, 0.625, 0.375, 0.125},
  };
  const auto p = design::sobol(65536, 64);
  for (std::size_t i = 0; i < first.size(); ++i)
    for (std::size_t d = 0; d < 4; ++d) CHECK(p[i][d] == first[i][d]);
  // Deeper points and higher dimensions, where the recurrence of the primitive polynomials
  // matters. Reference: Boost.Random 1.74 `boost::random::sobol` (the same Joe & Kuo table,
  // which starts at point 1), top 32 bits of its 64-bit output, divided by 2^32.
  CHECK(p[1000][0] == 0.2197265625);
  CHECK(p[1000][2] == 0.5185546875);
  CHECK(p[1000][19] == 0.7255859375);
  CHECK(p[1000][37] == 0.8310546875);
  CHECK(p[1000][63] == 0.4462890625);
  CHECK(p[65535][1] == 0.9999847412109375);
  CHECK(p[65535][63] == 0.2963714599609375);
  CHECK(p[3][63] == 0.25);
  CHECK(p[4][63] == 0.125);
  CHECK(p[5][63] == 0.625);
}

TEST_CASE("design: Sobol nets: 2^m points fill every dyadic interval once", "[engine][design]") {
  // A Sobol' sequence is a (t, s)-sequence (Sobol' 1967): the first 2^m points of every single
  // dimension put exactly one point in each interval [k/2^m, (k+1)/2^m); and the first two
  // dimensions form a (0, m, 2)-net: every dyadic box of area 2^-m holds exactly one point. A
  // wrong direction number (or a wrong Gray-code step) breaks this for some dimension.
  const int m = 8;
  const std::size_t n = std::size_t{1} << m;
  const auto p = design::sobol(n, design::kSobolMaxDims);
  for (std::size_t d = 0; d < design::kSobolMaxDims; ++d) {
    std::vector<int> count(n, 0);
    for (const auto& x : p) count[static_cast<std::size_t>(x[d] * static_cast<double>(n))]++;
    INFO("dimension " << d + 1);
    CHECK(std::all_of(count.begin(), count.end(), [](int c) { return c == 1; }));
  }
  for (int a = 0; a <= m; ++a) {  // boxes of 2^a x 2^(m-a)
    std::vector<int> count(n, 0);
    for (const auto& x : p) {
      const auto i = static_cast<std::size_t>(x[0] * std::ldexp(1.0, a));
      const auto j = static_cast<std::size_t>(x[1] * std::ldexp(1.0, m - a));
      count[(i << (m - a)) + j]++;
    }
    INFO("boxes of 2^-" << a << " x 2^-" << m - a);
    CHECK(std::all_of(count.begin(), count.end(), [](int c) { return c == 1; }));
  }
  design::Sobol seq(3);
  CHECK(seq.next() == std::vector<double>{0, 0, 0});
  CHECK(seq.next() == std::vector<double>{0.5, 0.5, 0.5});
  CHECK_THROWS_AS(design::Sobol(0), ConfigError);
  CHECK_THROWS_AS(design::Sobol(design::kSobolMaxDims + 1), ConfigError);
}
