// The default scenario reproduces the reported patterns (MODEL.md P1, P2, P3, P5, P6),
// averaged over seeds, with the tolerances issue 3 states. Slow: tagged [slow] (label `slow`;
// `ctest -LE slow` skips them locally; CI runs them in Release and under the sanitizers).
#include <catch2/catch.hpp>
#include <tbb/global_control.h>

#include <fmt/format.h>

#include "agents/params.hpp"
#include "agents/simulation.hpp"

using namespace piracy;

namespace {
double month(const Simulation& sim, const char* col, int y, unsigned m) {
  const Date first = Date::from_ymd(y, m, 1);
  const Date last = Date::from_ymd(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) - 1;
  return sim.series().over(col, first, last);
}
}  // namespace

TEST_CASE("the default scenario reproduces the Sparks 2020 patterns over 10 seeds", "[slow][regression][agents]") {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
  double jul = 0, sep = 0, jan = 0, p2p = 0, scene = 0;
  const int seeds = 10;
  for (int s = 1; s <= seeds; ++s) {
    auto cfg = load_default_scenario({fmt::format("seed={}", s), "counterfactual.remove_groups=[]"});
    Simulation sim(cfg);
    sim.run();
    jul += month(sim, "releases_scene", 2020, 7) / seeds;
    sep += month(sim, "releases_scene", 2020, 9) / seeds;
    jan += month(sim, "releases_scene", 2021, 1) / seeds;
    p2p += sim.series().over("releases_p2p", *Date::parse("2020-01-01"), *Date::parse("2021-12-31"));
    scene += sim.series().over("releases_scene", *Date::parse("2020-01-01"), *Date::parse("2021-12-31"));
  }
  WARN(fmt::format("July 2020 {:.0f}, September 2020 {:.0f}, January 2021 {:.0f} ({:.2f} of July), P2P share {:.3f}",
                   jul, sep, jan, jan / jul, p2p / (p2p + scene)));
  // P1: "more than 70,000" in July 2020 (Le Monde 2020); issue 3 tolerance +-10% around 70,000.
  CHECK(jul == Approx(70000).epsilon(0.10));
  // P2: 30,000 in September 2020 (Le Monde 2020); tolerance +-15%.
  CHECK(sep == Approx(30000).epsilon(0.15));
  // P3: "practically back to normal" in January 2021 (TorrentFreak): at least 0.85 of July.
  CHECK(jan / jul >= 0.85);
  // P6: P2P publishes almost as much fresh content as the Scene: share 0.35-0.55 in 2020-2021.
  CHECK(p2p / (p2p + scene) >= 0.35);
  CHECK(p2p / (p2p + scene) <= 0.55);
}

TEST_CASE("SPARKS caused tens of millions of dollars of losses 2011-2020 (paired runs)", "[slow][regression][economics]") {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
  double caused = 0;
  const int seeds = 2;
  for (int s = 1; s <= seeds; ++s) {
    auto cfg = load_default_scenario({fmt::format("seed={}", s)});
    REQUIRE(cfg.counterfactual.remove_groups == std::vector<std::string>{"SPARKS"});
    const auto out = run_scenario(cfg, 2, false);
    caused += out.summary["losses"]["paired_counterfactual"]["caused_loss_usd"].get<double>() / seeds;
  }
  WARN(fmt::format("SPARKS-caused losses 2011-2020: ${:.0f}", caused));
  // P5: "tens of millions of dollars" (DoJ SDNY 2020): between $10M and $100M (MODEL.md s.5).
  CHECK(caused > 10e6);
  CHECK(caused < 100e6);
}
