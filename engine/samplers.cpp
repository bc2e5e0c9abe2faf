// Random variate generators: the out-of-line half of engine/samplers.hpp (the methods with
// setup costs or rejection loops). See the header for the contract and the draw counts.
#include "engine/samplers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>

#include "engine/error.hpp"

namespace piracy::sample {

namespace {
constexpr double kHalfLog2Pi = 0.9189385332046728;  // log(2 pi) / 2
}  // namespace

namespace detail {

void invalid_parameter(const char* sampler, const char* parameter, double value,
                       const char* requirement) {
  throw ModelError(fmt::format("sample::{}: {} = {} is invalid: {}", sampler, parameter, value,
                               requirement));
}

void invalid_interval(double a, double b) {
  throw ModelError(fmt::format(
      "sample::uniform: interval [a, b) = [{}, {}) is invalid: need finite a <= b", a, b));
}

namespace {

// fc(k) for k = 0..31, computed with mpmath at 50 digits from
// log(k!) - (k + 1/2) log(k + 1) + (k + 1) - log(2 pi)/2 and rounded to double.
// (The first ten agree with the table printed in Hörmann 1993.)
constexpr std::array<double, 32> kStirlingCorrection = {
    0.08106146679532726,   0.0413406959554093,    0.02767792568499834,
    0.020790672103765093,  0.016644691189821193,  0.013876128823070748,
    0.01189670994589177,   0.010411265261972096,  0.009255462182712733,
    0.00833056343336287,   0.007573675487951841,  0.00694284010720953,
    0.006408994188004207,  0.0059513701127588475, 0.005554733551962801,
    0.0052076559196096404, 0.004901395948434738,  0.004629153749334028,
    0.004385560249232324,  0.004166319691996922,  0.00396795421864086,
    0.0037876180684444346, 0.0036229602246830948, 0.003472021382978767,
    0.003333155636728093,  0.003204970228055038,  0.0030862786826087773,
    0.002976063983550409,  0.0028734493623524663, 0.0027776749297526936,
    0.002688078828531143,  0.0026040819192516564,
};

}  // namespace

double stirling_correction(double k) noexcept {
  if (k < 32.0) return kStirlingCorrection[static_cast<std::size_t>(k)];
  // Stirling's series with x = k + 1: 1/(12x) - 1/(360x^3) + 1/(1260x^5) - 1/(1680x^7)
  // + 1/(1188x^9); the first omitted term, 691/(360360 x^11), is < 4e-20 for x >= 33.
  const double ix = 1.0 / (k + 1.0);
  const double ix2 = ix * ix;
  return ix * (1.0 / 12.0 -
               ix2 * (1.0 / 360.0 - ix2 * (1.0 / 1260.0 - ix2 * (1.0 / 1680.0 - ix2 / 1188.0))));
}

double log_factorial(double k) noexcept {
  return (k + 0.5) * std::log(k + 1.0) - (k + 1.0) + kHalfLog2Pi + stirling_correction(k);
}

}  // namespace detail

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------- gamma and beta

// Gamma(shape, 1) for shape >= 1: Marsaglia & Tsang (2000), ACM TOMS 26(3), p. 369.
// d = shape - 1/3, c = 1/sqrt(9d); X ~ N(0,1), V = (1 + cX)^3; accept dV when
// U < 1 - 0.0331 X^4 (squeeze) or log U < X^2/2 + d (1 - V + log V).
double marsaglia_tsang(Stream& s, double shape) {
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = normal(s);
    double v = 1.0 + c * x;
    if (v <= 0.0) continue;  // outside the support of the transformation: new normal only
    v = v * v * v;
    const double u = s.uniform();
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return d * v;
  }
}

// log of a Gamma(shape, 1) variate, with the shape < 1 boost done in log space
// (Marsaglia & Tsang 2000, section 6: Gamma(a) = Gamma(a + 1) U^(1/a)), so that tiny shapes
// give very negative logs rather than an underflowed 0. Same draws, in the same order,
// as gamma(s, shape, 1).
double log_standard_gamma(Stream& s, double shape) {
  if (shape >= 1.0) return std::log(marsaglia_tsang(s, shape));
  const double g = marsaglia_tsang(s, shape + 1.0);
  return std::log(g) + std::log(s.uniform()) / shape;
}

void check_shape(const char* sampler, const char* parameter, double value) {
  if (!(value > 0.0) || !std::isfinite(value)) {
    detail::invalid_parameter(sampler, parameter, value, "need finite > 0");
  }
}

// ---------------------------------------------------------------- Poisson

// Inversion by sequential search (Devroye 1986, "Non-Uniform Random Variate Generation",
// X.3.3): one uniform, expected mean + 1 steps. Used for mean < 10 where it beats PTRS.
std::uint64_t poisson_inversion(Stream& s, double mean) {
  const double u = s.uniform();
  double pk = std::exp(-mean);  // P(X = k), >= exp(-10) here: no underflow
  double cdf = pk;
  std::uint64_t k = 0;
  while (u > cdf) {
    ++k;
    pk *= mean / static_cast<double>(k);
    const double next = cdf + pk;
    // Past the mode the remaining mass can fall below the rounding of cdf (u within an
    // ulp of 1): stop there instead of looping forever.
    if (next == cdf) break;
    cdf = next;
  }
  return k;
}

// PTRS: Hörmann (1993), Insurance: Mathematics and Economics 12(1), 39-45, algorithm
// "PTRS" with its published constants; valid for mean >= 10.
std::uint64_t poisson_ptrs(Stream& s, double mean) {
  const double b = 0.931 + 2.53 * std::sqrt(mean);
  const double a = -0.059 + 0.02483 * b;
  const double log_alpha = std::log(1.1239 + 1.1328 / (b - 3.4));
  const double v_r = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    const double u = s.uniform() - 0.5;
    const double v = s.uniform();
    const double us = 0.5 - std::abs(u);
    const double k = std::floor((2.0 * a / us + b) * u + mean + 0.43);
    // Step 1, the box: accept without evaluating the density (k >= 0 holds there for
    // mean >= 10; tested anyway so that the conversion below is always defined).
    if (us >= 0.07 && v <= v_r && k >= 0.0) return static_cast<std::uint64_t>(k);
    if (!(k >= 0.0) || (us < 0.013 && v > us)) continue;
    // Step 3: accept when log(V alpha / (a/us^2 + b)) <= log P(X = k)
    // = -mean + k log(mean) - log(k!). With log(k!) from Stirling's formula this is
    //   (k + 1 - mean) + k log1p((mean - k - 1)/(k + 1)) - log(k + 1)/2 - log(2 pi)/2 - fc(k),
    // in which nothing of size k log(mean) cancels (accurate for any mean < 2^53).
    const double lhs = std::log(v) + log_alpha - std::log(a / (us * us) + b);
    const double log_pmf = (k + 1.0 - mean) + k * std::log1p((mean - k - 1.0) / (k + 1.0)) -
                           0.5 * std::log(k + 1.0) - kHalfLog2Pi -
                           detail::stirling_correction(k);
    if (lhs <= log_pmf) return static_cast<std::uint64_t>(k);
  }
}

// ---------------------------------------------------------------- binomial

// Inversion by sequential search for p <= 1/2 and n p < 10 (Kachitvichyanukul & Schmeiser
// 1988, algorithm BINV): P(0) = q^n, P(k) = P(k-1) (n - k + 1)/k * p/q. One uniform.
double binomial_inversion(Stream& s, double n, double p) {
  const double r = p / (1.0 - p);
  const double g = (n + 1.0) * r;
  double pk = std::exp(n * std::log1p(-p));  // q^n >= exp(-14) as n p < 10, p <= 1/2
  double cdf = pk;
  const double u = s.uniform();
  double k = 0.0;
  while (u > cdf && k < n) {
    ++k;
    pk *= g / k - r;
    const double next = cdf + pk;
    if (next == cdf) break;  // remaining mass below rounding (see poisson_inversion)
    cdf = next;
  }
  return k;
}

// BTRD: Hörmann (1993), J. Statist. Comput. Simul. 46, 101-110, steps 0-3.4 as published
// (transformed rejection with a decomposition; p <= 1/2, n p >= 10). fc is the Stirling
// correction. Returns an integer-valued double in [0, n]. For n far above 1e9, the
// log(nm/nk) terms lose precision (as in the original) -- irrelevant at model sizes.
double binomial_btrd(Stream& s, double n, double p) {
  const double q = 1.0 - p;
  const double m = std::floor((n + 1.0) * p);
  const double r = p / q;
  const double nr = (n + 1.0) * r;
  const double npq = n * p * q;
  const double sqrt_npq = std::sqrt(npq);
  const double b = 1.15 + 2.53 * sqrt_npq;
  const double a = -0.0873 + 0.0248 * b + 0.01 * p;
  const double c = n * p + 0.5;
  const double alpha = (2.83 + 5.1 / b) * sqrt_npq;
  const double v_r = 0.92 - 4.2 / b;
  const double u_rv_r = 0.86 * v_r;
  using detail::stirling_correction;
  for (;;) {
    // Step 1: the box, accepted with one uniform (probability 0.86 v_r).
    double v = s.uniform();
    double u = 0.0;
    if (v <= u_rv_r) {
      u = v / v_r - 0.43;
      const double k = std::floor((2.0 * a / (0.5 - std::abs(u)) + b) * u + c);
      if (k >= 0.0 && k <= n) return k;  // always true for n p >= 10; keeps k in range
      continue;
    }
    // Step 2: a second uniform, either fresh or (in the thin strips) recycled from v.
    if (v >= v_r) {
      u = s.uniform() - 0.5;
    } else {
      u = v / v_r - 0.93;
      u = std::copysign(0.5, u) - u;
      v = s.uniform() * v_r;
    }
    // Step 3.0
    const double us = 0.5 - std::abs(u);
    const double k = std::floor((2.0 * a / us + b) * u + c);
    if (!(k >= 0.0 && k <= n)) continue;  // also rejects NaN/inf from us == 0
    v = v * alpha / (a / (us * us) + b);
    const double km = std::abs(k - m);
    if (km <= 15.0) {
      // Step 3.1: f(k)/f(m) by the recursion f(i)/f(i-1) = nr/i - r. Counted by an integer
      // so that the loop ends even where m + 1 == m in double (n > 2^53).
      double f = 1.0;
      const int steps = static_cast<int>(km);
      if (m < k) {
        for (int j = 1; j <= steps; ++j) f *= nr / (m + j) - r;
      } else if (m > k) {
        for (int j = 1; j <= steps; ++j) v *= nr / (k + j) - r;
      }
      if (v <= f) return k;
      continue;
    }
    // Step 3.2: squeeze on the log scale.
    v = std::log(v);
    const double rho = (km / npq) * (((km / 3.0 + 0.625) * km + 1.0 / 6.0) / npq + 0.5);
    const double t = -km * km / (2.0 * npq);
    if (v < t - rho) return k;
    if (v > t + rho) continue;
    // Steps 3.3 and 3.4: the exact test.
    const double nm = n - m + 1.0;
    const double h = (m + 0.5) * std::log((m + 1.0) / (r * nm)) + stirling_correction(m) +
                     stirling_correction(n - m);
    const double nk = n - k + 1.0;
    if (v <= h + (n + 1.0) * std::log(nm / nk) + (k + 0.5) * std::log(nk * r / (k + 1.0)) -
                 stirling_correction(k) - stirling_correction(n - k)) {
      return k;
    }
  }
}

// ---------------------------------------------------------------- weights

// Validates weights (non-empty, each finite and >= 0, positive finite sum) and returns the
// sum, accumulated left to right (categorical() repeats the same order, so its last running
// sum equals this total exactly).
double checked_total(const char* sampler, std::span<const double> weights) {
  if (weights.empty()) {
    throw ModelError(fmt::format("sample::{}: no weights: need at least one", sampler));
  }
  double total = 0.0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double w = weights[i];
    if (!(w >= 0.0) || !std::isfinite(w)) {
      throw ModelError(fmt::format(
          "sample::{}: weights[{}] = {} is invalid: weights must be finite and >= 0", sampler,
          i, w));
    }
    total += w;
  }
  if (!(total > 0.0) || !std::isfinite(total)) {
    throw ModelError(fmt::format(
        "sample::{}: the {} weights sum to {}: need a positive, finite sum", sampler,
        weights.size(), total));
  }
  return total;
}

}  // namespace

// ---------------------------------------------------------------- public samplers

double gamma(Stream& s, double shape, double scale) {
  check_shape("gamma", "shape", shape);
  check_shape("gamma", "scale", scale);
  if (shape >= 1.0) return scale * marsaglia_tsang(s, shape);
  const double g = marsaglia_tsang(s, shape + 1.0);
  return scale * g * std::pow(s.uniform(), 1.0 / shape);
}

double beta(Stream& s, double a, double b) {
  check_shape("beta", "a", a);
  check_shape("beta", "b", b);
  const double log_x = log_standard_gamma(s, a);
  const double log_y = log_standard_gamma(s, b);
  // X / (X + Y) = 1 / (1 + Y/X); exp overflowing to +inf gives exactly 0, as it should.
  return 1.0 / (1.0 + std::exp(log_y - log_x));
}

std::uint64_t poisson(Stream& s, double mean) {
  if (std::isnan(mean) || mean == kInfinity) {
    detail::invalid_parameter("poisson", "mean", mean, "need a finite mean");
  }
  if (mean <= 0.0) return 0;
  return mean < 10.0 ? poisson_inversion(s, mean) : poisson_ptrs(s, mean);
}

std::uint64_t binomial(Stream& s, std::uint64_t n, double p) {
  if (std::isnan(p)) detail::invalid_parameter("binomial", "p", p, "need a probability");
  if (n == 0 || p <= 0.0) return 0;
  if (p >= 1.0) return n;
  // Symmetry: Binomial(n, p) = n - Binomial(n, 1 - p); both methods want p <= 1/2.
  const bool flip = p > 0.5;
  const double p_small = flip ? 1.0 - p : p;  // exact for p in [1/2, 1] (Sterbenz)
  const auto n_real = static_cast<double>(n);
  const double k = n_real * p_small < 10.0 ? binomial_inversion(s, n_real, p_small)
                                           : binomial_btrd(s, n_real, p_small);
  // k is an integer-valued double in [0, n_real]; n_real may round n up (n > 2^53).
  const std::uint64_t count =
      k >= 18446744073709551616.0 ? n : std::min(static_cast<std::uint64_t>(k), n);
  return flip ? n - count : count;
}

std::size_t categorical(Stream& s, std::span<const double> weights) {
  const double total = checked_total("categorical", weights);
  const double target = s.uniform() * total;  // in [0, total]
  double running = 0.0;
  std::size_t last_positive = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] > 0.0) {
      running += weights[i];
      last_positive = i;
      if (target < running) return i;  // strict: a zero weight can never be hit
    }
  }
  return last_positive;  // target rounded up to total itself
}

CumulativeTable::CumulativeTable(std::span<const double> weights) {
  static_cast<void>(checked_total("CumulativeTable", weights));
  running_.resize(weights.size());
  double running = 0.0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    // categorical() skips zero weights; adding +0.0 to a sum of non-negative weights (never -0.0)
    // leaves it unchanged, so running_ holds categorical()'s running sums at every index.
    if (weights[i] > 0.0) {
      running += weights[i];
      last_positive_ = i;
    }
    running_[i] = running;
  }
}

std::size_t CumulativeTable::sample(Stream& s) const {
  // categorical() returns the first positive-weight i with target < running_i. running_ is
  // non-decreasing and a zero weight repeats the previous sum, so the first index whose sum
  // exceeds the target has a positive weight (target >= 0 rules out a leading zero weight).
  const double target = s.uniform() * running_.back();  // running_.back() is categorical()'s total
  const auto it = std::upper_bound(running_.begin(), running_.end(), target);
  return it == running_.end() ? last_positive_ : static_cast<std::size_t>(it - running_.begin());
}

void AliasTable::assign(std::span<const double> weights) {
  cells_.clear();
  const double total = checked_total("AliasTable", weights);
  const std::size_t n = weights.size();
  if (n > std::numeric_limits<std::uint32_t>::max())
    throw ModelError(fmt::format("sample::AliasTable: {} weights: at most 2^32 - 1", n));
  const auto n_real = static_cast<double>(n);
  cells_.resize(n);
  work_.resize(n);
  // Vose (1991), in the numerically stable form: work on p_i = n w_i / total (mean 1) and
  // pair each "small" cell (p < 1) with a "large" one (p >= 1) that fills it up. p_i lives in
  // cells_[i].keep, which is its final value once cell i is paired; the two worklists are
  // stacks sharing work_ (small grows up from 0, large down from n: together they never hold
  // more than n entries, since each pairing pops one of each and pushes one back).
  std::size_t n_small = 0, n_large = 0;
  // Branch-free push (the test is a coin flip for most weights): write i at the top of both
  // stacks and keep it on one. Both slots are free: the stacks hold fewer than n entries here.
  const auto push = [&](std::size_t i) {
    const bool small = cells_[i].keep < 1.0;
    work_[n_small] = static_cast<std::uint32_t>(i);
    work_[n - 1 - n_large] = static_cast<std::uint32_t>(i);
    n_small += small ? 1 : 0;
    n_large += small ? 0 : 1;
  };
  std::size_t heaviest = 0;
  for (std::size_t i = 0; i < n; ++i) {
    cells_[i].keep = weights[i] / total * n_real;  // divide first: w * n could overflow
    push(i);
    if (weights[i] > weights[heaviest]) heaviest = i;
  }
  while (n_small > 0 && n_large > 0) {
    const std::size_t l = work_[--n_small];
    const std::size_t g = work_[n - n_large--];
    cells_[l].alias = static_cast<std::uint32_t>(g);
    cells_[g].keep = (cells_[g].keep + cells_[l].keep) - 1.0;
    push(g);
  }
  // What remains has p = 1 up to rounding. A zero weight could only be left over if
  // rounding lost a whole unit of mass, but keep even that impossible case exact.
  for (std::size_t k = 0; k < n_large; ++k) {
    const auto g = work_[n - 1 - k];
    cells_[g] = Cell{1.0, g};
  }
  for (std::size_t k = 0; k < n_small; ++k) {
    const auto l = work_[k];
    cells_[l] = weights[l] > 0.0 ? Cell{1.0, l} : Cell{0.0, static_cast<std::uint32_t>(heaviest)};
  }
}

}  // namespace piracy::sample
