#pragma once
// Small scenarios for mechanism tests: a tenth of the default Scene over three years, so a
// run takes a fraction of a second. Built from the schema defaults (the same values the
// default scenario documents) and changed field by field in each test.
#include "agents/params.hpp"
#include "agents/simulation.hpp"

namespace piracy::testing {

inline ScenarioConfig small_scenario(std::uint64_t seed = 7) {
  ScenarioConfig c;
  c.name = "small";
  c.seed = seed;
  c.calendar.burn_in_start = *Date::parse("2017-01-01");
  c.calendar.start = *Date::parse("2019-01-01");
  c.calendar.end = *Date::parse("2020-12-31");
  for (int k = 0; k < kCategories; ++k) c.categories[k].titles_per_day *= 0.1;
  c.sceners.initial_sceners = 600;
  c.sceners.entry_per_day *= 0.1;
  c.groups.initial_groups = 70;
  c.topsites.tier_sizes = {1, 2, 3, 4, 5, 6};
  c.p2p.initial_groups = 3;
  c.p2p.entry_per_day_2011 *= 0.1;
  c.p2p.entry_per_day_2020 *= 0.1;
  NamedGroup sparks;
  sparks.name = "SPARKS";
  sparks.founded = *Date::parse("2018-01-01");
  sparks.members = 6;
  sparks.categories = {"movie"};
  sparks.fraud_title_share = 0.3;  // a small world needs a busier SPARKS to keep it alive
  c.named_groups.push_back(sparks);
  return c;
}

/// The small scenario with one raid in the middle of 2020.
inline ScenarioConfig small_raid_scenario(std::uint64_t seed = 7) {
  auto c = small_scenario(seed);
  Operation op;
  op.name = "raid";
  op.date = *Date::parse("2020-05-15");
  op.servers = 8;
  op.countries = 10;
  op.arrests = 2;
  op.target = "named_groups";
  op.groups = {"SPARKS"};
  c.enforcement.operations.push_back(op);
  return c;
}

/// The default scenario x20 (120,000 sceners, ~100,000 slots a day) over two weeks of 2020, without
/// named groups or operations: large enough that race() splits its search for winners between
/// tasks (from 65,536 slots a day) and the chunked scener passes make 16 chunks.
inline ScenarioConfig large_scenario() {
  ScenarioConfig c;
  c.name = "large";
  c.calendar.burn_in_start = *Date::parse("2020-08-01");
  c.calendar.start = *Date::parse("2020-08-01");
  c.calendar.end = *Date::parse("2020-08-14");
  for (int k = 0; k < kCategories; ++k) c.categories[k].titles_per_day *= 20;
  c.sceners.initial_sceners = 120000;
  c.sceners.entry_per_day *= 20;
  c.groups.initial_groups = 13333;
  for (auto& t : c.topsites.tier_sizes) t *= 20;
  return c;
}

inline double total(const Simulation& sim, const std::string& col) {
  const auto& s = sim.series();
  return s.over(col, s.first_day(), s.first_day() + (s.days() - 1));
}

inline double total_between(const Simulation& sim, const std::string& col, const char* from, const char* to) {
  return sim.series().over(col, *Date::parse(from), *Date::parse(to));
}

}  // namespace piracy::testing
