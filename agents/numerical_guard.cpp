// Numerical guards (issue 9): NaN or infinity arising in the model stops the run with a
// NumericalError that names the quantity, the tick (with its date) and the entity, instead of
// writing garbage into the outputs. The market checks its own equations (economics/market.cpp,
// Market::throw_non_finite); this file guards the agents' side.
//
// Cost: guard_finite() reads the ~40 doubles recorded for the day (NaN and infinity propagate
// into those sums, so a bad value anywhere in a tally reaches them) and searches the entities only
// after a failure; the decision step checks one sum per scener that it computes anyway.
//
// Test hook: PIRACY_TEST_POISON_TICK=N (environment) writes NaN into the learned utility of the
// first active scener at the end of tick N, so that tests can check that the next tick stops the
// run with a located message and no outputs (tests/app/robustness_cli_test.cpp). It is read once
// per process and costs one integer comparison per tick.
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <limits>
#include <string>

#include "agents/simulation.hpp"
#include "engine/error.hpp"

namespace piracy {
namespace {

constexpr const char* kActionNames[kActions] = {"release", "sell", "dormant", "retire"};

std::int64_t poison_tick() {
  static const std::int64_t tick = [] {
    const char* v = std::getenv("PIRACY_TEST_POISON_TICK");
    if (v == nullptr || *v == '\0') return std::int64_t{-1};
    char* end = nullptr;
    const long long t = std::strtoll(v, &end, 10);
    return end != nullptr && *end == '\0' && t >= 0 ? static_cast<std::int64_t>(t) : std::int64_t{-1};
  }();
  return tick;
}

}  // namespace

void Simulation::throw_non_finite_utility(std::size_t i, const std::array<double, kActions>& u) const {
  int k = 0;
  while (k < kActions - 1 && std::isfinite(u[static_cast<std::size_t>(k)])) ++k;
  // -inf marks an unavailable action: report the first NaN or +inf.
  for (int j = 0; j < kActions; ++j) {
    const double x = u[static_cast<std::size_t>(j)];
    if (std::isnan(x) || x == std::numeric_limits<double>::infinity()) {
      k = j;
      break;
    }
  }
  const auto learned = [&](float Expectation::*field) {
    std::string out;
    for (int a = 0; a < kLearnedActions; ++a) out += fmt::format("{}{}", a ? ", " : "", sc_.hat[i][static_cast<std::size_t>(a)].*field);
    return out;
  };
  throw NumericalError(fmt::format(
      "non-finite value: scener.utility[{}] = {} at tick {} ({}), scener {} (alpha {}, rho {}, chill {}, r_hat [{}], "
      "m_hat [{}]); a learned utility or the perceived risk overflowed -- check the sceners.* and enforcement.* "
      "parameters",
      kActionNames[k], u[static_cast<std::size_t>(k)], tick_, date_of(tick_).iso(), i, sc_.alpha[i], sc_.rho[i],
      sc_.chill[i], learned(&Expectation::r), learned(&Expectation::m)));
}

void Simulation::guard_finite() {
  const auto& names = series_->names();
  const bool reporting = tick_ >= report_first_;
  std::string quantity;
  double value = 0;
  if (reporting) {
    const auto d = tick_ - report_first_;
    // The agents' columns; the market's (the last three) are checked by market_day(), which
    // may compute the day while the agents go on with the next (Simulation::run()).
    for (std::size_t c = 0; c < market_col_; ++c) {
      const double v = series_->get(c, d);
      if (!std::isfinite(v)) {
        quantity = "series." + names[c];
        value = v;
        break;
      }
    }
  } else {
    // Burn-in: nothing is recorded; the tallies are checked instead (the market is not stepped
    // during burn-in).
    const std::pair<const char*, double> checked[] = {
        {"releases_ema", releases_ema_short_ + releases_ema_long_}, {"tally.money_usd", t_.money_usd}};
    for (const auto& [name, v] : checked) {
      if (!std::isfinite(v)) {
        quantity = name;
        value = v;
        break;
      }
    }
  }
  if (!quantity.empty()) {
    // Name the first entity holding a non-finite value, if any (else an aggregate overflowed).
    std::string entity = "no single entity holds a non-finite value (an aggregate overflowed)";
    bool found = false;
    for (std::size_t i = 0; i < sc_.size() && !found; ++i) {
      for (int a = 0; a < kLearnedActions && !found; ++a) {
        const float r = sc_.hat[i][static_cast<std::size_t>(a)].r;
        const float m = sc_.hat[i][static_cast<std::size_t>(a)].m;
        if (!std::isfinite(r) || !std::isfinite(m)) {
          entity = fmt::format("scener {} (r_hat[{}] = {}, m_hat[{}] = {})", i, kActionNames[a], r, kActionNames[a], m);
          found = true;
        }
      }
      if (!found && !std::isfinite(sc_.chill[i])) {
        entity = fmt::format("scener {} (chill = {})", i, sc_.chill[i]);
        found = true;
      }
    }
    for (const auto& s : sites_) {
      if (found) break;
      if (!std::isfinite(s.price_usd) || !std::isfinite(s.sold_accounts)) {
        entity = fmt::format("site {} (price_usd = {}, sold_accounts = {})", s.id, s.price_usd, s.sold_accounts);
        found = true;
      }
    }
    for (const auto& g : groups_) {
      if (found) break;
      if (!std::isfinite(g.recognition) || !std::isfinite(g.effort)) {
        entity = fmt::format("group {} (recognition = {}, effort = {})", g.id, g.recognition, g.effort);
        found = true;
      }
    }
    throw NumericalError(fmt::format("non-finite value: {} = {} at tick {} ({}); {}", quantity, value, tick_,
                                     date_of(tick_).iso(), entity));
  }

  if (tick_ == poison_tick()) {
    for (std::size_t i = 0; i < sc_.size(); ++i) {
      if (sc_.status[i] == static_cast<std::uint8_t>(ScenerStatus::Active)) {
        sc_.hat[i][kDormant].r = std::numeric_limits<float>::quiet_NaN();
        break;
      }
    }
  }
}

}  // namespace piracy
