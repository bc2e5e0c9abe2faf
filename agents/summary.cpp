// Headline summary of a run: the figures a researcher compares with reported ones
// (MODEL.md patterns P1-P7), the crackdowns with their recovery estimates, and losses.
#include <tbb/global_control.h>
#include <tbb/info.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <mutex>
#include <fmt/format.h>

#include "agents/simulation.hpp"
#include "economics/recovery.hpp"
#include "engine/error.hpp"
#include "engine/interrupt.hpp"
#include "engine/progress.hpp"

namespace piracy {
namespace {

using nlohmann::json;

json nan_to_null(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<std::size_t> idx(v.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](auto a, auto b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (std::size_t k = 0; k < idx.size();) {  // average ranks for ties
    std::size_t j = k;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[k]]) ++j;
    for (std::size_t m = k; m <= j; ++m) r[idx[m]] = (static_cast<double>(k + j) / 2.0) + 1.0;
    k = j + 1;
  }
  return r;
}

/// Spearman rank correlation (Pearson correlation of average ranks).
double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 3 || a.size() != b.size()) return std::nan("");
  const auto ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) { ma += ra[i] / n; mb += rb[i] / n; }
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : std::nan("");
}

/// Sum of a column over a calendar month, or NaN when the month is outside the reported period.
double month_total(const SeriesTable& s, const std::string& col, Date any_day_in_month) {
  const Date first = any_day_in_month.month_start();
  const Date last = Date::from_ymd(first.year() + (first.month() == 12 ? 1 : 0),
                                   first.month() == 12 ? 1 : first.month() + 1, 1) - 1;
  if (first < s.first_day() || last > s.first_day() + (s.days() - 1)) return std::nan("");
  return s.over(col, first, last);
}

Date add_months(Date d, int months) {
  int y = d.year(), m = static_cast<int>(d.month()) + months;
  while (m > 12) { m -= 12; ++y; }
  while (m < 1) { m += 12; --y; }
  return Date::from_ymd(y, static_cast<unsigned>(m), 1);
}

json crackdown_entry(const Simulation& sim, const OperationOutcome& op) {
  const auto& s = sim.series();
  const auto& rc = sim.config().recovery;
  json j;
  j["name"] = op.name;
  j["date"] = op.date.iso();
  j["servers_seized"] = op.servers_seized;
  j["sites_seized"] = op.sites_seized;
  j["countries"] = op.countries;
  j["arrests"] = op.arrests;
  j["sites_dark"] = op.sites_dark;
  const double before = month_total(s, "releases_scene", add_months(op.date, -1));
  const double after = month_total(s, "releases_scene", add_months(op.date, 1));
  const double five = month_total(s, "releases_scene", add_months(op.date, 5));
  j["releases_month_before"] = nan_to_null(before);
  j["releases_month_after"] = nan_to_null(after);
  j["releases_month_plus5"] = nan_to_null(five);
  j["ratio_month_after"] = nan_to_null(after / before);
  j["ratio_month_plus5"] = nan_to_null(five / before);

  // Recovery estimators on the daily Scene release series (MODEL.md s.4).
  const auto n = s.days();
  const double event = op.date - s.first_day();
  if (event <= 0 || event >= n) return j;
  Eigen::VectorXd t(n), y(n);
  const auto col = s.column("releases_scene");
  for (std::int32_t d = 0; d < n; ++d) { t[d] = d; y[d] = s.get(col, d); }
  economics::RecoveryOptions opt;
  opt.pre_window_days = static_cast<double>(rc.pre_window_days);
  opt.max_days_after = static_cast<double>(rc.max_days_after);
  opt.smoothing_days = static_cast<int>(rc.smoothing_days);
  const auto est = economics::estimate_recovery(t, y, event, opt);
  j["pre_level_per_day"] = nan_to_null(est.pre_level);
  j["drop_ratio"] = nan_to_null(est.drop_ratio);
  j["t50_days"] = est.t50_days ? json(*est.t50_days) : json(nullptr);
  j["t90_days"] = est.t90_days ? json(*est.t90_days) : json(nullptr);
  j["half_life_days"] = est.fit_ok ? nan_to_null(est.half_life_days) : json(nullptr);
  j["half_life_ci"] = est.fit_ok ? json::array({nan_to_null(est.half_life_ci_low), nan_to_null(est.half_life_ci_high)})
                                 : json::array({nullptr, nullptr});
  j["permanent_loss"] = est.fit_ok ? nan_to_null(est.permanent_loss) : json(nullptr);
  j["fit_ok"] = est.fit_ok;
  if (!est.fit_ok) j["fit_message"] = est.fit_message;

  // VAR(1) on (releases, active sceners, live topsites) after the event, weekly means.
  const auto c_act = s.column("active_sceners"), c_live = s.column("live_topsites");
  const auto first = static_cast<std::int32_t>(event);
  const auto last = std::min<std::int32_t>(n, first + static_cast<std::int32_t>(rc.max_days_after));
  const int weeks = (last - first) / 7;
  if (weeks >= 8) {
    Eigen::MatrixXd X(weeks, 3);
    for (int w = 0; w < weeks; ++w) {
      double a = 0, b = 0, c = 0;
      for (int d = 0; d < 7; ++d) {
        const auto k = first + 7 * w + d;
        a += s.get(col, k); b += s.get(c_act, k); c += s.get(c_live, k);
      }
      X(w, 0) = a / 7; X(w, 1) = b / 7; X(w, 2) = c / 7;
    }
    const auto var = economics::fit_var1(X, 7.0);
    j["var_half_life_days"] = var.ok ? nan_to_null(var.half_life_days) : json(nullptr);
    j["var_dominant_eigenvalue"] = nan_to_null(var.dominant_eigenvalue_modulus);
  } else {
    j["var_half_life_days"] = nullptr;
  }
  return j;
}

}  // namespace

json summarize(const Simulation& sim, const Simulation* cf) {
  const auto& cfg = sim.config();
  const auto& s = sim.series();
  json out;
  out["scenario"] = cfg.name;
  out["seed"] = cfg.seed;
  out["period"] = {{"start", cfg.calendar.start.iso()}, {"end", cfg.calendar.end.iso()}};
  const Date last = s.first_day() + (s.days() - 1);
  const double scene = s.over("releases_scene", s.first_day(), last);
  const double p2p = s.over("releases_p2p", s.first_day(), last);
  out["releases"] = {{"scene_total", scene}, {"p2p_total", p2p},
                     {"scene_per_day", scene / s.days()}, {"dupes_nuked", s.over("dupes_nuked", s.first_day(), last)}};

  json crack = json::array();
  for (const auto& op : sim.operations()) crack.push_back(crackdown_entry(sim, op));
  out["crackdowns"] = crack;

  // P2P share of fresh releases from the year of the first operation (P6), else the last two years.
  Date from = Date::from_ymd(std::max(s.first_day().year(), last.year() - 1), 1, 1);
  if (!sim.operations().empty()) from = Date::from_ymd(sim.operations().front().date.year(), 1, 1);
  if (from < s.first_day()) from = s.first_day();
  const double sc2 = s.over("releases_scene", from, last), p22 = s.over("releases_p2p", from, last);
  out["p2p_share"] = {{"from", from.iso()}, {"to", last.iso()}, {"value", nan_to_null(p22 / (sc2 + p22))}};

  // Groups: many short-lived groups, low output for most (P7; Décary-Hétu et al. 2012).
  const auto t_end = sim.ticks() - 1;
  const auto t0 = sim.tick_of(cfg.calendar.start);
  std::vector<double> life, output, peak, rate;
  std::int64_t active_in_period = 0;
  for (const auto& g : sim.group_records()) {
    const auto end = g.dissolved_tick >= 0 ? g.dissolved_tick : t_end;
    if (end < t0) continue;
    ++active_in_period;
    if (g.founded_tick >= t0 && g.dissolved_tick >= 0) life.push_back(g.dissolved_tick - g.founded_tick);
    output.push_back(static_cast<double>(g.releases));
    peak.push_back(g.recognition_peak);
    rate.push_back(static_cast<double>(g.releases) / std::max(1, end - g.founded_tick));
  }
  std::int64_t short_lived = 0;
  for (double l : life) short_lived += l < 365 ? 1 : 0;
  out["groups"] = {{"active_in_period", active_in_period},
                   {"completed_lifetimes", life.size()},
                   {"lifetime_days_median", nan_to_null(quantile(life, 0.5))},
                   {"lifetime_days_p90", nan_to_null(quantile(life, 0.9))},
                   {"share_lifetime_under_1y", life.empty() ? json(nullptr) : json(static_cast<double>(short_lived) / life.size())},
                   {"releases_median", nan_to_null(quantile(output, 0.5))},
                   {"releases_p90", nan_to_null(quantile(output, 0.9))},
                   {"releases_max", nan_to_null(quantile(output, 1.0))},
                   // P7: productivity correlates with recognition (Decary-Hetu et al. 2012).
                   {"spearman_output_rate_vs_peak_recognition", nan_to_null(spearman(rate, peak))}};

  // Losses (economics): attribution by first public copy, and paired counterfactuals.
  const auto ls = sim.market().summary();
  json by_channel;
  for (int c = 0; c < economics::kChannels; ++c) by_channel[economics::channel_name(c)] = ls.by_channel_usd[static_cast<std::size_t>(c)];
  double total_period = s.over("studio_loss_usd", s.first_day(), last);
  json by_group = json::object();
  for (const auto& ng : cfg.named_groups) {
    const auto id = sim.named_group_id(ng.name);
    if (id < 0) continue;
    const auto win = sim.market().loss_by_group_between(cfg.counterfactual.from.days, cfg.counterfactual.to.days);
    const auto it = win.find(id);
    by_group[ng.name] = {{"attributed_usd", it != win.end() ? it->second : 0.0},
                         {"from", cfg.counterfactual.from.iso()}, {"to", cfg.counterfactual.to.iso()},
                         {"releases", sim.named_group_releases(ng.name)}};
  }
  json losses = {{"total_usd", total_period},
                 {"scene_usd", ls.scene_usd},
                 {"p2p_usd", ls.p2p_usd},
                 {"pre_release_usd", ls.pre_release_usd},
                 {"by_channel", by_channel},
                 {"by_group", by_group}};
  if (cf != nullptr) {
    const auto a = sim.series().over("studio_loss_usd", cfg.counterfactual.from, cfg.counterfactual.to);
    const auto b = cf->series().over("studio_loss_usd", cfg.counterfactual.from, cfg.counterfactual.to);
    losses["paired_counterfactual"] = {{"removed_groups", cfg.counterfactual.remove_groups},
                                       {"from", cfg.counterfactual.from.iso()},
                                       {"to", cfg.counterfactual.to.iso()},
                                       {"loss_with_usd", a},
                                       {"loss_without_usd", b},
                                       {"caused_loss_usd", a - b}};
  }
  out["losses"] = losses;

  // Observed points given in the scenario, beside the simulated monthly means per day.
  json obs = json::array();
  for (const auto& p : cfg.observed) {
    const double m = month_total(s, "releases_scene", p.date);
    obs.push_back({{"date", p.date.iso()}, {"observed", p.value}, {"simulated_month", nan_to_null(m)},
                   {"source", p.source}});
  }
  out["observed"] = obs;

  // The same recovery estimators on the observed points and on the simulated monthly totals
  // at the same dates, around the first operation: reported and simulated recoveries on the
  // same footing (MODEL.md s.4).
  if (cfg.observed.size() >= 2 && !sim.operations().empty()) {
    const Date event = sim.operations().front().date;
    const auto n = static_cast<Eigen::Index>(cfg.observed.size());
    Eigen::VectorXd t(n), y_obs(n), y_sim(n);
    bool complete = true;
    for (Eigen::Index k = 0; k < n; ++k) {
      const auto& p = cfg.observed[static_cast<std::size_t>(k)];
      t[k] = p.date - event;
      y_obs[k] = p.value;
      y_sim[k] = month_total(s, "releases_scene", p.date);
      complete = complete && std::isfinite(y_sim[k]);
    }
    economics::RecoveryOptions opt;
    opt.pre_window_days = 62;  // monthly points: the month before the event
    opt.max_days_after = static_cast<double>(cfg.recovery.max_days_after);
    auto describe_fit = [&](const Eigen::VectorXd& y) {
      const auto e = economics::estimate_recovery(t, y, 0.0, opt);
      return json{{"pre_level", nan_to_null(e.pre_level)}, {"drop_ratio", nan_to_null(e.drop_ratio)},
                  {"t50_days", e.t50_days ? json(*e.t50_days) : json(nullptr)},
                  {"t90_days", e.t90_days ? json(*e.t90_days) : json(nullptr)},
                  {"half_life_days", e.fit_ok ? nan_to_null(e.half_life_days) : json(nullptr)},
                  {"fit_ok", e.fit_ok}, {"fit_message", e.fit_message}};
    };
    out["observed_recovery"] = {{"event", event.iso()}, {"observed", describe_fit(y_obs)}};
    if (complete) out["observed_recovery"]["simulated_same_dates"] = describe_fit(y_sim);
  }
  return out;
}

RunOutputs run_scenario(const ScenarioConfig& cfg, int threads, bool progress) {
  const int n_threads = threads > 0 ? threads : (cfg.threads > 0 ? static_cast<int>(cfg.threads) : tbb::info::default_concurrency());
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(std::max(1, n_threads)));
  RunOutputs out;
  const bool paired = !cfg.counterfactual.remove_groups.empty();
  out.sim = std::make_unique<Simulation>(cfg);
  if (paired) out.counterfactual = std::make_unique<Simulation>(cfg, cfg.counterfactual.remove_groups);
  const std::int64_t total = static_cast<std::int64_t>(out.sim->ticks()) * (paired ? 2 : 1);
  Progress bar("simulating", total, progress);
  // The paired runs may advance at the same time (run_paired): the bar shows the sum of their
  // ticks, drawn by whichever thread finds it free.
  std::array<std::atomic<std::int64_t>, 2> done{};
  std::mutex bar_mutex;
  run_paired(*out.sim, out.counterfactual.get(), [&](int which, std::int64_t ticks_done, std::int64_t) {
    throw_if_interrupted();
    done[static_cast<std::size_t>(which)].store(ticks_done, std::memory_order_relaxed);
    if (std::unique_lock lock(bar_mutex, std::try_to_lock); lock.owns_lock())
      bar.update(done[0].load(std::memory_order_relaxed) + done[1].load(std::memory_order_relaxed));
  });
  bar.finish();
  out.summary = summarize(*out.sim, out.counterfactual.get());
  return out;
}

}  // namespace piracy
