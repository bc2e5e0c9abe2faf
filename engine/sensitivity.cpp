#include "engine/sensitivity.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/design.hpp"
#include "engine/error.hpp"
#include "engine/rng.hpp"

namespace piracy::sensitivity {
namespace {

/// Unbiased integer in [0, n) (Lemire 2019, as engine/design.cpp).
std::size_t below(Stream& s, std::size_t n) {
  const std::uint64_t range = n;
  std::uint64_t x = s.next_u32();
  std::uint64_t m = x * range;
  auto low = static_cast<std::uint32_t>(m);
  if (low < range) {
    const auto threshold = static_cast<std::uint32_t>((-static_cast<std::uint32_t>(range)) % range);
    while (low < threshold) {
      x = s.next_u32();
      m = x * range;
      low = static_cast<std::uint32_t>(m);
    }
  }
  return static_cast<std::size_t>(m >> 32);
}

/// Percentile of sorted values by linear interpolation (Hyndman & Fan 1996, type 7).
double percentile(std::vector<double> v, double p) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const double h = p * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

double mean_of(const std::vector<double>& x) {
  double s = 0;
  for (const double v : x) s += v;
  return x.empty() ? std::nan("") : s / static_cast<double>(x.size());
}

}  // namespace

MorrisDesign morris_design(std::size_t dims, std::size_t trajectories, std::size_t levels, std::uint64_t seed) {
  if (dims == 0) throw ConfigError("morris: at least one parameter is needed");
  if (trajectories < 2) throw ConfigError("morris: at least 2 trajectories are needed");
  if (levels < 2 || levels % 2 != 0) throw ConfigError("morris: levels must be even and >= 2");
  MorrisDesign d;
  d.dims = dims;
  d.trajectories = trajectories;
  d.levels = levels;
  const double p = static_cast<double>(levels);
  const double delta = p / (2.0 * (p - 1.0));
  // Base values on the grid {0, 1/(p-1), ...} such that x + Delta stays <= 1: the first p/2 levels.
  const std::size_t base_levels = levels / 2;
  for (std::size_t t = 0; t < trajectories; ++t) {
    Stream s(seed, Purpose::Experiment, kMorrisEntity, static_cast<std::int64_t>(t));
    std::vector<double> x(dims);
    std::vector<int> dir(dims);
    for (std::size_t i = 0; i < dims; ++i) {
      x[i] = static_cast<double>(below(s, base_levels)) / (p - 1.0);
      dir[i] = (s.next_u32() & 1U) != 0 ? 1 : -1;
      if (dir[i] < 0) x[i] += delta;  // start high, step down: the point stays on the grid
    }
    std::vector<std::size_t> order(dims);
    for (std::size_t i = 0; i < dims; ++i) order[i] = i;
    for (std::size_t i = dims; i > 1; --i) std::swap(order[i - 1], order[below(s, i)]);
    d.points.push_back(x);
    for (const std::size_t j : order) {
      x[j] += dir[j] * delta;
      x[j] = std::clamp(x[j], 0.0, 1.0);
      d.points.push_back(x);
      d.changed.push_back(j);
    }
  }
  return d;
}

std::vector<MorrisIndex> morris_indices(const MorrisDesign& design, const std::vector<double>& y,
                                        std::size_t bootstrap, double level, std::uint64_t seed) {
  if (y.size() != design.points.size()) {
    throw ModelError(fmt::format("morris: {} outputs for {} points", y.size(), design.points.size()));
  }
  const std::size_t k = design.dims;
  // ee[i][t]: elementary effect of parameter i in trajectory t (NaN when not finite).
  std::vector<std::vector<double>> ee(k, std::vector<double>(design.trajectories, std::nan("")));
  for (std::size_t t = 0; t < design.trajectories; ++t) {
    for (std::size_t j = 0; j < k; ++j) {
      const std::size_t a = t * (k + 1) + j;
      const std::size_t i = design.changed[t * k + j];
      const double dx = design.points[a + 1][i] - design.points[a][i];
      const double e = (y[a + 1] - y[a]) / dx;
      if (std::isfinite(e)) ee[i][t] = e;
    }
  }
  std::vector<MorrisIndex> out(k);
  const double alpha = 0.5 * (1.0 - level);
  for (std::size_t i = 0; i < k; ++i) {
    std::vector<double> v;
    for (const double e : ee[i])
      if (std::isfinite(e)) v.push_back(e);
    auto& m = out[i];
    m.mu = mean_of(v);
    std::vector<double> a;
    for (const double e : v) a.push_back(std::fabs(e));
    m.mu_star = mean_of(a);
    double ss = 0;
    for (const double e : v) ss += (e - m.mu) * (e - m.mu);
    m.sigma = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : std::nan("");
    std::vector<double> boot;
    for (std::size_t b = 0; b < bootstrap && !a.empty(); ++b) {
      Stream s(seed, Purpose::Experiment, kBootstrapEntity, static_cast<std::int64_t>(b * 1000003 + i));
      double sum = 0;
      for (std::size_t n = 0; n < a.size(); ++n) sum += a[below(s, a.size())];
      boot.push_back(sum / static_cast<double>(a.size()));
    }
    m.mu_star_ci_low = percentile(boot, alpha);
    m.mu_star_ci_high = percentile(boot, 1.0 - alpha);
  }
  return out;
}

SaltelliDesign saltelli_design(std::size_t dims, std::size_t base) {
  if (dims == 0) throw ConfigError("sobol: at least one parameter is needed");
  if (2 * dims > design::kSobolMaxDims) {
    throw ConfigError(fmt::format("sobol: at most {} parameters (the Sobol' sequence has {} dimensions)",
                                  design::kSobolMaxDims / 2, design::kSobolMaxDims));
  }
  if (base < 2) throw ConfigError("sobol: the base sample needs at least 2 points");
  SaltelliDesign d;
  d.dims = dims;
  d.base = base;
  design::Sobol seq(2 * dims);
  (void)seq.next();  // skip the origin
  std::vector<std::vector<double>> a, b;
  for (std::size_t n = 0; n < base; ++n) {
    const auto x = seq.next();
    a.emplace_back(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(dims));
    b.emplace_back(x.begin() + static_cast<std::ptrdiff_t>(dims), x.end());
  }
  d.points = a;
  d.points.insert(d.points.end(), b.begin(), b.end());
  for (std::size_t i = 0; i < dims; ++i) {
    for (std::size_t n = 0; n < base; ++n) {
      auto row = a[n];
      row[i] = b[n][i];
      d.points.push_back(std::move(row));
    }
  }
  return d;
}

namespace {

/// S1 and ST of parameter i over the rows `rows` (indices into the base sample).
std::pair<double, double> sobol_pair(const SaltelliDesign& d, const std::vector<double>& y, std::size_t i,
                                     const std::vector<std::size_t>& rows) {
  const std::size_t n = d.base;
  double sum = 0, sum2 = 0, v1 = 0, vt = 0;
  std::size_t count = 0;
  for (const std::size_t r : rows) {
    const double fa = y[r], fb = y[n + r], fab = y[(2 + i) * n + r];
    if (!std::isfinite(fa) || !std::isfinite(fb) || !std::isfinite(fab)) continue;
    ++count;
    sum += fa + fb;
    sum2 += fa * fa + fb * fb;
    v1 += fb * (fab - fa);
    vt += (fa - fab) * (fa - fab);
  }
  if (count < 2) return {std::nan(""), std::nan("")};
  const double m = sum / (2.0 * static_cast<double>(count));
  const double var = sum2 / (2.0 * static_cast<double>(count)) - m * m;
  if (!(var > 0)) return {std::nan(""), std::nan("")};
  const double c = static_cast<double>(count);
  return {v1 / c / var, 0.5 * vt / c / var};
}

}  // namespace

std::vector<SobolIndex> sobol_indices(const SaltelliDesign& design, const std::vector<double>& y,
                                      std::size_t bootstrap, double level, std::uint64_t seed) {
  if (y.size() != design.points.size()) {
    throw ModelError(fmt::format("sobol: {} outputs for {} points", y.size(), design.points.size()));
  }
  const std::size_t n = design.base;
  std::vector<std::size_t> all(n);
  for (std::size_t r = 0; r < n; ++r) all[r] = r;
  const double alpha = 0.5 * (1.0 - level);
  std::vector<SobolIndex> out(design.dims);
  // The same resamples for every parameter (one stream per resample), as SALib does.
  std::vector<std::vector<std::size_t>> resamples;
  for (std::size_t b = 0; b < bootstrap; ++b) {
    Stream s(seed, Purpose::Experiment, kBootstrapEntity, static_cast<std::int64_t>(b));
    std::vector<std::size_t> rows(n);
    for (auto& r : rows) r = below(s, n);
    resamples.push_back(std::move(rows));
  }
  for (std::size_t i = 0; i < design.dims; ++i) {
    const auto [s1, st] = sobol_pair(design, y, i, all);
    std::vector<double> b1, bt;
    for (const auto& rows : resamples) {
      const auto [x1, xt] = sobol_pair(design, y, i, rows);
      b1.push_back(x1);
      bt.push_back(xt);
    }
    out[i] = {s1, percentile(b1, alpha), percentile(b1, 1 - alpha), st, percentile(bt, alpha),
              percentile(bt, 1 - alpha)};
  }
  return out;
}

double ishigami(const std::vector<double>& unit, double a, double b) {
  const double pi = std::numbers::pi;
  const double x1 = -pi + 2 * pi * unit.at(0), x2 = -pi + 2 * pi * unit.at(1), x3 = -pi + 2 * pi * unit.at(2);
  return std::sin(x1) + a * std::sin(x2) * std::sin(x2) + b * std::pow(x3, 4) * std::sin(x1);
}

std::vector<double> ishigami_indices(double a, double b) {
  const double pi = std::numbers::pi;
  const double pi4 = std::pow(pi, 4), pi8 = std::pow(pi, 8);
  const double v1 = 0.5 * std::pow(1 + b * pi4 / 5, 2);
  const double v2 = a * a / 8;
  const double v13 = b * b * pi8 * (1.0 / 18 - 1.0 / 50);
  const double v = v1 + v2 + v13;
  return {v1 / v, v2 / v, 0.0, (v1 + v13) / v, v2 / v, v13 / v};
}

}  // namespace piracy::sensitivity
