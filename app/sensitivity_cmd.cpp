// `piracy-abm sensitivity`: the command-line layer over engine/calibration.hpp's
// run_sensitivity (Morris and Sobol, engine/sensitivity.hpp). Its options are calibrate's.
#include "app/sensitivity_cmd.hpp"

#include <fmt/format.h>

#include <iostream>

#include "engine/error.hpp"
#include "engine/mpi.hpp"

namespace piracy::app {

std::shared_ptr<CalibrateCommand> add_sensitivity_command(CLI::App& app) {
  auto cmd = std::make_shared<CalibrateCommand>();
  cmd->sub = app.add_subcommand(
      "sensitivity",
      "Morris elementary effects and Sobol indices (Saltelli sampling, Jansen estimator, bootstrap intervals) of "
      "output statistics over scenario keys; journaled (--resume); runs under mpirun too");
  add_calibration_options(cmd->sub, *cmd);
  return cmd;
}

int run_sensitivity_command(const CalibrateCommand& cmd) {
  const auto options = calibration_options(cmd);
  const mpi::Session session;
  calibration::SensitivityResult r;
  try {
    r = calibration::run_sensitivity(cmd.file, cmd.sets, options, session);
  } catch (const Interrupted& e) {
    if (session.rank() != 0) return e.exit_code();
    throw Interrupted(fmt::format("{}: the finished runs are journaled in {}; continue with --resume", e.what(),
                                  cmd.out_dir.empty() ? "piracy-output/<name>" : cmd.out_dir));
  } catch (const Error& e) {
    if (session.rank() != 0) return e.exit_code();  // rank 0 reports
    throw;
  }
  if (session.rank() != 0) return r.exit_code;
  if (!cmd.quiet) std::cout << r.report << fmt::format("outputs in {}\n", r.dir.string());
  return 0;
}

}  // namespace piracy::app
