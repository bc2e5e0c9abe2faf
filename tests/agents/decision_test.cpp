// The scener's daily choice (agents/decision.hpp): the four-at-a-time kernel decide() takes on
// FMA machines must give choose_one()'s action for every scener, bit for bit in what it computes
// (any difference would change every result), and choose_one() must follow MODEL.md s.3 step 2.
#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <cstdint>
#include <cmath>
#include <limits>

#include "agents/decision.hpp"
#include "engine/rng.hpp"
#include "engine/samplers.hpp"

using piracy::Purpose;
using piracy::Stream;
namespace decision = piracy::decision;

namespace {

decision::Inputs random_inputs(Stream& rng, double scale) {
  decision::Inputs in{};
  const double pick = rng.uniform();
  in.alpha = pick < 0.1 ? 0.0 : pick < 0.2 ? 1.0 : rng.uniform();
  in.rho = std::exp(piracy::sample::normal(rng, 0.0, 1.0));
  in.chill = 3 * rng.uniform();
  in.recognition = scale * rng.uniform();
  for (auto& h : in.hat) {
    h.r = static_cast<float>(scale * piracy::sample::normal(rng, 0.0, 1.0));
    h.m = static_cast<float>(scale * piracy::sample::normal(rng, 0.0, 1.0));
  }
  // Ties between actions' utilities (equal learned values), which make two weights exactly 1.
  if (rng.uniform() < 0.1) in.hat[piracy::kDormant] = in.hat[piracy::kRelease];
  in.release_ok = rng.uniform() < 0.8;
  in.sell_ok = rng.uniform() < 0.6 && in.alpha < 1.0;
  return in;
}

}  // namespace

TEST_CASE("choose_one follows the logit rule over the available actions", "[agents][decision]") {
  decision::Params p;
  p.perceived_base = 0.01;
  p.sanction = 100;
  p.sell_multiplier = 3;
  p.peer_catch = 0.1;
  p.peer_penalty = 0.5;
  p.dormant_factor = 0.2;
  p.outside_option = -1;
  p.beta = 2;
  decision::Inputs in{};
  in.alpha = 0.25;
  in.rho = 2;
  in.chill = 0.5;
  in.recognition = 4;
  in.hat[piracy::kRelease] = {8, 0};
  in.hat[piracy::kSell] = {0, 12};
  in.hat[piracy::kDormant] = {1, 1};
  in.release_ok = true;
  in.sell_ok = true;
  // risk = 2 x 0.01 x 1.5 x 100 = 3
  const auto u = decision::utilities(in, p);
  CHECK(u[piracy::kRelease] == Approx(0.25 * 8 - 3));
  CHECK(u[piracy::kSell] == Approx(0.75 * 12 - 3 * 3 - 0.1 * 0.5 * 4));
  CHECK(u[piracy::kDormant] == Approx(1 - 3 * 0.2));
  CHECK(u[piracy::kRetire] == -1);
  // The weights' shares: x below the first share picks the first action, and so on.
  std::array<double, 4> w{};
  double sum = 0;
  const double umax = std::max({u[0], u[1], u[2], u[3]});
  for (std::size_t k = 0; k < 4; ++k) sum += (w[k] = std::exp(p.beta * (u[k] - umax)));
  double cum = 0;
  for (int k = 0; k < 4; ++k) {
    const double mid = (cum + w[static_cast<std::size_t>(k)] / 2) / sum;
    CHECK(decision::choose_one(in, p, mid) == k);
    cum += w[static_cast<std::size_t>(k)];
  }
  // An unavailable action is never chosen, whatever the draw.
  in.release_ok = false;
  in.sell_ok = false;
  for (double x : {1e-9, 0.3, 0.6, 0.999999}) {
    const int act = decision::choose_one(in, p, x);
    CHECK(act != piracy::kRelease);
    CHECK(act != piracy::kSell);
  }
  // A non-finite utility is reported, not chosen from.
  in.hat[piracy::kDormant].r = std::numeric_limits<float>::quiet_NaN();
  CHECK(decision::choose_one(in, p, 0.5) == -1);
}

#if PIRACY_EXP4_X86
namespace {

// Compares a kernel of Lanes sceners side by side (choose4_fma, choose8_avx512) with
// choose_one() lane by lane on random scenarios, inputs and draws, non-finite ones included.
template <std::size_t Lanes, class Kernel>
void compare_with_choose_one(Kernel&& kernel, std::uint64_t entity) {
  Stream rng(2026, Purpose::Test, entity, 0);
  long compared = 0, bad_lanes = 0, differ = 0, bad_differ = 0;
  std::array<long, 4> chosen{};
  for (int round = 0; round < static_cast<int>(160000 / Lanes); ++round) {
    decision::Params p;
    const double scale = std::pow(10.0, -3 + 6 * rng.uniform());
    p.perceived_base = 1e-4 * rng.uniform();
    p.sanction = 1e4 * rng.uniform();
    p.sell_multiplier = 1 + 4 * rng.uniform();
    p.peer_catch = rng.uniform();
    p.peer_penalty = rng.uniform();
    p.dormant_factor = rng.uniform();
    p.outside_option = rng.uniform() < 0.5 ? 0.0 : scale * piracy::sample::normal(rng, 0.0, 1.0);
    const double b = rng.uniform();
    p.beta = b < 0.05 ? 0.0 : b < 0.1 ? 1e4 : std::pow(10.0, -2 + 4 * rng.uniform());
    std::array<decision::Inputs, Lanes> in{};
    std::array<double, Lanes> x{};
    for (std::size_t l = 0; l < Lanes; ++l) {
      in[l] = random_inputs(rng, scale);
      x[l] = rng.uniform();
      // Now and then a non-finite input, which both must report.
      if (rng.uniform() < 0.002) in[l].hat[piracy::kRelease].m = std::numeric_limits<float>::infinity();
      if (rng.uniform() < 0.002) in[l].recognition = std::numeric_limits<double>::quiet_NaN();
    }
    std::array<int, Lanes> act{};
    std::array<double, Lanes> sums{};
    const unsigned bad = kernel(in.data(), p, x.data(), act.data(), sums.data());
    for (std::size_t l = 0; l < Lanes; ++l) {
      double want_sum = 0;
      const int want = decision::choose_one(in[l], p, x[l], &want_sum);
      const bool lane_bad = (bad >> l) & 1u;
      if (want < 0) {
        ++bad_lanes;
        if (!lane_bad) ++bad_differ;
        continue;
      }
      if (lane_bad) { ++bad_differ; continue; }
      ++compared;
      ++chosen[static_cast<std::size_t>(want)];
      // The sum carries every weight's bits (and through them the utilities' and the maximum's).
      if (act[l] != want || std::bit_cast<std::uint64_t>(sums[l]) != std::bit_cast<std::uint64_t>(want_sum)) ++differ;
    }
  }
  INFO(compared << " lanes compared, " << bad_lanes << " non-finite");
  CHECK(differ == 0);
  CHECK(bad_differ == 0);
  CHECK(bad_lanes > 0);
  // Every action was chosen often enough for the comparison to mean something.
  for (long c : chosen) CHECK(c > 5000);
}

}  // namespace
#endif

TEST_CASE("choose4_fma gives choose_one's action for each of its four sceners", "[agents][decision]") {
#if PIRACY_EXP4_X86
  if (!piracy::exp4::fma_path()) {
    WARN("no AVX2 + FMA here: decide() runs choose_one() alone, nothing to compare");
    return;
  }
  compare_with_choose_one<4>(
      [](const decision::Inputs* in, const decision::Params& p, const double* x, int* act, double* sums) {
        return decision::choose4_fma(in, p, x, act, sums);
      },
      47);
#else
  WARN("not an x86-64 build: decide() runs choose_one() alone");
#endif
}

TEST_CASE("choose8_avx512 gives choose_one's action for each of its eight sceners", "[agents][decision]") {
#if PIRACY_EXP4_X86
  if (!piracy::exp4::avx512_path()) {
    WARN("no AVX-512F + FMA here: decide() takes four sceners at a time, nothing to compare");
    return;
  }
  compare_with_choose_one<8>(
      [](const decision::Inputs* in, const decision::Params& p, const double* x, int* act, double* sums) {
        return decision::choose8_avx512(in, p, x, act, sums);
      },
      53);
#else
  WARN("not an x86-64 build: decide() runs choose_one() alone");
#endif
}
