#include "engine/date.hpp"

#include <chrono>
#include <cstdio>

namespace piracy {
namespace {
std::chrono::year_month_day ymd(Date d) {
  return std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{d.days}}};
}
}  // namespace

Date Date::from_ymd(int year, unsigned month, unsigned day) {
  const std::chrono::year_month_day v{std::chrono::year{year}, std::chrono::month{month},
                                      std::chrono::day{day}};
  return Date{static_cast<std::int32_t>(std::chrono::sys_days{v}.time_since_epoch().count())};
}

std::optional<Date> Date::parse(std::string_view t) {
  if (t.size() != 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
  auto digits = [&](std::size_t from, std::size_t n, int& out) {
    out = 0;
    for (std::size_t i = from; i < from + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int y = 0, m = 0, d = 0;
  if (!digits(0, 4, y) || !digits(5, 2, m) || !digits(8, 2, d)) return std::nullopt;
  const std::chrono::year_month_day v{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(m)},
                                      std::chrono::day{static_cast<unsigned>(d)}};
  if (!v.ok()) return std::nullopt;
  return from_ymd(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

int Date::year() const { return static_cast<int>(ymd(*this).year()); }
unsigned Date::month() const { return static_cast<unsigned>(ymd(*this).month()); }
unsigned Date::day() const { return static_cast<unsigned>(ymd(*this).day()); }

unsigned Date::iso_weekday() const {
  return std::chrono::weekday{std::chrono::sys_days{std::chrono::days{days}}}.iso_encoding();
}

std::string Date::iso() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", year(), month(), day());
  return buf;
}

std::string Date::year_month() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u", year(), month());
  return buf;
}

}  // namespace piracy
