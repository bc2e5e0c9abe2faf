// log4 must give std::log's very bits: the release race's draws go through it, and any
// difference would change every result (engine/log4.hpp).
#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/log4.hpp"
#include "engine/rng.hpp"
#include "support/lanes.hpp"

using piracy::Purpose;
using piracy::Stream;

namespace {

// Counts the lanes whose bits differ from std::log's (NaNs compared as NaNs: their payload is
// whatever the platform's std::log gives, which the kernels return for those lanes), of a kernel
// of Lanes lanes (log4, log8_avx512).
template <std::size_t Lanes, class Kernel>
int mismatches_of(Kernel&& kernel, const std::array<double, Lanes>& x) {
  alignas(64) std::array<double, Lanes> y{};
  kernel(x.data(), y.data());
  int bad = 0;
  for (std::size_t l = 0; l < Lanes; ++l) {
    const double want = std::log(x[l]);
    if (std::isnan(want)) bad += std::isnan(y[l]) ? 0 : 1;
    else bad += std::bit_cast<std::uint64_t>(y[l]) != std::bit_cast<std::uint64_t>(want) ? 1 : 0;
  }
  return bad;
}
const auto log4_kernel = [](const double* x, double* y) { piracy::log4::log4(x[0], x[1], x[2], x[3], y); };
int mismatches(const std::array<double, 4>& x) { return mismatches_of<4>(log4_kernel, x); }

// The race's arguments (uniforms on (0, 1), including their 53-bit grid near 0), positive
// doubles of every exponent, values near 1 (the second kernel's interval and its edges) and
// arbitrary bit patterns (negative, zero, subnormal, inf, NaN: the lanes sent to std::log).
double random_argument(Stream& rng) {
  switch (rng.next_u32() % 5) {
    case 0: return rng.uniform();
    case 1: return Stream::uniform_of(rng.next_u64() >> (rng.next_u32() % 64));
    case 2: return std::bit_cast<double>(rng.next_u64() & 0x7fffffffffffffffull);
    case 3: return 0.9 + 0.2 * rng.uniform();
    default: return std::bit_cast<double>(rng.next_u64());
  }
}

// Edges of the kernels' intervals, the table's, and special values (32: whole groups of 4 and
// of 8 lanes).
std::vector<double> edge_arguments() {
  constexpr double inf = std::numeric_limits<double>::infinity();
  const double lo = std::bit_cast<double>(0x3fee000000000000ull), hi = std::bit_cast<double>(0x3ff1090000000000ull);
  return {lo, std::nextafter(lo, 0.0), hi, std::nextafter(hi, 0.0),
          1.0, std::nextafter(1.0, 0.0), std::nextafter(1.0, 2.0), 2.0,
          std::bit_cast<double>(0x3fe6000000000000ull), std::bit_cast<double>(0x3fe5ffffffffffffull), 0.5, 0.25,
          0x1p-1022, std::nextafter(0x1p-1022, 0.0), std::numeric_limits<double>::denorm_min(), 0x1p-54,
          std::numeric_limits<double>::max(), 0x1p1023, inf, 0.0,
          -0.0, -1.0, -inf, std::numeric_limits<double>::quiet_NaN(),
          0.5 * 0x1p-53, 1.0 - 0x1p-53, 0.9375, 0.9375 - 0x1p-53,
          0x1p-1074, 0x1p-1000, 0x1p1000, 3.0};
}

// Every edge argument, Lanes at a time, through mismatches_of().
template <std::size_t Lanes, class Kernel>
int edge_mismatches(Kernel&& kernel) {
  return piracy::test::sum_over_groups<Lanes>(edge_arguments(),
                                              [&](const std::array<double, Lanes>& x) { return mismatches_of<Lanes>(kernel, x); });
}

}  // namespace

TEST_CASE("log4 gives std::log's bits", "[engine][log4]") {
  INFO("FMA path taken: " << piracy::log4::fma_path());
  Stream rng(2026, Purpose::Test, 43, 0);
  long bad = 0;
  for (int trial = 0; trial < 250000; ++trial) {
    std::array<double, 4> x{};
    for (auto& v : x) v = random_argument(rng);
    bad += mismatches(x);
  }
  CHECK(bad == 0);
  SECTION("edges of the kernels' intervals, the table's, and special values") {
    CHECK(edge_mismatches<4>(log4_kernel) == 0);
  }
}

TEST_CASE("log8_avx512 gives std::log's bits", "[engine][log4]") {
#if PIRACY_LOG4_X86
  if (!piracy::log4::avx512_path()) {
    WARN("no AVX-512F + FMA here: the race takes four lanes, nothing to compare");
    return;
  }
  const auto kernel = [](const double* x, double* y) { piracy::log4::log8_avx512(x, y); };
  Stream rng(2026, Purpose::Test, 44, 0);
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
