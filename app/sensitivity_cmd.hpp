#pragma once
// `piracy-abm sensitivity FILE.yaml`: Morris screening and Sobol indices (engine/calibration.hpp,
// engine/sensitivity.hpp). The options are those of `calibrate`.
#include "app/calibrate_cmd.hpp"

namespace piracy::app {

/// Adds the `sensitivity` subcommand to `app` (its options fill a CalibrateCommand).
std::shared_ptr<CalibrateCommand> add_sensitivity_command(CLI::App& app);
/// Runs it; returns the exit code.
int run_sensitivity_command(const CalibrateCommand& cmd);

}  // namespace piracy::app
