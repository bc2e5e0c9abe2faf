#include "engine/design.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <unordered_set>

#include "engine/error.hpp"
#include "engine/rng.hpp"

namespace piracy::design {
namespace {

/// One row of Joe & Kuo's table new-joe-kuo-6.21201: dimension d (the first dimension, the van
/// der Corput sequence, has no row), degree s of the primitive polynomial, its inner
/// coefficients a (bits of x^{s-1} .. x^1), and the initial direction numbers m_1..m_s.
struct JoeKuoRow {
  std::uint32_t s;
  std::uint32_t a;
  std::array<std::uint32_t, 9> m;
};

// Dimensions 2..64 of new-joe-kuo-6.21201 (Joe & Kuo 2008; the same table Boost.Random's sobol
// and SciPy's qmc.Sobol ship), copied verbatim: d s a m_1 ... m_s.
constexpr std::array<JoeKuoRow, kSobolMaxDims - 1> kJoeKuo = {{
    {1, 0, {1}},                                   // d = 2
    {2, 1, {1, 3}},                                // 3
    {3, 1, {1, 3, 1}},                             // 4
    {3, 2, {1, 1, 1}},                             // 5
    {4, 1, {1, 1, 3, 3}},                          // 6
    {4, 4, {1, 3, 5, 13}},                         // 7
    {5, 2, {1, 1, 5, 5, 17}},                      // 8
    {5, 4, {1, 1, 5, 5, 5}},                       // 9
    {5, 7, {1, 1, 7, 11, 19}},                     // 10
    {5, 11, {1, 1, 5, 1, 1}},                      // 11
    {5, 13, {1, 1, 1, 3, 11}},                     // 12
    {5, 14, {1, 3, 5, 5, 31}},                     // 13
    {6, 1, {1, 3, 3, 9, 7, 49}},                   // 14
    {6, 13, {1, 1, 1, 15, 21, 21}},                // 15
    {6, 16, {1, 3, 1, 13, 27, 49}},                // 16
    {6, 19, {1, 1, 1, 15, 7, 5}},                  // 17
    {6, 22, {1, 3, 1, 15, 13, 25}},                // 18
    {6, 25, {1, 1, 5, 5, 19, 61}},                 // 19
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},            // 20
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},             // 21
    {7, 7, {1, 1, 3, 13, 7, 35, 63}},              // 22
    {7, 8, {1, 3, 5, 9, 1, 25, 53}},               // 23
    {7, 14, {1, 3, 1, 13, 9, 35, 107}},            // 24
    {7, 19, {1, 3, 1, 5, 27, 61, 31}},             // 25
    {7, 21, {1, 1, 5, 11, 19, 41, 61}},            // 26
    {7, 28, {1, 3, 5, 3, 3, 13, 69}},              // 27
    {7, 31, {1, 1, 7, 13, 1, 19, 1}},              // 28
    {7, 32, {1, 3, 7, 5, 13, 19, 59}},             // 29
    {7, 37, {1, 1, 3, 9, 25, 29, 41}},             // 30
    {7, 41, {1, 3, 5, 13, 23, 1, 55}},             // 31
    {7, 42, {1, 3, 7, 3, 13, 59, 17}},             // 32
    {7, 50, {1, 3, 1, 3, 5, 53, 69}},              // 33
    {7, 55, {1, 1, 5, 5, 23, 33, 13}},             // 34
    {7, 56, {1, 1, 7, 7, 1, 61, 123}},             // 35
    {7, 59, {1, 1, 7, 9, 13, 61, 49}},             // 36
    {7, 62, {1, 3, 3, 5, 3, 55, 33}},              // 37
    {8, 14, {1, 3, 1, 15, 31, 13, 49, 245}},       // 38
    {8, 21, {1, 3, 5, 15, 31, 59, 63, 97}},        // 39
    {8, 22, {1, 3, 1, 11, 11, 11, 77, 249}},       // 40
    {8, 38, {1, 3, 1, 11, 27, 43, 71, 9}},         // 41
    {8, 47, {1, 1, 7, 15, 21, 11, 81, 45}},        // 42
    {8, 49, {1, 3, 7, 3, 25, 31, 65, 79}},         // 43
    {8, 50, {1, 3, 1, 1, 19, 11, 3, 205}},         // 44
    {8, 52, {1, 1, 5, 9, 19, 21, 29, 157}},        // 45
    {8, 56, {1, 3, 7, 11, 1, 33, 89, 185}},        // 46
    {8, 67, {1, 3, 3, 3, 15, 9, 79, 71}},          // 47
    {8, 70, {1, 3, 7, 11, 15, 39, 119, 27}},       // 48
    {8, 84, {1, 1, 3, 1, 11, 31, 97, 225}},        // 49
    {8, 97, {1, 1, 1, 3, 23, 43, 57, 177}},        // 50
    {8, 103, {1, 3, 7, 7, 17, 17, 37, 71}},        // 51
    {8, 115, {1, 3, 1, 5, 27, 63, 123, 213}},      // 52
    {8, 122, {1, 1, 3, 5, 11, 43, 53, 133}},       // 53
    {9, 8, {1, 3, 5, 5, 29, 17, 47, 173, 479}},    // 54
    {9, 13, {1, 3, 3, 11, 3, 1, 109, 9, 69}},      // 55
    {9, 16, {1, 1, 1, 5, 17, 39, 23, 5, 343}},     // 56
    {9, 22, {1, 3, 1, 5, 25, 15, 31, 103, 499}},   // 57
    {9, 25, {1, 1, 1, 11, 11, 17, 63, 105, 183}},  // 58
    {9, 44, {1, 1, 5, 11, 9, 29, 97, 231, 363}},   // 59
    {9, 47, {1, 1, 5, 15, 19, 45, 41, 7, 383}},    // 60
    {9, 52, {1, 3, 7, 7, 31, 19, 83, 137, 221}},   // 61
    {9, 55, {1, 1, 1, 3, 23, 15, 111, 223, 83}},   // 62
    {9, 59, {1, 1, 5, 13, 31, 15, 55, 25, 161}},   // 63
    {9, 62, {1, 1, 3, 13, 25, 47, 39, 87, 257}},   // 64
}};

constexpr int kBits = 32;

/// Uniform integer in [0, range), range >= 1, without modulo bias (Lemire 2019).
std::uint32_t bounded(Stream& rng, std::uint32_t range) {
  std::uint64_t m = static_cast<std::uint64_t>(rng.next_u32()) * range;
  auto low = static_cast<std::uint32_t>(m);
  if (low < range) {
    const std::uint32_t threshold = (0u - range) % range;
    while (low < threshold) {
      m = static_cast<std::uint64_t>(rng.next_u32()) * range;
      low = static_cast<std::uint32_t>(m);
    }
  }
  return static_cast<std::uint32_t>(m >> 32);
}

}  // namespace

std::vector<std::uint64_t> replicate_seeds(std::uint64_t seed, std::size_t count) {
  if (count > (std::size_t{1} << 32)) {
    throw ConfigError(fmt::format("{} replicates: at most 2^32 replicate seeds can be derived", count));
  }
  std::vector<std::uint64_t> seeds;
  seeds.reserve(count);
  std::unordered_set<std::uint64_t> seen;
  for (std::size_t r = 0; r < count; ++r) {
    Stream rng(seed, Purpose::Experiment, kReplicateSeedEntity, static_cast<std::int64_t>(r));
    std::uint64_t s = rng.next_u64();
    while (!seen.insert(s).second) s = rng.next_u64();
    seeds.push_back(s);
  }
  return seeds;
}

std::vector<std::vector<std::size_t>> grid_indices(const std::vector<std::size_t>& levels) {
  constexpr std::size_t kMaxPoints = 10'000'000;
  std::size_t total = 1;
  for (std::size_t d = 0; d < levels.size(); ++d) {
    if (levels[d] == 0) throw ConfigError(fmt::format("grid dimension {} has no levels", d));
    if (total > kMaxPoints / levels[d]) {
      throw ConfigError(fmt::format("grid of more than {} points: use an lhs or sobol design", kMaxPoints));
    }
    total *= levels[d];
  }
  std::vector<std::vector<std::size_t>> points;
  points.reserve(total);
  std::vector<std::size_t> index(levels.size(), 0);
  for (std::size_t p = 0; p < total; ++p) {
    points.push_back(index);
    // Odometer increment: the last dimension turns fastest.
    for (std::size_t d = levels.size(); d-- > 0;) {
      if (++index[d] < levels[d]) break;
      index[d] = 0;
    }
  }
  return points;
}

std::vector<std::vector<double>> latin_hypercube(std::size_t points, std::size_t dims, std::uint64_t seed) {
  if (points > (std::size_t{1} << 32) - 1) throw ConfigError("latin hypercube: at most 2^32 - 1 points");
  std::vector<std::vector<double>> out(points, std::vector<double>(dims, 0.0));
  const double n = static_cast<double>(points);
  std::vector<std::uint32_t> perm(points);
  for (std::size_t d = 0; d < dims; ++d) {
    Stream rng(seed, Purpose::Experiment, kLatinHypercubeEntity, static_cast<std::int64_t>(d));
    for (std::size_t i = 0; i < points; ++i) perm[i] = static_cast<std::uint32_t>(i);
    // Fisher-Yates (Knuth, TAOCP vol. 2, algorithm 3.4.2 P), from the top down.
    for (std::size_t i = points; i > 1; --i) {
      const std::uint32_t j = bounded(rng, static_cast<std::uint32_t>(i));
      std::swap(perm[i - 1], perm[j]);
    }
    for (std::size_t i = 0; i < points; ++i) {
      // uniform() is in the open interval (0, 1): the point is strictly inside its stratum.
      double u = (static_cast<double>(perm[i]) + rng.uniform()) / n;
      // Rounding of (k + u) / n can reach the next stratum's edge only for huge n; keep it inside.
      const double upper = std::nextafter((static_cast<double>(perm[i]) + 1.0) / n, 0.0);
      out[i][d] = std::min(u, upper);
    }
  }
  return out;
}

Sobol::Sobol(std::size_t dims) : dims_(dims), x_(dims, 0u), v_(dims, std::vector<std::uint32_t>(kBits, 0u)) {
  if (dims == 0 || dims > kSobolMaxDims) {
    throw ConfigError(fmt::format("sobol design in {} dimensions: 1 to {} dimensions are supported "
                                  "(Joe & Kuo 2008 direction numbers shipped for the first {})",
                                  dims, kSobolMaxDims, kSobolMaxDims));
  }
  // Direction numbers v_[d][i-1] = m_i / 2^i as 32-bit fixed point (Joe & Kuo's notes, eq. 3).
  for (int i = 1; i <= kBits; ++i) v_[0][static_cast<std::size_t>(i - 1)] = 1u << (kBits - i);
  for (std::size_t d = 1; d < dims; ++d) {
    const JoeKuoRow& row = kJoeKuo[d - 1];
    auto& v = v_[d];
    const auto s = static_cast<int>(row.s);
    for (int i = 1; i <= std::min(s, kBits); ++i) {
      v[static_cast<std::size_t>(i - 1)] = row.m[static_cast<std::size_t>(i - 1)] << (kBits - i);
    }
    // Recurrence of the primitive polynomial x^s + a_1 x^{s-1} + ... + a_{s-1} x + 1 (Bratley & Fox 1988).
    for (int i = s + 1; i <= kBits; ++i) {
      std::uint32_t value = v[static_cast<std::size_t>(i - s - 1)] ^ (v[static_cast<std::size_t>(i - s - 1)] >> s);
      for (int k = 1; k <= s - 1; ++k) {
        if (((row.a >> (s - 1 - k)) & 1u) != 0) value ^= v[static_cast<std::size_t>(i - k - 1)];
      }
      v[static_cast<std::size_t>(i - 1)] = value;
    }
  }
}

std::vector<double> Sobol::next() {
  if (index_ >= (std::uint64_t{1} << kBits) - 1) {
    throw ModelError("sobol: more than 2^32 - 1 points requested (32-bit direction numbers)");
  }
  if (index_ > 0) {
    // Gray-code update: flip by the direction number of the rightmost zero bit of index - 1.
    const auto c = static_cast<std::size_t>(std::countr_one(index_ - 1));
    for (std::size_t d = 0; d < dims_; ++d) x_[d] ^= v_[d][c];
  }
  ++index_;
  std::vector<double> point(dims_);
  for (std::size_t d = 0; d < dims_; ++d) point[d] = static_cast<double>(x_[d]) * 0x1.0p-32;
  return point;
}

std::vector<std::vector<double>> sobol(std::size_t points, std::size_t dims) {
  Sobol seq(dims);
  std::vector<std::vector<double>> out;
  out.reserve(points);
  for (std::size_t i = 0; i < points; ++i) out.push_back(seq.next());
  return out;
}

}  // namespace piracy::design
