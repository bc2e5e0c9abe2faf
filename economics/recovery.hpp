#pragma once
// Crackdown-recovery estimators (MODEL.md section 4, last bullet): depth of the drop, time to
// 50% / 90% of the pre-raid level, an exponential recovery fit with a confidence interval on its
// half-life, the permanent loss, and a VAR(1) on (releases, active sceners, live topsites) whose
// dominant eigenvalue gives a half-life.
//
// The same estimators run on simulated daily series and on observed points, which may be few
// and irregular (monthly figures: July 2020 > 70,000 Scene releases, September 2020 30,000,
// January 2021 "practically back to normal"), so every time is an explicit number of days
// (for dates: Date::days, days since 1970-01-01).
#include <Eigen/Dense>

#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/date.hpp"

namespace piracy::economics {

inline constexpr double kNotEstimated = std::numeric_limits<double>::quiet_NaN();

struct RecoveryOptions {
  double pre_window_days = 60;  //!< pre-event level = mean of raw points with t in [event - pre_window, event)
  double max_days_after = 365;  //!< only points with t in [event, event + max_days_after] are used after the event
  /// Trailing moving average (mean of the points with t in (t_i - smoothing_days, t_i]) applied before
  /// the trough and the t50/t90 crossings are located, so that one noisy day does not count as a
  /// crossing; 1 = none on daily data. It lags the series by about (smoothing_days - 1) / 2 days.
  int smoothing_days = 1;
  double ci_level = 0.95;  //!< two-sided level of the half-life interval, in (0, 1)
};

struct RecoveryEstimate {
  double pre_level = kNotEstimated;   //!< mean of the raw points in the pre-event window (NaN if there are none)
  double trough = kNotEstimated;      //!< minimum smoothed level at or after the event (within max_days_after)
  double trough_day = kNotEstimated;  //!< days after the event of that minimum
  double drop_ratio = kNotEstimated;  //!< trough / pre_level: 1 = no drop, 0 = total collapse
  /// Days after the event when the smoothed series first reaches 50% / 90% of pre_level at or after the
  /// trough, by linear interpolation between consecutive points; trough_day if the trough is already at
  /// or above that level; nullopt if never reached within max_days_after (or pre_level is unknown).
  std::optional<double> t50_days, t90_days;
  /// Exponential recovery y(tau) = y_inf - (y_inf - y0) exp(-k tau), tau = days since the trough, fitted
  /// by least squares to the RAW points from the trough day to event + max_days_after (raw, not
  /// smoothed: a moving average makes the residuals autocorrelated and the interval too narrow).
  double y0 = kNotEstimated, y_inf = kNotEstimated, k_per_day = kNotEstimated;
  double k_se_per_day = kNotEstimated;    //!< Wald standard error of k, sqrt(s^2 [(J'J)^-1]_kk) with s^2 = RSS / (n - 3)
  double half_life_days = kNotEstimated;  //!< ln 2 / k
  /// Profile-likelihood interval (Bates & Watts 1988, "Nonlinear Regression Analysis and Its
  /// Applications", sec. 6.1: {k : RSS(k) <= RSS_min (1 + t^2_{n-3} / (n - 3))}, RSS(k) minimised over
  /// y0 and y_inf, t the Student-t quantile at (1 + ci_level) / 2), mapped through ln 2 / k. Unlike a
  /// Wald interval it is not forced to be symmetric in k, which matters with a handful of monthly
  /// points. The high end is +inf when the data cannot exclude k -> 0 (no recovery), the low end 0
  /// when they cannot exclude an instant recovery.
  double half_life_ci_low = kNotEstimated, half_life_ci_high = kNotEstimated;
  double permanent_loss = kNotEstimated;  //!< 1 - y_inf / pre_level (negative: the series overshoots its old level)
  double residual_sd = kNotEstimated;     //!< sqrt(RSS / (n - 3)) of the fit
  /// True only when all fit fields hold an estimate. When false, y0, y_inf, k_per_day, k_se_per_day,
  /// half_life_days, its interval, permanent_loss and residual_sd are NaN and fit_message says why
  /// (no pre-event points, no drop, fewer than 4 points from the trough, best k at a search bound).
  bool fit_ok = false;
  std::string fit_message;
  int n_points_fit = 0;  //!< raw points used by the fit (from the trough day on)
};

/// Estimates the recovery of `y` (observed at `t_days`, any order, any spacing) after `event_day`.
/// Never throws because of the shape of the data (too few points, no drop, mismatched lengths: fit_ok =
/// false); throws NumericalError naming the index for a NaN or infinite time or value, and ConfigError
/// for invalid options.
RecoveryEstimate estimate_recovery(const Eigen::Ref<const Eigen::VectorXd>& t_days,
                                   const Eigen::Ref<const Eigen::VectorXd>& y, double event_day,
                                   const RecoveryOptions& options = {});

struct VarEstimate {
  Eigen::MatrixXd A;  //!< m x m transition matrix, in the original units
  Eigen::VectorXd c;  //!< intercept, in the original units
  double dominant_eigenvalue_modulus = kNotEstimated;
  double half_life_days = kNotEstimated;  //!< step_days * ln(0.5) / ln|lambda_max|; +inf when |lambda_max| >= 1
  bool ok = false;
  std::string message;
};

/// VAR(1) x_{t+1} = c + A x_t + e_t fitted by OLS (column-pivoting QR) on consecutive rows of X (T x m,
/// one row per equally spaced step of `step_days`, e.g. the rows after the event). The columns are
/// standardised before the fit for conditioning (releases ~ 10^3, topsites ~ 10^1); A = D A_z D^-1 is
/// similar to the standardised A_z, so the eigenvalues are unchanged. ok = false with a message, and
/// NaN fields, when there are too few rows (T - 1 < m + 2), a column is constant or the regressors are
/// collinear; ok = false with A, c and the modulus filled in and half_life_days = +inf when
/// |lambda_max| >= 1 (not mean-reverting: no half-life). A complex or negative dominant root (an
/// oscillating return) still gives the half-life of the oscillation's amplitude. NaN/inf in X ->
/// NumericalError naming the row and column.
VarEstimate fit_var1(const Eigen::Ref<const Eigen::MatrixXd>& X, double step_days = 1.0);

struct ObservedSeries {
  std::vector<piracy::Date> dates;  //!< strictly increasing
  Eigen::VectorXd values;
};

/// Reads an observed series from a CSV file with a header line.
/// - Fields are separated by commas; a field may be double-quoted ("" is a quote inside it); blank lines
///   and lines starting with '#' are skipped.
/// - The date column is the column whose header is "date" (any case), otherwise the first column.
///   A date is "YYYY-MM-DD", or "YYYY-MM" for a monthly figure, which is dated on the 15th: the middle
///   of the month the figure aggregates, so it is at most about half a month from any of its days.
/// - The value column is the one whose header equals `value_column`; empty = the first non-date column.
///   Values are plain decimal numbers (no thousands separators); dates must be strictly increasing (a
///   missing observation is a missing row: irregular dates are fine).
/// Any error -> ConfigError "FILE:LINE:COLUMN: error: ..." (1-based line and character column).
ObservedSeries read_series_csv(const std::filesystem::path& path, std::string_view value_column = "");

/// estimate_recovery on observed dates (times = Date::days).
RecoveryEstimate estimate_recovery(const ObservedSeries& series, piracy::Date event,
                                   const RecoveryOptions& options = {});

/// JSON object text of an estimate, for the CLI. Non-finite numbers and nullopt are written as null
/// (fit_message says which bound of the interval is unbounded).
std::string format_recovery(const RecoveryEstimate& estimate);
/// JSON object text of a VAR(1) estimate (A as an array of rows).
std::string format_var(const VarEstimate& estimate);

/// Quantile of Student's t distribution with `df` > 0 degrees of freedom at probability p in (0, 1).
/// CDF from the regularised incomplete beta function (continued fraction, Press et al., Numerical
/// Recipes 3rd ed. 2007, sec. 6.4), inverted by bisection to full double precision.
double student_t_quantile(double p, double df);

}  // namespace piracy::economics
