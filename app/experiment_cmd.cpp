// `piracy-abm experiment`: the command-line layer over engine/experiment.hpp (options, the MPI
// session, the closing report). Everything that computes lives in the library.
#include "app/experiment_cmd.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "engine/error.hpp"
#include "engine/experiment.hpp"
#include "engine/interrupt.hpp"
#include "engine/mpi.hpp"
#include "engine/progress.hpp"

namespace piracy::app {
namespace {

/// 1234567 -> "1.23M", 0.0123 -> "0.0123": three significant digits, for the closing report.
std::string short_number(double x) {
  if (!std::isfinite(x)) return "n/a";
  const double a = std::fabs(x);
  if (a >= 1e9) return fmt::format("{:.3g}G", x / 1e9);
  if (a >= 1e6) return fmt::format("{:.3g}M", x / 1e6);
  if (a >= 1e4) return fmt::format("{:.3g}k", x / 1e3);
  if (a >= 100) return fmt::format("{:.0f}", x);
  return fmt::format("{:.3g}", x);
}

std::vector<std::string> split_csv_line(const std::string& line) {
  // effects.csv holds no quoted fields: arm names and metric names have no commas or quotes.
  std::vector<std::string> out;
  std::stringstream s(line);
  for (std::string f; std::getline(s, f, ',');) out.push_back(f);
  return out;
}

/// A few headline effects per arm, read back from effects.csv.
void print_effects(const std::filesystem::path& effects, const std::string& baseline, std::ostream& os) {
  std::ifstream in(effects);
  std::string line;
  if (!std::getline(in, line)) return;
  const std::vector<std::pair<std::string, std::string>> shown = {
      {"first_op_12m.scene_releases", "Scene releases 12m"},
      {"first_op_12m.p2p_share", "P2P share 12m"},
      {"losses.total_usd", "losses USD"},
      {"crackdowns[0].half_life_days", "half-life d"}};
  std::map<std::string, std::map<std::string, std::string>> by_arm;  // arm -> metric -> text
  std::vector<std::string> order;
  while (std::getline(in, line)) {
    const auto f = split_csv_line(line);
    if (f.size() < 10) continue;
    for (const auto& [metric, label] : shown) {
      if (f[1] != metric) continue;
      if (by_arm.count(f[0]) == 0) order.push_back(f[0]);
      const auto num = [&](std::size_t i) { return std::strtod(f[i].c_str(), nullptr); };
      by_arm[f[0]][metric] = (fmt::format("{} {}{} [{}, {}]", label, num(5) > 0 ? "+" : "", short_number(num(5)),
                                         short_number(num(6)), short_number(num(7))));
    }
  }
  if (order.empty()) return;
  os << fmt::format("  effects against {} (mean paired difference [95% CI]; all metrics in effects.csv):\n", baseline);
  for (const auto& arm : order) {
    os << fmt::format("    {}:", arm);
    for (const auto& [metric, label] : shown)
      if (by_arm[arm].count(metric) != 0) os << "  " << by_arm[arm][metric];
    os << "\n";
  }
}

int dry_run(const ExperimentCommand& cmd) {
  const auto plan = experiment::load_plan(cmd.file, cmd.sets);
  std::cout << fmt::format("experiment {} ({}): {}, {} x {} replicates = {} runs\n", plan.spec.name, cmd.file,
                           plan.kind == experiment::Kind::Arms ? "arms" : "design " + plan.spec.design.type,
                           plan.groups.size(), plan.seeds.size(), plan.runs());
  std::cout << "varied:";
  for (const auto& c : plan.param_columns) std::cout << " " << c;
  std::cout << (plan.param_columns.empty() ? " nothing\n" : "\n");
  for (const auto& g : plan.groups) {
    std::cout << fmt::format("  {} {}:", plan.group_column(), g.name);
    for (std::size_t i = 0; i < g.param_values.size(); ++i)
      std::cout << fmt::format(" {}={}", plan.param_columns[i], g.param_values[i].empty() ? "-" : g.param_values[i]);
    std::cout << "\n";
  }
  std::cout << "replicate seeds:";
  for (const auto s : plan.seeds) std::cout << " " << s;
  std::cout << fmt::format("\nplan digest {}\n", plan.digest());
  return 0;
}

}  // namespace

std::shared_ptr<ExperimentCommand> add_experiment_command(CLI::App& app) {
  auto cmd = std::make_shared<ExperimentCommand>();
  auto* sub = app.add_subcommand(
      "experiment",
      "Run an experiment: replicates of a scenario, policy arms with common random numbers, or a design "
      "(grid, lhs, sobol); journaled (--resume), parallel (--jobs) and distributed (mpirun -n N piracy-abm experiment)");
  sub->add_option("file", cmd->file, "Experiment YAML file")->required();
  sub->add_option("-o,--output", cmd->out_dir, "Experiment directory (default: piracy-output/<experiment name>)");
  sub->add_option("--set", cmd->sets, "Override a key of the experiment file: --set replicates=3");
  sub->add_option("--jobs", cmd->jobs, "Runs at a time on each MPI rank (0: cores / threads_per_run)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--resume", cmd->resume, "Continue the experiment journaled in the directory (after Ctrl-C, a kill or a crash)");
  sub->add_flag("--force", cmd->force, "Replace an existing experiment directory");
  sub->add_flag("--dry-run", cmd->dry_run, "Validate the experiment and print its runs; run nothing");
  sub->add_flag("-q,--quiet", cmd->quiet, "No progress and no report");
  cmd->sub = sub;
  return cmd;
}

int run_experiment_command(const ExperimentCommand& cmd) {
  install_interrupt_handlers();
  if (cmd.resume && cmd.force) throw UsageError("--resume and --force exclude each other: choose one");
  if (cmd.dry_run) return dry_run(cmd);
  const mpi::Session session;
  experiment::RunOptions options;
  options.out_dir = cmd.out_dir;
  options.resume = cmd.resume;
  options.force = cmd.force;
  options.progress = !cmd.quiet;
  options.jobs = cmd.jobs;
  const auto outcome = experiment::run_experiment(cmd.file, cmd.sets, options, session);
  if (session.rank() != 0) return outcome.exit_code;
  if (!cmd.quiet) {
    std::cout << fmt::format("experiment finished: {} runs ({} resumed from the journal, {} run now) in {}; outputs in {}\n",
                             outcome.runs, outcome.resumed, outcome.executed, format_duration(outcome.wall_seconds),
                             outcome.dir.string());
    const auto effects = outcome.dir / "effects.csv";
    std::ifstream arms(outcome.dir / "runs.csv");
    std::string header, first;
    std::getline(arms, header);
    std::getline(arms, first);
    const auto f = split_csv_line(first);
    if (f.size() > 1) print_effects(effects, f[1], std::cout);
  }
  return 0;
}

}  // namespace piracy::app
