#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <Eigen/Eigenvalues>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "economics/recovery.hpp"
#include "engine/date.hpp"
#include "engine/error.hpp"
#include "engine/rng.hpp"

using piracy::Date;
using namespace piracy::economics;

namespace {

// Box-Muller on the model's Philox stream: a fixed-seed, platform-independent Gaussian noise source.
double gaussian(piracy::Stream& s) {
  const double u1 = s.uniform(), u2 = s.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

// Daily series: `pre` on days [-100, 0), then y_inf - (y_inf - y0) exp(-k t) on days [0, 365],
// plus Gaussian noise of standard deviation `noise_sd`.
struct Daily {
  Eigen::VectorXd t, y;
};
Daily daily_recovery(double pre, double y0, double y_inf, double k, double noise_sd, std::uint64_t seed = 7) {
  const int n = 100 + 366;
  Daily d{Eigen::VectorXd(n), Eigen::VectorXd(n)};
  piracy::Stream s(seed, piracy::Purpose::Test, 1, 0);
  for (int i = 0; i < n; ++i) {
    const double t = i - 100;
    d.t(i) = t;
    const double clean = t < 0 ? pre : y_inf - (y_inf - y0) * std::exp(-k * t);
    d.y(i) = clean + noise_sd * gaussian(s);
  }
  return d;
}

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto p = std::filesystem::temp_directory_path() / ("piracy_recovery_test_" + name);
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// Message of the ConfigError thrown by read_series_csv, or "" if none.
std::string csv_error(const std::filesystem::path& p, std::string_view column = "") {
  try {
    (void)read_series_csv(p, column);
  } catch (const piracy::ConfigError& e) {
    return e.what();
  }
  return "";
}

const Date kSparksRaid = *Date::parse("2020-08-25");  // Europol / Eurojust action day of the Sparks takedown

}  // namespace

TEST_CASE("student_t_quantile matches tabulated values", "[economics][recovery]") {
  // References: R qt() (identical to scipy.stats.t.ppf) to 16 digits; the inversion is done to full
  // precision, so 1e-9 relative only absorbs the continued fraction's rounding.
  CHECK(student_t_quantile(0.975, 1) == Approx(12.706204736174698).epsilon(1e-9));
  CHECK(student_t_quantile(0.975, 10) == Approx(2.2281388519649385).epsilon(1e-9));
  CHECK(student_t_quantile(0.975, 30) == Approx(2.0422724563012373).epsilon(1e-9));
  CHECK(student_t_quantile(0.995, 3) == Approx(5.8409093097333510).epsilon(1e-9));
  CHECK(student_t_quantile(0.025, 10) == Approx(-2.2281388519649385).epsilon(1e-9));
  // Large df tends to the normal quantile 1.959963984540054; at df = 1e7 the gap is ~2.9e-7.
  CHECK(student_t_quantile(0.975, 1e7) == Approx(1.959963984540054).epsilon(1e-6));
  CHECK(student_t_quantile(0.5, 4) == 0.0);
}

TEST_CASE("noise-free exponential recovery is recovered exactly", "[economics][recovery]") {
  const double pre = 70000, y0 = 30000, y_inf = 66500, k = 0.02;
  const Daily d = daily_recovery(pre, y0, y_inf, k, 0.0);
  const RecoveryEstimate e = estimate_recovery(d.t, d.y, 0.0);
  REQUIRE(e.fit_ok);
  INFO(e.fit_message);
  CHECK(e.pre_level == Approx(pre).epsilon(1e-12));
  CHECK(e.trough == Approx(y0).epsilon(1e-12));
  CHECK(e.trough_day == 0.0);
  CHECK(e.drop_ratio == Approx(3.0 / 7.0).epsilon(1e-12));  // 30,000 / 70,000
  CHECK(e.n_points_fit == 366);                             // days 0..365
  // Zero-residual problem: the only error left is the 1-D search tolerance (1e-12 in log k).
  CHECK(e.k_per_day == Approx(k).epsilon(1e-6));
  CHECK(e.y0 == Approx(y0).epsilon(1e-6));
  CHECK(e.y_inf == Approx(y_inf).epsilon(1e-6));
  CHECK(e.half_life_days == Approx(std::log(2.0) / k).epsilon(1e-6));
  CHECK(e.permanent_loss == Approx(0.05).margin(1e-6));  // 1 - 66,500 / 70,000
  // With no residual the interval collapses onto the estimate.
  CHECK(e.half_life_ci_low <= e.half_life_days);
  CHECK(e.half_life_ci_high >= e.half_life_days);
  CHECK(e.half_life_ci_high - e.half_life_ci_low < 1e-6);

  // t50 / t90 analytic: y(t) = L  <=>  t = ln((y_inf - y0) / (y_inf - L)) / k. Linear interpolation of
  // a concave increasing curve crosses late, by at most max|y''| h^2 / (8 y') = k h^2 / 8 = 0.0025 days
  // for daily points (h = 1).
  const double t50 = std::log((y_inf - y0) / (y_inf - 0.5 * pre)) / k;
  const double t90 = std::log((y_inf - y0) / (y_inf - 0.9 * pre)) / k;
  REQUIRE(e.t50_days);
  REQUIRE(e.t90_days);
  CHECK(*e.t50_days >= t50);
  CHECK(*e.t50_days - t50 <= k / 8 + 1e-12);
  CHECK(*e.t90_days >= t90);
  CHECK(*e.t90_days - t90 <= k / 8 + 1e-12);
}

TEST_CASE("noisy daily recovery: k within 1% and the interval covers the truth", "[economics][recovery]") {
  const double pre = 70000, y0 = 30000, y_inf = 66500, k = 0.02;
  const double true_half_life = std::log(2.0) / k;  // 34.66 days
  // Noise sd 200 releases/day, ~0.5% of the 36,500 amplitude. With 366 daily points the Wald standard
  // error of k is then ~0.28% of k (checked below), so the 1% tolerance is ~3.5 standard errors: a correct
  // fit passes for any seed, a biased one (e.g. fitting the smoothed series' lag) does not.
  const Daily d = daily_recovery(pre, y0, y_inf, k, 200.0);
  const RecoveryEstimate e = estimate_recovery(d.t, d.y, 0.0);
  REQUIRE(e.fit_ok);
  INFO(format_recovery(e));
  CHECK(e.k_se_per_day < 0.0035 * k);
  CHECK(std::fabs(e.k_per_day / k - 1.0) < 0.01);
  CHECK(e.half_life_ci_low < true_half_life);
  CHECK(e.half_life_ci_high > true_half_life);
  CHECK(e.half_life_ci_low < e.half_life_days);
  CHECK(e.half_life_ci_high > e.half_life_days);
  // The profile interval must agree with the Wald interval to first order when n is large: the half-life
  // half-width is ~ t * hl * se_k / k (delta method). 20% covers the curvature of ln2/k.
  const double wald_half_width = student_t_quantile(0.975, e.n_points_fit - 3) * e.half_life_days * e.k_se_per_day /
                                 e.k_per_day;
  CHECK(0.5 * (e.half_life_ci_high - e.half_life_ci_low) == Approx(wald_half_width).epsilon(0.2));
  // The residual sd estimates the noise: sd of the estimate is ~sd/sqrt(2n) = 4%, 12% is 3 of them.
  CHECK(e.residual_sd == Approx(200.0).epsilon(0.12));
  CHECK(e.permanent_loss == Approx(0.05).margin(0.005));  // se of y_inf ~ 20 releases = 0.0003 of 70,000
  // A wider level gives a wider interval.
  RecoveryOptions wide;
  wide.ci_level = 0.99;
  const RecoveryEstimate e99 = estimate_recovery(d.t, d.y, 0.0, wide);
  CHECK(e99.half_life_ci_low < e.half_life_ci_low);
  CHECK(e99.half_life_ci_high > e.half_life_ci_high);

  SECTION("a 7-day trailing average moves the trough but not the fit") {
    RecoveryOptions o;
    o.smoothing_days = 7;
    const RecoveryEstimate s = estimate_recovery(d.t, d.y, 0.0, o);
    REQUIRE(s.fit_ok);
    // The trailing window still holds pre-event days until day 6; from day 6 on it is the lowest.
    CHECK(s.trough_day == Approx(6.0).margin(1.0));
    // The fit uses the raw points from the smoothed trough; an exponential started later has the same k.
    CHECK(std::fabs(s.k_per_day / k - 1.0) < 0.01);
    CHECK(s.half_life_ci_low < true_half_life);
    CHECK(s.half_life_ci_high > true_half_life);
  }
}

TEST_CASE("irregular monthly points: the Sparks 2020 shape", "[economics][recovery]") {
  // Le Monde 2020: > 70,000 Scene releases in July 2020, 30,000 in September; TorrentFreak: "practically
  // back to normal" in January 2021 (taken as 63,000 = 90%). Monthly figures dated on the 15th; the series
  // between them is made noise-free from y_inf = 68,000 (permanent loss 1 - 68/70) and the k that puts
  // January at 63,000: 68,000 - 38,000 exp(-122 k) = 63,000 (122 days from 15 Sep to 15 Jan).
  const double y_inf = 68000, y0 = 30000;
  const double k = std::log(38000.0 / 5000.0) / 122.0;
  const Date sep = *Date::parse("2020-09-15");
  std::string csv = "month,p2p,scene\n";
  for (int i = 0; i < 11; ++i) {  // 2020-05 .. 2021-03
    const int month = 5 + i;
    const int year = month > 12 ? 2021 : 2020;
    const Date d = Date::from_ymd(year, static_cast<unsigned>(month > 12 ? month - 12 : month), 15);
    const double v = d < sep ? 70000.0 : y_inf - (y_inf - y0) * std::exp(-k * (d - sep));
    csv += fmt::format("{},{},{:.17g}\n", d.year_month(), 50000 + i, v);
  }
  const auto path = write_file("monthly.csv", csv);
  const ObservedSeries s = read_series_csv(path, "scene");
  REQUIRE(s.dates.size() == 11);
  CHECK(s.dates.front().iso() == "2020-05-15");  // YYYY-MM is dated on the 15th
  RecoveryOptions o;
  o.pre_window_days = 120;  // May..August figures (15 Aug is before the 25 Aug raid)
  const RecoveryEstimate e = estimate_recovery(s, kSparksRaid, o);
  REQUIRE(e.fit_ok);
  INFO(format_recovery(e));
  CHECK(e.pre_level == Approx(70000));
  CHECK(e.trough_day == 21.0);  // 15 Sep is 21 days after 25 Aug
  CHECK(e.drop_ratio == Approx(3.0 / 7.0).epsilon(1e-12));
  CHECK(e.n_points_fit == 7);  // Sep .. Mar, irregular 30/31-day gaps
  // Noise-free: exact up to the search tolerance.
  CHECK(e.k_per_day == Approx(k).epsilon(1e-6));
  CHECK(e.y_inf == Approx(y_inf).epsilon(1e-6));
  CHECK(e.permanent_loss == Approx(1.0 - 68.0 / 70.0).margin(1e-6));
  // t90: January's point is exactly 90% of 70,000 (143 days after the raid); t50 interpolates
  // linearly between 15 Sep (30,000) and 15 Oct.
  const double oct = y_inf - (y_inf - y0) * std::exp(-k * 30.0);
  REQUIRE(e.t50_days);
  REQUIRE(e.t90_days);
  CHECK(*e.t50_days == Approx(21.0 + 30.0 * (35000.0 - 30000.0) / (oct - 30000.0)).epsilon(1e-12));
  CHECK(*e.t90_days == Approx(143.0).margin(1e-6));
  std::filesystem::remove(path);
}

TEST_CASE("the three reported points alone give the drop and crossings but no fit", "[economics][recovery]") {
  const Eigen::Vector3d t(Date::from_ymd(2020, 7, 15).days, Date::from_ymd(2020, 9, 15).days,
                          Date::from_ymd(2021, 1, 15).days);
  const Eigen::Vector3d y(70000, 30000, 63000);
  const RecoveryEstimate e = estimate_recovery(t, y, kSparksRaid.days);
  CHECK_FALSE(e.fit_ok);
  CHECK_THAT(e.fit_message, Catch::Matchers::Contains("too few points"));
  CHECK(e.n_points_fit == 2);
  CHECK(std::isnan(e.k_per_day));
  CHECK(std::isnan(e.half_life_days));
  CHECK(std::isnan(e.permanent_loss));
  CHECK(e.pre_level == 70000);
  CHECK(e.drop_ratio == Approx(3.0 / 7.0).epsilon(1e-12));
  REQUIRE(e.t50_days);
  REQUIRE(e.t90_days);
  // 35,000 between 30,000 (day 21) and 63,000 (day 143): 21 + 122 * 5,000 / 33,000.
  CHECK(*e.t50_days == Approx(21.0 + 122.0 * 5000.0 / 33000.0).epsilon(1e-12));
  CHECK(*e.t90_days == Approx(143.0).epsilon(1e-12));
  const std::string json = format_recovery(e);
  CHECK_THAT(json, Catch::Matchers::Contains("\"k_per_day\": null"));
  CHECK_THAT(json, Catch::Matchers::Contains("\"fit_ok\": false"));
}

TEST_CASE("data that cannot be fitted give fit_ok = false, not exceptions", "[economics][recovery]") {
  SECTION("no drop") {
    const Daily d = daily_recovery(1000, 1000, 1000, 0.1, 0.0);
    const RecoveryEstimate e = estimate_recovery(d.t, d.y, 0.0);
    CHECK_FALSE(e.fit_ok);
    CHECK_THAT(e.fit_message, Catch::Matchers::Contains("no drop"));
    CHECK(e.drop_ratio == 1.0);
    CHECK(std::isnan(e.y_inf));
  }
  SECTION("no pre-event points") {
    const Daily d = daily_recovery(1000, 300, 1000, 0.1, 0.0);
    const RecoveryEstimate e = estimate_recovery(d.t.tail(366), d.y.tail(366), 0.0);  // days 0..365
    CHECK_FALSE(e.fit_ok);
    CHECK_THAT(e.fit_message, Catch::Matchers::Contains("pre-event window"));
    CHECK(std::isnan(e.pre_level));
    CHECK(e.trough == Approx(300));
  }
  SECTION("no points after the event") {
    const Daily d = daily_recovery(1000, 300, 1000, 0.1, 0.0);
    const RecoveryEstimate e = estimate_recovery(d.t.head(50), d.y.head(50), 0.0);
    CHECK_FALSE(e.fit_ok);
    CHECK(std::isnan(e.trough));
  }
  SECTION("mismatched lengths") {
    const Eigen::VectorXd t = Eigen::VectorXd::LinSpaced(10, 0, 9);
    const Eigen::VectorXd y = Eigen::VectorXd::Ones(9);
    RecoveryEstimate e;
    REQUIRE_NOTHROW(e = estimate_recovery(t, y, 5.0));
    CHECK_FALSE(e.fit_ok);
    CHECK_THAT(e.fit_message, Catch::Matchers::Contains("10 entries but y has 9"));
  }
  SECTION("a drop that never recovers: straight line, y_inf not identified") {
    Eigen::VectorXd t = Eigen::VectorXd::LinSpaced(200, -50, 149);
    Eigen::VectorXd y(200);
    for (int i = 0; i < 200; ++i) y(i) = t(i) < 0 ? 1000.0 : 200.0 + 0.5 * t(i);  // linear, no curvature
    const RecoveryEstimate e = estimate_recovery(t, y, 0.0);
    CHECK_FALSE(e.fit_ok);
    CHECK_THAT(e.fit_message, Catch::Matchers::Contains("straight line"));
  }
}

TEST_CASE("non-finite inputs and bad options are errors", "[economics][recovery]") {
  Daily d = daily_recovery(1000, 300, 1000, 0.1, 0.0);
  Eigen::VectorXd y = d.y;
  y(3) = std::nan("");
  CHECK_THROWS_AS(estimate_recovery(d.t, y, 0.0), piracy::NumericalError);
  CHECK_THROWS_WITH(estimate_recovery(d.t, y, 0.0), Catch::Matchers::Contains("y[3]"));
  Eigen::VectorXd t = d.t;
  t(7) = INFINITY;
  CHECK_THROWS_WITH(estimate_recovery(t, d.y, 0.0), Catch::Matchers::Contains("t_days[7]"));
  CHECK_THROWS_AS(estimate_recovery(d.t, d.y, std::nan("")), piracy::NumericalError);
  RecoveryOptions o;
  o.ci_level = 1.0;
  CHECK_THROWS_AS(estimate_recovery(d.t, d.y, 0.0, o), piracy::ConfigError);
  o = {};
  o.smoothing_days = 0;
  CHECK_THROWS_AS(estimate_recovery(d.t, d.y, 0.0, o), piracy::ConfigError);
}

TEST_CASE("VAR(1) recovers the dominant eigenvalue of a known system", "[economics][recovery]") {
  // Upper-triangular A: its eigenvalues are its diagonal (0.95, 0.7, 0.4), so the dominant one is
  // known exactly. Columns on the scales of (releases/day, active sceners, live topsites).
  Eigen::Matrix3d A;
  A << 0.95, 0.20, 0.10,
       0.00, 0.70, 0.30,
       0.00, 0.00, 0.40;
  const Eigen::Vector3d mu(2300, 500, 30);
  const Eigen::Vector3d c = (Eigen::Matrix3d::Identity() - A) * mu;  // stationary mean mu
  const Eigen::Vector3d sd(50, 10, 1);
  const int T = 5000, burn = 500;
  Eigen::MatrixXd X(T, 3);
  Eigen::Vector3d x = mu;
  piracy::Stream s(11, piracy::Purpose::Test, 2, 0);
  for (int i = -burn; i < T; ++i) {
    Eigen::Vector3d e;
    for (int j = 0; j < 3; ++j) e(j) = sd(j) * gaussian(s);
    x = c + A * x + e;
    if (i >= 0) X.row(i) = x.transpose();
  }
  const VarEstimate v = fit_var1(X, 7.0);
  REQUIRE(v.ok);
  INFO(format_var(v));
  // OLS standard error of the dominant root ~ sqrt((1 - 0.95^2) / 5000) = 0.0044: 0.02 is > 4 of them.
  CHECK(v.dominant_eigenvalue_modulus == Approx(0.95).margin(0.02));
  // Half-life formula with step_days = 7: 7 ln 0.5 / ln |lambda|.
  CHECK(v.half_life_days == Approx(7.0 * std::log(0.5) / std::log(v.dominant_eigenvalue_modulus)).epsilon(1e-12));
  // The back-transformation to original units: A keeps the eigenvalues of the standardised fit, and
  // (I - A)^-1 c is the stationary mean (sample mean of X; its error is tiny next to 1%).
  const Eigen::VectorXcd ev = Eigen::EigenSolver<Eigen::MatrixXd>(v.A).eigenvalues();
  CHECK(ev.cwiseAbs().maxCoeff() == Approx(v.dominant_eigenvalue_modulus).epsilon(1e-9));
  const Eigen::Vector3d implied_mean = (Eigen::Matrix3d::Identity() - v.A).partialPivLu().solve(v.c);
  for (int j = 0; j < 3; ++j) CHECK(implied_mean(j) == Approx(mu(j)).epsilon(0.01));
  CHECK(v.A(0, 0) == Approx(0.95).margin(0.03));
  CHECK_THAT(format_var(v), Catch::Matchers::Contains("\"dominant_eigenvalue_modulus\""));
}

TEST_CASE("VAR(1) failures are reported, not thrown", "[economics][recovery]") {
  SECTION("explosive system: no half-life") {
    Eigen::MatrixXd X(200, 2);
    piracy::Stream s(3, piracy::Purpose::Test, 3, 0);
    Eigen::Vector2d x(1, 1);
    for (int i = 0; i < 200; ++i) {
      x = 1.03 * x + Eigen::Vector2d(gaussian(s), gaussian(s));
      X.row(i) = x.transpose();
    }
    const VarEstimate v = fit_var1(X);
    CHECK_FALSE(v.ok);
    CHECK(v.dominant_eigenvalue_modulus > 1.0);
    CHECK(std::isinf(v.half_life_days));
  }
  SECTION("too few rows") {
    const VarEstimate v = fit_var1(Eigen::MatrixXd::Random(4, 3));
    CHECK_FALSE(v.ok);
    CHECK_THAT(v.message, Catch::Matchers::Contains("too few rows"));
  }
  SECTION("constant column") {
    Eigen::MatrixXd X = Eigen::MatrixXd::Random(50, 3);
    X.col(1).setConstant(29.0);
    const VarEstimate v = fit_var1(X);
    CHECK_FALSE(v.ok);
    CHECK_THAT(v.message, Catch::Matchers::Contains("column 1 is constant"));
  }
  SECTION("NaN is a NumericalError naming the cell") {
    Eigen::MatrixXd X = Eigen::MatrixXd::Random(50, 3);
    X(2, 1) = std::nan("");
    CHECK_THROWS_AS(fit_var1(X), piracy::NumericalError);
    CHECK_THROWS_WITH(fit_var1(X), Catch::Matchers::Contains("X(2, 1)"));
  }
}

TEST_CASE("read_series_csv reads both date forms", "[economics][recovery]") {
  SECTION("daily dates, quoted fields, comments, CRLF, default value column") {
    const auto p = write_file("daily.csv",
                              "# Scene releases per day\r\n"
                              "\"releases\",Date\r\n"
                              "2300,2020-08-23\r\n"
                              "\"2250.5\", 2020-08-24\r\n"
                              "\r\n"
                              "1000,\"2020-08-26\"\r\n");
    const ObservedSeries s = read_series_csv(p);
    REQUIRE(s.dates.size() == 3);
    CHECK(s.dates[0].iso() == "2020-08-23");  // the "date" column is found by name, not position
    CHECK(s.dates[2].iso() == "2020-08-26");
    CHECK(s.values(1) == 2250.5);
    CHECK(s.values(2) == 1000.0);
    std::filesystem::remove(p);
  }
  SECTION("monthly dates are dated on the 15th; first column is the date when none is named 'date'") {
    const auto p = write_file("month.csv", "month,scene,p2p\n2020-07,70000,40000\n2020-09,30000,38000\n");
    const ObservedSeries s = read_series_csv(p);
    REQUIRE(s.dates.size() == 2);
    CHECK(s.dates[0] == Date::from_ymd(2020, 7, 15));
    CHECK(s.dates[1] == Date::from_ymd(2020, 9, 15));
    CHECK(s.values(0) == 70000.0);  // default: first non-date column
    const ObservedSeries p2p = read_series_csv(p, "p2p");
    CHECK(p2p.values(1) == 38000.0);
    std::filesystem::remove(p);
  }
}

TEST_CASE("read_series_csv errors are located", "[economics][recovery]") {
  const auto p = write_file("bad.csv", "date,releases\n2020-07,70000\n2020-09,abc\n");
  const std::string where = p.string();
  SECTION("wrong column name") {
    const std::string m = csv_error(p, "Releases");
    CHECK_THAT(m, Catch::Matchers::StartsWith(where + ":1:1: error: no column named 'Releases'"));
    CHECK_THAT(m, Catch::Matchers::Contains("did you mean 'releases'"));
  }
  SECTION("non-numeric value: line 3, column 9") {
    CHECK_THAT(csv_error(p), Catch::Matchers::StartsWith(where + ":3:9: error: 'abc'"));
  }
  SECTION("thousands separator in a quoted value") {
    const auto q = write_file("bad_sep.csv", "date,releases\n2020-07,\"70,000\"\n");
    CHECK_THAT(csv_error(q), Catch::Matchers::StartsWith(q.string() + ":2:9: error: '70,000'"));
    std::filesystem::remove(q);
  }
  SECTION("bad date, decreasing dates, wrong field count, empty value, no rows, missing file") {
    const auto a = write_file("bad_date.csv", "date,releases\n2020-13,1\n");
    CHECK_THAT(csv_error(a), Catch::Matchers::StartsWith(a.string() + ":2:1: error: '2020-13' is not a date"));
    const auto b = write_file("bad_order.csv", "date,releases\n2020-09-15,1\n2020-09,2\n");
    CHECK_THAT(csv_error(b), Catch::Matchers::StartsWith(b.string() + ":3:1: error: date 2020-09-15"));
    const auto c = write_file("bad_count.csv", "date,releases\n2020-09-15,1,7\n");
    CHECK_THAT(csv_error(c), Catch::Matchers::StartsWith(c.string() + ":2:14: error: 3 fields"));
    const auto d = write_file("bad_empty.csv", "date,releases\n2020-09-15,\n");
    CHECK_THAT(csv_error(d), Catch::Matchers::StartsWith(d.string() + ":2:12: error: empty value"));
    const auto e = write_file("bad_norows.csv", "# nothing yet\ndate,releases\n");
    CHECK_THAT(csv_error(e), Catch::Matchers::StartsWith(e.string() + ":2:1: error: no data rows"));
    CHECK_THAT(csv_error("/nonexistent/piracy/none.csv"), Catch::Matchers::Contains("cannot open"));
    for (const auto& f : {a, b, c, d, e}) std::filesystem::remove(f);
  }
  std::filesystem::remove(p);
}
