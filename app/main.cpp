// piracy-abm: the command-line program. A thin layer: it parses the command line, calls the
// library (piracy::core) and maps errors to exit codes (0 success, 1 runtime failure,
// 2 usage or configuration error, 130 interrupted).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <tbb/info.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/params.hpp"
#include "agents/simulation.hpp"
#include "app/experiment_cmd.hpp"
#include "app/sensitivity_cmd.hpp"  // calibrate and sensitivity (issue 6)
#include "economics/recovery.hpp"
#include "engine/config.hpp"
#include "engine/error.hpp"
#include "engine/files.hpp"
#include "engine/interrupt.hpp"
#include "engine/output.hpp"
#include "piracy/version.hpp"

namespace {

using nlohmann::json;
using namespace piracy;

/// 1234567.8 -> "1,234,568" (fmt 9 has no locale-free digit grouping).
std::string grouped(double x) {
  if (!std::isfinite(x)) return "n/a";
  std::string digits = fmt::format("{:.0f}", std::fabs(x));
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (x < 0 && digits != "0" ? "-" : "") + out;
}

std::string fmt_num(const json& j, const char* spec = nullptr) {
  if (j.is_null()) return "n/a";
  if (spec == nullptr) return grouped(j.get<double>());
  return fmt::format(fmt::runtime(spec), j.get<double>());
}

void print_headline(const json& s, std::ostream& os) {
  os << fmt::format("scenario {} (seed {}), {} to {}\n", s["scenario"].get<std::string>(),
                    s["seed"].get<std::uint64_t>(), s["period"]["start"].get<std::string>(),
                    s["period"]["end"].get<std::string>());
  os << fmt::format("  Scene releases: {} in total, {} per day; P2P share of fresh releases {}-{}: {}\n",
                    fmt_num(s["releases"]["scene_total"]), fmt_num(s["releases"]["scene_per_day"]),
                    s["p2p_share"]["from"].get<std::string>().substr(0, 4),
                    s["p2p_share"]["to"].get<std::string>().substr(0, 4), fmt_num(s["p2p_share"]["value"], "{:.2f}"));
  for (const auto& c : s["crackdowns"]) {
    os << fmt::format("  {} on {}: {} servers ({} sites) seized in {} countries, {} arrests, {} sites dark\n",
                      c["name"].get<std::string>(), c["date"].get<std::string>(), c["servers_seized"].get<int>(),
                      c["sites_seized"].get<int>(), c["countries"].get<int>(), c["arrests"].get<int>(),
                      c["sites_dark"].get<int>());
    os << fmt::format("    Scene releases: month before {}, month after {} (x{}), five months after {} (x{})\n",
                      fmt_num(c["releases_month_before"]), fmt_num(c["releases_month_after"]),
                      fmt_num(c["ratio_month_after"], "{:.2f}"), fmt_num(c["releases_month_plus5"]),
                      fmt_num(c["ratio_month_plus5"], "{:.2f}"));
    if (c.contains("half_life_days"))
      os << fmt::format("    recovery: trough x{} of the pre-raid level, t50 {} d, t90 {} d, half-life {} d "
                        "[{}, {}], VAR half-life {} d\n",
                        fmt_num(c["drop_ratio"], "{:.2f}"), fmt_num(c["t50_days"]), fmt_num(c["t90_days"]),
                        fmt_num(c["half_life_days"], "{:.1f}"), fmt_num(c["half_life_ci"][0], "{:.1f}"),
                        fmt_num(c["half_life_ci"][1], "{:.1f}"), fmt_num(c["var_half_life_days"], "{:.1f}"));
  }
  const auto& l = s["losses"];
  os << fmt::format("  Studio losses {}-{}: ${} (first public copy from the Scene ${}, from P2P ${}; pre-release ${})\n",
                    s["period"]["start"].get<std::string>().substr(0, 4), s["period"]["end"].get<std::string>().substr(0, 4),
                    fmt_num(l["total_usd"]), fmt_num(l["scene_usd"]), fmt_num(l["p2p_usd"]), fmt_num(l["pre_release_usd"]));
  for (const auto& [name, g] : l["by_group"].items())
    os << fmt::format("    {}: {} releases; losses attributed by first public copy {} to {}: ${}\n", name,
                      fmt_num(g["releases"]), g["from"].get<std::string>(), g["to"].get<std::string>(),
                      fmt_num(g["attributed_usd"]));
  if (l.contains("paired_counterfactual")) {
    const auto& p = l["paired_counterfactual"];
    std::string names;
    for (const auto& n : p["removed_groups"]) names += (names.empty() ? "" : ", ") + n.get<std::string>();
    os << fmt::format("    paired run without {}: losses caused {} to {}: ${}\n", names,
                      p["from"].get<std::string>(), p["to"].get<std::string>(), fmt_num(p["caused_loss_usd"]));
  }
}

int cmd_run(const std::optional<std::string>& config_path, const std::string& out_dir, std::optional<std::uint64_t> seed,
            int threads, const std::vector<std::string>& sets, bool force, bool quiet) {
  install_interrupt_handlers();  // before the staging directory exists: Ctrl-C always cleans up
  const auto t0 = std::chrono::steady_clock::now();
  const std::string started = files::utc_now();
  std::vector<std::string> overrides = sets;
  if (seed) overrides.push_back(fmt::format("seed={}", *seed));
  ScenarioConfig cfg = config_path ? load_scenario(*config_path, overrides) : load_default_scenario(overrides);
  const std::string dir = out_dir.empty() ? fmt::format("piracy-output/{}", cfg.name) : out_dir;
  OutputDir out(dir, force);  // refuses a non-empty directory before any work is done
  const bool progress = !quiet;
  auto res = run_scenario(cfg, threads, progress);
  const auto& s = res.sim->series();
  out.write("daily.csv", s.daily_csv());
  out.write("weekly.csv", s.weekly_csv());
  out.write("monthly.csv", s.monthly_csv());
  out.write("events.csv", res.sim->events().csv());
  if (res.counterfactual) out.write("counterfactual_monthly.csv", res.counterfactual->series().monthly_csv());
  out.write("summary.json", res.summary.dump(2) + "\n");
  out.write("config.yaml", to_yaml(cfg));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int used_threads = threads > 0 ? threads : (cfg.threads > 0 ? static_cast<int>(cfg.threads) : tbb::info::default_concurrency());
  json manifest = {{"program", "piracy-abm"},
                   {"version", kVersion},
                   {"git_commit", kGitCommit},
                   {"config_source", config_path ? *config_path : std::string("<embedded sparks_2020.yaml>")},
                   {"overrides", sets},
                   {"seed", cfg.seed},
                   {"threads", used_threads},
                   {"started_utc", started},
                   {"wall_seconds", wall},
                   {"resolved_config", "config.yaml"},
                   {"note", "outputs do not depend on the thread count; rerun with: piracy-abm run config.yaml"}};
  out.write("manifest.json", manifest.dump(2) + "\n");
  out.commit();
  if (!quiet) {
    print_headline(res.summary, std::cout);
    std::cout << fmt::format("  outputs in {} ({:.1f} s)\n", dir, wall);
  }
  return 0;
}

int cmd_check(const std::string& path, const std::vector<std::string>& sets) {
  const auto cfg = load_scenario(path, sets);
  std::cout << to_yaml(cfg);
  return 0;
}

int cmd_recovery(const std::string& path, const std::string& event, const std::string& column, double pre_window,
                 double max_days, int smoothing) {
  const auto date = Date::parse(event);
  if (!date) throw UsageError(fmt::format("--event {}: not an ISO date YYYY-MM-DD", event));
  const auto series = economics::read_series_csv(path, column);
  economics::RecoveryOptions opt;
  opt.pre_window_days = pre_window;
  opt.max_days_after = max_days;
  opt.smoothing_days = smoothing;
  const auto est = economics::estimate_recovery(series, *date, opt);
  std::cout << economics::format_recovery(est) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"piracy-abm: an agent-based economic model of the film and TV piracy Scene.\n"
               "Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error, 130 interrupted."};
  app.set_version_flag("--version", fmt::format("piracy-abm {} ({})", kVersion, kGitCommit));
  app.require_subcommand(1);

  auto* run = app.add_subcommand("run", "Run a scenario (default: the embedded Sparks 2020 scenario) and write its outputs");
  std::optional<std::string> config_path;
  std::string out_dir;
  std::optional<std::uint64_t> seed;
  int threads = 0;
  std::vector<std::string> sets;
  bool force = false, quiet = false;
  run->add_option("config", config_path, "Scenario YAML file (default: embedded configs/sparks_2020.yaml)");
  run->add_option("-o,--output", out_dir, "Output directory (default: piracy-output/<scenario name>)");
  run->add_option("--seed", seed, "Random seed (overrides the scenario's)");
  run->add_option("--threads", threads, "Worker threads (0: all cores; results never depend on it)")->check(CLI::NonNegativeNumber);
  run->add_option("--set", sets, "Override a configuration key: --set enforcement.operations[0].servers=120");
  run->add_flag("--force", force, "Replace an existing non-empty output directory");
  run->add_flag("-q,--quiet", quiet, "No progress line and no summary");

  auto* check = app.add_subcommand("check", "Validate a scenario and print the resolved configuration");
  std::string check_path;
  std::vector<std::string> check_sets;
  check->add_option("config", check_path, "Scenario YAML file")->required();
  check->add_option("--set", check_sets, "Override a configuration key");

  auto* rec = app.add_subcommand("recovery", "Recovery estimators on an observed series (CSV: a date column and a value column)");
  std::string rec_path, rec_event, rec_column;
  double rec_pre = 60, rec_max = 365;
  int rec_smooth = 1;
  rec->add_option("file", rec_path, "CSV file")->required();
  rec->add_option("--event", rec_event, "Event date YYYY-MM-DD")->required();
  rec->add_option("--column", rec_column, "Value column (default: first non-date column)");
  rec->add_option("--pre-window", rec_pre, "Days before the event averaged for the pre-event level");
  rec->add_option("--max-days", rec_max, "Days after the event considered");
  rec->add_option("--smoothing", rec_smooth, "Trailing moving average (points)");

  auto* ref = app.add_subcommand("reference", "Print the configuration reference (Markdown) generated from the schema");

  const auto experiment_cmd = piracy::app::add_experiment_command(app);
  const auto calibrate_cmd = piracy::app::add_calibrate_command(app);
  const auto sensitivity_cmd = piracy::app::add_sensitivity_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (*run) return cmd_run(config_path, out_dir, seed, threads, sets, force, quiet);
    if (*check) return cmd_check(check_path, check_sets);
    if (*experiment_cmd->sub) return piracy::app::run_experiment_command(*experiment_cmd);
    if (*calibrate_cmd->sub) return piracy::app::run_calibrate_command(*calibrate_cmd);
    if (*sensitivity_cmd->sub) return piracy::app::run_sensitivity_command(*sensitivity_cmd);
    if (*rec) return cmd_recovery(rec_path, rec_event, rec_column, rec_pre, rec_max, rec_smooth);
    if (*ref) {
      std::cout << config::reference_markdown(config::document<ScenarioConfig>(), "Scenario configuration reference");
      return 0;
    }
  } catch (const piracy::Error& e) {
    std::cerr << e.what() << "\n";
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    // Within the schema's limits (README "Robustness and limits") a scenario can still be too
    // large for this machine's memory: say so instead of calling it an internal error.
    std::cerr << "piracy-abm: out of memory: the scenario or experiment is too large for this machine; "
                 "reduce sceners.initial_sceners, groups.initial_groups, the horizon or --jobs\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "piracy-abm: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
