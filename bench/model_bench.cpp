// Whole-model benchmark: throughput of piracy::Simulation in scener-steps per second, its
// parallel efficiency, memory per scener, the wall time of one default-scenario run and the
// rate of an ensemble of default runs. A plain program (not Google Benchmark): each figure is
// one long run, where repetition statistics would add minutes and little information.
// Prints a table, then one JSON line (the last line of stdout) for scripts and CI.
// docs/PERFORMANCE.md explains the method and what bounds each figure.
//
//   model_bench                        sizes 10k, 100k (91 days), 1M (14 days); default runs; ensemble of 2
//   model_bench --quick                CI smoke mode: 10k sceners, 14 days, short default runs
//   model_bench --sizes 10000,100000   chosen sizes only
#include <sys/resource.h>
#include <unistd.h>

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/params.hpp"
#include "agents/simulation.hpp"
#include "engine/error.hpp"
#include "engine/rng.hpp"
#include "engine/samplers.hpp"
#include "piracy/version.hpp"

namespace {

using piracy::Date;
using piracy::ScenarioConfig;
using piracy::Simulation;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// Peak resident set of this process so far, bytes (Linux: ru_maxrss is in KiB). A high-water
/// mark: sizes run in increasing order, so the value after the largest size is its peak.
double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;
}

/// CPU seconds (user + system) used by this process so far, all threads.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto p = line.find(':');
      return p == std::string::npos ? line : line.substr(p + 2);
    }
  return "unknown";
}

/// The schema defaults (piracy::ScenarioConfig: the default scenario's description, calibrated
/// for 6,000 sceners) scaled to `n` initial sceners: the Scene is replicated, not crowded, so
/// the work per scener stays comparable across sizes. Groups n/9 (6,000/9 = 667, the default
/// has 700); title rates, P2P groups and their entry, scener entry and topsite tiers x n/6000.
/// No named group and no operation: the benchmark measures the daily routine.
ScenarioConfig scaled_scenario(std::int64_t n, Date start, Date end) {
  ScenarioConfig c;
  c.name = fmt::format("bench_{}", n);
  c.seed = 20200825;
  c.calendar.burn_in_start = start;
  c.calendar.start = start;  // every tick is reported, so series cover every step
  c.calendar.end = end;
  const double f = static_cast<double>(n) / 6000.0;
  c.sceners.initial_sceners = n;
  c.sceners.entry_per_day *= f;
  c.groups.initial_groups = std::max<std::int64_t>(1, n / 9);
  for (int k = 0; k < piracy::kCategories; ++k) c.categories[k].titles_per_day *= f;
  c.p2p.initial_groups = std::max<std::int64_t>(1, std::llround(static_cast<double>(c.p2p.initial_groups) * f));
  c.p2p.entry_per_day_2011 *= f;
  c.p2p.entry_per_day_2020 *= f;
  for (auto& t : c.topsites.tier_sizes) t = std::max<std::int64_t>(1, std::llround(static_cast<double>(t) * f));
  return c;
}

/// Bytes held by the scener arrays (capacity, not size: what the allocator really gave).
double scener_state_bytes(const piracy::Sceners& s) {
  double b = 0;
  auto add = [&](const auto& v) { b += static_cast<double>(v.capacity() * sizeof(v[0])); };
  add(s.group), add(s.role), add(s.status), add(s.action), add(s.imitate), add(s.skill), add(s.alpha);
  add(s.rho), add(s.recognition), add(s.chill);
  add(s.hat);
  add(s.payoff_ema), add(s.money_usd), add(s.site), add(s.ban_until);
  add(s.sell_site), add(s.sold_today), add(s.detected), add(s.caught);
  return b;
}

std::int64_t count_active(const piracy::Sceners& s) {
  return std::count(s.status.begin(), s.status.end(), static_cast<std::uint8_t>(piracy::ScenerStatus::Active));
}

struct SizeRun {
  std::int64_t sceners = 0;
  int threads = 0;
  int ticks = 0;
  double init_s = 0;          //!< construction: initial population and affiliations
  double run_s = 0;           //!< the ticks only
  double scener_steps = 0;    //!< sum over ticks of sceners active at the start of the tick
  double rate = 0;            //!< scener_steps / run_s
  double cores = 0;           //!< CPU seconds / run_s: cores actually obtained (< threads on a loaded machine)
  double peak_rss_bytes = 0;  //!< process high-water mark after the run
  double state_bytes = 0;     //!< scener arrays at the end
  std::int64_t sceners_end = 0;   //!< sceners ever created (array length)
  std::int64_t titles = 0;        //!< market titles registered
  std::int64_t active_titles = 0; //!< market titles in the active set at the end
  double releases = 0;            //!< Scene releases (to check 1 and 2 threads agree)
  std::array<double, Simulation::kPhases> phase_s{};  //!< wall seconds per phase of step()
  double sources_beside_s = 0;  //!< the part of open_sources on the market's task (Simulation::sources_beside_seconds)
};

/// Wall seconds per phase at 1 and 2 threads, and each phase's speed-up: which phases scale and
/// which are sequential (docs/PERFORMANCE.md). Returns the JSON object of the breakdown.
nlohmann::json print_phases(const std::string& title, const std::array<double, Simulation::kPhases>& p1,
                            const std::array<double, Simulation::kPhases>& p2, double beside1, double beside2) {
  // The agents' phases, then the market, which runs at the same time as part of the agents'
  // work (Simulation::run), then the ticks' wall time. Shares are of the ticks' wall time;
  // "overlap" is agents + market - tick: the time the market's task ran alongside the agents'
  // thread. "beside" is the part of open_sources that the market's task ran (run() on 2+ threads:
  // docs/PERFORMANCE.md 25), counted in open_sources and in the overlap.
  const auto tick = static_cast<std::size_t>(Simulation::kPhaseTick);
  const double t1 = p1[tick], t2 = p2[tick];
  fmt::print("  wall time per phase, {}:\n  {:>20} {:>12} {:>7} {:>12} {:>7} {:>8}\n", title, "phase",
             "1 thread, s", "share", "2 threads, s", "share", "speed-up");
  nlohmann::json j = nlohmann::json::object();
  // `speed_up`: false for the overlap, a difference of timings (slightly negative on one thread,
  // where nothing overlaps and the tick also holds the bookkeeping between phases).
  const auto row = [&](const std::string& name, double a, double b, bool speed_up = true) {
    fmt::print("  {:>20} {:>12.3f} {:>6.1f}% {:>12.3f} {:>6.1f}% ", name, a, t1 > 0 ? 100 * a / t1 : 0.0, b,
               t2 > 0 ? 100 * b / t2 : 0.0);
    if (speed_up)
      fmt::print("{:>8.2f}\n", b > 0 ? a / b : 0.0);
    else
      fmt::print("{:>8}\n", "-");
  };
  double agents1 = 0, agents2 = 0;
  for (int k = 0; k < Simulation::kPhases; ++k) {
    const auto a = p1[static_cast<std::size_t>(k)], b = p2[static_cast<std::size_t>(k)];
    if (Simulation::phase_of_agents(k)) agents1 += a, agents2 += b;
    if (k == Simulation::kPhaseMarket) row("(agents)", agents1, agents2);
    if (k == Simulation::kPhaseTick) {
      const auto m = static_cast<std::size_t>(Simulation::kPhaseMarket);
      row("(overlap)", agents1 + p1[m] - a, agents2 + p2[m] - b, false);
    }
    row(Simulation::phase_name(k), a, b);
    j[Simulation::phase_name(k)] = {a, b};
    if (k == Simulation::kPhaseOpenSources) row("(beside)", beside1, beside2, false);
  }
  std::fflush(stdout);
  return j;
}

SizeRun run_size(std::int64_t n, int threads, Date start, Date end) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
  const auto cfg = scaled_scenario(n, start, end);
  SizeRun r;
  r.sceners = n;
  r.threads = threads;
  auto t0 = Clock::now();
  Simulation sim(cfg);
  r.init_s = seconds_since(t0);
  r.ticks = sim.ticks();
  const double active0 = static_cast<double>(count_active(sim.sceners()));
  const double cpu0 = cpu_seconds();
  t0 = Clock::now();
  sim.run();
  r.run_s = seconds_since(t0);
  r.cores = (cpu_seconds() - cpu0) / r.run_s;
  // Active at the start of tick t = `sceners_total` recorded at the end of tick t-1 (record()
  // runs last in a tick); tick 0 starts with the initial population.
  const auto total = sim.series().values(sim.series().column("sceners_total"));
  r.scener_steps = active0;
  for (std::size_t d = 0; d + 1 < total.size(); ++d) r.scener_steps += total[d];
  r.rate = r.scener_steps / r.run_s;
  r.peak_rss_bytes = peak_rss_bytes();
  r.state_bytes = scener_state_bytes(sim.sceners());
  r.sceners_end = static_cast<std::int64_t>(sim.sceners().size());
  r.titles = sim.market().title_count();
  r.active_titles = sim.market().active_titles();
  const auto rel = sim.series().values(sim.series().column("releases_scene"));
  for (double v : rel) r.releases += v;
  r.phase_s = sim.phase_seconds();
  r.sources_beside_s = sim.sources_beside_seconds();
  return r;
}

/// One default run (construction + every tick, no paired counterfactual), seconds; `phases`
/// receives the wall seconds per phase of step().
double default_run_seconds(const ScenarioConfig& cfg, int threads, std::array<double, Simulation::kPhases>& phases,
                           double& sources_beside) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
  const auto t0 = Clock::now();
  Simulation sim(cfg);
  sim.run();
  phases = sim.phase_seconds();
  sources_beside = sim.sources_beside_seconds();
  return seconds_since(t0);
}

/// The main job's simulations (`piracy-abm run`): the scenario and its paired counterfactual,
/// side by side when two threads are usable (run_paired), seconds including construction.
double paired_run_seconds(const ScenarioConfig& cfg, int threads) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
  const auto t0 = Clock::now();
  Simulation sim(cfg);
  Simulation cf(cfg, cfg.counterfactual.remove_groups);
  run_paired(sim, &cf, [](int, std::int64_t, std::int64_t) {});
  return seconds_since(t0);
}

/// Runs per second of `runs` default runs (seeds seed, seed+1, ...) on `threads` threads,
/// parallel over runs: each run executes in its own one-thread arena, so a thread keeps one
/// simulation's arrays in its cache instead of stealing slices of another's decision loop.
double ensemble_runs_per_second(const ScenarioConfig& cfg, int threads, int runs) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
  const auto t0 = Clock::now();
  tbb::parallel_for(0, runs, 1, [&](int r) {
    tbb::task_arena one(1);
    one.execute([&] {
      ScenarioConfig c = cfg;
      c.seed = cfg.seed + static_cast<std::uint64_t>(r);
      Simulation sim(c);
      sim.run();
    });
  });
  return runs / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"piracy-abm whole-model benchmark (see docs/PERFORMANCE.md)"};
  bool quick = false;
  std::vector<std::int64_t> sizes;
  int days = 91;
  int days_large = 14;
  int ensemble = 2;
  int repeat = 1;
  bool skip_default = false;
  bool skip_sizes = false;
  std::string json_path;
  app.add_flag("--quick", quick, "fast smoke mode for CI: 10,000 sceners over 14 days, default runs shortened");
  app.add_option("--sizes", sizes, "initial sceners, comma-separated (default 10000,100000,1000000)")->delimiter(',');
  app.add_option("--days", days, "horizon in days from 2020-01-01 for sizes below 1,000,000")->check(CLI::Range(1, 3650));
  app.add_option("--days-large", days_large, "horizon in days for sizes of 1,000,000 and more")->check(CLI::Range(1, 3650));
  app.add_option("--ensemble", ensemble, "default runs in the ensemble")->check(CLI::Range(1, 64));
  app.add_option("--repeat", repeat,
                 "runs per size and thread count below 1,000,000 sceners; the fastest is reported "
                 "(on a shared machine, interference only ever adds time)")
      ->check(CLI::Range(1, 20));
  app.add_flag("--skip-default", skip_default, "skip the default-scenario runs and the ensemble");
  app.add_flag("--skip-sizes", skip_sizes, "skip the scaled sizes (default-scenario figures only)");
  app.add_option("--json", json_path, "also write the JSON result to this file");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    if (sizes.empty()) sizes = {10000};
    days = days_large = 14;
    ensemble = std::min(ensemble, 2);
  }
  if (sizes.empty()) sizes = {10000, 100000, 1000000};
  std::sort(sizes.begin(), sizes.end());  // ascending, so the last peak RSS is the largest size's

  nlohmann::json out;
  out["benchmark"] = "model_bench";
  out["commit"] = piracy::kGitCommit;
  out["nproc"] = sysconf(_SC_NPROCESSORS_ONLN);
  out["cpu"] = cpu_model();
  // The vector width of the batched random streams (engine/rng.hpp; PIRACY_RNG_PATH overrides it):
  // it moves the figures, never the results.
  out["rng_path"] = piracy::StreamBatch::name(piracy::StreamBatch::default_path());
  // Whether the choice and the race's draws take their 8-lane AVX-512 kernels (sample::avx512_kernels()).
  out["avx512_kernels"] = piracy::sample::avx512_kernels();
#ifdef NDEBUG
  out["build"] = "release";
#else
  out["build"] = "debug";
#endif
#ifdef PIRACY_SEATBELTS
  out["seatbelts"] = true;
  std::cerr << "warning: built with PIRACY_SEATBELTS: invariant checks run every tick; "
               "configure with -DCMAKE_BUILD_TYPE=Release for figures\n";
#else
  out["seatbelts"] = false;
#endif
  out["quick"] = quick;
  out["repeat"] = repeat;

  const Date start = Date::from_ymd(2020, 1, 1);
  if (skip_sizes) sizes.clear();
  fmt::print("random streams batched with {} (PIRACY_RNG_PATH=portable|sse2|avx2|avx512 chooses); "
             "8-lane AVX-512 choice and race draws: {}\n",
             piracy::StreamBatch::name(piracy::StreamBatch::default_path()),
             piracy::sample::avx512_kernels() ? "yes" : "no (4 lanes)");
  if (!sizes.empty()) {
    fmt::print("Whole-model throughput (scaled default scenario, from {}; scener-steps = active sceners x ticks)\n",
               start.iso());
    fmt::print("{:>10} {:>7} {:>6} {:>8} {:>9} {:>6} {:>14} {:>6} {:>10} {:>10}\n", "sceners", "threads", "ticks",
               "init_s", "run_s", "cores", "steps/s", "eff", "rss_B/sc", "state_B/sc");
    std::fflush(stdout);
  }
  nlohmann::json jsizes = nlohmann::json::array();
  double rss_per_scener_largest = 0, state_per_scener_largest = 0;
  for (const auto n : sizes) {
    if (n < 9) throw piracy::ConfigError(fmt::format("--sizes: {} sceners is too few (need >= 9)", n));
    const int horizon = n >= 1000000 ? days_large : days;
    const Date end = start + (horizon - 1);
    std::vector<SizeRun> runs;
    for (int t : {1, 2}) {
      SizeRun best;
      for (int k = 0; k < (n >= 1000000 ? 1 : repeat); ++k) {
        auto r = run_size(n, t, start, end);
        if (k == 0 || r.run_s < best.run_s) best = r;
      }
      runs.push_back(best);
      const auto& r = runs.back();
      const double eff = r.rate / runs.front().rate;
      fmt::print("{:>10} {:>7} {:>6} {:>8.2f} {:>9.2f} {:>6.2f} {:>14.4g} {:>6} {:>10.0f} {:>10.0f}\n", r.sceners,
                 r.threads, r.ticks, r.init_s, r.run_s, r.cores, r.rate, t == 1 ? std::string("-") : fmt::format("{:.2f}", eff),
                 r.peak_rss_bytes / static_cast<double>(n), r.state_bytes / static_cast<double>(r.sceners_end));
      std::fflush(stdout);
    }
    const auto& r1 = runs[0];
    const auto& r2 = runs[1];
    if (r1.releases != r2.releases)
      std::cerr << fmt::format("warning: {} sceners: 1 and 2 threads differ ({} vs {} Scene releases)\n", n,
                               r1.releases, r2.releases);
    rss_per_scener_largest = r2.peak_rss_bytes / static_cast<double>(n);
    state_per_scener_largest = r2.state_bytes / static_cast<double>(r2.sceners_end);
    nlohmann::json j;
    j["sceners"] = n;
    j["ticks"] = r1.ticks;
    j["init_s"] = {r1.init_s, r2.init_s};
    j["run_s"] = {r1.run_s, r2.run_s};
    j["cores_used"] = {r1.cores, r2.cores};
    j["scener_steps"] = r1.scener_steps;
    j["steps_per_s_1t"] = r1.rate;
    j["steps_per_s_2t"] = r2.rate;
    j["efficiency_2t"] = r2.rate / r1.rate;
    j["peak_rss_bytes"] = r2.peak_rss_bytes;
    j["scener_state_bytes"] = r2.state_bytes;
    j["sceners_end"] = r2.sceners_end;
    j["market_titles"] = r2.titles;
    j["market_active_titles"] = r2.active_titles;
    j["identical_1t_2t"] = r1.releases == r2.releases;
    j["phase_s"] = print_phases(fmt::format("{} sceners", n), r1.phase_s, r2.phase_s, r1.sources_beside_s, r2.sources_beside_s);
    j["open_sources_beside_s"] = {r1.sources_beside_s, r2.sources_beside_s};
    jsizes.push_back(j);
  }
  out["sizes"] = jsizes;
  if (!sizes.empty()) {
    out["rss_bytes_per_scener_largest"] = rss_per_scener_largest;
    out["state_bytes_per_scener_largest"] = state_per_scener_largest;
    fmt::print("peak RSS per scener at {} sceners: {:.0f} bytes (scener arrays alone: {:.0f} bytes)\n",
               sizes.back(), rss_per_scener_largest, state_per_scener_largest);
  }

  if (!skip_default) {
    auto cfg = piracy::load_default_scenario({});
    if (quick) {  // CI: a quarter of the burn-in only
      cfg.calendar.start = cfg.calendar.burn_in_start;
      cfg.calendar.end = cfg.calendar.burn_in_start + 90;
    }
    const ScenarioConfig paired_cfg = cfg;     // the main job: with its paired counterfactual
    cfg.counterfactual.remove_groups.clear();  // one simulation, no paired counterfactual
    const int ticks = (cfg.calendar.end - cfg.calendar.burn_in_start) + 1;
    fmt::print("{}Default scenario '{}' ({} ticks, {} initial sceners{})\n", sizes.empty() ? "" : "\n", cfg.name, ticks,
               cfg.sceners.initial_sceners, quick ? ", shortened" : "");
    std::array<double, Simulation::kPhases> ph1{}, ph2{};
    double beside1 = 0, beside2 = 0;
    const double d1 = default_run_seconds(cfg, 1, ph1, beside1);
    fmt::print("  one run, 1 thread : {:8.3f} s\n", d1);
    std::fflush(stdout);
    const double d2 = default_run_seconds(cfg, 2, ph2, beside2);
    fmt::print("  one run, 2 threads: {:8.3f} s\n", d2);
    std::fflush(stdout);
    const auto jph = print_phases("default run", ph1, ph2, beside1, beside2);
    double p1 = 0, p2 = 0;
    if (!paired_cfg.counterfactual.remove_groups.empty()) {
      p1 = paired_run_seconds(paired_cfg, 1);
      fmt::print("  paired run (piracy-abm run's simulations), 1 thread : {:8.3f} s\n", p1);
      std::fflush(stdout);
      p2 = paired_run_seconds(paired_cfg, 2);
      fmt::print("  paired run (piracy-abm run's simulations), 2 threads: {:8.3f} s (x{:.2f})\n", p2, p1 / p2);
      std::fflush(stdout);
    }
    const double e1 = ensemble_runs_per_second(cfg, 1, ensemble);
    fmt::print("  ensemble of {}, 1 thread : {:7.3f} runs/s\n", ensemble, e1);
    std::fflush(stdout);
    const double e2 = ensemble_runs_per_second(cfg, 2, ensemble);
    fmt::print("  ensemble of {}, 2 threads: {:7.3f} runs/s (x{:.2f})\n", ensemble, e2, e2 / e1);
    out["default"] = {{"ticks", ticks},          {"shortened", quick},     {"run_s_1t", d1},
                      {"run_s_2t", d2},          {"ensemble_runs", ensemble}, {"runs_per_s_1t", e1},
                      {"runs_per_s_2t", e2},     {"ensemble_speedup_2t", e2 / e1}};
    out["default"]["phase_s"] = jph;
    out["default"]["open_sources_beside_s"] = {beside1, beside2};
    out["default"]["paired_s_1t"] = p1;  // 0: the default scenario has no paired counterfactual
    out["default"]["paired_s_2t"] = p2;
  }

  const auto line = out.dump();
  std::cout << line << std::endl;
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    if (!f) throw piracy::IoError(fmt::format("--json {}: cannot open for writing", json_path));
    f << line << '\n';
  }
  return 0;
} catch (const piracy::ConfigError& e) {
  std::cerr << "error: " << e.what() << '\n';
  return 2;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << '\n';
  return 1;
}
