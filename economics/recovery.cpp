#include "economics/recovery.hpp"

#include <fmt/format.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "engine/error.hpp"

namespace piracy::economics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kLn2 = std::log(2.0);

// ---------------------------------------------------------------------------------------------
// Student's t quantile
// ---------------------------------------------------------------------------------------------

// Continued fraction of the incomplete beta function by the modified Lentz method
// (Press, Teukolsky, Vetterling & Flannery, Numerical Recipes 3rd ed. 2007, sec. 6.4, betacf).
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-16;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 100000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) <= kEps) return h;
  }
  throw NumericalError("student_t_quantile: the incomplete beta continued fraction did not converge");
}

// Regularised incomplete beta I_x(a, b); y = 1 - x is passed separately so that x close to 1 (large
// degrees of freedom) loses no digits.
double regularized_incomplete_beta(double a, double b, double x, double y) {
  if (x <= 0.0) return 0.0;
  if (y <= 0.0) return 1.0;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log(y);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, y) / b;
}

// P(T > t) for t >= 0: 0.5 I_{df/(df+t^2)}(df/2, 1/2).
double student_t_upper_tail(double t, double df) {
  const double t2 = t * t;
  return 0.5 * regularized_incomplete_beta(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2));
}

// ---------------------------------------------------------------------------------------------
// One-dimensional minimisation (Brent 1973, "Algorithms for Minimization without Derivatives",
// ch. 5: golden section with parabolic interpolation; the form of Numerical Recipes sec. 10.3).
// ---------------------------------------------------------------------------------------------
template <class F>
double brent_minimize(F&& f, double a, double b, double tol) {
  constexpr double kGold = 0.3819660112501051;
  constexpr double kZeps = 1e-14;
  double x = a + kGold * (b - a), w = x, v = x;
  double fx = f(x), fw = fx, fv = fx;
  double d = 0.0, e = 0.0;
  for (int it = 0; it < 500; ++it) {
    const double xm = 0.5 * (a + b);
    const double tol1 = tol * std::fabs(x) + kZeps, tol2 = 2.0 * tol1;
    if (std::fabs(x - xm) <= tol2 - 0.5 * (b - a)) break;
    bool golden = true;
    if (std::fabs(e) > tol1) {
      const double r = (x - w) * (fx - fv);
      double q = (x - v) * (fx - fw);
      double p = (x - v) * q - (x - w) * r;
      q = 2.0 * (q - r);
      if (q > 0.0) p = -p;
      q = std::fabs(q);
      const double etemp = e;
      e = d;
      if (!(std::fabs(p) >= std::fabs(0.5 * q * etemp) || p <= q * (a - x) || p >= q * (b - x))) {
        d = p / q;
        const double u = x + d;
        if (u - a < tol2 || b - u < tol2) d = std::copysign(tol1, xm - x);
        golden = false;
      }
    }
    if (golden) {
      e = (x >= xm) ? a - x : b - x;
      d = kGold * e;
    }
    const double u = (std::fabs(d) >= tol1) ? x + d : x + std::copysign(tol1, d);
    const double fu = f(u);
    if (fu <= fx) {
      if (u >= x) a = x; else b = x;
      v = w; w = x; x = u;
      fv = fw; fw = fx; fx = fu;
    } else {
      if (u < x) a = u; else b = u;
      if (fu <= fw || w == x) {
        v = w; w = u; fv = fw; fw = fu;
      } else if (fu <= fv || v == x || v == w) {
        v = u; fv = fu;
      }
    }
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Exponential recovery fit by variable projection (Golub & Pereyra 1973, "The differentiation of
// pseudo-inverses and nonlinear least squares problems whose variables separate", SIAM J. Numer.
// Anal. 10(2)): for a fixed k the model is linear in (y0, y_inf), so RSS can be minimised over them
// exactly and the fit reduces to a one-dimensional search over log k. A log-spaced grid over the
// whole identifiable range followed by Brent's method finds the global minimum whatever the starting
// values, which an iterative Levenberg-Marquardt on three parameters does not guarantee with a
// handful of monthly points. The same profile RSS(k) gives the profile-likelihood interval.
// ---------------------------------------------------------------------------------------------
struct LinearPart {
  double rss, y0, y_inf;
};

class ExponentialProfile {
 public:
  ExponentialProfile(Eigen::VectorXd tau, Eigen::VectorXd y)
      : tau_(std::move(tau)), y_(std::move(y)), span_(tau_.maxCoeff()) {}

  // y(tau) = y0 + beta1 h(tau) with h = (1 - e^{-k tau}) / (1 - e^{-k T}) in [0, 1]: written with
  // expm1 it tends to tau / T as k -> 0 and to a step as k -> inf, so the design stays well scaled
  // over the whole search range (no cancellation, no vanishing column).
  [[nodiscard]] LinearPart solve(double log_k) const {
    const double k = std::exp(log_k);
    const double denom = std::expm1(-k * span_);  // -(1 - e^{-kT}), never 0 for k > 0, T > 0
    Eigen::MatrixXd X(tau_.size(), 2);
    X.col(0).setOnes();
    for (Eigen::Index i = 0; i < tau_.size(); ++i) X(i, 1) = std::expm1(-k * tau_(i)) / denom;
    const Eigen::Vector2d beta = X.colPivHouseholderQr().solve(y_);
    const double rss = (y_ - X * beta).squaredNorm();
    // y_inf = y0 + beta1 / (1 - e^{-kT}).
    return {rss, beta(0), beta(0) - beta(1) / denom};
  }
  [[nodiscard]] double rss(double log_k) const { return solve(log_k).rss; }

  [[nodiscard]] const Eigen::VectorXd& tau() const { return tau_; }
  [[nodiscard]] const Eigen::VectorXd& y() const { return y_; }
  [[nodiscard]] double span() const { return span_; }

 private:
  Eigen::VectorXd tau_, y_;
  double span_;
};

struct FitResult {
  bool ok = false;
  std::string message;
  double y0 = kNaN, y_inf = kNaN, k = kNaN, k_se = kNaN, rss = kNaN;
  double k_low = kNaN, k_high = kNaN;  // profile interval of k (0 / +inf when unbounded)
};

// Starting value of k from the spec's robust guesses (y0 = trough, y_inf = mean of the last quarter):
// the slope of log(y_inf - y) against tau over the points below that y_inf. NaN if not computable.
double log_linear_k_guess(const Eigen::VectorXd& tau, const Eigen::VectorXd& y) {
  const Eigen::Index n = y.size();
  const Eigen::Index q = std::max<Eigen::Index>(1, n / 4);
  const double y_inf0 = y.tail(q).mean();
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int m = 0;
  for (Eigen::Index i = 0; i < n - q; ++i) {
    const double gap = y_inf0 - y(i);
    if (gap <= 0) continue;
    const double ly = std::log(gap);
    sx += tau(i); sy += ly; sxx += tau(i) * tau(i); sxy += tau(i) * ly;
    ++m;
  }
  if (m < 2) return kNaN;
  const double var = sxx - sx * sx / m;
  if (var <= 0) return kNaN;
  const double slope = (sxy - sx * sy / m) / var;
  return slope < 0 ? -slope : kNaN;
}

// Profile-likelihood bound: the first log k on one side of the optimum (direction = -1 or +1) where
// RSS(k) crosses `threshold`. Steps outward geometrically, then bisects. Returns -inf / +inf when
// RSS stays below the threshold up to 40 natural-log units away (k -> 0 or k -> inf not excluded).
double profile_bound(const ExponentialProfile& p, double u_hat, double threshold, int direction) {
  double inside = u_hat;
  double step = 0.05;
  double outside = kNaN;
  while (step <= 40.0) {
    const double u = u_hat + direction * step;
    if (p.rss(u) > threshold) {
      outside = u;
      break;
    }
    inside = u;
    step *= 2.0;
  }
  if (std::isnan(outside)) return direction * kInf;
  for (int it = 0; it < 200 && std::fabs(outside - inside) > 1e-12 * std::max(1.0, std::fabs(inside));
       ++it) {
    const double mid = 0.5 * (inside + outside);
    if (p.rss(mid) > threshold) outside = mid; else inside = mid;
  }
  return 0.5 * (inside + outside);
}

FitResult fit_exponential(const Eigen::VectorXd& tau, const Eigen::VectorXd& y, double ci_level) {
  FitResult r;
  const Eigen::Index n = y.size();
  const ExponentialProfile profile(tau, y);
  const double span = profile.span();
  // Smallest positive spacing: a k with k * dt_min >= 20 makes the curve a step between the first
  // two sampled times, so larger k cannot be told apart from the data.
  double dt_min = kInf;
  int distinct = 1;
  for (Eigen::Index i = 1; i < n; ++i) {
    const double dt = tau(i) - tau(i - 1);
    if (dt > 0) {
      dt_min = std::min(dt_min, dt);
      ++distinct;
    }
  }
  if (distinct < 3 || !(span > 0)) {
    r.message = fmt::format("only {} distinct times from the trough on: need at least 3 to fit 3 parameters",
                            distinct);
    return r;
  }
  // Below k T = 0.01 the curve is a straight line over the window: y_inf is not identified.
  const double u_min = std::log(0.01 / span), u_max = std::log(20.0 / dt_min);
  constexpr int kGrid = 400;
  const double h = (u_max - u_min) / (kGrid - 1);
  int best = 0;
  double best_rss = kInf;
  for (int i = 0; i < kGrid; ++i) {
    const double v = profile.rss(u_min + i * h);
    if (v < best_rss) {
      best_rss = v;
      best = i;
    }
  }
  double u_centre = u_min + best * h;
  if (const double k0 = log_linear_k_guess(tau, y); std::isfinite(k0) && k0 > 0) {
    const double u0 = std::log(k0);
    if (u0 > u_min && u0 < u_max && profile.rss(u0) < best_rss) u_centre = u0;
  }
  if (u_centre <= u_min) {
    r.message = fmt::format(
        "no exponential recovery visible: the best fit is a straight line (k -> 0, k * span < 0.01 over "
        "{:g} days), so y_inf is not identified; widen max_days_after or check the series",
        span);
    return r;
  }
  if (u_centre >= u_max) {
    r.message = fmt::format(
        "recovery faster than the sampling: the best fit is a step (half-life < {:.3g} days, the spacing of "
        "the points); use finer data",
        kLn2 * dt_min / 20.0);
    return r;
  }
  const auto rss_of = [&](double u) { return profile.rss(u); };
  double u_hat = brent_minimize(rss_of, std::max(u_min, u_centre - h), std::min(u_max, u_centre + h), 1e-12);
  if (profile.rss(u_hat) > profile.rss(u_centre)) u_hat = u_centre;

  const LinearPart lin = profile.solve(u_hat);
  r.k = std::exp(u_hat);
  r.y0 = lin.y0;
  r.y_inf = lin.y_inf;
  r.rss = lin.rss;
  if (!std::isfinite(r.y0) || !std::isfinite(r.y_inf) || !std::isfinite(r.rss)) {
    r.message = "the least-squares solution is not finite";
    return r;
  }
  const double dof = static_cast<double>(n - 3);
  const double s2 = r.rss / dof;

  // Wald standard error of k: s^2 (J'J)^-1 with J the Jacobian of f = y_inf - (y_inf - y0) e^{-k tau}
  // with respect to (y0, y_inf, k) (Bates & Watts 1988, sec. 2.3).
  Eigen::MatrixXd J(n, 3);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double e = std::exp(-r.k * tau(i));
    J(i, 0) = e;
    J(i, 1) = 1.0 - e;
    J(i, 2) = (r.y_inf - r.y0) * tau(i) * e;
  }
  const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(J);
  if (qr.rank() == 3) {
    const Eigen::Matrix3d JtJ = J.transpose() * J;
    const Eigen::Matrix3d cov = s2 * JtJ.inverse();
    r.k_se = std::sqrt(std::max(0.0, cov(2, 2)));
  }

  // Profile-likelihood interval of k (Bates & Watts 1988, sec. 6.1.2):
  // RSS(k) <= RSS_min (1 + t^2 / (n - 3)), t = Student-t quantile with n - 3 degrees of freedom.
  const double q = student_t_quantile(0.5 * (1.0 + ci_level), dof);
  const double threshold = r.rss * (1.0 + q * q / dof);
  const double u_low = profile_bound(profile, u_hat, threshold, -1);
  const double u_high = profile_bound(profile, u_hat, threshold, +1);
  r.k_low = std::isinf(u_low) ? 0.0 : std::exp(u_low);
  r.k_high = std::isinf(u_high) ? kInf : std::exp(u_high);
  r.ok = true;
  r.message = "ok";
  if (r.k_low == 0.0)
    r.message += fmt::format("; the {:g}% interval of the half-life is unbounded above (the data do not exclude "
                             "a recovery that never completes)",
                             100 * ci_level);
  if (std::isinf(r.k_high))
    r.message += fmt::format("; the {:g}% interval of the half-life reaches 0 (the data do not exclude an "
                             "instant recovery)",
                             100 * ci_level);
  return r;
}

void validate(const RecoveryOptions& o) {
  if (!(std::isfinite(o.pre_window_days) && o.pre_window_days > 0))
    throw ConfigError(fmt::format("recovery options: pre_window_days = {}: must be a positive number of days",
                                  o.pre_window_days));
  if (!(std::isfinite(o.max_days_after) && o.max_days_after > 0))
    throw ConfigError(fmt::format("recovery options: max_days_after = {}: must be a positive number of days",
                                  o.max_days_after));
  if (o.smoothing_days < 1)
    throw ConfigError(fmt::format("recovery options: smoothing_days = {}: must be >= 1 (1 = no smoothing)",
                                  o.smoothing_days));
  if (!(o.ci_level > 0 && o.ci_level < 1))
    throw ConfigError(
        fmt::format("recovery options: ci_level = {}: must be in (0, 1), e.g. 0.95", o.ci_level));
}

// First time at or after index `from` (within [from, to)) when s reaches `level`, by linear
// interpolation between consecutive points.
std::optional<double> first_crossing(const std::vector<double>& t, const std::vector<double>& s,
                                     std::size_t from, std::size_t to, double level) {
  if (s[from] >= level) return t[from];
  for (std::size_t i = from + 1; i < to; ++i) {
    if (s[i] >= level) {
      const double frac = (level - s[i - 1]) / (s[i] - s[i - 1]);  // s[i-1] < level <= s[i]
      return t[i - 1] + frac * (t[i] - t[i - 1]);
    }
  }
  return std::nullopt;
}

}  // namespace

double student_t_quantile(double p, double df) {
  if (!(p > 0 && p < 1) || !(df > 0))
    throw NumericalError(fmt::format("student_t_quantile(p = {}, df = {}): need 0 < p < 1 and df > 0", p, df));
  if (p == 0.5) return 0.0;
  if (p < 0.5) return -student_t_quantile(1.0 - p, df);
  const double tail = 1.0 - p;  // find t with P(T > t) = tail
  double lo = 0.0, hi = 1.0;
  while (student_t_upper_tail(hi, df) > tail) {
    lo = hi;
    hi *= 2.0;
    if (hi > 1e300) return kInf;
  }
  for (int it = 0; it < 300 && hi - lo > 4 * std::numeric_limits<double>::epsilon() * hi; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (student_t_upper_tail(mid, df) > tail) lo = mid; else hi = mid;
  }
  return 0.5 * (lo + hi);
}

RecoveryEstimate estimate_recovery(const Eigen::Ref<const Eigen::VectorXd>& t_days,
                                   const Eigen::Ref<const Eigen::VectorXd>& y, double event_day,
                                   const RecoveryOptions& options) {
  validate(options);
  if (!std::isfinite(event_day))
    throw NumericalError(fmt::format("estimate_recovery: event_day = {}: must be finite", event_day));
  RecoveryEstimate est;  // every estimate NaN, fit_ok false
  if (t_days.size() != y.size()) {
    est.fit_message = fmt::format("t_days has {} entries but y has {}: they must pair up", t_days.size(), y.size());
    return est;
  }
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    if (!std::isfinite(t_days(i)))
      throw NumericalError(fmt::format("estimate_recovery: t_days[{}] = {}: every time must be finite", i, t_days(i)));
    if (!std::isfinite(y(i)))
      throw NumericalError(fmt::format(
          "estimate_recovery: y[{}] = {} (t = {} days): every value must be finite; drop missing points instead",
          i, y(i), t_days(i)));
  }

  // Sorted copy: observed points may come in any order.
  std::vector<std::size_t> order(static_cast<std::size_t>(y.size()));
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return t_days(Eigen::Index(a)) < t_days(Eigen::Index(b)); });
  const std::size_t n = order.size();
  std::vector<double> t(n), v(n), s(n);
  for (std::size_t i = 0; i < n; ++i) {
    t[i] = t_days(Eigen::Index(order[i]));
    v[i] = y(Eigen::Index(order[i]));
  }

  // Trailing moving average over (t_i - w, t_i]: on daily data the usual w-point average; on irregular
  // data it averages whatever fell in the last w days, and leaves sparse points alone.
  {
    const double w = options.smoothing_days;
    std::size_t start = 0;
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sum += v[i];
      while (t[start] <= t[i] - w) sum -= v[start++];
      s[i] = sum / static_cast<double>(i - start + 1);
    }
    if (options.smoothing_days == 1) s = v;  // exact, no rounding from the running sum
  }

  // Pre-event level: mean of the raw points in [event - pre_window, event).
  double pre_sum = 0;
  int pre_n = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (t[i] >= event_day - options.pre_window_days && t[i] < event_day) {
      pre_sum += v[i];
      ++pre_n;
    }
  if (pre_n > 0) est.pre_level = pre_sum / pre_n;

  // Window after the event: [event, event + max_days_after].
  const double end_day = event_day + options.max_days_after;
  const std::size_t first = static_cast<std::size_t>(std::lower_bound(t.begin(), t.end(), event_day) - t.begin());
  const std::size_t last = static_cast<std::size_t>(std::upper_bound(t.begin(), t.end(), end_day) - t.begin());
  if (first >= last) {
    est.fit_message = fmt::format("no points in [event, event + {:g} days]", options.max_days_after);
    return est;
  }
  std::size_t trough_i = first;
  for (std::size_t i = first; i < last; ++i)
    if (s[i] < s[trough_i]) trough_i = i;
  est.trough = s[trough_i];
  est.trough_day = t[trough_i] - event_day;
  est.drop_ratio = est.trough / est.pre_level;  // NaN without a pre-event level
  if (pre_n > 0) {
    const auto rel = [&](std::optional<double> x) -> std::optional<double> {
      if (x) return *x - event_day;
      return std::nullopt;
    };
    est.t50_days = rel(first_crossing(t, s, trough_i, last, 0.5 * est.pre_level));
    est.t90_days = rel(first_crossing(t, s, trough_i, last, 0.9 * est.pre_level));
  }

  // The fit: raw points from the trough day to the end of the window.
  const std::size_t fit_from =
      static_cast<std::size_t>(std::lower_bound(t.begin(), t.end(), t[trough_i]) - t.begin());
  est.n_points_fit = static_cast<int>(last - fit_from);
  if (pre_n == 0) {
    est.fit_message = fmt::format("no points in the pre-event window [event - {:g}, event): no level to recover to",
                                  options.pre_window_days);
    return est;
  }
  if (!(est.trough < est.pre_level)) {
    est.fit_message = fmt::format("no drop: the trough {:g} is not below the pre-event level {:g}", est.trough,
                                  est.pre_level);
    return est;
  }
  if (est.n_points_fit < 4) {
    est.fit_message = fmt::format(
        "too few points to fit: {} from the trough to event + {:g} days, need at least 4 (3 parameters and an "
        "error variance)",
        est.n_points_fit, options.max_days_after);
    return est;
  }
  Eigen::VectorXd tau(est.n_points_fit), yy(est.n_points_fit);
  for (std::size_t i = fit_from; i < last; ++i) {
    tau(Eigen::Index(i - fit_from)) = t[i] - t[trough_i];
    yy(Eigen::Index(i - fit_from)) = v[i];
  }
  const FitResult fit = fit_exponential(tau, yy, options.ci_level);
  est.fit_message = fit.message;
  if (!fit.ok) return est;
  est.fit_ok = true;
  est.y0 = fit.y0;
  est.y_inf = fit.y_inf;
  est.k_per_day = fit.k;
  est.k_se_per_day = fit.k_se;
  est.half_life_days = kLn2 / fit.k;
  est.half_life_ci_low = kLn2 / fit.k_high;   // k_high = +inf -> 0
  est.half_life_ci_high = fit.k_low > 0 ? kLn2 / fit.k_low : kInf;
  est.permanent_loss = 1.0 - fit.y_inf / est.pre_level;
  est.residual_sd = std::sqrt(fit.rss / static_cast<double>(est.n_points_fit - 3));
  return est;
}

RecoveryEstimate estimate_recovery(const ObservedSeries& series, piracy::Date event, const RecoveryOptions& options) {
  Eigen::VectorXd t(static_cast<Eigen::Index>(series.dates.size()));
  for (std::size_t i = 0; i < series.dates.size(); ++i) t(Eigen::Index(i)) = series.dates[i].days;
  return estimate_recovery(t, series.values, static_cast<double>(event.days), options);
}

VarEstimate fit_var1(const Eigen::Ref<const Eigen::MatrixXd>& X, double step_days) {
  if (!(std::isfinite(step_days) && step_days > 0))
    throw ConfigError(fmt::format("fit_var1: step_days = {}: must be a positive number of days", step_days));
  for (Eigen::Index j = 0; j < X.cols(); ++j)
    for (Eigen::Index i = 0; i < X.rows(); ++i)
      if (!std::isfinite(X(i, j)))
        throw NumericalError(fmt::format("fit_var1: X({}, {}) = {} (row {}, column {}): every value must be finite",
                                         i, j, X(i, j), i, j));
  const Eigen::Index T = X.rows(), m = X.cols();
  VarEstimate out;
  out.A = Eigen::MatrixXd::Constant(m, m, kNaN);
  out.c = Eigen::VectorXd::Constant(m, kNaN);
  out.dominant_eigenvalue_modulus = kNaN;
  out.half_life_days = kNaN;
  out.ok = false;
  if (m == 0) {
    out.message = "no columns";
    return out;
  }
  // m + 1 coefficients per equation, and at least one residual degree of freedom beyond them.
  if (T - 1 < m + 2) {
    out.message = fmt::format("too few rows: {} rows give {} transitions, need at least {} for {} variables", T, T - 1,
                              m + 2, m);
    return out;
  }
  const Eigen::RowVectorXd mu = X.colwise().mean();
  Eigen::RowVectorXd sd(m);
  for (Eigen::Index j = 0; j < m; ++j) {
    sd(j) = std::sqrt((X.col(j).array() - mu(j)).square().sum() / static_cast<double>(T - 1));
    if (!(sd(j) > 1e-12 * std::max(1.0, std::fabs(mu(j))))) {
      out.message = fmt::format("column {} is constant ({}): its dynamics cannot be estimated; leave it out", j, mu(j));
      return out;
    }
  }
  const Eigen::MatrixXd Z = (X.rowwise() - mu).array().rowwise() / sd.array();
  Eigen::MatrixXd W(T - 1, m + 1);
  W.col(0).setOnes();
  W.rightCols(m) = Z.topRows(T - 1);
  const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(W);
  if (qr.rank() < m + 1) {
    out.message = fmt::format("the regressors are collinear (rank {} of {}): drop a redundant column", qr.rank(), m + 1);
    return out;
  }
  const Eigen::MatrixXd B = qr.solve(Z.bottomRows(T - 1));  // (m + 1) x m
  const Eigen::MatrixXd Az = B.bottomRows(m).transpose();
  const Eigen::VectorXd cz = B.row(0).transpose();
  // Back to original units: x = mu + D z  =>  A = D A_z D^-1, c = mu + D c_z - A mu.
  const Eigen::VectorXd sdv = sd.transpose(), muv = mu.transpose();
  out.A = sdv.asDiagonal() * Az * sdv.cwiseInverse().asDiagonal();
  out.c = muv + sdv.cwiseProduct(cz) - out.A * muv;
  const Eigen::EigenSolver<Eigen::MatrixXd> es(Az, /*computeEigenvectors=*/false);
  if (es.info() != Eigen::Success) {
    out.message = "the eigenvalue solver did not converge";
    return out;
  }
  const double rho = es.eigenvalues().cwiseAbs().maxCoeff();
  out.dominant_eigenvalue_modulus = rho;
  if (rho >= 1.0) {
    out.half_life_days = kInf;
    out.message = fmt::format("|lambda_max| = {:.6g} >= 1: the fitted system is not mean-reverting, no half-life", rho);
    return out;
  }
  out.half_life_days = rho > 0 ? step_days * std::log(0.5) / std::log(rho) : 0.0;
  out.ok = true;
  out.message = "ok";
  return out;
}

// ---------------------------------------------------------------------------------------------
// CSV reading
// ---------------------------------------------------------------------------------------------
namespace {

struct CsvField {
  std::string text;
  int column;  // 1-based character column of the field's first non-blank character
};

[[noreturn]] void csv_error(const std::filesystem::path& path, int line, int column, const std::string& what) {
  throw ConfigError(fmt::format("{}:{}:{}: error: {}", path.string(), line, column, what));
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::vector<CsvField> split_csv_line(const std::filesystem::path& path, int line_no, const std::string& line) {
  std::vector<CsvField> fields;
  std::size_t i = 0;
  const std::size_t n = line.size();
  while (true) {
    while (i < n && is_blank(line[i])) ++i;
    CsvField f{{}, static_cast<int>(i) + 1};
    if (i < n && line[i] == '"') {
      const std::size_t open = i++;
      bool closed = false;
      while (i < n) {
        if (line[i] == '"') {
          if (i + 1 < n && line[i + 1] == '"') {
            f.text += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        f.text += line[i++];
      }
      if (!closed)
        csv_error(path, line_no, static_cast<int>(open) + 1,
                  "unterminated quoted field (add the closing '\"'; a field cannot span lines)");
      while (i < n && is_blank(line[i])) ++i;
      if (i < n && line[i] != ',')
        csv_error(path, line_no, static_cast<int>(i) + 1,
                  fmt::format("unexpected '{}' after a closing quote: expected ',' or the end of the line", line[i]));
    } else {
      while (i < n && line[i] != ',') f.text += line[i++];
      while (!f.text.empty() && is_blank(f.text.back())) f.text.pop_back();
    }
    fields.push_back(std::move(f));
    if (i >= n) break;
    ++i;  // the comma
  }
  return fields;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "YYYY-MM-DD", or "YYYY-MM" dated on the 15th (the middle of the month the figure aggregates).
std::optional<Date> parse_observation_date(std::string_view text) {
  if (text.size() == 10) return Date::parse(text);
  if (text.size() != 7 || text[4] != '-') return std::nullopt;
  int year = 0, month = 0;
  for (std::size_t i : {0u, 1u, 2u, 3u}) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    year = year * 10 + (text[i] - '0');
  }
  for (std::size_t i : {5u, 6u}) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    month = month * 10 + (text[i] - '0');
  }
  if (month < 1 || month > 12) return std::nullopt;
  return Date::from_ymd(year, static_cast<unsigned>(month), 15);
}

}  // namespace

ObservedSeries read_series_csv(const std::filesystem::path& path, std::string_view value_column) {
  std::ifstream in(path);
  if (!in)
    throw ConfigError(fmt::format("{}: error: cannot open the observed series: {}", path.string(), std::strerror(errno)));
  std::string line;
  int line_no = 0;
  std::vector<CsvField> header;
  int header_line = 0;
  std::size_t date_col = 0, value_col = 0;
  std::vector<Date> dates;
  std::vector<double> values;
  int previous_line = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
    const auto first_char = line.find_first_not_of(" \t");
    if (first_char == std::string::npos || line[first_char] == '#') continue;
    std::vector<CsvField> fields = split_csv_line(path, line_no, line);

    if (header.empty()) {
      header = std::move(fields);
      header_line = line_no;
      for (std::size_t j = 0; j < header.size(); ++j)
        for (std::size_t k = 0; k < j; ++k)
          if (!header[j].text.empty() && header[j].text == header[k].text)
            csv_error(path, line_no, header[j].column,
                      fmt::format("column name '{}' appears twice (fields {} and {}): names must be unique",
                                  header[j].text, k + 1, j + 1));
      date_col = 0;
      for (std::size_t j = 0; j < header.size(); ++j)
        if (lower(header[j].text) == "date") {
          date_col = j;
          break;
        }
      std::string names;
      for (std::size_t j = 0; j < header.size(); ++j) names += (j ? ", '" : "'") + header[j].text + "'";
      if (value_column.empty()) {
        value_col = date_col == 0 ? 1 : 0;
        if (header.size() < 2)
          csv_error(path, line_no, 1,
                    fmt::format("the header has only the date column ({}): add a value column, e.g. 'date,releases'",
                                names));
      } else {
        value_col = header.size();
        for (std::size_t j = 0; j < header.size(); ++j)
          if (header[j].text == value_column) value_col = j;
        if (value_col == header.size()) {
          std::string hint;
          for (const auto& h : header)
            if (lower(h.text) == lower(value_column)) hint = fmt::format(" (did you mean '{}'?)", h.text);
          csv_error(path, line_no, 1,
                    fmt::format("no column named '{}'{}; the columns are {}", value_column, hint, names));
        }
        if (value_col == date_col)
          csv_error(path, line_no, header[value_col].column,
                    fmt::format("column '{}' holds the dates: choose a value column among {}", value_column, names));
      }
      continue;
    }

    if (fields.size() != header.size()) {
      const int col = fields.size() > header.size() ? fields[header.size()].column : static_cast<int>(line.size()) + 1;
      csv_error(path, line_no, col,
                fmt::format("{} fields, but the header (line {}) has {}", fields.size(), header_line, header.size()));
    }
    const CsvField& df = fields[date_col];
    const auto date = parse_observation_date(df.text);
    if (!date)
      csv_error(path, line_no, df.column,
                fmt::format("'{}' is not a date: write YYYY-MM-DD, or YYYY-MM for a monthly figure (dated on the 15th)",
                            df.text));
    if (!dates.empty() && !(*date > dates.back()))
      csv_error(path, line_no, df.column,
                fmt::format("date {} ('{}') is not after {} on line {}: dates must be strictly increasing", date->iso(),
                            df.text, dates.back().iso(), previous_line));
    const CsvField& vf = fields[value_col];
    if (vf.text.empty())
      csv_error(path, line_no, vf.column,
                fmt::format("empty value in column '{}': remove the row instead (irregular dates are fine)",
                            header[value_col].text));
    double value = 0;
    const char* b = vf.text.data();
    const char* e = b + vf.text.size();
    const auto [ptr, ec] = std::from_chars(b, e, value);
    if (ec != std::errc{} || ptr != e || !std::isfinite(value))
      csv_error(path, line_no, vf.column,
                fmt::format("'{}' in column '{}' is not a finite number: write a plain decimal such as 70000 "
                            "(no thousands separators, no units)",
                            vf.text, header[value_col].text));
    dates.push_back(*date);
    values.push_back(value);
    previous_line = line_no;
  }
  if (in.bad())
    throw ConfigError(fmt::format("{}:{}:1: error: read failed: {}", path.string(), line_no + 1, std::strerror(errno)));
  if (header.empty())
    csv_error(path, std::max(line_no, 1), 1, "empty file: expected a header line such as 'date,releases'");
  if (dates.empty()) csv_error(path, header_line, 1, "no data rows after the header");
  ObservedSeries out;
  out.dates = std::move(dates);
  out.values = Eigen::Map<const Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(values.size()));
  return out;
}

// ---------------------------------------------------------------------------------------------
// JSON summaries
// ---------------------------------------------------------------------------------------------
namespace {
nlohmann::ordered_json number(double x) {
  if (std::isfinite(x)) return x;
  return nullptr;
}
nlohmann::ordered_json number(const std::optional<double>& x) {
  if (x) return number(*x);
  return nullptr;
}
}  // namespace

std::string format_recovery(const RecoveryEstimate& e) {
  nlohmann::ordered_json j;
  j["pre_level"] = number(e.pre_level);
  j["trough"] = number(e.trough);
  j["trough_day"] = number(e.trough_day);
  j["drop_ratio"] = number(e.drop_ratio);
  j["t50_days"] = number(e.t50_days);
  j["t90_days"] = number(e.t90_days);
  j["fit_ok"] = e.fit_ok;
  j["fit_message"] = e.fit_message;
  j["n_points_fit"] = e.n_points_fit;
  j["y0"] = number(e.y0);
  j["y_inf"] = number(e.y_inf);
  j["k_per_day"] = number(e.k_per_day);
  j["k_se_per_day"] = number(e.k_se_per_day);
  j["half_life_days"] = number(e.half_life_days);
  j["half_life_ci_low"] = number(e.half_life_ci_low);
  j["half_life_ci_high"] = number(e.half_life_ci_high);
  j["half_life_ci_method"] = "profile likelihood (F/t-based, Bates & Watts 1988 sec. 6.1)";
  j["permanent_loss"] = number(e.permanent_loss);
  j["residual_sd"] = number(e.residual_sd);
  return j.dump(2);
}

std::string format_var(const VarEstimate& e) {
  nlohmann::ordered_json j;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (Eigen::Index r = 0; r < e.A.rows(); ++r) {
    nlohmann::ordered_json row = nlohmann::ordered_json::array();
    for (Eigen::Index c = 0; c < e.A.cols(); ++c) row.push_back(number(e.A(r, c)));
    rows.push_back(std::move(row));
  }
  nlohmann::ordered_json c = nlohmann::ordered_json::array();
  for (Eigen::Index r = 0; r < e.c.size(); ++r) c.push_back(number(e.c(r)));
  j["ok"] = e.ok;
  j["message"] = e.message;
  j["A"] = std::move(rows);
  j["c"] = std::move(c);
  j["dominant_eigenvalue_modulus"] = number(e.dominant_eigenvalue_modulus);
  j["half_life_days"] = number(e.half_life_days);
  return j.dump(2);
}

}  // namespace piracy::economics
