#pragma once
// A scener's daily choice (MODEL.md s.3 step 2): the utilities of its four actions, their logit
// weights and the draw that picks one. decide() (agents/simulation.cpp) gathers each scener's
// inputs and calls choose4_fma() for four sceners at a time (choose_one() where it cannot).
//
// Two implementations give the same results bit for bit:
//   - choose_one(), one scener after the other: the scalar code decide() ran until this header
//     was written (its utilities, exp4::logit_weights4 and the branch-free draw of
//     docs/PERFORMANCE.md 14);
//   - choose4_fma(), four sceners side by side on AVX2 + FMA, taken where exp4::fma_path() (and
//     so glibc's FMA copy of exp) is: one vector operation per step of the scalar formulas, in
//     their order, and exp4's kernel once per action for the four. One scener's chain (utilities,
//     maximum, exp, sum, draw) was ~90 dependent operations that the core could not overlap with
//     the next scener's enough: decide() was the largest of the agents' phases in the default run
//     on 1 thread (docs/PERFORMANCE.md 19).
// tests/agents/decision_test.cpp checks the two against each other.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "agents/state.hpp"
#include "engine/exp4.hpp"

namespace piracy::decision {

/// The scenario's constants of the choice.
struct Params {
  double perceived_base = 0;   //!< enforcement.detection_per_day x enforcement.perception
  double sanction = 0;         //!< enforcement.sanction
  double sell_multiplier = 1;  //!< enforcement.sell_multiplier
  double peer_catch = 0;       //!< enforcement.peer_catch
  double peer_penalty = 0;     //!< enforcement.peer_penalty
  double dormant_factor = 1;   //!< enforcement.dormant_factor
  double outside_option = 0;   //!< sceners.outside_option (the utility of retiring)
  double beta = 1;             //!< sceners.beta (logit precision)
};

/// One scener's inputs, as decide() reads them today (chill after today's decay). No default
/// member initializers: decide() declares four per call and writes each one it uses (zeroing
/// them first was ~8% of its own instructions under callgrind).
struct Inputs {
  double alpha;        //!< weight on recognition (1 - alpha on money)
  double rho;          //!< risk aversion
  double chill;        //!< perceived-risk multiplier above 1
  double recognition;  //!< recognition stock
  Expectations hat;    //!< learned (recognition, money) by action
  bool release_ok;     //!< its group can release today
  bool sell_ok;        //!< it has a site to sell on and alpha < 1
};

/// U_i(a) = alpha R^ + (1 - alpha) M^ - rho p^ S - 1[sell] pi_peer R  (MODEL.md s.3 step 2);
/// -inf for an action that is not available.
[[nodiscard]] inline std::array<double, kActions> utilities(const Inputs& in, const Params& p) noexcept {
  const double a = in.alpha;
  const double risk = in.rho * p.perceived_base * (1.0 + in.chill) * p.sanction;
  std::array<double, kActions> u{};
  u[kRelease] = in.release_ok ? a * in.hat[kRelease].r + (1 - a) * in.hat[kRelease].m - risk
                              : -std::numeric_limits<double>::infinity();
  // A scener who puts no weight on money never considers selling: the action would be strictly
  // dominated by dormancy (no payoff, more risk). (decide() folds alpha < 1 into sell_ok.)
  u[kSell] = in.sell_ok ? a * in.hat[kSell].r + (1 - a) * in.hat[kSell].m - risk * p.sell_multiplier -
                              p.peer_catch * p.peer_penalty * in.recognition
                        : -std::numeric_limits<double>::infinity();
  u[kDormant] = a * in.hat[kDormant].r + (1 - a) * in.hat[kDormant].m - risk * p.dormant_factor;
  u[kRetire] = p.outside_option;
  return u;
}

/// One scener's action for the uniform x: the first k at which x sum - w[0] - ... - w[k] < 0
/// (the last if none), Dormant if that action has weight 0 (it is unavailable). Returns -1 when
/// the weights' sum is not finite (the caller's numerical guard reports it). The sum is also
/// stored at *sum_out when given (tests compare it bit for bit).
[[nodiscard]] inline int choose_one(const Inputs& in, const Params& p, double x, double* sum_out = nullptr) noexcept {
  const auto u = utilities(in, p);
  const double umax = *std::max_element(u.begin(), u.end());
  // Weights exp(beta (u_k - umax)) (0 for an unavailable action, 1 for the best), the four at
  // once and bit for bit as the scalar loop `sum += (w[k] = ...)` gave them (engine/exp4.hpp).
  static_assert(kActions == 4, "one logit_weights4 call");
  std::array<double, kActions> w{};
  const double sum = exp4::logit_weights4(u.data(), umax, p.beta, w.data());
  if (sum_out != nullptr) *sum_out = sum;
  if (!std::isfinite(sum)) return -1;
  // Found without a branch: the partial differences only fall (w >= 0), so k is the number of
  // them, among the first kActions - 1, that are still >= 0. The same subtractions in the same
  // order as the loop `x -= w[k]; if (x < 0) break;`, whose branch, random by design,
  // mispredicted often (docs/PERFORMANCE.md 14).
  const double x0 = x * sum - w[0];
  const double x1 = x0 - w[1];
  const double x2 = x1 - w[2];
  int act = static_cast<int>(x0 >= 0) + static_cast<int>(x1 >= 0) + static_cast<int>(x2 >= 0);
  if (w[static_cast<std::size_t>(act)] == 0.0) act = kDormant;
  return act;
}

#if PIRACY_EXP4_X86
namespace detail {
/// v, hidden from the compiler: inside a function compiled for FMA, GCC fuses a product with the
/// sum or difference that uses it into one FMA (-ffp-contract=fast, its default for GNU C++),
/// which rounds once where the scalar code rounds twice. Every product below goes through here.
__attribute__((target("avx2,fma"), always_inline)) inline __m256d opaque(__m256d v) noexcept {
  asm("" : "+x"(v));
  return v;
}
/// All-ones in the lanes of k equal to v.
__attribute__((target("avx2"), always_inline)) inline __m256d is(__m256i k, long long v) noexcept {
  return _mm256_castsi256_pd(_mm256_cmpeq_epi64(k, _mm256_set1_epi64x(v)));
}
}  // namespace detail

/// choose_one() for in[0..3] with uniforms x[0..3], side by side (call it only when
/// exp4::fma_path()): act[l] is choose_one(in[l], p, x[l]) for every lane whose bit is clear in
/// the returned mask, whose bits mark the lanes whose weights' sum is not finite. The lanes'
/// sums are stored at sums[0..3] when given.
__attribute__((target("avx2,fma"))) inline unsigned choose4_fma(const Inputs* in, const Params& p, const double* x,
                                                                int* act, double* sums = nullptr) noexcept {
  using detail::opaque;
  // The lanes' fields, one scalar load each (the inputs were just stored one at a time: a
  // 32-byte load of them could not be forwarded from the store buffer).
#define PIRACY_LANES(expr) _mm256_set_pd(in[3].expr, in[2].expr, in[1].expr, in[0].expr)
#define PIRACY_MASK(flag)                                                                            \
  _mm256_castsi256_pd(_mm256_set_epi64x(-static_cast<long long>(in[3].flag), -static_cast<long long>(in[2].flag), \
                                        -static_cast<long long>(in[1].flag), -static_cast<long long>(in[0].flag)))
  const __m256d one = _mm256_set1_pd(1.0);
  const __m256d ninf = _mm256_set1_pd(-HUGE_VAL);
  const __m256d zero = _mm256_setzero_pd();
  const __m256d a = PIRACY_LANES(alpha);
  const __m256d one_m_a = _mm256_sub_pd(one, a);
  // risk = rho p^ (1 + chill) S, left to right as utilities() computes it.
  __m256d risk = opaque(_mm256_mul_pd(PIRACY_LANES(rho), _mm256_set1_pd(p.perceived_base)));
  risk = opaque(_mm256_mul_pd(risk, _mm256_add_pd(one, PIRACY_LANES(chill))));
  risk = opaque(_mm256_mul_pd(risk, _mm256_set1_pd(p.sanction)));
  // a R^ + (1 - a) M^ for each learned action.
  __m256d base[kLearnedActions];
  for (int k = 0; k < kLearnedActions; ++k) {
    const __m256d r = PIRACY_LANES(hat[static_cast<std::size_t>(k)].r);
    const __m256d m = PIRACY_LANES(hat[static_cast<std::size_t>(k)].m);
    base[k] = _mm256_add_pd(opaque(_mm256_mul_pd(a, r)), opaque(_mm256_mul_pd(one_m_a, m)));
  }
  __m256d u[kActions];
  u[kRelease] = _mm256_blendv_pd(ninf, _mm256_sub_pd(base[kRelease], risk), PIRACY_MASK(release_ok));
  const __m256d peer = opaque(_mm256_mul_pd(_mm256_set1_pd(p.peer_catch * p.peer_penalty), PIRACY_LANES(recognition)));
  u[kSell] = _mm256_blendv_pd(
      ninf,
      _mm256_sub_pd(_mm256_sub_pd(base[kSell], opaque(_mm256_mul_pd(risk, _mm256_set1_pd(p.sell_multiplier)))), peer),
      PIRACY_MASK(sell_ok));
  u[kDormant] = _mm256_sub_pd(base[kDormant], opaque(_mm256_mul_pd(risk, _mm256_set1_pd(p.dormant_factor))));
  u[kRetire] = _mm256_set1_pd(p.outside_option);
#undef PIRACY_LANES
#undef PIRACY_MASK
  // The maximum (the value choose_one() finds; a NaN lane ends with a non-finite sum either way).
  const __m256d umax = _mm256_max_pd(_mm256_max_pd(u[0], u[1]), _mm256_max_pd(u[2], u[3]));
  // Each action's weight for the four sceners, as exp4::logit_weights4_fma gives one scener's:
  // 0 where unavailable, 1 where best, exp(beta (u - umax)) otherwise (a placeholder argument in
  // the kernel's fast range for the first two).
  const __m256d beta = _mm256_set1_pd(p.beta);
  __m256d w[kActions];
  for (int k = 0; k < kActions; ++k) {
    const __m256d unavailable = _mm256_cmp_pd(u[k], ninf, _CMP_EQ_OQ);
    const __m256d best = _mm256_cmp_pd(u[k], umax, _CMP_EQ_OQ);
    const __m256d arg = _mm256_blendv_pd(opaque(_mm256_mul_pd(beta, _mm256_sub_pd(u[k], umax))), _mm256_set1_pd(-1.0),
                                         _mm256_or_pd(unavailable, best));
    w[k] = _mm256_andnot_pd(unavailable, _mm256_blendv_pd(exp4::exp4_fma_v(arg), one, best));
  }
  // sum = 0 + w0 + w1 + w2 + w3 in that order (0 + w0 is w0: w0 is +0 or positive).
  const __m256d sum = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(w[0], w[1]), w[2]), w[3]);
  if (sums != nullptr) _mm256_storeu_pd(sums, sum);
  // Not finite: sum - sum is NaN for NaN and for infinities.
  const auto bad = static_cast<unsigned>(
      _mm256_movemask_pd(_mm256_cmp_pd(_mm256_sub_pd(sum, sum), zero, _CMP_NEQ_UQ)));
  // The draw: the partial differences, and the count of those (among the first three) >= 0.
  const __m256d x0 = _mm256_sub_pd(opaque(_mm256_mul_pd(_mm256_loadu_pd(x), sum)), w[0]);
  const __m256d x1 = _mm256_sub_pd(x0, w[1]);
  const __m256d x2 = _mm256_sub_pd(x1, w[2]);
  const __m256i ge0 = _mm256_castpd_si256(_mm256_cmp_pd(x0, zero, _CMP_GE_OQ));
  const __m256i ge1 = _mm256_castpd_si256(_mm256_cmp_pd(x1, zero, _CMP_GE_OQ));
  const __m256i ge2 = _mm256_castpd_si256(_mm256_cmp_pd(x2, zero, _CMP_GE_OQ));
  __m256i k = _mm256_sub_epi64(_mm256_setzero_si256(), _mm256_add_epi64(_mm256_add_epi64(ge0, ge1), ge2));
  // The chosen action's weight; 0 means unavailable: Dormant instead.
  using detail::is;
  __m256d wk = w[0];
  wk = _mm256_blendv_pd(wk, w[1], is(k, 1));
  wk = _mm256_blendv_pd(wk, w[2], is(k, 2));
  wk = _mm256_blendv_pd(wk, w[3], is(k, 3));
  k = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(k), _mm256_castsi256_pd(_mm256_set1_epi64x(kDormant)),
                                           _mm256_cmp_pd(wk, zero, _CMP_EQ_OQ)));
  alignas(32) long long out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), k);
  for (int l = 0; l < 4; ++l) act[l] = static_cast<int>(out[l]);
  return bad;
}

// (GCC 12's false -Wuninitialized on AVX-512 intrinsics: see engine/exp4.hpp.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace detail {
/// opaque() for eight lanes.
__attribute__((target("avx512f"), always_inline)) inline __m512d opaque8(__m512d v) noexcept {
  asm("" : "+v"(v));
  return v;
}
}  // namespace detail

/// choose4_fma() on eight sceners (call it only when exp4::avx512_path()): the same operations
/// in the same order, lane by lane, on 512-bit vectors, with masks where choose4_fma() blends,
/// and exp4::exp8_avx512_v() for the weights, so act[l] is choose_one(in[l], p, x[l]) for every
/// lane whose bit is clear in the returned mask (set: the weights' sum is not finite). Half the
/// instructions of two choose4_fma() calls: decide()'s choice was over half of that phase's
/// samples, as many vector operations per scener as choose4_fma() has per call (docs/PERFORMANCE.md 23).
__attribute__((target("avx512f,avx2,fma"))) inline unsigned choose8_avx512(const Inputs* in, const Params& p,
                                                                           const double* x, int* act,
                                                                           double* sums = nullptr) noexcept {
  using detail::opaque8;
#define PIRACY_LANES8(expr) \
  _mm512_set_pd(in[7].expr, in[6].expr, in[5].expr, in[4].expr, in[3].expr, in[2].expr, in[1].expr, in[0].expr)
  const auto flags = [&](bool Inputs::*flag) {
    unsigned m = 0;
    for (unsigned l = 0; l < 8; ++l) m |= static_cast<unsigned>(in[l].*flag) << l;
    return static_cast<__mmask8>(m);
  };
  const __m512d one = _mm512_set1_pd(1.0);
  const __m512d ninf = _mm512_set1_pd(-HUGE_VAL);
  const __m512d zero = _mm512_setzero_pd();
  const __m512d a = PIRACY_LANES8(alpha);
  const __m512d one_m_a = _mm512_sub_pd(one, a);
  __m512d risk = opaque8(_mm512_mul_pd(PIRACY_LANES8(rho), _mm512_set1_pd(p.perceived_base)));
  risk = opaque8(_mm512_mul_pd(risk, _mm512_add_pd(one, PIRACY_LANES8(chill))));
  risk = opaque8(_mm512_mul_pd(risk, _mm512_set1_pd(p.sanction)));
  __m512d base[kLearnedActions];
  for (int k = 0; k < kLearnedActions; ++k) {
    const __m512d r = PIRACY_LANES8(hat[static_cast<std::size_t>(k)].r);
    const __m512d m = PIRACY_LANES8(hat[static_cast<std::size_t>(k)].m);
    base[k] = _mm512_add_pd(opaque8(_mm512_mul_pd(a, r)), opaque8(_mm512_mul_pd(one_m_a, m)));
  }
  __m512d u[kActions];
  u[kRelease] = _mm512_mask_blend_pd(flags(&Inputs::release_ok), ninf, _mm512_sub_pd(base[kRelease], risk));
  const __m512d peer = opaque8(_mm512_mul_pd(_mm512_set1_pd(p.peer_catch * p.peer_penalty), PIRACY_LANES8(recognition)));
  u[kSell] = _mm512_mask_blend_pd(
      flags(&Inputs::sell_ok), ninf,
      _mm512_sub_pd(_mm512_sub_pd(base[kSell], opaque8(_mm512_mul_pd(risk, _mm512_set1_pd(p.sell_multiplier)))), peer));
  u[kDormant] = _mm512_sub_pd(base[kDormant], opaque8(_mm512_mul_pd(risk, _mm512_set1_pd(p.dormant_factor))));
  u[kRetire] = _mm512_set1_pd(p.outside_option);
#undef PIRACY_LANES8
  // (vmaxpd on 512 bits returns its second operand where either is a NaN, as on 256 bits.)
  const __m512d umax = _mm512_max_pd(_mm512_max_pd(u[0], u[1]), _mm512_max_pd(u[2], u[3]));
  const __m512d beta = _mm512_set1_pd(p.beta);
  __m512d w[kActions];
  for (int k = 0; k < kActions; ++k) {
    const __mmask8 unavailable = _mm512_cmp_pd_mask(u[k], ninf, _CMP_EQ_OQ);
    const __mmask8 best = _mm512_cmp_pd_mask(u[k], umax, _CMP_EQ_OQ);
    const __m512d arg = _mm512_mask_blend_pd(static_cast<__mmask8>(unavailable | best),
                                             opaque8(_mm512_mul_pd(beta, _mm512_sub_pd(u[k], umax))), _mm512_set1_pd(-1.0));
    w[k] = _mm512_maskz_mov_pd(static_cast<__mmask8>(~unavailable),
                               _mm512_mask_blend_pd(best, exp4::exp8_avx512_v(arg), one));
  }
  const __m512d sum = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(w[0], w[1]), w[2]), w[3]);
  if (sums != nullptr) _mm512_storeu_pd(sums, sum);
  const unsigned bad = _mm512_cmp_pd_mask(_mm512_sub_pd(sum, sum), zero, _CMP_NEQ_UQ);
  const __m512d x0 = _mm512_sub_pd(opaque8(_mm512_mul_pd(_mm512_loadu_pd(x), sum)), w[0]);
  const __m512d x1 = _mm512_sub_pd(x0, w[1]);
  const __m512d x2 = _mm512_sub_pd(x1, w[2]);
  // k = the count of x0, x1, x2 that are >= 0.
  const __m512i one_i = _mm512_set1_epi64(1);
  __m512i k = _mm512_setzero_si512();
  k = _mm512_mask_add_epi64(k, _mm512_cmp_pd_mask(x0, zero, _CMP_GE_OQ), k, one_i);
  k = _mm512_mask_add_epi64(k, _mm512_cmp_pd_mask(x1, zero, _CMP_GE_OQ), k, one_i);
  k = _mm512_mask_add_epi64(k, _mm512_cmp_pd_mask(x2, zero, _CMP_GE_OQ), k, one_i);
  // The chosen action's weight; 0 means unavailable: Dormant instead.
  __m512d wk = w[0];
  wk = _mm512_mask_blend_pd(_mm512_cmpeq_epi64_mask(k, one_i), wk, w[1]);
  wk = _mm512_mask_blend_pd(_mm512_cmpeq_epi64_mask(k, _mm512_set1_epi64(2)), wk, w[2]);
  wk = _mm512_mask_blend_pd(_mm512_cmpeq_epi64_mask(k, _mm512_set1_epi64(3)), wk, w[3]);
  k = _mm512_mask_blend_epi64(_mm512_cmp_pd_mask(wk, zero, _CMP_EQ_OQ), k, _mm512_set1_epi64(kDormant));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(act), _mm512_cvtepi64_epi32(k));
  return bad;
}
#pragma GCC diagnostic pop
#endif

}  // namespace piracy::decision
