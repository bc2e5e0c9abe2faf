#pragma once
// Calendar: one tick is one day on the real (proleptic Gregorian) calendar.
// A Date is a count of days since 1970-01-01, so arithmetic is integer arithmetic.
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace piracy {

struct Date {
  std::int32_t days = 0;  //!< days since 1970-01-01

  static Date from_ymd(int year, unsigned month, unsigned day);
  /// Strict ISO 8601 calendar date "YYYY-MM-DD"; nullopt when malformed or not a real date.
  static std::optional<Date> parse(std::string_view text);

  [[nodiscard]] int year() const;
  [[nodiscard]] unsigned month() const;
  [[nodiscard]] unsigned day() const;
  /// ISO weekday: 1 = Monday ... 7 = Sunday.
  [[nodiscard]] unsigned iso_weekday() const;
  /// Monday of this date's ISO week.
  [[nodiscard]] Date week_start() const { return Date{days - static_cast<std::int32_t>(iso_weekday() - 1)}; }
  /// First day of this date's month.
  [[nodiscard]] Date month_start() const { return from_ymd(year(), month(), 1); }
  [[nodiscard]] std::string iso() const;        //!< "YYYY-MM-DD"
  [[nodiscard]] std::string year_month() const; //!< "YYYY-MM"

  friend Date operator+(Date d, std::int32_t n) { return Date{d.days + n}; }
  friend Date operator-(Date d, std::int32_t n) { return Date{d.days - n}; }
  friend std::int32_t operator-(Date a, Date b) { return a.days - b.days; }
  friend auto operator<=>(const Date&, const Date&) = default;
};

}  // namespace piracy
