// exp4 must give std::exp's very bits: the scener's logit weights go through it, and any
// difference would change every result (engine/exp4.hpp).
#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/exp4.hpp"
#include "engine/rng.hpp"
#include "support/lanes.hpp"

using piracy::Purpose;
using piracy::Stream;

namespace {

// Counts the lanes whose bits differ from std::exp's, of a kernel of Lanes lanes (exp4, exp8_avx512).
template <std::size_t Lanes, class Kernel>
int mismatches_of(Kernel&& kernel, const std::array<double, Lanes>& x) {
  alignas(64) std::array<double, Lanes> y{};
  kernel(x.data(), y.data());
  int bad = 0;
  for (std::size_t l = 0; l < Lanes; ++l)
    bad += std::bit_cast<std::uint64_t>(y[l]) != std::bit_cast<std::uint64_t>(std::exp(x[l])) ? 1 : 0;
  return bad;
}
int mismatches(const std::array<double, 4>& x) {
  return mismatches_of<4>([](const double* in, double* out) { piracy::exp4::exp4(in, out); }, x);
}

// The logit arguments beta (u_k - umax) <= 0, the whole range of finite doubles, and arbitrary
// bit patterns (NaNs, infinities, subnormals: the lanes sent to std::exp).
double random_argument(Stream& rng) {
  switch (rng.next_u32() % 4) {
    case 0: return -30.0 * rng.uniform();
    case 1: return 1600.0 * rng.uniform() - 800.0;
    case 2: return (rng.uniform() - 0.5) * 1e-12;
    default: return std::bit_cast<double>(rng.next_u64());
  }
}

// Edges of the kernel's fast range and special values (24: whole groups of 4 and of 8 lanes).
std::vector<double> edge_arguments() {
  constexpr double inf = std::numeric_limits<double>::infinity();
  return {0.0, -0.0, 0x1p-54, -0x1p-54, 0x1.fffffffffffffp-55, 0x1p-53, 511.999, -511.999,
          512.0, -512.0, 709.78, -708.4, 709.8, -745.2, 1024.0, -1024.0,
          inf, -inf, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::denorm_min(),
          -1.0, 1.0, 0.5 * std::log(2.0) / 128.0, -std::log(2.0)};
}

// Every edge argument, Lanes at a time, through mismatches_of().
template <std::size_t Lanes, class Kernel>
int edge_mismatches(Kernel&& kernel) {
  return piracy::test::sum_over_groups<Lanes>(edge_arguments(),
                                              [&](const std::array<double, Lanes>& x) { return mismatches_of<Lanes>(kernel, x); });
}

}  // namespace

TEST_CASE("exp4 gives std::exp's bits", "[engine][exp4]") {
  INFO("FMA path taken: " << piracy::exp4::fma_path());
  Stream rng(2026, Purpose::Test, 41, 0);
  long bad = 0;
  for (int trial = 0; trial < 250000; ++trial) {
    std::array<double, 4> x{};
    for (auto& v : x) v = random_argument(rng);
    bad += mismatches(x);
  }
  CHECK(bad == 0);
  SECTION("edges of the kernel's fast range and special values") {
    CHECK(edge_mismatches<4>([](const double* in, double* out) { piracy::exp4::exp4(in, out); }) == 0);
  }
}

TEST_CASE("exp4 may read and write the same array", "[engine][exp4]") {
  alignas(32) std::array<double, 4> x{-1.0, -2.5, 0.0, -40.0};
  const std::array<double, 4> want{std::exp(-1.0), std::exp(-2.5), 1.0, std::exp(-40.0)};
  piracy::exp4::exp4(x.data(), x.data());
  CHECK(x == want);
}

TEST_CASE("logit_weights4 gives the scalar weights and sum bit for bit", "[engine][exp4]") {
  // The reference: decide()'s loop before exp4 (docs/PERFORMANCE.md 17).
  const auto reference = [](const std::array<double, 4>& u, double umax, double beta, std::array<double, 4>& w) {
    double sum = 0;
    for (std::size_t k = 0; k < 4; ++k)
      sum += (w[k] = u[k] == -std::numeric_limits<double>::infinity() ? 0.0
                     : u[k] == umax                                    ? 1.0
                                                                       : std::exp(beta * (u[k] - umax)));
    return sum;
  };
  constexpr double ninf = -std::numeric_limits<double>::infinity();
  Stream rng(2026, Purpose::Test, 42, 0);
  long bad = 0;
  for (int trial = 0; trial < 200000; ++trial) {
    std::array<double, 4> u{};
    for (auto& v : u) {
      switch (rng.next_u32() % 5) {
        case 0: v = ninf; break;                          // an unavailable action
        case 1: v = 0.5; break;                           // ties (several best actions)
        case 2: v = 1e-300 * rng.uniform(); break;        // arguments below the kernel's range
        default: v = 4.0 * rng.uniform() - 2.0; break;
      }
    }
    const double umax = *std::max_element(u.begin(), u.end());
    const double beta = trial % 7 == 0 ? 0.0 : trial % 11 == 0 ? 900.0 : 20.0 * rng.uniform();
    std::array<double, 4> want{}, got{};
    const double want_sum = reference(u, umax, beta, want);
    const double got_sum = piracy::exp4::logit_weights4(u.data(), umax, beta, got.data());
    bad += std::bit_cast<std::uint64_t>(want_sum) != std::bit_cast<std::uint64_t>(got_sum) ? 1 : 0;
    for (std::size_t k = 0; k < 4; ++k)
      bad += std::bit_cast<std::uint64_t>(want[k]) != std::bit_cast<std::uint64_t>(got[k]) ? 1 : 0;
  }
  CHECK(bad == 0);
}

TEST_CASE("exp8_avx512 gives std::exp's bits", "[engine][exp4]") {
#if PIRACY_EXP4_X86
  if (!piracy::exp4::avx512_path()) {
    WARN("no AVX-512F + FMA here: decide() takes four lanes, nothing to compare");
    return;
  }
  const auto kernel = [](const double* in, double* out) { piracy::exp4::exp8_avx512(in, out); };
  Stream rng(2026, Purpose::Test, 43, 0);
  long bad = 0;
  for (int trial = 0; trial < 125000; ++trial) {
    std::array<double, 8> x{};
    for (auto& v : x) v = random_argument(rng);
    bad += mismatches_of<8>(kernel, x);
  }
  CHECK(bad == 0);
  CHECK(edge_mismatches<8>(kernel) == 0);
#else
  WARN("not an x86-64 build");
#endif
}
