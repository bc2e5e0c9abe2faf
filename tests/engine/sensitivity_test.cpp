// Sensitivity estimators on analytic functions whose indices are known (engine/sensitivity.hpp).
#include "engine/sensitivity.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"

using namespace piracy;

TEST_CASE("sensitivity: Sobol indices of the Ishigami function match the analytic values", "[sensitivity]") {
  // Ishigami (1990), a = 7, b = 0.1: S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437)
  // (Sobol' & Levitan 1999). N = 4096 Saltelli rows (20,480 evaluations, milliseconds).
  const auto d = sensitivity::saltelli_design(3, 4096);
  REQUIRE(d.points.size() == 4096 * 5);
  std::vector<double> y;
  for (const auto& x : d.points) y.push_back(sensitivity::ishigami(x));
  const auto idx = sensitivity::sobol_indices(d, y, 300, 0.95, 9);
  const auto truth = sensitivity::ishigami_indices();
  CHECK(truth[0] == Approx(0.3139).margin(1e-4));
  CHECK(truth[3] == Approx(0.5576).margin(1e-4));
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("parameter " << i << ": S1 " << idx[i].s1 << " [" << idx[i].s1_ci_low << ", " << idx[i].s1_ci_high
                      << "], ST " << idx[i].st << " [" << idx[i].st_ci_low << ", " << idx[i].st_ci_high << "]");
    // The analytic value lies inside the bootstrap interval (a small margin for the percentile
    // bootstrap's coverage on a deterministic quasi-random sample) ...
    CHECK(idx[i].s1_ci_low - 0.01 <= truth[i]);
    CHECK(truth[i] <= idx[i].s1_ci_high + 0.01);
    CHECK(idx[i].st_ci_low - 0.01 <= truth[3 + i]);
    CHECK(truth[3 + i] <= idx[i].st_ci_high + 0.01);
    // ... and the estimates are close (a wrong estimator is off by 0.1 or more).
    CHECK(idx[i].s1 == Approx(truth[i]).margin(0.03));
    CHECK(idx[i].st == Approx(truth[3 + i]).margin(0.03));
    CHECK(idx[i].s1_ci_low <= idx[i].s1);
    CHECK(idx[i].s1 <= idx[i].s1_ci_high);
  }
}

TEST_CASE("sensitivity: Morris ranks a linear function's inputs by their coefficients", "[sensitivity]") {
  // f = sum c_i x_i on the unit cube: every elementary effect of x_i is exactly c_i, so
  // mu = mu* = c_i and sigma = 0 (Morris 1991).
  const std::vector<double> c = {0.5, 4.0, -2.0, 1.0, 0.0};
  const auto d = sensitivity::morris_design(c.size(), 12, 4, 21);
  REQUIRE(d.points.size() == 12 * (c.size() + 1));
  for (const auto& x : d.points)
    for (const double v : x) {
      CHECK(v >= 0.0);
      CHECK(v <= 1.0);
    }
  std::vector<double> y;
  for (const auto& x : d.points) {
    double s = 0;
    for (std::size_t i = 0; i < c.size(); ++i) s += c[i] * x[i];
    y.push_back(s);
  }
  const auto idx = sensitivity::morris_indices(d, y, 100, 0.95, 2);
  for (std::size_t i = 0; i < c.size(); ++i) {
    CHECK(idx[i].mu == Approx(c[i]).margin(1e-9));
    CHECK(idx[i].mu_star == Approx(std::fabs(c[i])).margin(1e-9));
    CHECK(idx[i].sigma == Approx(0).margin(1e-9));
  }
  std::vector<std::size_t> order = {0, 1, 2, 3, 4};
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return idx[a].mu_star > idx[b].mu_star; });
  CHECK(order == std::vector<std::size_t>{1, 2, 3, 0, 4});
}

TEST_CASE("sensitivity: Morris screening of a nonlinear function separates interactions", "[sensitivity]") {
  // f = x0 + x1 * x2: x0 is linear (sigma 0), x1 and x2 interact (sigma > 0).
  const auto d = sensitivity::morris_design(3, 20, 4, 5);
  std::vector<double> y;
  for (const auto& x : d.points) y.push_back(x[0] + 3 * x[1] * x[2]);
  const auto idx = sensitivity::morris_indices(d, y);
  CHECK(idx[0].sigma == Approx(0).margin(1e-9));
  CHECK(idx[1].sigma > 0.1);
  CHECK(idx[2].sigma > 0.1);
  CHECK(idx[0].mu_star_ci_low <= idx[0].mu_star);
}

TEST_CASE("sensitivity: bad sizes are configuration errors", "[sensitivity]") {
  CHECK_THROWS_AS(sensitivity::morris_design(0, 4, 4, 1), ConfigError);
  CHECK_THROWS_AS(sensitivity::morris_design(2, 4, 3, 1), ConfigError);
  CHECK_THROWS_AS(sensitivity::saltelli_design(33, 8), ConfigError);
}
