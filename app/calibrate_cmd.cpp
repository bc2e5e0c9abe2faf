// `piracy-abm calibrate`: the command-line layer over engine/calibration.hpp.
#include "app/calibrate_cmd.hpp"

#include <fmt/format.h>

#include <iostream>

#include "engine/error.hpp"
#include "engine/interrupt.hpp"
#include "engine/mpi.hpp"

namespace piracy::app {

void add_calibration_options(CLI::App* sub, CalibrateCommand& cmd) {
  sub->add_option("file", cmd.file, "YAML file")->required();
  sub->add_option("-o,--output", cmd.out_dir, "Output directory (default: piracy-output/<name>)");
  sub->add_option("--set", cmd.sets, "Override a key of the file: --set replicates=1");
  sub->add_option("--jobs", cmd.jobs, "Simulations at a time on each MPI rank (0: cores / threads_per_run)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--resume", cmd.resume, "Continue from the journal in the directory (after Ctrl-C, a kill or a crash)");
  sub->add_flag("--force", cmd.force, "Replace an existing output directory");
  sub->add_flag("-q,--quiet", cmd.quiet, "No progress and no report");
}

calibration::RunOptions calibration_options(const CalibrateCommand& cmd) {
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

std::shared_ptr<CalibrateCommand> add_calibrate_command(CLI::App& app) {
  auto cmd = std::make_shared<CalibrateCommand>();
  cmd->sub = app.add_subcommand(
      "calibrate",
      "Fit free parameters to reported figures (method of simulated moments, NLopt, common random numbers); "
      "writes the fit, standard errors, J, coverage, a trace and a calibrated scenario; journaled (--resume); "
      "runs under mpirun too");
  add_calibration_options(cmd->sub, *cmd);
  return cmd;
}

int run_calibrate_command(const CalibrateCommand& cmd) {
  const auto options = calibration_options(cmd);
  const mpi::Session session;
  calibration::CalibrationResult r;
  try {
    r = calibration::run_calibration(cmd.file, cmd.sets, options, session);
  } catch (const Interrupted& e) {
    if (session.rank() != 0) return e.exit_code();  // rank 0 says it once
    throw Interrupted(fmt::format("{}: the finished replications are journaled in {}; continue with --resume",
                                  e.what(), cmd.out_dir.empty() ? "piracy-output/<name>" : cmd.out_dir));
  } catch (const Error& e) {
    // Every rank meets the same failure (calibration.hpp: failures are shared); rank 0 reports.
    if (session.rank() != 0) return e.exit_code();
    throw;
  }
  if (session.rank() != 0) return r.exit_code;
  if (!cmd.quiet) std::cout << r.report << fmt::format("outputs in {}\n", r.dir.string());
  return 0;
}

}  // namespace piracy::app
