#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/date.hpp"
#include "engine/error.hpp"
#include "engine/series.hpp"

using piracy::Agg;
using piracy::Date;
using piracy::SeriesTable;

namespace {

Date day(const char* iso) { return *Date::parse(iso); }

// 14 days from Thursday 2020-12-24 to Wednesday 2021-01-06. ISO weeks: Monday 2020-12-21
// (only Thu 24 - Sun 27 in the run), Monday 2020-12-28 (holds 2021-01-01; all 7 days) and
// Monday 2021-01-04 (Mon 4 - Wed 6). Every column holds the same numbers, so only the
// aggregation rule differs; the numbers are not monotone so that Max and Last differ.
const std::vector<double> kValues = {5, 9, 1, 2, /**/ 3, 8, 4, 0, 6, 7, 1, /**/ 2, 9, 3};

SeriesTable year_end_table() {
  SeriesTable t(day("2020-12-24"), 14);
  t.add_column("flow", Agg::Sum);
  t.add_column("stock", Agg::Mean);
  t.add_column("level", Agg::Last);
  t.add_column("peak", Agg::Max);
  t.add_column("agents", Agg::Mean, true);
  for (std::size_t c = 0; c < t.columns(); ++c) {
    for (std::int32_t d = 0; d < t.days(); ++d) t.set(c, d, kValues[static_cast<std::size_t>(d)]);
  }
  return t;
}

}  // namespace

TEST_CASE("weekly aggregation follows ISO weeks across a year end", "[engine][output]") {
  const SeriesTable t = year_end_table();
  REQUIRE(day("2020-12-28").iso_weekday() == 1u);  // a Monday, whose week holds 2021-01-01
  // Worked by hand from kValues:
  //   week of 2020-12-21: 5 9 1 2        -> sum 17, mean 4.25,   last 2, max 9
  //   week of 2020-12-28: 3 8 4 0 6 7 1  -> sum 29, mean 29/7,   last 1, max 8
  //   week of 2021-01-04: 2 9 3          -> sum 14, mean 14/3,   last 3, max 9
  // Means printed as Python's repr(29/7), repr(14/3) (shortest round-trip); the integer
  // column aggregated by Mean still shows its fractions.
  CHECK(t.weekly_csv() ==
        "week_start,flow,stock,level,peak,agents\n"
        "2020-12-21,17,4.25,2,9,4.25\n"
        "2020-12-28,29,4.142857142857143,1,8,4.142857142857143\n"
        "2021-01-04,14,4.666666666666667,3,9,4.666666666666667\n");
}

TEST_CASE("monthly aggregation and lookups", "[engine][output]") {
  const SeriesTable t = year_end_table();
  //   2020-12 (24th-31st): 5 9 1 2 3 8 4 0 -> sum 32, mean 4,    last 0, max 9
  //   2021-01 (1st-6th):   6 7 1 2 9 3     -> sum 28, mean 14/3, last 3, max 9
  CHECK(t.monthly_csv() ==
        "month,flow,stock,level,peak,agents\n"
        "2020-12,32,4,0,9,4\n"
        "2021-01,28,4.666666666666667,3,9,4.666666666666667\n");
  CHECK(t.monthly("flow", "2020-12") == 32.0);
  CHECK(t.monthly("stock", "2021-01") == 28.0 / 6.0);  // same operations, so exact equality
  CHECK(t.monthly("level", "2020-12") == 0.0);
  CHECK(t.monthly("peak", "2021-01") == 9.0);
  CHECK_THROWS_AS(t.monthly("flow", "2021-02"), piracy::ModelError);
  CHECK_THROWS_AS(t.monthly("flow", "2020-11"), piracy::ModelError);
  CHECK_THROWS_AS(t.monthly("flow", "2020-13"), piracy::ModelError);
  CHECK_THROWS_AS(t.monthly("flow", "2020-1"), piracy::ModelError);
  CHECK_THROWS_AS(t.monthly("nope", "2020-12"), piracy::ModelError);

  CHECK(t.over("flow", day("2020-12-28"), day("2021-01-03")) == 29.0);
  CHECK(t.over("stock", day("2020-12-24"), day("2020-12-25")) == 7.0);
  CHECK(t.over("level", day("2020-12-24"), day("2020-12-29")) == 8.0);
  CHECK(t.over("peak", day("2021-01-01"), day("2021-01-06")) == 9.0);
  CHECK(t.over("peak", day("2021-01-06"), day("2021-01-06")) == 3.0);
  CHECK_THROWS_AS(t.over("flow", day("2020-12-23"), day("2020-12-25")), piracy::ModelError);
  CHECK_THROWS_AS(t.over("flow", day("2021-01-06"), day("2021-01-07")), piracy::ModelError);
  CHECK_THROWS_AS(t.over("flow", day("2020-12-26"), day("2020-12-25")), piracy::ModelError);
}

TEST_CASE("daily table: columns, access and CSV", "[engine][output]") {
  SeriesTable t(day("2020-02-28"), 3);  // crosses a leap day
  const auto releases = t.add_column("releases", Agg::Sum, true);
  const auto losses = t.add_column("losses_usd", Agg::Sum);
  CHECK(t.column("losses_usd") == losses);
  CHECK(t.has_column("releases"));
  CHECK_FALSE(t.has_column("raids"));
  CHECK_THROWS_AS(t.column("raids"), piracy::ModelError);
  CHECK_THROWS_AS(t.add_column("releases", Agg::Max), piracy::ModelError);
  t.set(releases, 0, 3);
  t.at(releases, 1) += 2;
  t.at(releases, 1) += 2;
  t.set(releases, 2, 1e17);  // counts print as integers, never 1e+17
  t.set(losses, 0, 0.1 + 0.2);
  t.set(losses, 2, 1e17);
  CHECK(t.get(releases, 1) == 4.0);
  CHECK_THROWS_AS(t.set(releases, 3, 1.0), piracy::ModelError);
  CHECK_THROWS_AS(t.set(releases, -1, 1.0), piracy::ModelError);
  CHECK_THROWS_AS(t.get(7, 0), piracy::ModelError);
  CHECK(t.daily_csv() ==
        "date,releases,losses_usd\n"
        "2020-02-28,3,0.30000000000000004\n"
        "2020-02-29,4,0\n"
        "2020-03-01,100000000000000000,1e+17\n");
  const Eigen::VectorXd r = t.daily("releases");
  REQUIRE(r.size() == 3);
  CHECK(r(0) == 3.0);
  CHECK(r(1) == 4.0);
  CHECK(t.last_day() == day("2020-03-01"));
  CHECK(t.names() == std::vector<std::string>{"releases", "losses_usd"});
  CHECK(piracy::to_string(t.agg(losses)) == "sum");
}

TEST_CASE("column names that need quoting are quoted in headers", "[engine][output]") {
  SeriesTable t(day("2021-01-01"), 1);
  t.add_column("loss, USD", Agg::Sum);
  CHECK(t.daily_csv() == "date,\"loss, USD\"\n2021-01-01,0\n");
}

TEST_CASE("an empty table writes headers only and has no months", "[engine][output]") {
  SeriesTable t(day("2021-01-01"), 0);
  t.add_column("x", Agg::Sum);
  CHECK(t.daily_csv() == "date,x\n");
  CHECK(t.weekly_csv() == "week_start,x\n");
  CHECK_THROWS_AS(t.monthly("x", "2021-01"), piracy::ModelError);
  CHECK_THROWS_AS(SeriesTable(day("2021-01-01"), -1), piracy::ModelError);
}

TEST_CASE("a large table writes quickly and every value reads back exactly", "[engine][output]") {
  // 4,000 days x 60 columns: about the size of a 2010-2020 run with every output column.
  constexpr std::int32_t kDays = 4000;
  constexpr int kColumns = 60;
  SeriesTable t(day("2010-01-01"), kDays);
  for (int c = 0; c < kColumns; ++c) {
    t.add_column("c" + std::to_string(c), c % 4 == 0 ? Agg::Sum : Agg::Mean, c % 4 == 0);
  }
  std::uint64_t state = 88172645463325252ULL;  // xorshift64 (Marsaglia 2003): fixed pseudo-random values
  for (int c = 0; c < kColumns; ++c) {
    for (std::int32_t d = 0; d < kDays; ++d) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      const double x = static_cast<double>(state >> 11) * 0x1.0p-53 * 1e6;
      t.set(static_cast<std::size_t>(c), d, c % 4 == 0 ? std::floor(x) : x);
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string daily = t.daily_csv();
  const std::string weekly = t.weekly_csv();
  const std::string monthly = t.monthly_csv();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Generous bound (takes ~0.1 s in a Debug build on one core): catches only accidental
  // quadratic work or per-value stream formatting, not machine noise.
  CHECK(seconds < 5.0);
  CHECK(std::count(daily.begin(), daily.end(), '\n') == kDays + 1);
  // 2010-01-01 + 3999 days = Sunday 2020-12-13: months 2010-01 .. 2020-12 (132) and ISO weeks
  // from Monday 2009-12-28 to Monday 2020-12-07 (572), plus one header line each.
  CHECK(std::count(monthly.begin(), monthly.end(), '\n') == 1 + 132);
  CHECK(std::count(weekly.begin(), weekly.end(), '\n') == 1 + 572);
  // Parse the whole daily table back: shortest round-trip output must give the same bits.
  const char* p = daily.c_str();
  p = std::strchr(p, '\n') + 1;
  std::size_t mismatches = 0;
  for (std::int32_t d = 0; d < kDays; ++d) {
    p += 10;  // the date
    for (int c = 0; c < kColumns; ++c) {
      REQUIRE(*p == ',');
      char* end = nullptr;
      const double v = std::strtod(p + 1, &end);
      if (v != t.get(static_cast<std::size_t>(c), d)) ++mismatches;
      p = end;
    }
    REQUIRE(*p == '\n');
    ++p;
  }
  CHECK(mismatches == 0);
  CHECK(weekly.rfind("week_start,c0,", 0) == 0);
}

TEST_CASE("the event log quotes fields per RFC 4180", "[engine][output]") {
  piracy::EventLog log;
  log.add(day("2020-08-25"), "raid", "operation:sparks", "servers seized: 60, countries: 18");
  log.add(day("2020-08-26"), "group_retired", "group:17", "said \"we're done\"\nand left");
  REQUIRE(log.size() == 2);
  CHECK(log.events()[1].entity == "group:17");
  CHECK(log.csv() ==
        "date,type,entity,detail\n"
        "2020-08-25,raid,operation:sparks,\"servers seized: 60, countries: 18\"\n"
        "2020-08-26,group_retired,group:17,\"said \"\"we're done\"\"\nand left\"\n");
}
