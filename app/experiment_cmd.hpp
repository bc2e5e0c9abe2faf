#pragma once
// `piracy-abm experiment FILE.yaml`: ensembles, sweeps and policy arms (engine/experiment.hpp).
// main.cpp registers the subcommand and calls run_experiment_command when it was chosen.
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

namespace piracy::app {

struct ExperimentCommand {
  CLI::App* sub = nullptr;
  std::string file;
  std::string out_dir;
  std::vector<std::string> sets;
  bool resume = false;
  bool force = false;
  bool quiet = false;
  bool dry_run = false;
  int jobs = 0;
};

/// Adds the `experiment` subcommand and its options to `app`.
std::shared_ptr<ExperimentCommand> add_experiment_command(CLI::App& app);

/// Runs it; returns the exit code (errors are thrown as piracy::Error, as by the other commands).
int run_experiment_command(const ExperimentCommand& cmd);

}  // namespace piracy::app
