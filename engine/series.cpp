#include "engine/series.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <utility>

#include "engine/error.hpp"
#include "engine/output.hpp"

namespace piracy {

std::string_view to_string(Agg agg) {
  switch (agg) {
    case Agg::Sum: return "sum";
    case Agg::Mean: return "mean";
    case Agg::Last: return "last";
    case Agg::Max: return "max";
  }
  return "?";
}

SeriesTable::SeriesTable(Date first_day, std::int32_t n_days) : first_day_(first_day), n_days_(n_days) {
  if (n_days < 0) throw ModelError(fmt::format("SeriesTable: n_days = {}: must be >= 0", n_days));
}

std::size_t SeriesTable::add_column(std::string name, Agg agg, bool integer) {
  if (name.empty()) throw ModelError("SeriesTable: a column name must not be empty");
  if (has_column(name)) throw ModelError(fmt::format("SeriesTable: column '{}' added twice", name));
  names_.push_back(std::move(name));
  aggs_.push_back(agg);
  integers_.push_back(integer ? 1 : 0);
  values_.resize(values_.size() + static_cast<std::size_t>(n_days_), 0.0);
  return names_.size() - 1;
}

bool SeriesTable::has_column(std::string_view name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

std::size_t SeriesTable::column(std::string_view name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  if (it == names_.end()) {
    throw ModelError(fmt::format("time series has no column '{}' (columns: {})", name, fmt::join(names_, ", ")));
  }
  return static_cast<std::size_t>(it - names_.begin());
}

void SeriesTable::throw_out_of_range(std::size_t col, std::int32_t day_index) const {
  if (col >= names_.size()) {
    throw ModelError(fmt::format("time series column index {} out of range (table has {} columns)", col,
                                 names_.size()));
  }
  throw ModelError(fmt::format("time series '{}': day index {} out of range [0, {})", names_[col], day_index,
                               n_days_));
}

std::span<const double> SeriesTable::values(std::size_t col) const {
  if (col >= names_.size()) throw_out_of_range(col, 0);
  return {values_.data() + col * static_cast<std::size_t>(n_days_), static_cast<std::size_t>(n_days_)};
}

Eigen::VectorXd SeriesTable::daily(std::string_view name) const {
  const std::span<const double> v = values(column(name));
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

double SeriesTable::aggregate(std::size_t col, std::int32_t begin, std::int32_t end) const {
  const double* v = values_.data() + col * static_cast<std::size_t>(n_days_);
  switch (aggs_[col]) {
    case Agg::Sum:
    case Agg::Mean: {
      double sum = 0.0;  // plain left-to-right sum: the same order, hence the same bits, every run
      for (std::int32_t d = begin; d < end; ++d) sum += v[d];
      return aggs_[col] == Agg::Sum ? sum : sum / static_cast<double>(end - begin);
    }
    case Agg::Last:
      return v[end - 1];
    case Agg::Max: {
      double m = -std::numeric_limits<double>::infinity();
      for (std::int32_t d = begin; d < end; ++d) {
        if (std::isnan(v[d])) return v[d];  // a NaN must show, not vanish behind a comparison
        m = std::max(m, v[d]);
      }
      return m;
    }
  }
  return 0.0;
}

namespace {

void append_header(fmt::memory_buffer& out, std::string_view first, const std::vector<std::string>& names) {
  out.append(first);
  for (const auto& name : names) {
    out.push_back(',');
    append_csv_field(out, name);
  }
  out.push_back('\n');
}

void append_date(fmt::memory_buffer& out, Date d) {
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
}

}  // namespace

std::string SeriesTable::daily_csv() const {
  fmt::memory_buffer out;
  append_header(out, "date", names_);
  for (std::int32_t d = 0; d < n_days_; ++d) {
    append_date(out, first_day_ + d);
    for (std::size_t c = 0; c < names_.size(); ++c) {
      out.push_back(',');
      append_number(out, values_[c * static_cast<std::size_t>(n_days_) + static_cast<std::size_t>(d)],
                    integers_[c] != 0);
    }
    out.push_back('\n');
  }
  return fmt::to_string(out);
}

template <typename PeriodStart, typename Label>
std::string SeriesTable::periodic_csv(std::string_view first_header, PeriodStart period_start,
                                      Label label) const {
  fmt::memory_buffer out;
  append_header(out, first_header, names_);
  std::int32_t begin = 0;
  while (begin < n_days_) {
    const Date start = period_start(first_day_ + begin);
    std::int32_t end = begin + 1;
    while (end < n_days_ && period_start(first_day_ + end) == start) ++end;
    label(out, start);
    for (std::size_t c = 0; c < names_.size(); ++c) {
      out.push_back(',');
      append_number(out, aggregate(c, begin, end), integers_[c] != 0 && aggs_[c] != Agg::Mean);
    }
    out.push_back('\n');
    begin = end;
  }
  return fmt::to_string(out);
}

std::string SeriesTable::weekly_csv() const {
  return periodic_csv(
      "week_start", [](Date d) { return d.week_start(); },
      [](fmt::memory_buffer& out, Date start) { append_date(out, start); });
}

std::string SeriesTable::monthly_csv() const {
  return periodic_csv(
      "month", [](Date d) { return d.month_start(); },
      [](fmt::memory_buffer& out, Date start) {
        fmt::format_to(std::back_inserter(out), "{:04}-{:02}", start.year(), start.month());
      });
}

double SeriesTable::over(std::string_view name, Date from, Date to_inclusive) const {
  const std::size_t col = column(name);
  if (from > to_inclusive || from < first_day_ || n_days_ == 0 || to_inclusive > last_day()) {
    throw ModelError(fmt::format("time series '{}': range {} to {} is empty or outside the run ({} to {})", name,
                                 from.iso(), to_inclusive.iso(), first_day_.iso(), last_day().iso()));
  }
  return aggregate(col, from - first_day_, to_inclusive - first_day_ + 1);
}

double SeriesTable::monthly(std::string_view name, std::string_view year_month) const {
  const std::size_t col = column(name);
  const auto start = year_month.size() == 7 ? Date::parse(fmt::format("{}-01", year_month)) : std::nullopt;
  if (!start) {
    throw ModelError(fmt::format("time series '{}': month '{}' is not of the form YYYY-MM", name, year_month));
  }
  const Date next = start->month() == 12 ? Date::from_ymd(start->year() + 1, 1, 1)
                                         : Date::from_ymd(start->year(), start->month() + 1, 1);
  const Date from = std::max(*start, first_day_);
  const Date to = std::min(next - 1, last_day());
  if (n_days_ == 0 || from > to) {
    throw ModelError(fmt::format("time series '{}': month {} holds no day of the run ({} to {})", name,
                                 year_month, first_day_.iso(), last_day().iso()));
  }
  return aggregate(col, from - first_day_, to - first_day_ + 1);
}

void EventLog::add(Date date, std::string type, std::string entity, std::string detail) {
  events_.push_back(Event{date, std::move(type), std::move(entity), std::move(detail)});
}

std::string EventLog::csv() const {
  fmt::memory_buffer out;
  out.append(std::string_view("date,type,entity,detail\n"));
  for (const Event& e : events_) {
    append_date(out, e.date);
    for (const std::string* field : {&e.type, &e.entity, &e.detail}) {
      out.push_back(',');
      append_csv_field(out, *field);
    }
    out.push_back('\n');
  }
  return fmt::to_string(out);
}

}  // namespace piracy
