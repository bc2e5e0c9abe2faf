#pragma once
// `piracy-abm calibrate FILE.yaml` and `piracy-abm sensitivity FILE.yaml` (engine/calibration.hpp).
// main.cpp registers the subcommands and calls run_* when one was chosen.
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

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

/// Adds the `calibrate` subcommand to `app`.
std::shared_ptr<CalibrateCommand> add_calibrate_command(CLI::App& app);
/// Runs it; returns the exit code (errors are thrown as piracy::Error).
int run_calibrate_command(const CalibrateCommand& cmd);

}  // namespace piracy::app
