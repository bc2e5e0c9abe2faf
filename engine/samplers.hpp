#pragma once
// Random variate generators on top of piracy::Stream.
//
// Why not <random>: the std:: distributions are specified by their output law, not by their
// algorithm, so libstdc++, libc++ and MSVC give different numbers for the same engine state
// (Catch2 ships its own samplers for the same reason). The model needs the same result on
// every platform and thread count, so it implements the few samplers it uses and pins them
// with known-answer tests (tests/engine/samplers_test.cpp).
//
// Contract of every sampler:
//   - it takes the Stream by reference and consumes a number of draws that is a function of
//     its inputs and of the stream's values only (documented per sampler: "draws" below
//     counts Stream::uniform() calls, each 2 u32; rejection methods say what one attempt
//     costs);
//   - it allocates nothing (except the AliasTable constructor) and calls nothing virtual;
//   - invalid parameters (NaN, infinities, negative scales...) throw piracy::ModelError with
//     a message naming the sampler, the parameter and its value: they are model bugs, and
//     silently returning NaN would poison a whole run.
// Caveat on bit-identity: the samplers use std::log, std::exp, std::cos, std::sqrt and
// std::pow. sqrt is exact (IEEE 754); the others come from the platform's libm, which is
// not required to round correctly, so a different libm may change a last bit (and, very
// rarely, an accept/reject decision). Same libm + same inputs => same bits.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <vector>

#include "engine/log4.hpp"
#include "engine/rng.hpp"

namespace piracy::sample {

namespace detail {

/// Throws ModelError("sample::<sampler>: <parameter> = <value> is invalid: <requirement>").
/// Out of line and cold so that the inline samplers stay small.
[[noreturn]] void invalid_parameter(const char* sampler, const char* parameter, double value,
                                    const char* requirement);

/// Throws ModelError("sample::uniform: interval [a, b) = [<a>, <b>) is invalid: ...").
[[noreturn]] void invalid_interval(double a, double b);

/// High 64 bits of the 128-bit product a*b, written out portably (no __int128, no _umul128).
inline std::uint64_t mul_hi_64(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
  const std::uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
  const std::uint64_t lo_lo = a_lo * b_lo;
  const std::uint64_t hi_lo = a_hi * b_lo;
  const std::uint64_t lo_hi = a_lo * b_hi;
  const std::uint64_t hi_hi = a_hi * b_hi;
  const std::uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi;
  return hi_hi + (hi_lo >> 32) + (cross >> 32);
}

/// log(k!) for integer-valued k >= 0, as Stirling's formula plus stirling_correction(k):
/// accurate to the rounding of its few operations (~1e-16 relative). Thread-safe, unlike
/// std::lgamma, which writes the global `signgam` in glibc.
double log_factorial(double k) noexcept;

/// Stirling correction fc(k) = log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi)/2],
/// the function "fc" of Hörmann (1993) for BTRD: a table below k = 32, Stirling's series
/// above (truncation error < 4e-20).
double stirling_correction(double k) noexcept;

inline void check_exponential_rate(double rate) {
  if (!(rate > 0.0) || !std::isfinite(rate)) invalid_parameter("exponential", "rate", rate, "need finite rate > 0");
}

}  // namespace detail

/// Uniform on [a, b). Draws: 1. Requires finite a <= b (b - a finite); a == b returns a.
inline double uniform(Stream& s, double a, double b) {
  if (!(a <= b) || !std::isfinite(b - a)) detail::invalid_interval(a, b);
  const double x = a + (b - a) * s.uniform();
  // u < 1, but a + (b - a) * u can still round up to b; keep the interval half-open.
  return x < b ? x : (a < b ? std::nextafter(b, a) : a);
}

/// Uniform integer in {0, ..., n-1}, exactly unbiased: Lemire (2019), "Fast random integer
/// generation in an interval", ACM TOMACS 29(1). Multiply-shift with a rejection step that
/// fires with probability (2^32 mod n) / 2^32 for n <= 2^32 (< 2.4e-7 for n <= 1000), and
/// (2^64 mod n) / 2^64 above. Draws: one u32 per attempt when n <= 2^32, one u64 per
/// attempt above; expected attempts < 2 always, ~1 for n << 2^32. Requires n >= 1.
inline std::size_t uniform_index(Stream& s, std::size_t n) {
  if (n == 0) detail::invalid_parameter("uniform_index", "n", 0.0, "need n >= 1");
  const std::uint64_t range = n;
  if (range <= 0x100000000ull) {
    std::uint64_t m = static_cast<std::uint64_t>(s.next_u32()) * range;
    auto low = static_cast<std::uint32_t>(m);
    if (low < range) {
      // (2^32 - n) mod n, computed in 64 bits so that n = 2^32 works (threshold 0).
      const std::uint64_t threshold = (0x100000000ull - range) % range;
      while (low < threshold) {
        m = static_cast<std::uint64_t>(s.next_u32()) * range;
        low = static_cast<std::uint32_t>(m);
      }
    }
    return static_cast<std::size_t>(m >> 32);
  }
  std::uint64_t x = s.next_u64();
  std::uint64_t low = x * range;  // low 64 bits of the 128-bit product
  if (low < range) {
    const std::uint64_t threshold = (0 - range) % range;  // 2^64 mod n
    while (low < threshold) {
      x = s.next_u64();
      low = x * range;
    }
  }
  return static_cast<std::size_t>(detail::mul_hi_64(x, range));
}

/// True with probability p. Draws: always 1 (also for p <= 0, which gives false, and
/// p >= 1, which gives true), so that stream positions do not depend on p's value.
/// NaN throws.
inline bool bernoulli(Stream& s, double p) {
  if (std::isnan(p)) detail::invalid_parameter("bernoulli", "p", p, "need a probability");
  return s.uniform() < p;  // u in (0,1): p <= 0 never, p >= 1 always
}

/// Normal(mean, sd) by the Box-Muller transform (Box & Muller 1958, Ann. Math. Stat. 29).
/// The second variate of the pair is discarded rather than cached, so that each call is
/// self-contained (no hidden state in a Stream-free sampler). Draws: 2.
/// Requires finite mean and finite sd >= 0 (sd == 0 returns mean, still drawing 2).
inline double normal(Stream& s, double mean = 0.0, double sd = 1.0) {
  if (!std::isfinite(mean)) detail::invalid_parameter("normal", "mean", mean, "need finite");
  if (!(sd >= 0.0) || !std::isfinite(sd)) {
    detail::invalid_parameter("normal", "sd", sd, "need finite sd >= 0");
  }
  const double u1 = s.uniform();  // in (0,1): log(u1) is finite
  const double u2 = s.uniform();
  const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  return mean + sd * z;
}

/// Exponential with the given rate (mean 1/rate), by inversion. Draws: 1.
/// Requires finite rate > 0. The result is > 0 (u < 1).
inline double exponential(Stream& s, double rate) {
  detail::check_exponential_rate(rate);  // before the draw: a failed call consumes nothing
  return -std::log(s.uniform()) / rate;
}

/// exponential()'s value when the uniform u it draws has log(u) = log_u (for draws taken in
/// batches: StreamBatch::fill_blocks, log4::log4).
inline double exponential_of_log(double log_u, double rate) {
  detail::check_exponential_rate(rate);
  return -log_u / rate;
}

/// Lognormal: exp(Normal(mu, sigma)); mu and sigma are the mean and sd of the logarithm.
/// Draws: 2. Requires finite mu and finite sigma >= 0.
inline double lognormal(Stream& s, double mu, double sigma) {
  if (!std::isfinite(mu)) detail::invalid_parameter("lognormal", "mu", mu, "need finite");
  if (!(sigma >= 0.0) || !std::isfinite(sigma)) {
    detail::invalid_parameter("lognormal", "sigma", sigma, "need finite sigma >= 0");
  }
  return std::exp(normal(s, mu, sigma));
}

/// Gamma(shape, scale) (mean shape*scale) by Marsaglia & Tsang (2000), "A simple method for
/// generating gamma variables", ACM TOMS 26(3); for shape < 1 their boost
/// Gamma(a) = Gamma(a+1) * U^(1/a). Draws per attempt: 2 (the normal) + 1 (the acceptance
/// uniform, skipped when 1 + c x <= 0); measured: 3.15 draws per call at shape 1, 3.01 at
/// shape 7; shape < 1 adds 1 draw at the end. Requires finite shape > 0 and finite scale > 0.
/// Very small shapes (< ~0.01) can return 0 (U^(1/a) underflows); beta() is immune.
double gamma(Stream& s, double shape, double scale);

/// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b) (drawn in that order),
/// computed from log X and log Y so that small shapes do not give 0/0.
/// Draws: those of the two gammas. Requires finite a > 0 and b > 0. Result in [0, 1]
/// (an endpoint only when one gamma is smaller than the other by a factor > 2^53).
double beta(Stream& s, double a, double b);

/// Poisson(mean). mean < 10: inversion by sequential search (draws: exactly 1);
/// mean >= 10: PTRS, Hörmann (1993), "The transformed rejection method for generating
/// Poisson random variables", Insurance: Mathematics and Economics 12(1) -- 2 draws per
/// attempt; measured: 2.65 draws per call at mean 10, 2.26 at mean 5000.
/// mean <= 0 returns 0 and draws nothing; NaN or +infinity throws.
std::uint64_t poisson(Stream& s, double mean);

/// Binomial(n, p). p > 0.5 is sampled as n - Binomial(n, 1 - p). With p' = min(p, 1-p):
/// n p' < 10: inversion by sequential search (draws: exactly 1); otherwise BTRD,
/// Hörmann (1993), "The generation of binomial random variates", J. Statist. Comput.
/// Simul. 46 -- 1 or 2 draws per attempt; measured: 2.19 draws per call at n p = 10,
/// 1.54 at n = 1000, p = 0.3.
/// n == 0, p <= 0 (-> 0) and p >= 1 (-> n) draw nothing; NaN p throws.
/// n above 2^53 is handled in floating point (the law, not every integer, is exact).
std::uint64_t binomial(Stream& s, std::uint64_t n, double p);

/// Index i with probability weights[i] / sum(weights), by inversion over the running sum:
/// O(n) per call (two passes: validation and sum, then search). Draws: exactly 1. A zero
/// weight is never returned. Throws ModelError if weights is empty, any weight is negative,
/// NaN or infinite, or the sum is not positive and finite. For many draws from the same
/// weights, build an AliasTable instead.
std::size_t categorical(Stream& s, std::span<const double> weights);

/// Many draws with exactly the draws and results of categorical() on the same weights: the running
/// sums are accumulated once, in categorical()'s order, and each draw is a binary search
/// (O(log n) instead of O(n)). For code that must keep categorical()'s results while drawing
/// repeatedly from one set of weights (AliasTable draws differently).
class CumulativeTable {
 public:
  /// Same validation as categorical(). Allocates 8 bytes per weight.
  explicit CumulativeTable(std::span<const double> weights);
  /// Draws: one uniform, as categorical().
  [[nodiscard]] std::size_t sample(Stream& s) const;
  [[nodiscard]] std::size_t size() const noexcept { return running_.size(); }

 private:
  std::vector<double> running_;     //!< running_[i] = w_0 + ... + w_i, left to right
  std::size_t last_positive_ = 0;   //!< largest i with w_i > 0
};

/// Vose's alias method (Vose 1991, "A linear algorithm for generating random numbers with a
/// given distribution", IEEE TSE 17(9)): O(n) construction, O(1) sampling. Same law as
/// categorical() (but not the same draws: do not mix them up in known-answer tests).
class AliasTable {
 public:
  /// An empty table: assign() it before sampling.
  AliasTable() = default;
  /// Same validation as categorical(). Allocates 20 bytes per weight.
  explicit AliasTable(std::span<const double> weights) { assign(weights); }

  /// Rebuilds the table for new weights, reusing its storage (a table rebuilt every day for
  /// ~100,000 groups allocated 4.5 MB of fresh pages each time). Same validation as the
  /// constructor; the table is left empty when it throws.
  void assign(std::span<const double> weights);

  /// Draws: those of uniform_index(size()) (one u32 in practice) + 1 uniform (the coin).
  [[nodiscard]] std::size_t sample(Stream& s) const {
    const std::size_t i = uniform_index(s, cells_.size());
    const Cell& cell = cells_[i];
    return s.uniform() < cell.keep ? i : cell.alias;
  }
  [[nodiscard]] std::size_t size() const noexcept { return cells_.size(); }

 private:
  struct Cell {
    double keep;          //!< probability of returning this cell's own index
    std::uint32_t alias;  //!< index returned otherwise
  };
  std::vector<Cell> cells_;
  std::vector<std::uint32_t> work_;  //!< construction scratch: the small and large worklists
};

/// The index after i of the next success of a Bernoulli(a) sequence, by geometric skipping
/// (Devroye 1986, ch. X.2: the gap is Geometric(a)), for a uniform u with log(u) = log_u and
/// log1m_a = log(1 - a) (-1e300 for a = 1). An index past 1e15 is returned as INT64_MAX / 2.
inline std::int64_t geometric_skip_by(double gap, std::int64_t i) noexcept;
inline std::int64_t geometric_skip(double log_u, std::int64_t i, double log1m_a) noexcept {
  return geometric_skip_by(std::floor(log_u / log1m_a), i);
}
/// geometric_skip() for its gap floor(log_u / log1m_a), computed by the caller.
inline std::int64_t geometric_skip_by(double gap, std::int64_t i) noexcept {
  if (!(gap < 1e15)) return std::numeric_limits<std::int64_t>::max() / 2;
  return i + 1 + static_cast<std::int64_t>(gap);
}

/// Whether the model's 8-lane kernels run (decide()'s choose8_avx512 and timed_attempts()'s
/// attempt_draws8): the FMA path on a CPU with AVX-512F and DQ (64-bit integer conversions),
/// where the random streams take their AVX-512 path too (AMD CPUs, unless PIRACY_RNG_PATH names
/// another path: the precaution of engine/rng.hpp). One rule for both, decided once per process;
/// the values are the same on every path, only the speed changes (docs/PERFORMANCE.md 23).
[[nodiscard]] inline bool avx512_kernels() noexcept {
#if PIRACY_LOG4_X86
  static const bool ok = log4::avx512_path() && __builtin_cpu_supports("avx512dq") &&
                         StreamBatch::default_path() == StreamBatch::Path::Avx512;
  return ok;
#else
  return false;
#endif
}

namespace detail {
#if PIRACY_LOG4_X86
// (GCC 12's false -Wuninitialized on AVX-512 intrinsics: see engine/exp4.hpp.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
/// The draws of attempts j < 4 from blocks l0 + j of `blocks`: out[j] = floor(log(u0) / log1m_a),
/// the gap geometric_skip() computes from the uniform u0 of words 0-1, and out[4 + j] =
/// -log(u1) / rate, exponential_of_log()'s finish time from the uniform u1 of words 2-3; bit for
/// bit, lane by lane: the uniform is Stream::uniform_of()'s integer shift, exact conversion and
/// exact scaling, the logarithm log4::log8_avx512_v(), then one division (the finish lanes'
/// logarithms negated first, as -log_u / rate reads) and floor by rounding towards -inf. The
/// eight words of each kind are read with one load each. Taken out of the attempts' loop, the
/// divisions no longer wait one after the other: their latency was a third of that loop's
/// samples (perf annotate, docs/PERFORMANCE.md 23).
///
/// draws8<kFinish>() is that computation with the lanes of mask kFinish finish times and the
/// others gaps: attempt_draws8() is draws8<0xF0>, and draws8<0x00> gives eight gaps, those of
/// uniforms 0 and 1 of four blocks (attempts() below: one uniform per attempt).
template <unsigned kFinish>
__attribute__((target("avx512f,avx512dq,avx2,fma"))) inline void draws8(const StreamBatch& blocks, std::size_t l0,
                                                                         double log1m_a, double rate, double* out) noexcept {
#define PIRACY_WORDS4(w) _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks.words(w) + l0))
  const __m512i hi = _mm512_inserti64x4(_mm512_castsi256_si512(PIRACY_WORDS4(0)), PIRACY_WORDS4(2), 1);
  const __m512i lo = _mm512_inserti64x4(_mm512_castsi256_si512(PIRACY_WORDS4(1)), PIRACY_WORDS4(3), 1);
#undef PIRACY_WORDS4
  const __m512i bits = _mm512_or_si512(_mm512_slli_epi64(hi, 32), _mm512_and_si512(lo, _mm512_set1_epi64(0xffffffff)));
  // (bits >> 11 < 2^53: converted exactly, as static_cast<double> does.)
  const __m512d u = _mm512_mul_pd(_mm512_add_pd(_mm512_cvtepi64_pd(_mm512_srli_epi64(bits, 11)), _mm512_set1_pd(0.5)),
                                  _mm512_set1_pd(0x1.0p-53));
  const __m512d logs = log4::log8_avx512_v(u);
  // The finish lanes negated (the sign bit flipped: exactly unary minus), then divided by rate;
  // the gap lanes divided by log1m_a, then floored.
  constexpr auto finish = static_cast<__mmask8>(kFinish);
  constexpr auto gap = static_cast<__mmask8>(~kFinish & 0xFFu);
  const __m512d num = _mm512_castsi512_pd(_mm512_mask_xor_epi64(
      _mm512_castpd_si512(logs), finish, _mm512_castpd_si512(logs), _mm512_set1_epi64(static_cast<long long>(0x8000000000000000ull))));
  const __m512d den = _mm512_mask_blend_pd(finish, _mm512_set1_pd(log1m_a), _mm512_set1_pd(rate));
  const __m512d q = _mm512_div_pd(num, den);
  _mm512_storeu_pd(out, _mm512_mask_roundscale_pd(q, gap, q, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
}
__attribute__((target("avx512f,avx512dq,avx2,fma"))) inline void attempt_draws8(const StreamBatch& blocks, std::size_t l0,
                                                                                 double log1m_a, double rate,
                                                                                 double* out) noexcept {
  draws8<0xF0>(blocks, l0, log1m_a, rate, out);
}
#pragma GCC diagnostic pop
#endif
/// Calls body(blocks, l0) for blocks l0 .. l0 + 3 of one stream, four by four from its first
/// block, until body returns false: the blocks computed in batches of 4, then 8, then
/// StreamBatch::kLanes (most of the race's ranges need few blocks), as timed_attempts() and
/// attempts() read them.
template <class Body>
void for_block_quads(StreamBatch& blocks, std::uint64_t seed, Purpose purpose, std::uint64_t entity, std::int64_t tick,
                     Body&& body) {
  for (std::uint32_t first = 0;; first += static_cast<std::uint32_t>(blocks.size())) {
    if (first == 0) blocks.fill_blocks<4>(seed, purpose, entity, tick, first);
    else if (first == 4) blocks.fill_blocks<8>(seed, purpose, entity, tick, first);
    else blocks.fill_blocks(seed, purpose, entity, tick, first);
    for (std::size_t l0 = 0; l0 < blocks.size(); l0 += 4)
      if (!body(static_cast<const StreamBatch&>(blocks), l0)) return;
  }
}
}  // namespace detail

/// The timed attempts of the release race (agents/simulation.cpp, race()): the successes k of
/// a Bernoulli(a) sequence over lo <= k < hi, found by geometric skipping, each with an
/// Exponential(rate) finish time; push(k, time) for each, in order. Its definition is this loop
/// on one stream (timed_attempts_reference() below):
///   Stream rng(seed, purpose, entity, tick);
///   for (k = skip(log(rng.uniform()), lo - 1); k < hi; k = skip(log(rng.uniform()), k))
///     push(k, exponential(rng, rate));
/// so attempt j reads block j of the stream: words 0-1 the uniform of its gap, words 2-3 that of
/// its finish time. Here the blocks are computed 4, then 8, then 16 at a time
/// (StreamBatch::fill_blocks: in the default run a third of the race's ranges read 1 block,
/// another third 2 to 4, 15% 5 to 8 and 18% more) and the logarithms of four attempts' uniforms
/// at a time (log4: glibc's log, bit for bit). Blocks past the loop's exit are never read, so
/// the values are the loop's (tests/engine/samplers_test.cpp); the blocks one by one and two
/// calls of log per attempt were ~10% of the default run's instructions (docs/PERFORMANCE.md 18).
/// Draws: none from a caller's stream. Requires finite rate > 0 (checked at the first attempt,
/// as exponential() does) and hi - lo < 2^24 (a stream's limit).

template <class Push>
void timed_attempts(StreamBatch& blocks, std::uint64_t seed, Purpose purpose, std::uint64_t entity,
                    std::int64_t tick, std::int64_t lo, std::int64_t hi, double log1m_a, double rate, Push&& push) {
  std::int64_t k = lo - 1;
  detail::for_block_quads(blocks, seed, purpose, entity, tick, [&](const StreamBatch& b, std::size_t l0) {
#if PIRACY_LOG4_X86
    if (avx512_kernels()) {
      // draws[j]: attempt j's gap; draws[4 + j]: its finish time.
      alignas(64) std::array<double, 8> draws;
      detail::attempt_draws8(b, l0, log1m_a, rate, draws.data());
      for (std::size_t j = 0; j < 4; ++j) {
        k = geometric_skip_by(draws[j], k);
        if (k >= hi) return false;
        detail::check_exponential_rate(rate);
        push(k, draws[4 + j]);
      }
      return true;
    }
#endif
    std::array<double, 4> log_gap, log_finish;
    log4::log4(b.uniform(l0, 0), b.uniform(l0 + 1, 0), b.uniform(l0 + 2, 0), b.uniform(l0 + 3, 0), log_gap.data());
    log4::log4(b.uniform(l0, 1), b.uniform(l0 + 1, 1), b.uniform(l0 + 2, 1), b.uniform(l0 + 3, 1), log_finish.data());
    for (std::size_t j = 0; j < 4; ++j) {
      k = geometric_skip(log_gap[j], k, log1m_a);
      if (k >= hi) return false;
      push(k, exponential_of_log(log_finish[j], rate));
    }
    return true;
  });
}

/// The attempts of the P2P groups (agents/simulation.cpp, p2p_releases()): the successes k of a
/// Bernoulli(a) sequence over lo <= k < hi, found by geometric skipping; push(k) for each, in
/// order. Its definition is this loop on one stream (attempts_reference() below):
///   Stream rng(seed, purpose, entity, tick);
///   for (k = skip(log(rng.uniform()), lo - 1); k < hi; k = skip(log(rng.uniform()), k)) push(k);
/// so attempt j reads uniform j of the stream: block j / 2, words 0-1 for even j, 2-3 for odd j.
/// The blocks come in batches and the logarithms (and, on the 8-lane path, the divisions and
/// floors) eight or four attempts at a time, as in timed_attempts(): one attempt after the
/// other, each division waited for its logarithm and the loop's exit for the division (27% of
/// p2p_releases()'s samples, docs/PERFORMANCE.md 24). Blocks past the loop's exit are never
/// read, so the values are the loop's (tests/engine/samplers_test.cpp). Draws: none from a
/// caller's stream. Requires hi - lo < 2^25 (a stream's limit, two attempts a block).
template <class Push>
void attempts(StreamBatch& blocks, std::uint64_t seed, Purpose purpose, std::uint64_t entity, std::int64_t tick,
              std::int64_t lo, std::int64_t hi, double log1m_a, Push&& push) {
  std::int64_t k = lo - 1;
  detail::for_block_quads(blocks, seed, purpose, entity, tick, [&](const StreamBatch& b, std::size_t l0) {
#if PIRACY_LOG4_X86
    if (avx512_kernels()) {
      // gaps[4 * h + q]: the gap of uniform h of block l0 + q, attempt 2 * q + h.
      alignas(64) std::array<double, 8> gaps;
      detail::draws8<0x00>(b, l0, log1m_a, 1.0, gaps.data());
      for (std::size_t j = 0; j < 8; ++j) {
        k = geometric_skip_by(gaps[4 * (j & 1) + (j >> 1)], k);
        if (k >= hi) return false;
        push(k);
      }
      return true;
    }
#endif
    for (std::size_t q = l0; q < l0 + 4; q += 2) {
      std::array<double, 4> log_u;
      log4::log4(b.uniform(q, 0), b.uniform(q, 1), b.uniform(q + 1, 0), b.uniform(q + 1, 1), log_u.data());
      for (std::size_t j = 0; j < 4; ++j) {
        k = geometric_skip(log_u[j], k, log1m_a);
        if (k >= hi) return false;
        push(k);
      }
    }
    return true;
  });
}

/// attempts() as its definition reads: one draw after the other (tests and benchmarks).
template <class Push>
void attempts_reference(std::uint64_t seed, Purpose purpose, std::uint64_t entity, std::int64_t tick, std::int64_t lo,
                        std::int64_t hi, double log1m_a, Push&& push) {
  Stream rng(seed, purpose, entity, tick);
  for (std::int64_t k = geometric_skip(std::log(rng.uniform()), lo - 1, log1m_a); k < hi;
       k = geometric_skip(std::log(rng.uniform()), k, log1m_a))
    push(k);
}

/// timed_attempts() as its definition reads: one draw after the other (tests and benchmarks).
template <class Push>
void timed_attempts_reference(std::uint64_t seed, Purpose purpose, std::uint64_t entity, std::int64_t tick,
                              std::int64_t lo, std::int64_t hi, double log1m_a, double rate, Push&& push) {
  Stream rng(seed, purpose, entity, tick);
  for (std::int64_t k = geometric_skip(std::log(rng.uniform()), lo - 1, log1m_a); k < hi;
       k = geometric_skip(std::log(rng.uniform()), k, log1m_a))
    push(k, exponential(rng, rate));
}

}  // namespace piracy::sample
