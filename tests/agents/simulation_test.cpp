// Mechanism tests of the Scene agent model: each mechanism in isolation, in a configuration
// where the answer is known (issue 3), plus reproducibility for any thread count.
#include <catch2/catch.hpp>
#include <tbb/global_control.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/scenarios.hpp"

using namespace piracy;
using piracy::testing::small_raid_scenario;
using piracy::testing::small_scenario;
using piracy::testing::total;
using piracy::testing::total_between;

namespace {
std::unique_ptr<Simulation> run(const ScenarioConfig& c, int threads = 1) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
  auto sim = std::make_unique<Simulation>(c);
  sim->run();
  return sim;
}
}  // namespace

TEST_CASE("the small scenario releases thousands of titles and P2P publishes too", "[agents]") {
  const auto sim = run(small_scenario());
  CHECK(total(*sim, "releases_scene") > 50000);
  CHECK(total(*sim, "releases_p2p") > 5000);
  CHECK(total(*sim, "dupes_nuked") > 0);
  // Every category is released.
  for (const char* c : kCategoryNames) CHECK(total(*sim, std::string("releases_") + c) > 0);
  // Per-category releases add up to the Scene total (accounting identity).
  double by_cat = 0;
  for (const char* c : kCategoryNames) by_cat += total(*sim, std::string("releases_") + c);
  CHECK(by_cat == total(*sim, "releases_scene"));
}

TEST_CASE("with alpha = 1 for everyone nobody sells access", "[agents]") {
  auto base = small_scenario();
  REQUIRE(total(*run(base), "sellers") > 0);  // selling happens in the reference case
  auto c = small_scenario();
  c.sceners.alpha_fixed = 1.0;
  c.named_groups[0].alpha = 1.0;
  const auto sim = run(c);
  CHECK(total(*sim, "sellers") == 0);
  CHECK(total(*sim, "sold_accounts") == 0);
  CHECK(total(*sim, "releases_scene") > 0);
}

TEST_CASE("a higher sanction gives fewer sellers", "[agents]") {
  auto lo = small_scenario();
  auto hi = small_scenario();
  hi.enforcement.sanction = lo.enforcement.sanction * 10;
  const double s_lo = total(*run(lo), "sellers");
  const double s_hi = total(*run(hi), "sellers");
  CHECK(s_lo > 0);
  CHECK(s_hi < 0.5 * s_lo);
}

TEST_CASE("without a live affiliated site a group releases nothing", "[agents]") {
  auto c = small_scenario();
  Operation op;  // every site goes dark for good; no new sites are founded
  op.name = "blackout";
  op.date = *Date::parse("2020-01-01");
  op.servers = 0;
  op.arrests = 0;
  op.chill = 0;
  op.dark_share = 1.0;
  op.dark_never_return = 1.0;
  op.target = "random";
  c.enforcement.operations.push_back(op);
  c.topsites.founding_rate = 0;
  const auto sim = run(c);
  CHECK(total_between(*sim, "releases_scene", "2019-06-01", "2019-12-31") > 0);
  CHECK(total_between(*sim, "releases_scene", "2020-01-02", "2020-12-31") == 0);
  CHECK(total_between(*sim, "live_topsites", "2020-01-02", "2020-12-31") == 0);
  // P2P groups need no topsite and keep publishing.
  CHECK(total_between(*sim, "releases_p2p", "2020-01-02", "2020-12-31") > 0);
}

TEST_CASE("an operation seizes exactly the servers it names", "[agents]") {
  for (std::int64_t servers : {1, 5, 12}) {
    auto c = small_raid_scenario();
    c.enforcement.operations[0].servers = servers;
    c.enforcement.operations[0].countries = 1000;
    c.enforcement.expose_site = 0;  // no extra seizures from arrests
    const auto sim = run(c);
    REQUIRE(sim->operations().size() == 1);
    CHECK(sim->operations()[0].servers_seized == servers);
    int seized_servers = 0;
    for (const auto& s : sim->sites())
      if (s.status == SiteStatus::Seized) seized_servers += s.servers_seized;
    CHECK(seized_servers == servers);
  }
}

TEST_CASE("operations act only in the countries that take part", "[agents]") {
  auto c = small_raid_scenario();
  c.enforcement.operations[0].servers = 1000;
  c.enforcement.operations[0].countries = 2;
  c.enforcement.expose_site = 0;
  const auto sim = run(c);
  CHECK(sim->operations()[0].countries <= 2);
  CHECK(sim->operations()[0].countries >= 1);
}

TEST_CASE("the raid arrests the named group and its distributor-fraud releases stop", "[agents]") {
  const auto cfg = small_raid_scenario();
  const auto sim = run(cfg);
  const auto id = sim->named_group_id("SPARKS");
  REQUIRE(id >= 0);
  for (std::size_t i = 0; i < sim->sceners().size(); ++i)
    if (sim->sceners().group[i] == id)
      CHECK(sim->sceners().status[i] != static_cast<std::uint8_t>(ScenerStatus::Active));
  CHECK(sim->named_group_releases("SPARKS") > 0);
  // Every SPARKS member still active on the day is arrested, plus the operation's other arrests.
  CHECK(sim->operations()[0].arrests > cfg.enforcement.operations[0].arrests);
  CHECK(total_between(*sim, "leaks_pre_release", "2019-01-01", "2020-05-14") > 0);
}

TEST_CASE("with site founding and affiliation disabled the Scene does not recover", "[agents]") {
  auto normal = small_raid_scenario();
  normal.enforcement.operations[0].servers = 14;
  normal.enforcement.operations[0].dark_share = 0.6;
  normal.enforcement.operations[0].dark_never_return = 0.3;
  auto frozen = normal;
  frozen.topsites.founding_rate = 0;
  frozen.groups.affiliation_enabled = false;
  const auto a = run(normal);
  const auto b = run(frozen);
  const double pre_a = total_between(*a, "releases_scene", "2020-03-01", "2020-04-30");
  const double post_a = total_between(*a, "releases_scene", "2020-11-01", "2020-12-31");
  const double pre_b = total_between(*b, "releases_scene", "2020-03-01", "2020-04-30");
  const double post_b = total_between(*b, "releases_scene", "2020-11-01", "2020-12-31");
  CHECK(post_a / pre_a > 0.75);
  CHECK(post_b / pre_b < 0.6);
  CHECK(post_b / pre_b < post_a / pre_a - 0.2);
}

TEST_CASE("leaks rise with sold accounts", "[agents]") {
  auto none = small_scenario();
  none.access.leak_per_account = 0;
  auto many = small_scenario();
  many.access.leak_per_account = 0.05;
  const auto a = run(none);
  const auto b = run(many);
  const double share_a = total(*a, "leaks_scene") / total(*a, "releases_scene");
  const double share_b = total(*b, "leaks_scene") / total(*b, "releases_scene");
  // Without the account channel only the base leak remains.
  CHECK(share_a == Approx(none.access.base_leak).margin(0.01));
  CHECK(share_b > share_a + 0.05);
}

TEST_CASE("outputs are identical for 1, 2 and 4 threads", "[agents][reproducibility]") {
  const auto c = small_raid_scenario();
  const auto one = run(c, 1);
  const auto two = run(c, 2);
  const auto four = run(c, 4);
  const auto csv1 = one->series().daily_csv();
  CHECK(csv1 == two->series().daily_csv());
  CHECK(csv1 == four->series().daily_csv());
  CHECK(one->events().csv() == four->events().csv());
}

TEST_CASE("outputs are identical for 1 and 2 threads when the race splits its slots between tasks", "[agents][reproducibility]") {
  // race() splits the search for each slot's winner between tasks from 65,536 slots a day on
  // (never in the small scenarios): the default scenario x20 over two weeks, ~100,000 slots a day.
  const auto c = testing::large_scenario();
  const auto one = run(c, 1);
  const auto two = run(c, 2);
  const auto& s = one->series();
  const auto col = s.column("slots_open");
  for (std::int32_t d = 0; d < s.days(); ++d) CHECK(s.get(col, d) > 65536);
  CHECK(total(*one, "releases_scene") > 100000);
  CHECK(one->series().daily_csv() == two->series().daily_csv());
  CHECK(one->events().csv() == two->events().csv());
}

TEST_CASE("different seeds give different runs", "[agents][reproducibility]") {
  const auto a = run(small_scenario(1));
  const auto b = run(small_scenario(2));
  CHECK(a->series().daily_csv() != b->series().daily_csv());
}

TEST_CASE("a removed group's paired run differs only from the day the group would have acted", "[agents][economics]") {
  const auto c = small_scenario();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
  Simulation with(c);
  Simulation without(c, {"SPARKS"});
  with.run();
  without.run();
  const auto col = with.series().column("releases_scene");
  const auto founded = c.named_groups[0].founded;
  // The reported period starts after the founding here, so compare the burn-in by rerunning
  // with a reported period that covers it.
  auto c2 = c;
  c2.calendar.start = c2.calendar.burn_in_start;
  Simulation w2(c2), wo2(c2, {"SPARKS"});
  w2.run();
  wo2.run();
  const auto& s1 = w2.series();
  const auto& s2 = wo2.series();
  const auto day_of_founding = founded - s1.first_day();
  for (std::int32_t d = 0; d < day_of_founding; ++d)
    for (std::size_t k = 0; k < s1.names().size(); ++k) REQUIRE(s1.get(k, d) == s2.get(k, d));
  bool differs_after = false;
  for (std::int32_t d = day_of_founding; d < s1.days() && !differs_after; ++d)
    differs_after = s1.get(s1.column("releases_scene"), d) != s2.get(s2.column("releases_scene"), d);
  CHECK(differs_after);
  (void)col;
  CHECK(without.named_group_releases("SPARKS") == 0);
}

TEST_CASE("the lists of Active sceners and alive groups never miss one", "[agents]") {
  // Simulation keeps ascending lists of Active sceners and alive groups and iterates them instead
  // of every entity ever created (docs/PERFORMANCE.md 9). A scener or group missing from its list
  // would drop out of every pass, including the daily counts recorded in the series: check those
  // counts against a count over all entities, every day, through a raid (arrests, seizures), a
  // named group's founding (its reserved members become Active mid-run) and group turnover.
  auto c = small_raid_scenario();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
  Simulation sim(c);
  const auto& series = sim.series();
  const auto col_sceners = series.column("sceners_total");
  const auto col_groups = series.column("active_groups");
  int checked_days = 0;
  bool named_founded = false;
  while (sim.tick() < sim.ticks()) {
    sim.step();
    const std::int32_t day = sim.date_of(sim.tick() - 1) - series.first_day();
    std::size_t active = 0;
    for (const auto st : sim.sceners().status) active += st == static_cast<std::uint8_t>(ScenerStatus::Active) ? 1 : 0;
    std::size_t alive = 0;
    for (const auto& g : sim.groups()) {
      alive += g.alive ? 1 : 0;
      named_founded = named_founded || (g.named && g.alive);
    }
    if (day < 0) continue;  // burn-in: not recorded
    REQUIRE(series.get(col_sceners, day) == static_cast<double>(active));
    REQUIRE(series.get(col_groups, day) == static_cast<double>(alive));
    ++checked_days;
  }
  CHECK(checked_days == series.days());
  CHECK(named_founded);
  CHECK(sim.operations().size() == 1);
}

TEST_CASE("the member index kept from the day's changes is the counting sort of every day", "[agents]") {
  // rebuild_members() updates the index (each group's Active members, in id order: imitation
  // draws peers by position in it) from the sceners whose group or status changed since the day
  // before (docs/PERFORMANCE.md 25). verify_member_index() compares it, and every group's member
  // count, with the counting sort of all sceners after each update and throws at the first
  // difference. The small raid scenario has every kind of change: retirements, arrests (the
  // raid's and background ones), dissolutions, mergers, sceners between groups joining or
  // founding one, and a named group's reserved members becoming Active mid-run.
  for (const int threads : {1, 2}) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    Simulation sim(small_raid_scenario());
    sim.verify_member_index(true);
    REQUIRE_NOTHROW(sim.run());
    CHECK(total(sim, "groups_dissolved") > 0);
    CHECK(total(sim, "groups_formed") > 0);
    CHECK(total(sim, "retired") > 0);
    CHECK(total(sim, "arrests") > 0);
  }
}

TEST_CASE("the wall time per phase covers every phase, and each lies within the ticks' wall time", "[agents]") {
  // Simulation::phase_seconds() feeds the benchmark's breakdown (docs/PERFORMANCE.md 3, 11). The
  // agents' phases run one after the other on one thread, and the market's day inside a tick's
  // interval (alongside the agents' enforcement in step(), alongside the agents' next day in
  // run(), after that day's sources if its task ran them): with a monotonic clock neither side
  // can exceed the ticks' wall time, and with one thread nothing overlaps. A phase timed in the wrong place, or not at all, breaks one of these.
  auto c = small_raid_scenario();
  for (const int threads : {1, 2}) {
    for (const bool stepwise : {false, true}) {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
      Simulation sim(c);
      if (stepwise)
        while (sim.tick() < sim.ticks()) sim.step();
      else
        sim.run();
      const auto& p = sim.phase_seconds();
      INFO(threads << " thread(s), " << (stepwise ? "step()" : "run()"));
      double agents = 0;
      for (int k = 0; k < Simulation::kPhases; ++k) {
        INFO(Simulation::phase_name(k));
        CHECK(p[static_cast<std::size_t>(k)] > 0.0);  // the small scenario runs its market in the reported period
        if (Simulation::phase_of_agents(k)) agents += p[static_cast<std::size_t>(k)];
      }
      const double tick = p[Simulation::kPhaseTick], market = p[Simulation::kPhaseMarket];
      // run() on 2 threads puts the day's open_sources() on the market's task when that task
      // claims it first (docs/PERFORMANCE.md 25): that part of the agents' phases is on the
      // market's side.
      const double beside = sim.sources_beside_seconds();
      CHECK(beside <= p[Simulation::kPhaseOpenSources]);
      CHECK(tick >= agents - beside);
      CHECK(tick >= market + beside);
      if (threads == 1 || stepwise) CHECK(beside == 0.0);
      if (threads == 1) CHECK(tick >= agents + market);  // one after the other
      CHECK(std::string(Simulation::phase_name(Simulation::kPhaseMarket)) == "market");
    }
  }
}

TEST_CASE("run() with the market a day behind gives the bytes of step() after step()", "[agents][reproducibility]") {
  // With two threads run() computes the market's day t alongside the agents' day t + 1
  // (docs/PERFORMANCE.md 11), and the day's sources on the market's task when it claims them
  // before the agents' thread reaches the race (25); step() computes each day in full. The
  // series (market columns included), the events and the market's losses by group must be the
  // same bytes, whichever thread opened each day's sources.
  const auto c = small_raid_scenario();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
  Simulation lagged(c), stepped(c);
  lagged.run();
  while (stepped.tick() < stepped.ticks()) stepped.step();
  CHECK(lagged.series().daily_csv() == stepped.series().daily_csv());
  CHECK(lagged.events().csv() == stepped.events().csv());
  const auto a = lagged.market().summary(), b = stepped.market().summary();
  CHECK(a.total_usd > 0);
  CHECK(a.total_usd == b.total_usd);
  CHECK(a.by_group_usd == b.by_group_usd);
  CHECK(lagged.market().title_count() == stepped.market().title_count());
  // A run() stopped between ticks (an interrupt in on_tick) leaves the market a day behind;
  // step() catches it up first, so the run goes on to the same bytes.
  Simulation resumed(c);
  CHECK_THROWS_AS(resumed.run([](std::int64_t done, std::int64_t) {
    if (done == 40) throw std::runtime_error("stop");
  }),
                  std::runtime_error);
  CHECK(resumed.tick() == 40);
  while (resumed.tick() < resumed.ticks()) resumed.step();
  CHECK(resumed.series().daily_csv() == stepped.series().daily_csv());
  CHECK(resumed.market().summary().by_group_usd == b.by_group_usd);
}

TEST_CASE("paired runs side by side give the bytes of paired runs in sequence; the factual run's error comes first",
          "[agents][reproducibility]") {
  // run_paired() runs the scenario and its counterfactual at the same time when the arena has
  // two threads (the main job's wall time nearly halves: docs/PERFORMANCE.md 11). Neither reads
  // the other, so every output must be the bytes of the sequential order.
  const auto c = small_raid_scenario();
  std::string csv_seq, csv_cf_seq, ev_seq;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
    Simulation sim(c), cf(c, {"SPARKS"});
    std::vector<int> order;
    run_paired(sim, &cf, [&](int which, std::int64_t, std::int64_t) { order.push_back(which); });
    // One thread: in sequence, every tick of the scenario before any of the counterfactual.
    REQUIRE(order.size() == 2 * static_cast<std::size_t>(sim.ticks()));
    CHECK(std::is_sorted(order.begin(), order.end()));
    csv_seq = sim.series().daily_csv();
    csv_cf_seq = cf.series().daily_csv();
    ev_seq = sim.events().csv();
  }
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
  {
    Simulation sim(c), cf(c, {"SPARKS"});
    std::array<std::atomic<std::int64_t>, 2> ticks{};
    run_paired(sim, &cf, [&](int which, std::int64_t done, std::int64_t) { ticks[static_cast<std::size_t>(which)] = done; });
    CHECK(ticks[0] == sim.ticks());
    CHECK(ticks[1] == cf.ticks());
    CHECK(sim.series().daily_csv() == csv_seq);
    CHECK(cf.series().daily_csv() == csv_cf_seq);
    CHECK(sim.events().csv() == ev_seq);
    CHECK(csv_seq != csv_cf_seq);  // the pair differs: a swapped pair would be caught
  }
  SECTION("a counterfactual error is reported after the scenario ran to its end") {
    Simulation sim(c), cf(c, {"SPARKS"});
    CHECK_THROWS_WITH(run_paired(sim, &cf,
                                 [&](int which, std::int64_t done, std::int64_t) {
                                   if (which == 1 && done == 3) throw std::runtime_error("counterfactual failed");
                                 }),
                      "counterfactual failed");
    CHECK(sim.tick() == sim.ticks());
    CHECK(cf.tick() == 3);
  }
  SECTION("when both fail, the scenario's error is reported") {
    Simulation sim(c), cf(c, {"SPARKS"});
    CHECK_THROWS_WITH(run_paired(sim, &cf,
                                 [&](int which, std::int64_t done, std::int64_t) {
                                   if (which == 0 && done == 5) throw std::runtime_error("scenario failed");
                                   if (which == 1 && done == 2) throw std::runtime_error("counterfactual failed");
                                 }),
                      "scenario failed");
    CHECK(sim.tick() == 5);
  }
  SECTION("without a counterfactual, only the scenario runs") {
    Simulation sim(c);
    std::int64_t calls = 0;
    run_paired(sim, nullptr, [&](int which, std::int64_t, std::int64_t) { calls += which == 0 ? 1 : 100000; });
    CHECK(calls == sim.ticks());
  }
}
