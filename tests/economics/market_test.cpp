#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <random>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "economics/market.hpp"
#include "engine/error.hpp"

using piracy::ModelError;
using piracy::NumericalError;
using piracy::economics::bass_availability;
using piracy::economics::bass_availability_many;
using piracy::economics::default_market_params;
using piracy::economics::kChannels;
using piracy::economics::LeakSource;
using piracy::economics::Market;
using piracy::economics::MarketParams;
using piracy::economics::MarketTitle;

namespace {

// Round numbers so that expected values are easy to follow; not the recommended defaults.
MarketParams simple_params() {
  MarketParams p;
  p.price_usd = {10.0, 20.0, 5.0, 1.0};
  p.share = {0.4, 0.1, 0.2, 0.3};
  p.decay_per_day = {0.1, 0.05, 0.02, 0.01};
  p.displacement = {0.4, 0.4, 0.4, 0.2};
  p.pre_release_penalty = {0.0, 0.0, 0.0, 0.0};
  p.piracy_propensity = 0.5;
  p.bass_p = 0.05;
  p.bass_q = 0.4;
  p.substitution.setZero();
  p.life_days = 365;
  return p;
}

MarketTitle title(double audience, std::array<std::int32_t, 4> windows, double popularity = 1.0) {
  MarketTitle t;
  t.audience = audience;
  t.popularity = popularity;
  t.window_start = windows;
  return t;
}

// Counterfactual demand of the model, written out independently of market.cpp:
// D_c(t) = a share_c (1 - e^{-lambda_c}) e^{-lambda_c (t - s_c)} for t >= s_c >= 0.
double demand(const MarketParams& p, const MarketTitle& t, int c, int day) {
  const int s = t.window_start[static_cast<std::size_t>(c)];
  if (s < 0 || day < s) return 0.0;
  const double lambda = p.decay_per_day[static_cast<std::size_t>(c)];
  return t.audience * p.share[static_cast<std::size_t>(c)] * (1.0 - std::exp(-lambda)) *
         std::exp(-lambda * (day - s));
}

// Stepwise Bass recursion written out independently: A_0 = p, A_{n+1} = A_n + (p + q pop A_n)(1 - A_n).
double bass_reference(double p, double q, double pop, int n) {
  double a = p;
  for (int k = 0; k < n; ++k) a = std::min(1.0, a + (p + q * pop * a) * (1.0 - a));
  return a;
}

/// A small LCG for the tests' random cases: they need variety, not quality. next(n) is in [0, n).
struct Lcg {
  std::uint64_t x;
  std::uint64_t operator()(std::uint64_t n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return (x >> 33) % n;
  }
};

}  // namespace

TEST_CASE("market parameters are validated", "[economics][market]") {
  REQUIRE_NOTHROW(piracy::economics::validate(default_market_params()));
  REQUIRE_NOTHROW(piracy::economics::validate(simple_params()));

  const auto rejects = [](auto mutate, const std::string& field) {
    MarketParams p = simple_params();
    mutate(p);
    REQUIRE_THROWS_AS(piracy::economics::validate(p), ModelError);
    REQUIRE_THROWS_WITH(piracy::economics::validate(p), Catch::Contains(field));
    REQUIRE_THROWS_AS(Market(p), ModelError);  // the constructor validates too
  };
  rejects([](MarketParams& p) { p.price_usd[1] = -1.0; }, "price_usd[1]");
  rejects([](MarketParams& p) { p.share[0] = 1.5; }, "share[0]");
  rejects([](MarketParams& p) { p.share = {0.5, 0.3, 0.2, 0.2}; }, "share sums to");
  rejects([](MarketParams& p) { p.decay_per_day[2] = 0.0; }, "decay_per_day[2]");
  rejects([](MarketParams& p) { p.displacement[3] = 1.2; }, "displacement[3]");
  rejects([](MarketParams& p) { p.pre_release_penalty[0] = -0.1; }, "pre_release_penalty[0]");
  rejects([](MarketParams& p) { p.piracy_propensity = std::nan(""); }, "piracy_propensity");
  rejects([](MarketParams& p) { p.bass_p = 0.0; }, "bass_p");
  rejects([](MarketParams& p) { p.bass_q = -0.1; }, "bass_q");
  rejects([](MarketParams& p) { p.substitution(0, 1) = -0.2; }, "substitution(0, 1)");
  rejects(
      [](MarketParams& p) {
        p.substitution(0, 1) = 0.7;
        p.substitution(2, 1) = 0.5;
      },
      "substitution column 1 (disc) sums to 1.2");
  rejects([](MarketParams& p) { p.life_days = 0; }, "life_days");

  // Column sums of exactly 1 written as decimals (0.1 + 0.2 + 0.7) are accepted.
  MarketParams ok = simple_params();
  ok.substitution(1, 0) = 0.1;
  ok.substitution(2, 0) = 0.2;
  ok.substitution(3, 0) = 0.7;
  REQUIRE_NOTHROW(piracy::economics::validate(ok));

  Market m(simple_params());
  REQUIRE_THROWS_AS(m.add_title(title(std::nan(""), {0, -1, -1, -1})), ModelError);
  REQUIRE_THROWS_AS(m.add_title(title(-5.0, {0, -1, -1, -1})), ModelError);
  REQUIRE_THROWS_AS(m.add_title(title(5.0, {0, -1, -1, -1}, -1.0)), ModelError);
}

TEST_CASE("without leaks there is no loss and revenue equals the counterfactual", "[economics][market]") {
  const MarketParams p = simple_params();
  Market m(p);
  const MarketTitle a = title(1000.0, {0, 118, 94, 200});
  const MarketTitle b = title(500.0, {-1, -1, 10, 50});  // direct to digital
  const MarketTitle none = title(800.0, {-1, -1, -1, -1});
  m.add_title(a);
  m.add_title(b);
  m.add_title(none);

  double counterfactual = 0.0;
  for (int day = 0; day < 400; ++day) {
    const auto d = m.step(day);
    // Unleaked titles: A = 0 makes both factors exactly 1, so the loss is exactly 0, not just small.
    REQUIRE(d.loss_usd == 0.0);
    REQUIRE(d.legal_revenue_usd == d.counterfactual_revenue_usd);
    for (int c = 0; c < kChannels; ++c) REQUIRE(d.loss_by_channel_usd[static_cast<std::size_t>(c)] == 0.0);
    // Daily counterfactual revenue against the formula; 1e-12: the market keeps D by the
    // recursion D(t) = e^{-lambda} D(t-1), which drifts from exp() by a few ulp per day.
    double expected = 0.0;
    for (int c = 0; c < kChannels; ++c) {
      // a is in the market on days [0, 365), b on [10, 375) (life_days = 365 after the first window).
      const double units = (day < 365 ? demand(p, a, c, day) : 0.0) + (day < 375 ? demand(p, b, c, day) : 0.0);
      expected += p.price_usd[static_cast<std::size_t>(c)] * units;
    }
    REQUIRE(d.counterfactual_revenue_usd == Approx(expected).epsilon(1e-12));
    counterfactual += d.counterfactual_revenue_usd;
    // Active set: a from day 0 to 364, b from day 10 to 374; `none` never.
    const int active = (day < 365 ? 1 : 0) + (day >= 10 && day < 375 ? 1 : 0);
    REQUIRE(d.active_titles == active);
  }
  CHECK(m.active_titles() == 0);

  // Lifetime demand: channel c of a title is in the market for n_c = first window + life - s_c
  // days and sums to a share_c (1 - e^{-lambda_c n_c}) (geometric series of the day-integrals).
  double lifetime = 0.0;
  for (const auto& [t, first] : {std::pair{a, 0}, std::pair{b, 10}}) {
    for (int c = 0; c < kChannels; ++c) {
      const int s = t.window_start[static_cast<std::size_t>(c)];
      if (s < 0) continue;
      const double n = first + p.life_days - s;
      lifetime += p.price_usd[static_cast<std::size_t>(c)] * t.audience * p.share[static_cast<std::size_t>(c)] *
                  (1.0 - std::exp(-p.decay_per_day[static_cast<std::size_t>(c)] * n));
    }
  }
  CHECK(counterfactual == Approx(lifetime).epsilon(1e-10));
  const auto s = m.summary();
  CHECK(s.total_usd == 0.0);
  CHECK(s.by_group_usd.empty());
}

TEST_CASE("with no pre-release penalty and no substitution the loss is kappa d_c A D", "[economics][market]") {
  const MarketParams p = simple_params();
  Market m(p);
  const MarketTitle t = title(1.0e5, {0, 30, 20, 60}, 1.5);
  const auto id = m.add_title(t);
  m.record_leak(id, 5, LeakSource{7, false, false});
  for (int day = 0; day < 200; ++day) {
    const auto d = m.step(day);
    const double A = day < 5 ? 0.0 : bass_reference(p.bass_p, p.bass_q, 1.5, day - 5);
    // 1e-13: availability and the market's batched update are the same recursion.
    REQUIRE(m.availability(id) == Approx(A).epsilon(1e-13).margin(1e-15));
    for (int c = 0; c < kChannels; ++c) {
      const auto cc = static_cast<std::size_t>(c);
      const double expected = p.price_usd[cc] * p.piracy_propensity * p.displacement[cc] * A * demand(p, t, c, day);
      // 1e-11: the demand recursion (see above) plus one rounding per factor.
      REQUIRE(d.loss_by_channel_usd[cc] == Approx(expected).epsilon(1e-11).margin(1e-12));
    }
    if (day < 5) REQUIRE(d.loss_usd == 0.0);
  }
  // Linear in availability: the loss of a title is the same in a market with half the propensity
  // times two (kappa enters only through kappa d_c A).
  MarketParams half = p;
  half.piracy_propensity = p.piracy_propensity / 2.0;
  Market m2(half);
  m2.add_title(t);
  m2.record_leak(0, 5, LeakSource{7, false, false});
  for (int day = 0; day < 200; ++day) m2.step(day);
  CHECK(2.0 * m2.summary().total_usd == Approx(m.summary().total_usd).epsilon(1e-12));
}

TEST_CASE("substitution with column sums of 1 conserves total demand", "[economics][market]") {
  MarketParams p = simple_params();
  p.price_usd = {1.0, 1.0, 1.0, 1.0};  // loss in USD = lost units
  p.pre_release_penalty = {0.191, 0.191, 0.191, 0.0};
  MarketParams full = p;
  // S(k, j): from theatrical to disc/digital/subscription, disc to digital, digital to disc and
  // subscription, subscription to digital; every column sums to 1.
  full.substitution << 0.0, 0.0, 0.0, 0.0,  //
      0.2, 0.0, 0.5, 0.0,                    //
      0.5, 1.0, 0.0, 1.0,                    //
      0.3, 0.0, 0.5, 0.0;
  MarketParams half = full;
  half.substitution *= 0.5;

  const MarketTitle all = title(1.0e4, {3, 10, 5, 20});
  const MarketTitle no_disc = title(1.0e4, {3, -1, 5, 20});
  Market m0(p), m1(full), mh(half), m0n(p), m1n(full);
  for (Market* m : {&m0, &m1, &mh}) {
    m->add_title(all);
    m->record_leak(0, 1, LeakSource{1, false, true});  // pre-release: both factors displace demand
  }
  for (Market* m : {&m0n, &m1n}) {
    m->add_title(no_disc);
    m->record_leak(0, 1, LeakSource{1, false, true});
  }
  bool shifted = false;
  for (int day = 0; day < 300; ++day) {
    const auto d0 = m0.step(day);
    const auto d1 = m1.step(day);
    const auto dh = mh.step(day);
    const auto d0n = m0n.step(day);
    const auto d1n = m1n.step(day);
    // Conservation: total lost units are 0 up to rounding (relative to the day's demand).
    REQUIRE(d1.loss_usd == Approx(0.0).margin(1e-12 * d1.counterfactual_revenue_usd));
    // Theatrical receives nothing (row 0 of S is 0): it loses exactly what it loses without S.
    REQUIRE(d1.loss_by_channel_usd[0] == Approx(d0.loss_by_channel_usd[0]).epsilon(1e-12));
    if (d1.loss_by_channel_usd[2] < -1e-9) shifted = true;  // digital gains
    // Half the recovery: sum_k net_k = sum_j L_j (1 - 0.5) = half the loss without substitution.
    REQUIRE(dh.loss_usd == Approx(0.5 * d0.loss_usd).epsilon(1e-12).margin(1e-12));
    // No disc window: what S sends to the disc (0.2 of theatrical, 0.5 of digital) stays lost.
    const double expected = 0.2 * d0n.loss_by_channel_usd[0] + 0.5 * d0n.loss_by_channel_usd[2];
    REQUIRE(d1n.loss_usd == Approx(expected).epsilon(1e-12).margin(1e-12));
  }
  CHECK(shifted);
  CHECK(m0.summary().total_usd > 100.0);  // the scenario does displace demand
}

TEST_CASE("the pre-release penalty applies only to windows opening after the leak", "[economics][market]") {
  MarketParams p = simple_params();
  p.piracy_propensity = 0.0;  // isolate the pre-release factor
  p.pre_release_penalty = {0.191, 0.191, 0.191, 0.191};

  SECTION("full availability: 19.1% of the windows opening after the leak (Ma et al. 2014)") {
    p.bass_p = 1.0;  // A = 1 from the leak day on
    Market m(p);
    const MarketTitle t = title(1.0e4, {10, 40, 3, -1});  // digital opens before the leak
    m.add_title(t);
    m.record_leak(0, 5, LeakSource{});
    for (int day = 0; day < 120; ++day) {
      const auto d = m.step(day);
      for (int c : {0, 1}) {
        const auto cc = static_cast<std::size_t>(c);
        REQUIRE(d.loss_by_channel_usd[cc] ==
                Approx(0.191 * p.price_usd[cc] * demand(p, t, c, day)).epsilon(1e-12).margin(1e-12));
      }
      REQUIRE(d.loss_by_channel_usd[2] == 0.0);  // opened on day 3, leak on day 5
    }
  }
  SECTION("a leak on the opening day is not pre-release") {
    p.bass_p = 1.0;
    Market m(p);
    m.add_title(title(1.0e4, {5, -1, -1, -1}));
    m.record_leak(0, 5, LeakSource{});
    for (int day = 0; day < 50; ++day) REQUIRE(m.step(day).loss_usd == 0.0);
  }
  SECTION("weighted by the availability reached when the window opens, then fixed") {
    p.bass_p = 0.3;
    p.bass_q = 0.0;  // closed form A_n = 1 - 0.7^(n+1)
    Market m(p);
    // The first window opens at day 10 after a leak on day 2: the title enters the market with
    // its availability caught up.
    const MarketTitle t = title(1.0e4, {10, 40, -1, -1});
    m.add_title(t);
    m.record_leak(0, 2, LeakSource{});
    for (int day = 0; day < 100; ++day) {
      const auto d = m.step(day);
      const double a10 = 1.0 - std::pow(0.7, 10 - 2 + 1);
      const double a40 = 1.0 - std::pow(0.7, 40 - 2 + 1);
      REQUIRE(d.loss_by_channel_usd[0] ==
              Approx(0.191 * a10 * p.price_usd[0] * demand(p, t, 0, day)).epsilon(1e-12).margin(1e-12));
      REQUIRE(d.loss_by_channel_usd[1] ==
              Approx(0.191 * a40 * p.price_usd[1] * demand(p, t, 1, day)).epsilon(1e-12).margin(1e-12));
    }
  }
}

TEST_CASE("Bass availability follows the daily recursion", "[economics][market]") {
  // q = 0: closed form 1 - (1-p)^(n+1) (geometric approach to 1).
  for (int n : {0, 1, 5, 30}) {
    CHECK(bass_availability(0.2, 0.0, 1.0, n) == Approx(1.0 - std::pow(0.8, n + 1)).epsilon(1e-14));
  }
  CHECK(bass_availability(0.2, 0.4, 1.0, -1) == 0.0);
  CHECK(bass_availability(0.2, 0.4, 1.0, 0) == 0.2);  // A = p on the leak day
  // Stepwise recursion; popularity scales q only.
  for (int n : {1, 3, 10, 60}) {
    CHECK(bass_availability(0.05, 0.4, 2.5, n) == Approx(bass_reference(0.05, 0.4, 2.5, n)).epsilon(1e-14));
    CHECK(bass_availability(0.05, 0.4, 2.5, n) == Approx(bass_availability(0.05, 1.0, 1.0, n)).epsilon(1e-14));
  }
  // The recursion is the forward-Euler step of dF/dt = (p + qF)(1 - F), whose solution from F(0) = 0
  // is F(t) = (1 - e^{-(p+q)t}) / (1 + (q/p) e^{-(p+q)t}) (Bass 1969); A_n ~ F(n + 1). Euler's error
  // is O(p + q) per unit time: max 0.0017 over 2000 days for p = 0.001, q = 0.01 (computed
  // offline), hence the margin of 0.0025.
  const double p = 0.001;
  const double q = 0.01;
  for (int n = 0; n < 2000; n += 50) {
    const double e = std::exp(-(p + q) * (n + 1));
    CHECK(bass_availability(p, q, 1.0, n) == Approx((1.0 - e) / (1.0 + q / p * e)).margin(0.0025));
  }
  // Clamped to [0, 1] even when p + q pop > 1.
  for (int n = 0; n < 10; ++n) {
    const double a = bass_availability(0.9, 5.0, 1.0, n);
    CHECK(a >= 0.0);
    CHECK(a <= 1.0);
  }
  // Availability in the market for an active title matches (checked daily in the kappa d A D test).
  MarketParams mp = simple_params();
  Market m(mp);
  m.add_title(title(1.0, {0, -1, -1, -1}, 2.0));
  m.record_leak(0, 3, LeakSource{});
  for (int day = 0; day <= 20; ++day) m.step(day);
  CHECK(m.availability(0) == Approx(bass_reference(mp.bass_p, mp.bass_q, 2.0, 17)).epsilon(1e-14));
}

TEST_CASE("losses are attributed to the source of the first public copy", "[economics][market]") {
  const MarketParams p = [] {
    MarketParams q = simple_params();
    q.pre_release_penalty = {0.191, 0.191, 0.191, 0.0};
    q.substitution(2, 0) = 0.3;  // some substitution, so channels also gain
    return q;
  }();
  struct Case {
    MarketTitle title;
    std::int32_t leak_day;  // < 0: never leaked
    LeakSource source;
  };
  const std::vector<Case> cases = {
      {title(2.0e4, {0, 118, 94, 200}), 20, {1, false, false}},
      {title(1.0e4, {30, 140, 110, -1}), 10, {2, true, true}},
      {title(5.0e3, {50, -1, 60, 90}, 2.0), 100, {1, false, false}},
      {title(8.0e3, {5, 100, 80, 150}), 7, {-1, false, false}},
      {title(9.0e3, {0, 90, 70, 120}), -1, {}},
      {title(3.0e3, {-1, -1, 15, 40}), 15, {3, true, false}},
  };
  Market m(p);
  for (const auto& c : cases) {
    const auto id = m.add_title(c.title);
    if (c.leak_day >= 0) m.record_leak(id, c.leak_day, c.source);
  }
  double day_sum = 0.0;
  for (int day = 0; day < 500; ++day) day_sum += m.step(day).loss_usd;
  const auto s = m.summary();
  REQUIRE(s.total_usd > 0.0);
  // Every title's loss lands in exactly one bucket of each partition; the buckets are summed
  // in different orders, hence 1e-12 rather than equality.
  CHECK(s.scene_usd + s.p2p_usd == Approx(s.total_usd).epsilon(1e-12));
  CHECK(day_sum == Approx(s.total_usd).epsilon(1e-12));
  double groups = 0.0;
  for (const auto& [g, v] : s.by_group_usd) groups += v;
  CHECK(groups == Approx(s.total_usd).epsilon(1e-12));
  double channels = 0.0;
  for (double v : s.by_channel_usd) channels += v;
  CHECK(channels == Approx(s.total_usd).epsilon(1e-12));
  CHECK(s.by_group_usd.size() == 4);  // groups 1, 2, 3 and unknown (-1)
  // Only group 2's title was flagged pre-release; groups 2 and 3 are the P2P groups.
  CHECK(s.pre_release_usd == Approx(s.by_group_usd.at(2)).epsilon(1e-12));
  CHECK(s.p2p_usd == Approx(s.by_group_usd.at(2) + s.by_group_usd.at(3)).epsilon(1e-12));

  // Titles do not interact, so group 1's loss equals the total of a market holding only its titles.
  Market only1(p);
  for (const auto& c : cases) {
    if (c.leak_day < 0 || c.source.group != 1) continue;
    only1.record_leak(only1.add_title(c.title), c.leak_day, c.source);
  }
  for (int day = 0; day < 500; ++day) only1.step(day);
  CHECK(s.by_group_usd.at(1) == Approx(only1.summary().total_usd).epsilon(1e-12));

  // Per-day ledger: the whole run and a split into two periods give the same per-group totals.
  const auto whole = m.loss_by_group_between(0, 499);
  const auto first = m.loss_by_group_between(0, 99);
  const auto second = m.loss_by_group_between(100, 499);
  for (const auto& [g, v] : s.by_group_usd) {
    CHECK(whole.at(g) == Approx(v).epsilon(1e-12));
    const double a = first.count(g) ? first.at(g) : 0.0;
    const double b = second.count(g) ? second.at(g) : 0.0;
    CHECK(a + b == Approx(v).epsilon(1e-12));
  }
  CHECK(first.count(1) == 1);
  CHECK(m.loss_by_group_between(600, 700).empty());
  CHECK(m.loss_by_group_between(10, 5).empty());
}

TEST_CASE("per-group losses stay exact with a dominant group over many blocks", "[economics][market]") {
  // The daily scatter adds a slot that holds a quarter of the rows or more in a register, and
  // runs of rows through memory otherwise (Market::scatter_group_losses); here first no title
  // has leaked, then group 7 leads without reaching a quarter, then the unknown group -1 takes
  // over, while titles leave and leaks replace later-dated ones. Titles do not interact, so each
  // group's daily loss must equal the loss of a market holding only that group's titles. (Each
  // of the three summation loops, broken in turn, made this test fail.)
  const MarketParams p = simple_params();
  struct Case {
    MarketTitle title;
    std::int32_t leak_day;  // < 0: never leaked
    std::int32_t group;
    std::int32_t earlier_leak_day;  // >= 0: a second, earlier-dated leak by group + 1 (replaces the first)
  };
  std::vector<Case> cases;
  Lcg next{12345};
  for (int i = 0; i < 3000; ++i) {
    const auto open = static_cast<std::int32_t>(next(200));
    MarketTitle t = title(1000.0 + static_cast<double>(next(9000)), {open, open + 30, open + 20, open + 90},
                          0.5 + 0.25 * static_cast<double>(next(4)));
    const auto kind = next(20);
    std::int32_t group = -1, leak = -1, earlier = -1;
    if (kind < 5) {
      leak = -1;  // a quarter never leaks
    } else if (kind < 8) {
      group = 7, leak = 5 + static_cast<std::int32_t>(next(20));  // group 7 leaks early
    } else if (kind < 18) {
      group = -1, leak = 60 + static_cast<std::int32_t>(next(200));  // the unknown group later, more
    } else {
      group = static_cast<std::int32_t>(next(12)), leak = 10 + static_cast<std::int32_t>(next(300));
      if (next(3) == 0) earlier = std::max(0, leak - 5);
    }
    cases.push_back({t, leak, group, earlier});
  }
  // The market of every title records each leak on its day (so the slots' shares change over
  // time), except the later-dated leaks that an earlier one replaces: those are recorded at the
  // start, and the earlier one on its day.
  constexpr int kDays = 450;  // titles leave after 365 days, some before the end
  Market all(p);
  std::map<std::int32_t, std::vector<std::pair<std::int32_t, std::int32_t>>> leaks_on;  // day -> (id, group)
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto id = all.add_title(c.title);
    if (c.leak_day < 0) continue;
    if (c.earlier_leak_day >= 0) {
      all.record_leak(id, c.leak_day, {c.group, c.group < 0, false});
      leaks_on[c.earlier_leak_day].emplace_back(id, c.group + 1);
    } else {
      leaks_on[c.leak_day].emplace_back(id, c.group);
    }
  }
  for (int day = 0; day < kDays; ++day) {
    for (const auto& [id, g] : leaks_on[day]) all.record_leak(id, day, {g, g < 0, false});
    all.step(day);
  }
  // A market of one group's titles, each leak recorded at the start.
  const auto fill = [&](Market& m, std::int32_t group) {
    for (const auto& c : cases) {
      if (c.leak_day < 0 || (c.earlier_leak_day >= 0 ? c.group + 1 : c.group) != group) continue;
      const auto id = m.add_title(c.title);
      if (c.earlier_leak_day >= 0)  // the leak that counts in the full market
        m.record_leak(id, c.earlier_leak_day, {c.group + 1, false, false});
      else
        m.record_leak(id, c.leak_day, {c.group, c.group < 0, false});
    }
  };
  std::vector<std::int32_t> groups = {-1, 7};
  for (std::int32_t g = 0; g <= 12; ++g)
    if (g != 7) groups.push_back(g);
  int checked = 0;
  for (const std::int32_t g : groups) {
    Market only(p);
    fill(only, g);
    for (int day = 0; day < kDays; ++day) {
      const double expected = only.step(day).loss_usd;
      const auto got = all.loss_by_group_between(day, day);
      const double value = got.count(g) ? got.at(g) : 0.0;
      CHECK(value == Approx(expected).epsilon(1e-12).margin(1e-300));
      checked += expected > 0.0 ? 1 : 0;
    }
  }
  CHECK(checked > 3000);  // the comparison is not vacuous
}

TEST_CASE("only the first leak of a title counts", "[economics][market]") {
  const MarketParams p = simple_params();
  Market m(p);
  const auto a = m.add_title(title(1.0e4, {0, 60, 40, 100}));
  const auto b = m.add_title(title(1.0e4, {0, 60, 40, 100}));
  const auto c = m.add_title(title(1.0e4, {0, 60, 40, 100}));
  CHECK_FALSE(m.leaked(a));
  m.record_leak(a, 10, LeakSource{1, false, false});
  m.record_leak(a, 20, LeakSource{2, true, true});  // later: ignored
  CHECK(m.leaked(a));
  // An earlier-dated leak recorded later replaces one that has not happened yet.
  m.record_leak(b, 25, LeakSource{4, false, false});
  m.record_leak(b, 15, LeakSource{5, false, false});
  for (int day = 0; day <= 30; ++day) m.step(day);
  CHECK(m.availability(a) == Approx(bass_reference(p.bass_p, p.bass_q, 1.0, 20)).epsilon(1e-14));
  CHECK(m.availability(b) == Approx(bass_reference(p.bass_p, p.bass_q, 1.0, 15)).epsilon(1e-14));
  const auto s = m.summary();
  CHECK(s.by_group_usd.count(1) == 1);
  CHECK(s.by_group_usd.count(2) == 0);
  CHECK(s.by_group_usd.at(5) > 0.0);
  CHECK(s.by_group_usd.at(4) == 0.0);  // registered, then replaced before any loss
  CHECK(s.p2p_usd == 0.0);
  CHECK(s.pre_release_usd == 0.0);
  // A leak on a day already simulated for a title in the market cannot be honoured, unless it
  // would be ignored anyway; a title not yet in the market accepts a past leak (caught up on entry).
  REQUIRE_THROWS_AS(m.record_leak(c, 30, LeakSource{}), ModelError);
  REQUIRE_NOTHROW(m.record_leak(a, 30, LeakSource{}));
  const auto d = m.add_title(title(1.0e4, {0, 60, 40, 100}));
  REQUIRE_NOTHROW(m.record_leak(d, 12, LeakSource{}));
  m.step(31);
  CHECK(m.availability(d) == Approx(bass_reference(p.bass_p, p.bass_q, 1.0, 31 - 12)).epsilon(1e-14));
  CHECK_FALSE(m.leaked(c));
  REQUIRE_THROWS_AS(m.record_leak(99, 40, LeakSource{}), ModelError);
  REQUIRE_THROWS_AS(m.leaked(-1), ModelError);
}

TEST_CASE("non-finite numbers stop the market with the quantity, title and day", "[economics][market]") {
  MarketParams p = simple_params();
  p.share = {1.0, 0.0, 0.0, 0.0};
  p.decay_per_day = {0.5, 0.05, 0.02, 0.01};
  p.price_usd = {9.16, 20.0, 5.0, 1.0};
  Market m(p);
  m.add_title(title(1.0, {0, -1, -1, -1}));
  // Finite inputs that overflow: 1e308 x (1 - e^{-0.5}) x $9.16 > DBL_MAX.
  m.add_title(title(1.0e308, {3, -1, -1, -1}));
  m.step(0);
  m.step(1);
  m.step(2);
  REQUIRE_THROWS_AS(m.step(3), NumericalError);
  Market m2(p);
  m2.add_title(title(1.0, {0, -1, -1, -1}));
  m2.add_title(title(1.0e308, {3, -1, -1, -1}));
  REQUIRE_THROWS_WITH(m2.step(3), Catch::Contains("counterfactual revenue") && Catch::Contains("title 1") &&
                                      Catch::Contains("day 3"));
}

TEST_CASE("days advance strictly; skipped days are simulated", "[economics][market]") {
  const MarketParams p = simple_params();
  Market daily(p);
  Market jumpy(p);
  for (Market* m : {&daily, &jumpy}) {
    m->add_title(title(1.0e4, {2, 60, 40, 100}));
    m->add_title(title(1.0e4, {-1, -1, 7, 30}));
    m->record_leak(0, 4, LeakSource{1, false, false});
    m->record_leak(1, 9, LeakSource{2, true, false});
  }
  for (int day = 0; day <= 50; ++day) daily.step(day);
  const auto j1 = jumpy.step(0);
  const auto j2 = jumpy.step(50);
  CHECK(j2.active_titles == 2);
  CHECK(j1.loss_usd + j2.loss_usd == Approx(jumpy.summary().total_usd).epsilon(1e-14));
  CHECK(jumpy.summary().total_usd == Approx(daily.summary().total_usd).epsilon(1e-14));
  CHECK(jumpy.summary().total_usd > 0.0);
  REQUIRE_THROWS_AS(jumpy.step(50), ModelError);
  REQUIRE_THROWS_AS(jumpy.step(49), ModelError);
}

TEST_CASE("titles added late enter with their state caught up", "[economics][market]") {
  // A title whose windows opened before the market reached it has the same demand and
  // availability as if it had been there all along (only earlier days' losses are not counted).
  const MarketParams p = simple_params();
  const MarketTitle t = title(1.0e4, {0, 30, 20, 60}, 1.3);
  Market early(p);
  Market late(p);
  early.add_title(t);
  early.record_leak(0, 25, LeakSource{});
  for (int day = 0; day < 100; ++day) early.step(day);
  late.step(70);
  late.add_title(t);
  late.record_leak(0, 25, LeakSource{});
  for (int day = 71; day < 100; ++day) late.step(day);
  CHECK(late.availability(0) == Approx(early.availability(0)).epsilon(1e-14));
  const auto de = early.step(100);
  const auto dl = late.step(100);
  // 1e-12: the late title's demand starts from pow(e^{-lambda}, n) instead of n multiplications.
  CHECK(dl.counterfactual_revenue_usd == Approx(de.counterfactual_revenue_usd).epsilon(1e-12));
  CHECK(dl.loss_usd == Approx(de.loss_usd).epsilon(1e-12));
  CHECK(dl.loss_usd > 0.0);
}

TEST_CASE("bass_availability_many gives bass_availability's values bit for bit", "[economics][market]") {
  // The first reported day catches up every title already out side by side, eight at a time:
  // each lane must stop where the one-title loop stops (its days, or the fixed point 1), whatever
  // the lanes next to it hold, in any order and for any count of titles.
  std::mt19937_64 gen(20200825);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{9}, std::size_t{31},
                              std::size_t{33}, std::size_t{1000}}) {
    for (const double q : {0.0, 0.4, 3.0}) {
      const double p = 0.001 + 0.3 * unit(gen);
      std::vector<double> popularity(n), out(n, -7.0);
      std::vector<std::int64_t> days(n);
      for (std::size_t j = 0; j < n; ++j) {
        popularity[j] = j % 5 == 0 ? 0.0 : 4.0 * unit(gen);
        // -1 (not leaked yet), 0 (the leak day), short and long catch-ups
        days[j] = j % 7 == 0 ? -1 : j % 11 == 0 ? 0 : static_cast<std::int64_t>(unit(gen) * (j % 3 == 0 ? 3000.0 : 40.0));
      }
      std::vector<double> portable(n, -7.0);
      bass_availability_many(p, q, popularity, days, out);
      piracy::economics::bass_availability_many_portable(p, q, popularity, days, portable);
      for (std::size_t j = 0; j < n; ++j) {
        INFO("n = " << n << ", q = " << q << ", title " << j << ", days " << days[j]);
        const auto want = std::bit_cast<std::uint64_t>(bass_availability(p, q, popularity[j], days[j]));
        CHECK(std::bit_cast<std::uint64_t>(out[j]) == want);
        CHECK(std::bit_cast<std::uint64_t>(portable[j]) == want);
      }
    }
  }
  std::vector<double> one(1), two(2);
  std::vector<std::int64_t> days(1);
  CHECK_THROWS_AS(bass_availability_many(0.1, 0.4, two, days, one), ModelError);
}

TEST_CASE("titles entering together on the first day are caught up one by one", "[economics][market]") {
  // Many titles out before the market's first day, leaked on different days: each enters with
  // the availability bass_availability() gives it, as a title entering alone does.
  const MarketParams p = simple_params();
  Market m(p);
  std::vector<std::int32_t> leak_day;
  for (int i = 0; i < 200; ++i) {
    const auto id = m.add_title(title(1.0e3 + i, {i % 50, i % 50 + 30, -1, i % 50 + 60}, 0.5 + 0.01 * i));
    leak_day.push_back(i % 3 == 0 ? 90 + i : (i * 7) % 80);  // some leak after the first day
    m.record_leak(id, leak_day.back(), LeakSource{});
  }
  m.step(80);
  for (int i = 0; i < 200; ++i) {
    INFO("title " << i << ", leaked on day " << leak_day[static_cast<std::size_t>(i)]);
    const double want = bass_availability(p.bass_p, p.bass_q, 0.5 + 0.01 * i, 80 - leak_day[static_cast<std::size_t>(i)]);
    CHECK(m.availability(i) == Approx(want).epsilon(1e-14));
  }
}

TEST_CASE("preparing the first step's rows changes no value", "[economics][market]") {
  // prepare_first_step() grows the rows before the first step and writes them a part a call (the
  // simulation calls it on burn-in days), and plan_capacity() makes room ahead from expected
  // counts (docs/PERFORMANCE.md 26, 27); the steps must give the same bits with them and without.
  // Plans: none, one larger than the titles that come, one smaller (the market then grows as
  // without a plan) and one of exactly the titles that come.
  const MarketParams p = simple_params();
  Market plain(p), prepared(p), large(p), small(p), exact(p);
  large.plan_capacity(5000, 4000);
  small.plan_capacity(10, 20);
  exact.plan_capacity(300, 300);
  const std::vector<Market*> others{&prepared, &large, &small, &exact};
  for (int i = 0; i < 300; ++i) {
    const MarketTitle t = title(1.0e3 + 7 * i, {i % 60, i % 60 + 20, -1, i % 60 + 45}, 0.4 + 0.005 * i);
    for (Market* m : {&plain, &prepared, &large, &small, &exact}) {
      const auto id = m->add_title(t);
      if (i % 4 != 0) m->record_leak(id, (i * 13) % 90, LeakSource{i % 9, i % 5 == 0, i % 7 == 0});
    }
    // (days_left counts down to 1, as in a burn-in of 30 calls; the large plan's rows take more
    // calls than there are to write)
    if (i % 10 == 0)
      for (Market* m : others) m->prepare_first_step(30 - i / 10);
  }
  for (Market* m : others) m->prepare_first_step();
  double loss = 0.0;
  for (int day = 40; day < 160; ++day) {
    const auto a = plain.step(day);
    loss += a.loss_usd;
    for (Market* m : others) {
      const auto b = m->step(day);
      if (day == 41) m->prepare_first_step();  // (a no-op once started)
      INFO("day " << day << ", market " << (m == &prepared ? "prepared" : m == &large ? "large plan" : m == &small ? "small plan" : "exact plan"));
      CHECK(std::bit_cast<std::uint64_t>(a.legal_revenue_usd) == std::bit_cast<std::uint64_t>(b.legal_revenue_usd));
      CHECK(std::bit_cast<std::uint64_t>(a.counterfactual_revenue_usd) == std::bit_cast<std::uint64_t>(b.counterfactual_revenue_usd));
      CHECK(std::bit_cast<std::uint64_t>(a.loss_usd) == std::bit_cast<std::uint64_t>(b.loss_usd));
      CHECK(a.active_titles == b.active_titles);
    }
  }
  CHECK(loss > 0.0);
  for (Market* m : others) CHECK(m->title_count() == plain.title_count());
}

TEST_CASE("settled titles give the figures of a pass over every title", "[economics][market]") {
  // Titles whose windows have all opened and whose availability has reached its fixed point
  // leave the active arrays for decaying sums (Market::settle_row, docs/PERFORMANCE.md 15). Here
  // every day's totals, channel losses, per-group losses and P2P / pre-release shares are
  // compared with a reference written out per title, over three market lives: titles settle,
  // leave the market, and some never-leaked settled titles leak late (they become rows again).
  MarketParams p = simple_params();
  p.pre_release_penalty = {0.191, 0.191, 0.191, 0.0};
  p.substitution << 0.0, 0.0, 0.0, 0.0,  //
      0.2, 0.0, 0.3, 0.0,                 //
      0.3, 0.5, 0.0, 0.4,                 //
      0.1, 0.0, 0.2, 0.0;
  p.life_days = 400;
  struct Case {
    MarketTitle title;
    std::int32_t leak_day;  // kNoLeak: never
    LeakSource source;
  };
  constexpr std::int32_t kNoLeak = -1;
  std::vector<Case> cases;
  Lcg next{987654321};
  for (int i = 0; i < 1500; ++i) {
    const auto open = static_cast<std::int32_t>(next(900));
    const bool disc = next(4) != 0;
    MarketTitle t = title(500.0 + static_cast<double>(next(9000)),
                          {open, disc ? open + 40 : -1, open + 25, open + 100 + static_cast<std::int32_t>(next(60))},
                          0.25 + 0.25 * static_cast<double>(next(8)));
    const auto kind = next(10);
    Case c{t, kNoLeak, {}};
    if (kind < 3) {
      // never leaked
    } else if (kind < 5) {
      c.leak_day = open + 200 + static_cast<std::int32_t>(next(150));  // late: usually after it settled
      c.source = {static_cast<std::int32_t>(next(5)), false, false};
    } else if (kind < 7) {
      c.leak_day = std::max(0, open - 3 + static_cast<std::int32_t>(next(60)));  // around the first windows
      c.source = {static_cast<std::int32_t>(next(5)), false, c.leak_day < open + 40};
    } else {
      c.leak_day = open + 20 + static_cast<std::int32_t>(next(40));
      c.source = {-1, true, false};  // a P2P group
    }
    cases.push_back(c);
  }
  Market m(p);
  std::map<std::int32_t, std::vector<std::size_t>> leaks_on;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    m.add_title(cases[i].title);
    if (cases[i].leak_day != kNoLeak) leaks_on[cases[i].leak_day].push_back(i);
  }

  // Reference, per title and day (independent of market.cpp).
  struct Day {
    double counterfactual = 0, loss = 0, p2p = 0, pre = 0;
    std::array<double, kChannels> by_channel{};
    std::map<std::int32_t, double> by_group;
  };
  const auto reference = [&](int day) {
    Day d;
    for (const auto& c : cases) {
      const auto& w = c.title.window_start;
      std::int32_t first = w[0];
      for (const auto s : w)
        if (s >= 0) first = std::min(first, s);
      if (day < first || day >= first + p.life_days) continue;
      const bool leaked = c.leak_day != kNoLeak && c.leak_day <= day;
      const double a = leaked ? bass_reference(p.bass_p, p.bass_q, c.title.popularity, day - c.leak_day) : 0.0;
      std::array<double, kChannels> lost{}, dem{};
      for (int ch = 0; ch < kChannels; ++ch) {
        const auto s = w[static_cast<std::size_t>(ch)];
        dem[static_cast<std::size_t>(ch)] = demand(p, c.title, ch, day);
        d.counterfactual += p.price_usd[static_cast<std::size_t>(ch)] * dem[static_cast<std::size_t>(ch)];
        double pre = 1.0;
        if (c.leak_day != kNoLeak && s >= 0 && c.leak_day < s && s <= day)
          pre = std::clamp(1.0 - p.pre_release_penalty[static_cast<std::size_t>(ch)] *
                                     bass_reference(p.bass_p, p.bass_q, c.title.popularity, s - c.leak_day),
                           0.0, 1.0);
        const double kd = p.piracy_propensity * p.displacement[static_cast<std::size_t>(ch)];
        lost[static_cast<std::size_t>(ch)] = dem[static_cast<std::size_t>(ch)] * (1.0 - (1.0 - kd * a) * pre);
      }
      double title_loss = 0;
      for (int k = 0; k < kChannels; ++k) {
        double net = lost[static_cast<std::size_t>(k)];
        if (w[static_cast<std::size_t>(k)] >= 0)
          for (int j = 0; j < kChannels; ++j) net -= p.substitution(k, j) * lost[static_cast<std::size_t>(j)];
        const double usd = p.price_usd[static_cast<std::size_t>(k)] * net;
        d.by_channel[static_cast<std::size_t>(k)] += usd;
        title_loss += usd;
      }
      d.loss += title_loss;
      if (leaked) {
        d.by_group[c.source.group] += title_loss;
        if (c.source.p2p) d.p2p += title_loss;
        if (c.source.pre_release) d.pre += title_loss;
      }
    }
    return d;
  };

  constexpr int kDays = 1700;
  int max_settled = 0, unsettled = 0;
  double p2p_total = 0, pre_total = 0, loss_total = 0;
  for (int day = 0; day < kDays; ++day) {
    for (const auto i : leaks_on[day]) {
      const bool was_settled_unleaked = m.settled_titles() > 0 && !m.leaked(static_cast<std::int32_t>(i));
      const int before = m.settled_titles();
      m.record_leak(static_cast<std::int32_t>(i), day, cases[i].source);
      if (was_settled_unleaked && m.settled_titles() == before - 1) ++unsettled;
    }
    const auto got = m.step(day);
    max_settled = std::max(max_settled, m.settled_titles());
    const Day want = reference(day);
    INFO("day " << day);
    const double scale = 1e-9 * std::max(1.0, want.counterfactual);
    REQUIRE(got.counterfactual_revenue_usd == Approx(want.counterfactual).epsilon(1e-9).margin(scale));
    REQUIRE(got.loss_usd == Approx(want.loss).epsilon(1e-9).margin(scale));
    for (int ch = 0; ch < kChannels; ++ch)
      REQUIRE(got.loss_by_channel_usd[static_cast<std::size_t>(ch)] ==
              Approx(want.by_channel[static_cast<std::size_t>(ch)]).epsilon(1e-9).margin(scale));
    const auto groups = m.loss_by_group_between(day, day);
    for (const auto& [g, v] : want.by_group) {
      INFO("group " << g);
      const double value = groups.count(g) ? groups.at(g) : 0.0;
      REQUIRE(value == Approx(v).epsilon(1e-9).margin(scale));
    }
    for (const auto& [g, v] : groups) REQUIRE(want.by_group.count(g) == 1);  // no group beyond the reference's
    p2p_total += want.p2p, pre_total += want.pre, loss_total += want.loss;
    REQUIRE(m.active_titles() >= m.settled_titles());
  }
  const auto s = m.summary();
  CHECK(s.p2p_usd == Approx(p2p_total).epsilon(1e-9));
  CHECK(s.pre_release_usd == Approx(pre_total).epsilon(1e-9));
  CHECK(s.total_usd == Approx(loss_total).epsilon(1e-9));
  CHECK(p2p_total > 0.0);
  CHECK(pre_total > 0.0);
  // The paths under test were taken: many titles settled, and settled titles leaked late.
  CHECK(max_settled > 300);
  CHECK(unsettled > 20);
  // A settled title's availability is its fixed point.
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    if (c.leak_day == kNoLeak || c.title.window_start[0] + p.life_days <= kDays - 1) continue;
    CHECK(m.availability(static_cast<std::int32_t>(i)) ==
          Approx(bass_reference(p.bass_p, p.bass_q, c.title.popularity, kDays - 1 - c.leak_day)).epsilon(1e-12));
  }
}
