#pragma once
// Daily time series of a run and their weekly / monthly aggregates, plus the event log.
//
// One row per simulated day (one tick). Each column says how it aggregates over a period:
// flows (titles released, downloads, losses in USD) are summed; stocks (active sceners, open
// topsites) are averaged over the period or taken at its last day; Max gives peaks.
//
// Weeks are ISO weeks (Monday to Sunday, ISO 8601) labelled by their Monday, so a week can
// straddle a year or month end: 2020-12-28 labels the week holding 2021-01-01. The first and
// last week (and month) of a run are usually partial; they are reported, aggregated over the
// days the run covers: a partial Sum is the sum of the simulated days only, Mean their mean,
// Last the value on the run's last day, Max their maximum. A row's label may therefore
// precede the run's first day (a run starting on a Wednesday reports the week of the Monday
// before). Compare partial periods with care.
//
// Numbers print identically on every run and platform (see append_number in output.hpp).
#include <Eigen/Core>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/date.hpp"

namespace piracy {

enum class Agg { Sum, Mean, Last, Max };

/// "sum", "mean", "last", "max" (for column metadata written next to the tables).
[[nodiscard]] std::string_view to_string(Agg agg);

class SeriesTable {
 public:
  /// A table of `n_days` (>= 0) days from `first_day`, without columns. Throws ModelError if n_days < 0.
  SeriesTable(Date first_day, std::int32_t n_days);

  /// Adds a column of zeros and returns its index. Throws ModelError if the name exists or is
  /// empty. An `integer` column holds counts: its daily values and its Sum, Last and Max
  /// aggregates print as integers (rounded to nearest); its Mean aggregates print as doubles,
  /// because rounding an average of counts would lose information.
  /// Adding a column invalidates references returned by at().
  std::size_t add_column(std::string name, Agg agg, bool integer = false);
  /// Index of a column; throws ModelError naming the missing column.
  [[nodiscard]] std::size_t column(std::string_view name) const;
  [[nodiscard]] bool has_column(std::string_view name) const;

  /// Element access, bounds-checked (ModelError): one comparison, cheap enough for every tick.
  void set(std::size_t col, std::int32_t day_index, double value) { at(col, day_index) = value; }
  double& at(std::size_t col, std::int32_t day_index) { return values_[offset(col, day_index)]; }
  [[nodiscard]] double get(std::size_t col, std::int32_t day_index) const {
    return values_[offset(col, day_index)];
  }

  [[nodiscard]] std::int32_t days() const { return n_days_; }
  [[nodiscard]] Date first_day() const { return first_day_; }
  [[nodiscard]] Date last_day() const { return first_day_ + (n_days_ - 1); }
  [[nodiscard]] std::size_t columns() const { return names_.size(); }
  [[nodiscard]] const std::vector<std::string>& names() const { return names_; }
  [[nodiscard]] Agg agg(std::size_t col) const { return aggs_.at(col); }
  [[nodiscard]] bool is_integer(std::size_t col) const { return integers_.at(col) != 0; }

  /// The whole daily column (a copy, for estimators and tests).
  [[nodiscard]] Eigen::VectorXd daily(std::string_view name) const;
  /// The whole daily column without a copy.
  [[nodiscard]] std::span<const double> values(std::size_t col) const;

  /// Header "date,<columns>", one row per day, dates as YYYY-MM-DD.
  [[nodiscard]] std::string daily_csv() const;
  /// Header "week_start,<columns>", one row per ISO week labelled by its Monday; partial first
  /// and last weeks are aggregated over the days present (see the top of this file).
  [[nodiscard]] std::string weekly_csv() const;
  /// Header "month,<columns>", one row per calendar month labelled YYYY-MM; partial months as weeks.
  [[nodiscard]] std::string monthly_csv() const;

  /// A column aggregated over the month "YYYY-MM" (days of the run only). Throws ModelError
  /// when the month is malformed or holds no day of the run.
  [[nodiscard]] double monthly(std::string_view name, std::string_view year_month) const;
  /// A column aggregated with its Agg over [from, to_inclusive]. Throws ModelError when the range
  /// is empty (from > to) or not entirely inside the run.
  [[nodiscard]] double over(std::string_view name, Date from, Date to_inclusive) const;

 private:
  [[nodiscard]] std::size_t offset(std::size_t col, std::int32_t day_index) const {
    if (col >= names_.size() || day_index < 0 || day_index >= n_days_) [[unlikely]] {
      throw_out_of_range(col, day_index);
    }
    return col * static_cast<std::size_t>(n_days_) + static_cast<std::size_t>(day_index);
  }
  [[noreturn]] void throw_out_of_range(std::size_t col, std::int32_t day_index) const;
  /// Column `col` aggregated over day indices [begin, end), end > begin.
  [[nodiscard]] double aggregate(std::size_t col, std::int32_t begin, std::int32_t end) const;
  /// One row per run of consecutive days with the same period_start(date), labelled label(start).
  template <typename PeriodStart, typename Label>
  [[nodiscard]] std::string periodic_csv(std::string_view first_header, PeriodStart period_start,
                                         Label label) const;

  Date first_day_;
  std::int32_t n_days_ = 0;
  std::vector<std::string> names_;
  std::vector<Agg> aggs_;
  std::vector<char> integers_;  // not vector<bool>: plain bytes
  std::vector<double> values_;  // column-major: values_[col * n_days_ + day]
};

/// One dated happening of a run (a raid, a group's founding or retirement, a title's leak).
struct Event {
  Date date;
  std::string type;    //!< e.g. "raid", "group_founded"
  std::string entity;  //!< who or what, e.g. "group:17"
  std::string detail;  //!< free text; may hold commas, quotes and newlines
};

/// Events in the order they were added (the simulation adds them in tick order, so the log is
/// chronological and deterministic without sorting).
class EventLog {
 public:
  void add(Date date, std::string type, std::string entity, std::string detail);
  /// Header "date,type,entity,detail"; fields quoted per RFC 4180, rows ended by "\n".
  [[nodiscard]] std::string csv() const;
  [[nodiscard]] std::size_t size() const { return events_.size(); }
  [[nodiscard]] const std::vector<Event>& events() const { return events_; }

 private:
  std::vector<Event> events_;
};

}  // namespace piracy
