#pragma once
// `piracy-abm calibrate FILE.yaml` and `piracy-abm sensitivity FILE.yaml` (engine/calibration.hpp).
// main.cpp registers the subcommands and calls run_* when one was chosen.
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "engine/calibration.hpp"

namespace piracy::app {

struct CalibrateCommand {
  CLI::App* sub = nullptr;
  std::string file;
  std::string out_dir;
  std::vector<std::string> sets;
  bool resume = false;
  bool force = false;
  bool quiet = false;
  int jobs = 0;
};

/// The options `calibrate` and `sensitivity` share (file, -o, --set, --jobs, --resume, --force, -q).
void add_calibration_options(CLI::App* sub, CalibrateCommand& cmd);
/// Installs the interrupt handlers and turns the options into RunOptions (UsageError when
/// --resume and --force are both given).
calibration::RunOptions calibration_options(const CalibrateCommand& cmd);

/// Adds the `calibrate` subcommand to `app`.
std::shared_ptr<CalibrateCommand> add_calibrate_command(CLI::App& app);
/// Runs it; returns the exit code (errors are thrown as piracy::Error).
int run_calibrate_command(const CalibrateCommand& cmd);

}  // namespace piracy::app
