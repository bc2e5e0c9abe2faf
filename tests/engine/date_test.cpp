#include <catch2/catch.hpp>

#include "engine/date.hpp"

using piracy::Date;

TEST_CASE("dates parse strictly and round-trip", "[engine]") {
  const auto d = Date::parse("2020-08-25");
  REQUIRE(d);
  CHECK(d->iso() == "2020-08-25");
  CHECK(d->year() == 2020);
  CHECK(d->month() == 8u);
  CHECK(d->day() == 25u);
  CHECK(d->iso_weekday() == 2u);  // 25 August 2020 was a Tuesday
  CHECK(d->week_start().iso() == "2020-08-24");
  CHECK(d->month_start().iso() == "2020-08-01");
  CHECK(d->year_month() == "2020-08");
  CHECK_FALSE(Date::parse("2020-02-30"));
  CHECK_FALSE(Date::parse("2020-8-25"));
  CHECK_FALSE(Date::parse("2020-08-25x"));
  CHECK_FALSE(Date::parse("abcd-ef-gh"));
  CHECK(Date::parse("2020-02-29"));
  CHECK_FALSE(Date::parse("2019-02-29"));
  CHECK(Date::from_ymd(1970, 1, 1).days == 0);
  CHECK((*Date::parse("2021-01-01") - *Date::parse("2020-01-01")) == 366);
}
