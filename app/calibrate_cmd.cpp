// `piracy-abm calibrate`: the command-line layer over engine/calibration.hpp.
#include "app/calibrate_cmd.hpp"

#include <fmt/format.h>

#include <iostream>

#include "engine/calibration.hpp"
#include "engine/error.hpp"
#include "engine/interrupt.hpp"
#include "engine/mpi.hpp"

namespace piracy::app {

namespace {
void add_common_options(CLI::App* sub, CalibrateCommand& cmd) {
  sub->add_option("file", cmd.file, "YAML file")->required();
  sub->add_option("-o,--output", cmd.out_dir, "Output directory (default: piracy-output/<name>)");
  sub->add_option("--set", cmd.sets, "Override a key of the file: --set replicates=1");
  sub->add_option("--jobs", cmd.jobs, "Simulations at a time (0: cores / threads_per_run)")->check(CLI::NonNegativeNumber);
  sub->add_flag("--resume", cmd.resume, "Continue from the journal in the directory (after Ctrl-C, a kill or a crash)");
  sub->add_flag("--force", cmd.force, "Replace an existing output directory");
  sub->add_flag("-q,--quiet", cmd.quiet, "No progress and no report");
}
}  // namespace

std::shared_ptr<CalibrateCommand> add_calibrate_command(CLI::App& app) {
  auto cmd = std::make_shared<CalibrateCommand>();
  cmd->sub = app.add_subcommand(
      "calibrate",
      "Fit free parameters to reported figures (method of simulated moments, NLopt, common random numbers); "
      "writes the fit, standard errors, J, coverage, a trace and a calibrated scenario; journaled (--resume)");
  add_common_options(cmd->sub, *cmd);
  return cmd;
}

std::shared_ptr<CalibrateCommand> add_sensitivity_command(CLI::App& app) {
  auto cmd = std::make_shared<CalibrateCommand>();
  cmd->sub = app.add_subcommand(
      "sensitivity",
      "Morris elementary effects and Sobol indices (Saltelli sampling, Jansen estimator, bootstrap intervals) of "
      "output statistics over scenario keys; journaled (--resume)");
  add_common_options(cmd->sub, *cmd);
  return cmd;
}

namespace {
calibration::RunOptions options_of(const CalibrateCommand& cmd) {
  install_interrupt_handlers();
  if (cmd.resume && cmd.force) throw UsageError("--resume and --force exclude each other: choose one");
  calibration::RunOptions o;
  o.out_dir = cmd.out_dir;
  o.resume = cmd.resume;
  o.force = cmd.force;
  o.progress = !cmd.quiet;
  o.jobs = cmd.jobs;
  return o;
}
}  // namespace

int run_calibrate_command(const CalibrateCommand& cmd) {
  const auto options = options_of(cmd);
  const mpi::Session session;
  calibration::CalibrationResult r;
  try {
    r = calibration::run_calibration(cmd.file, cmd.sets, options, session);
  } catch (const Interrupted& e) {
    throw Interrupted(fmt::format("{}: the finished replications are journaled in {}; continue with --resume",
                                  e.what(), cmd.out_dir.empty() ? "piracy-output/<name>" : cmd.out_dir));
  }
  if (!cmd.quiet) std::cout << r.report << fmt::format("outputs in {}\n", r.dir.string());
  return 0;
}

int run_sensitivity_command(const CalibrateCommand& cmd) {
  const auto options = options_of(cmd);
  const mpi::Session session;
  calibration::SensitivityResult r;
  try {
    r = calibration::run_sensitivity(cmd.file, cmd.sets, options, session);
  } catch (const Interrupted& e) {
    throw Interrupted(fmt::format("{}: the finished runs are journaled in {}; continue with --resume", e.what(),
                                  cmd.out_dir.empty() ? "piracy-output/<name>" : cmd.out_dir));
  }
  if (!cmd.quiet) std::cout << r.report << fmt::format("outputs in {}\n", r.dir.string());
  return 0;
}

}  // namespace piracy::app
