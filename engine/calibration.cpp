#include "engine/calibration.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <nlopt.h>
#include <sys/file.h>
#include <tbb/blocked_range.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <nlopt.hpp>
#include <sstream>

#include "agents/simulation.hpp"
#include "economics/recovery.hpp"
#include "engine/design.hpp"
#include "engine/error.hpp"
#include "engine/files.hpp"
#include "engine/experiment.hpp"
#include "engine/interrupt.hpp"
#include "engine/mpi.hpp"
#include "engine/output.hpp"
#include "engine/rng.hpp"
#include "engine/sensitivity.hpp"
#include "piracy/version.hpp"

namespace piracy::calibration {
namespace {

namespace fs = std::filesystem;
using config::Node;
using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
/// Contribution to J of a moment the model did not produce (NaN in every replication): large
/// enough that the optimiser leaves such regions, finite so that NLopt keeps working.
constexpr double kMissingPenalty = 1e6;

bool valid_month(const std::string& m) {
  if (m.size() != 7 || m[4] != '-') return false;
  for (std::size_t i = 0; i < 7; ++i)
    if (i != 4 && std::isdigit(static_cast<unsigned char>(m[i])) == 0) return false;
  const int month = std::stoi(m.substr(5));
  return month >= 1 && month <= 12;
}

bool known_metric(const std::string& m) {
  const auto& n = experiment::metric_names();
  return std::find(n.begin(), n.end(), m) != n.end();
}

std::string metric_list() {
  std::string s;
  for (const auto& m : experiment::metric_names()) s += (s.empty() ? "" : ", ") + m;
  return s;
}

/// The checks shared by targets and sensitivity outputs: exactly one statistic, well formed.
void check_statistic(config::Visitor& v, const std::string& metric, const std::string& series,
                     const std::string& month, const std::string& ratio_to) {
  v.check(!metric.empty() || !series.empty(), "metric",
          "no statistic: give `metric` (e.g. crackdowns[0].ratio_month_after) or `series` with `month`");
  v.check(metric.empty() || series.empty(), "series", "give either `metric` or `series`, not both");
  v.check(metric.empty() || known_metric(metric), "metric", "unknown metric; metrics: " + metric_list());
  v.check(metric.empty() || (month.empty() && ratio_to.empty()), "month",
          "`month` and `ratio_to` go with `series`, not with `metric`");
  v.check(series.empty() || valid_month(month), "month", "must be a month YYYY-MM (needed with `series`)");
  v.check(ratio_to.empty() || valid_month(ratio_to), "ratio_to", "must be a month YYYY-MM");
}

void check_parameters(config::Visitor& v, const std::vector<FreeParameter>& ps) {
  v.check(!ps.empty(), "parameters", "must list at least one parameter");
  for (std::size_t i = 0; i < ps.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      v.check(ps[j].key != ps[i].key, fmt::format("parameters[{}].key", i),
              fmt::format("is already a parameter (parameters[{}])", j));
      v.check(ps[j].name != ps[i].name, fmt::format("parameters[{}].name", i),
              fmt::format("is already the name of parameters[{}]", j));
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Schema

void describe(config::Visitor& v, FreeParameter& p) {
  v.field("name", p.name, {.doc = "Short name of the parameter (columns of trace.csv)", .required = true});
  v.check(config::valid_name(p.name), "name", config::kNameRule);
  v.field("key", p.key, {.doc = "Scenario key, written as for --set (groups.slots_per_effort)", .required = true});
  v.check(!p.key.empty() && p.key.find('=') == std::string::npos, "key", "must be a key path without '='");
  v.field("min", p.min, {.doc = "Lower bound", .required = true});
  v.field("max", p.max, {.doc = "Upper bound", .required = true});
  v.field("log", p.log, {.doc = "Search in log(value) (needs min > 0)"});
  v.field("integer", p.integer, {.doc = "Round to the nearest integer (integer keys)"});
  v.check(std::isfinite(p.min) && std::isfinite(p.max) && p.max > p.min, "max",
          "must be greater than min; give bounds with min < max");
  v.check(!p.log || p.min > 0, "min", "must be > 0 when log is true");
}

void describe(config::Visitor& v, Target& t) {
  v.field("name", t.name, {.doc = "Name of the target (P2, ...)", .required = true});
  v.check(config::valid_name(t.name), "name", config::kNameRule);
  v.field("metric", t.metric, {.doc = "A run metric (a summary.json path, see experiment metrics)"});
  v.field("series", t.series, {.doc = "Or a daily series (releases_scene, ...), summed over `month`"});
  v.field("month", t.month, {.doc = "Month YYYY-MM of the series value"});
  v.field("ratio_to", t.ratio_to, {.doc = "Month YYYY-MM: the statistic is series[month] / series[ratio_to]"});
  check_statistic(v, t.metric, t.series, t.month, t.ratio_to);
  v.field("observed", t.observed, {.doc = "Observed value", .required = true});
  v.field("sigma", t.sigma, {.doc = "Uncertainty of the observed value (standard deviation)", .min = 0,
                             .exclusive_min = true, .required = true});
  v.field("source", t.source, {.doc = "Where the observed value comes from"});
}

void describe(config::Visitor& v, OptimizerSpec& o) {
  v.field("global", o.global,
          {.doc = "NLopt global algorithm (GN_CRS2_LM, GN_ISRES, GN_DIRECT_L, ...), SOBOL (a batch of Sobol' points "
                  "evaluated all at once: parallel over jobs and MPI ranks) or none"});
  v.check(o.global == "none" || o.global == "SOBOL" ||
              (o.global.rfind("GN_", 0) == 0 && static_cast<int>(nlopt_algorithm_from_string(o.global.c_str())) >= 0),
          "global",
          "must be an NLopt global derivative-free algorithm (GN_CRS2_LM, GN_ISRES, GN_DIRECT_L, ...), SOBOL or none");
  v.field("global_evals", o.global_evals, {.doc = "Evaluations of the global phase", .min = 0, .max = 1e6});
  v.field("population", o.population, {.doc = "Population of CRS2/ISRES (0: NLopt's default 10 (n+1))", .min = 0,
                                       .max = 1e5});
  v.field("local", o.local, {.doc = "NLopt local algorithm (LN_BOBYQA, LN_NELDERMEAD, LN_SBPLX, ...) or none"});
  v.check(o.local == "none" || (o.local.rfind("LN_", 0) == 0 &&
                                static_cast<int>(nlopt_algorithm_from_string(o.local.c_str())) >= 0),
          "local", "must be an NLopt local derivative-free algorithm (LN_BOBYQA, LN_NELDERMEAD, ...) or none");
  v.field("local_evals", o.local_evals, {.doc = "Evaluations of the local phase", .min = 0, .max = 1e6});
  v.field("xtol", o.xtol, {.doc = "Stopping tolerance of the local phase in the unit cube", .min = 0});
  v.field("seed", o.seed, {.doc = "Seed of NLopt's random numbers (nlopt::srand)"});
  v.check(o.global != "none" || o.local != "none", "local", "global and local cannot both be none");
}

void describe(config::Visitor& v, CalibrationSpec& c) {
  v.field("name", c.name, {.doc = "Name (default output directory piracy-output/<name>)"});
  v.check(config::valid_name(c.name), "name", config::kNameRule);
  v.field("description", c.description, {.doc = "Free text: what is fitted, the budget and why"});
  v.field("scenario", c.scenario, {.doc = "Base scenario: a file relative to this file, else an embedded scenario"});
  v.field("set", c.set, {.doc = "Overrides key=value applied to every candidate"});
  v.field("seed", c.seed, {.doc = "Seed of the replicate seeds (common random numbers across candidates)"});
  v.field("replicates", c.replicates, {.doc = "Replications per candidate", .min = 1, .max = 1e4});
  v.field("final_replicates", c.final_replicates,
          {.doc = "Replications at the estimate for the fit table, J and coverage (0: replicates)", .min = 0,
           .max = 1e4});
  v.field("threads_per_run", c.threads_per_run, {.doc = "Threads inside one run", .min = 1, .max = 1024});
  v.field("weighting", c.weighting,
          {.doc = "W = diag(1/sigma^2) (uncertainty), or diag(1/(sigma^2 + bootstrap variance of the simulated "
                  "mean at the centre)) (bootstrap)",
           .choices = {"uncertainty", "bootstrap"}});
  v.field("jacobian_step", c.jacobian_step,
          {.doc = "Central-difference step in the unit cube for the standard errors", .min = 1e-6, .max = 0.5});
  v.field("coverage_level", c.coverage_level,
          {.doc = "Level of the observed intervals of the coverage ratio", .min = 0, .max = 1, .exclusive_min = true});
  v.field("parameters", c.parameters, {.doc = "Free parameters with bounds", .required = true});
  v.field("targets", c.targets, {.doc = "Targets: statistics with observed value, sigma and source", .required = true});
  v.field("optimizer", c.optimizer, {.doc = "NLopt algorithms and budgets"});
  check_parameters(v, c.parameters);
  v.check(!c.targets.empty(), "targets", "must list at least one target");
  for (std::size_t i = 0; i < c.targets.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      v.check(c.targets[j].name != c.targets[i].name, fmt::format("targets[{}].name", i),
              fmt::format("is already the name of targets[{}]", j));
  v.check(c.final_replicates == 0 || c.final_replicates >= c.replicates, "final_replicates",
          "must be 0 or >= replicates");
}

void describe(config::Visitor& v, Output& o) {
  v.field("name", o.name, {.doc = "Name of the output", .required = true});
  v.check(config::valid_name(o.name), "name", config::kNameRule);
  v.field("metric", o.metric, {.doc = "A run metric (a summary.json path)"});
  v.field("series", o.series, {.doc = "Or a daily series, summed over `month`"});
  v.field("month", o.month, {.doc = "Month YYYY-MM"});
  v.field("ratio_to", o.ratio_to, {.doc = "Month YYYY-MM of the denominator"});
  check_statistic(v, o.metric, o.series, o.month, o.ratio_to);
}

void describe(config::Visitor& v, SensitivitySpec& s) {
  v.field("name", s.name, {.doc = "Name (default output directory piracy-output/<name>)"});
  v.check(config::valid_name(s.name), "name", config::kNameRule);
  v.field("description", s.description, {.doc = "Free text: the budget and why"});
  v.field("scenario", s.scenario, {.doc = "Base scenario: a file relative to this file, else an embedded scenario"});
  v.field("set", s.set, {.doc = "Overrides key=value applied to every point"});
  v.field("seed", s.seed, {.doc = "Seed of the replicate seeds, the Morris design and the bootstrap"});
  v.field("replicates", s.replicates, {.doc = "Replications per design point (outputs are their means)", .min = 1,
                                       .max = 1e4});
  v.field("threads_per_run", s.threads_per_run, {.doc = "Threads inside one run", .min = 1, .max = 1024});
  v.field("method", s.method, {.doc = "morris, sobol or both", .choices = {"morris", "sobol", "both"}});
  v.field("trajectories", s.trajectories, {.doc = "Morris trajectories r ((k + 1) r points)", .min = 2, .max = 1e5});
  v.field("levels", s.levels, {.doc = "Morris grid levels p (even)", .min = 2, .max = 1000});
  v.check(s.levels % 2 == 0, "levels", "must be even (Morris 1991: Delta = p / (2 (p - 1)))");
  v.field("base_samples", s.base_samples, {.doc = "Sobol base sample N (N (k + 2) points)", .min = 2, .max = 1e6});
  v.field("bootstrap", s.bootstrap, {.doc = "Bootstrap resamples of the confidence intervals", .min = 0, .max = 1e6});
  v.field("parameters", s.parameters, {.doc = "Parameters and their ranges", .required = true});
  v.field("outputs", s.outputs, {.doc = "Output statistics", .required = true});
  check_parameters(v, s.parameters);
  v.check(s.method == "morris" || 2 * s.parameters.size() <= design::kSobolMaxDims, "parameters",
          "Sobol indices take at most 32 parameters");
  v.check(!s.outputs.empty(), "outputs", "must list at least one output");
}

// ---------------------------------------------------------------------------------------------
// Numbers

double chi_square_sf(double x, double df) {
  if (!(df > 0) || !std::isfinite(x)) return kNaN;
  if (x <= 0) return 1.0;
  const double a = 0.5 * df, z = 0.5 * x;
  const double gln = std::lgamma(a);
  if (z < a + 1) {  // series for P, Q = 1 - P
    double ap = a, sum = 1.0 / a, del = sum;
    for (int n = 0; n < 1000; ++n) {
      ap += 1;
      del *= z / ap;
      sum += del;
      if (std::fabs(del) < std::fabs(sum) * 1e-15) break;
    }
    return 1.0 - sum * std::exp(-z + a * std::log(z) - gln);
  }
  // continued fraction for Q (modified Lentz)
  const double tiny = 1e-300;
  double b = z + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-15) break;
  }
  return std::exp(-z + a * std::log(z) - gln) * h;
}

namespace {

/// Standard normal quantile by bisection on erfc (exact to double precision; called rarely).
double normal_quantile(double p) {
  double lo = -40, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) lo = mid; else hi = mid;
  }
  return 0.5 * (lo + hi);
}

struct Summary {
  std::size_t n = 0;
  double mean = kNaN, sd = kNaN, ci_low = kNaN, ci_high = kNaN;
};

Summary summarize_values(const std::vector<double>& x) {
  Summary s;
  double sum = 0;
  for (const double v : x)
    if (std::isfinite(v)) { ++s.n; sum += v; }
  if (s.n == 0) return s;
  s.mean = sum / static_cast<double>(s.n);
  if (s.n < 2) return s;
  double ss = 0;
  for (const double v : x)
    if (std::isfinite(v)) ss += (v - s.mean) * (v - s.mean);
  s.sd = std::sqrt(ss / static_cast<double>(s.n - 1));
  const double half = economics::student_t_quantile(0.975, static_cast<double>(s.n - 1)) * s.sd /
                      std::sqrt(static_cast<double>(s.n));
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

using files::utc_now;

std::string errno_text() { return std::error_code(errno, std::generic_category()).message(); }

using files::write_atomic;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot read {}", path.string()));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::uint64_t fnv1a(std::uint64_t h, std::string_view s) {
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= 0xffu;
  h *= 0x100000001b3ULL;
  return h;
}

const Node& node_at(const Node& root, const std::string& path) {
  bool complete = false;
  const Node* n = config::detail::resolve(&root, path, complete);
  return n != nullptr ? *n : root;
}

/// A scenario named in a calibration file: a file relative to it, else an embedded scenario.
Node load_scenario_node(const std::string& name, const fs::path& folder, const Node& at) {
  fs::path p(name);
  if (p.is_relative()) p = folder / p;
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return config::load_file(p);
  const auto& table = embedded::configs();
  if (table.count(name) != 0 || table.count(name + ".yaml") != 0) return config::load_embedded(name);
  config::fail(at, "scenario", fmt::format("no file {} and no embedded scenario named '{}'", p.string(), name));
}

/// Applies "key=value" from the calibration file at `at`; errors are reported there.
void apply_at(Node& scenario, const std::string& assignment, const Node& at, const std::string& key) {
  try {
    config::apply_override(scenario, assignment);
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    const auto pos = what.find("error: ");
    config::fail(at, key, fmt::format("{}: {}", assignment, pos == std::string::npos ? what : what.substr(pos + 7)));
  }
}

std::string number_text(double x, bool integer) {
  if (integer) return fmt::format("{}", static_cast<long long>(std::llround(x)));
  return format_number(x);
}

std::string unit_key(const std::vector<double>& u) {
  std::string s;
  for (const double x : u) {
    if (!s.empty()) s += ',';
    s += format_number(x);
  }
  return s;
}

json number_or_null(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

/// The journal of evaluations: one line per (point, replicate), appended and flushed as each
/// finishes, so a resumed calibration or sensitivity analysis reruns nothing that finished.
class Journal {
 public:
  /// A mirror of rank 0's journal on an MPI rank > 0: the same cache, built from the journal's
  /// text as rank 0 opened it, and kept equal by recording the same all-gathered results; it
  /// never touches the file.
  struct Mirror {};
  Journal(Mirror, const std::string& text) : path_("journal.jsonl (rank 0)") {
    std::istringstream lines(text);
    std::string line;
    std::size_t number = 0;
    while (std::getline(lines, line)) {
      if (++number == 1) continue;  // the header, checked by rank 0
      load_line(json::parse(line));
    }
  }
  /// The journal's text as it stands (rank 0 sends it to the mirrors).
  [[nodiscard]] std::string text() const { return read_text(path_); }

  Journal(const fs::path& dir, const std::string& kind, const std::string& digest, bool fresh)
      : path_(dir / "journal.jsonl") {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(fmt::format("cannot open {}: {}", path_.string(), errno_text()));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw UsageError(fmt::format("{} is in use by another piracy-abm process", path_.string()));
    }
    const json header = {{"journal", "piracy-abm " + kind}, {"digest", digest}};
    if (fresh) {
      if (::ftruncate(fd_, 0) != 0) throw IoError(fmt::format("cannot write {}", path_.string()));
      append(header.dump());
      return;
    }
    const std::string text = read_text(path_);
    const auto last = text.rfind('\n');
    const std::size_t keep = last == std::string::npos ? 0 : last + 1;
    if (keep < text.size() && ::ftruncate(fd_, static_cast<off_t>(keep)) != 0) {
      throw IoError(fmt::format("cannot truncate {}", path_.string()));
    }
    std::istringstream lines(text.substr(0, keep));
    std::string line;
    std::size_t number = 0;
    while (std::getline(lines, line)) {
      ++number;
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception&) {
        throw IoError(fmt::format("{}:{}: not a journal line; remove it to resume", path_.string(), number));
      }
      if (number == 1) {
        if (j.value("journal", "") != "piracy-abm " + kind) {
          throw IoError(fmt::format("{}:1: not a {} journal", path_.string(), kind));
        }
        if (j.value("digest", "") != digest) {
          throw UsageError(fmt::format("{} was started by a different {} (digest {} there, {} now): start again with "
                                       "--force, or write to another directory with -o",
                                       path_.string(), kind, j.value("digest", "?"), digest));
        }
        continue;
      }
      try {
        load_line(j);
      } catch (const json::exception&) {
        throw IoError(fmt::format("{}:{}: not a journal line; remove it to resume", path_.string(), number));
      }
    }
    if (number == 0) append(header.dump());
  }
  ~Journal() {
    if (fd_ >= 0) ::close(fd_);
  }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::vector<double>* find(const std::string& x, std::size_t rep) const {
    const auto it = cache_.find(x + "#" + std::to_string(rep));
    return it == cache_.end() ? nullptr : &it->second;
  }
  void record(const std::string& x, std::size_t rep, const std::vector<double>& values) {
    if (fd_ >= 0) {  // a mirror only caches
      json v = json::array();
      for (const double d : values) v.push_back(number_or_null(d));
      append(json{{"x", x}, {"rep", rep}, {"values", v}}.dump());
    }
    cache_[x + "#" + std::to_string(rep)] = values;
  }
  [[nodiscard]] std::size_t size() const { return cache_.size(); }

 private:
  void append(const std::string& line) {
    const std::string text = line + "\n";
    std::size_t done = 0;
    while (done < text.size()) {
      const auto n = ::write(fd_, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw IoError(fmt::format("cannot write {}: {}", path_.string(), errno_text()));
      done += static_cast<std::size_t>(n);
    }
    ::fdatasync(fd_);
  }
  void load_line(const json& j) {
    std::vector<double> values;
    for (const auto& x : j.at("values")) values.push_back(x.is_number() ? x.get<double>() : kNaN);
    cache_[j.at("x").get<std::string>() + "#" + std::to_string(j.at("rep").get<int>())] = values;
  }
  fs::path path_;
  int fd_ = -1;
  std::map<std::string, std::vector<double>> cache_;
};

bool is_empty_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::directory_iterator(dir, ec) == fs::directory_iterator();
}

/// Prepares the output directory as `piracy-abm experiment` does; returns whether it resumes.
bool prepare_directory(const fs::path& dir, const RunOptions& options) {
  std::error_code ec;
  const fs::path name = dir.filename().empty() ? dir.parent_path().filename() : dir.filename();
  if (name.empty() || name == "." || name == "..") {
    throw UsageError(fmt::format("-o {}: name a directory of its own", dir.string()));
  }
  const bool exists = fs::exists(dir, ec);
  if (exists && !fs::is_directory(dir, ec)) throw UsageError(fmt::format("{} exists and is not a directory", dir.string()));
  const bool has_journal = fs::exists(dir / "journal.jsonl", ec);
  if (options.resume && has_journal) return true;
  if (exists && !is_empty_dir(dir)) {
    if (options.resume) throw UsageError(fmt::format("{} holds no journal.jsonl: nothing to resume there", dir.string()));
    if (!options.force) {
      throw UsageError(fmt::format("{} is not empty: continue with --resume, replace it with --force, or choose "
                                   "another directory with -o",
                                   dir.string()));
    }
    if (!has_journal) {
      throw UsageError(fmt::format("{} is not a calibration or sensitivity directory (no journal.jsonl): --force "
                                   "replaces only those; choose another directory with -o",
                                   dir.string()));
    }
    fs::remove_all(dir, ec);
    if (ec) throw IoError(fmt::format("cannot remove {}: {}", dir.string(), ec.message()));
  }
  fs::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The model as a function of the unit cube

Model::Model(Node base, std::vector<FreeParameter> parameters, std::vector<Statistic> statistics,
             std::vector<std::uint64_t> seeds, int threads_per_run)
    : base_(std::move(base)),
      parameters_(std::move(parameters)),
      statistics_(std::move(statistics)),
      seeds_(std::move(seeds)),
      threads_per_run_(threads_per_run) {
  for (const auto& s : statistics_)
    if (!s.series.empty() && std::find(series_.begin(), series_.end(), s.series) == series_.end())
      series_.push_back(s.series);
}

std::vector<double> Model::values(const std::vector<double>& unit) const {
  std::vector<double> out;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const auto& p = parameters_[i];
    const double t = std::clamp(unit.at(i), 0.0, 1.0);
    double x = p.log ? std::exp(std::log(p.min) + t * (std::log(p.max) - std::log(p.min))) : p.min + t * (p.max - p.min);
    x = std::clamp(x, p.min, p.max);
    if (p.integer) x = std::round(x);
    out.push_back(x);
  }
  return out;
}

std::vector<std::string> Model::overrides(const std::vector<double>& unit) const {
  const auto v = values(unit);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    out.push_back(parameters_[i].key + "=" + number_text(v[i], parameters_[i].integer));
  return out;
}

ScenarioConfig Model::scenario(const std::vector<double>& unit) const {
  Node n = base_;
  for (const auto& o : overrides(unit)) config::apply_override(n, o);
  return config::parse<ScenarioConfig>(n);
}

std::string Model::scenario_yaml(const std::vector<double>& unit) const { return to_yaml(scenario(unit)); }

namespace {
/// The kind of an exception, so that a failure on one MPI rank is rethrown as the same type on
/// every rank (Model::Batch::rethrow_failure).
std::string kind_of(std::exception_ptr e, std::string& message) {
  try {
    std::rethrow_exception(e);
  } catch (const Interrupted& x) {
    message = x.what();
    return "interrupted";
  } catch (const ConfigError& x) {
    message = x.what();
    return "config";
  } catch (const UsageError& x) {
    message = x.what();
    return "usage";
  } catch (const NumericalError& x) {
    message = x.what();
    return "numerical";
  } catch (const ModelError& x) {
    message = x.what();
    return "model";
  } catch (const IoError& x) {
    message = x.what();
    return "io";
  } catch (const std::exception& x) {
    message = x.what();
    return "other";
  }
}

[[noreturn]] void throw_kind(const std::string& kind, const std::string& message) {
  if (kind == "interrupted") throw Interrupted(message);
  if (kind == "config") throw ConfigError(message);
  if (kind == "usage") throw UsageError(message);
  if (kind == "numerical") throw NumericalError(message);
  if (kind == "io") throw IoError(message);
  throw ModelError(message);
}
}  // namespace

void Model::Batch::rethrow_failure() const {
  if (!error_kind.empty()) throw_kind(error_kind, error);
}

Model::Batch Model::run_batch(const std::vector<std::vector<double>>& points, std::size_t replicates, int jobs,
                              const mpi::Session* session) const {
  if (replicates > seeds_.size()) throw ModelError("calibration: more replicates than seeds");
  const std::size_t ranks = session != nullptr ? static_cast<std::size_t>(session->size()) : 1;
  const std::size_t rank = session != nullptr ? static_cast<std::size_t>(session->rank()) : 0;
  // One single-group experiment plan per point: execute_run does the run, its paired
  // counterfactual and the metrics exactly as `piracy-abm experiment` does.
  std::vector<experiment::Plan> plans(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    auto& plan = plans[i];
    plan.spec.series = !series_.empty();
    plan.spec.series_variables = series_;
    plan.spec.threads_per_run = threads_per_run_;
    experiment::RunGroup g;
    g.name = std::to_string(i);
    g.scenario = scenario(points[i]);
    plan.groups.push_back(std::move(g));
    plan.seeds.assign(seeds_.begin(), seeds_.begin() + static_cast<std::ptrdiff_t>(replicates));
  }
  Batch batch;
  batch.values.assign(points.size(), std::vector<std::vector<double>>(replicates));
  batch.done.assign(points.size(), std::vector<char>(replicates, 0));
  // This rank's share: tasks t = rank, rank + ranks, ... (round-robin, as `experiment` shares runs).
  std::vector<std::size_t> mine;
  for (std::size_t t = rank; t < points.size() * replicates; t += ranks) mine.push_back(t);
  std::vector<std::exception_ptr> failures(mine.size());
  const auto& names = experiment::metric_names();
  tbb::task_arena arena(std::max(1, jobs));
  arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, mine.size(), 1),
        [&](const tbb::blocked_range<std::size_t>& r) {
          for (std::size_t i = r.begin(); i != r.end(); ++i) {
            const std::size_t t = mine[i], p = t / replicates, rep = t % replicates;
            try {
              const auto rec = experiment::execute_run(plans[p], static_cast<std::int64_t>(rep), threads_per_run_);
              std::vector<double> stats;
              for (const auto& s : statistics_) {
                if (!s.metric.empty()) {
                  const auto k = static_cast<std::size_t>(std::find(names.begin(), names.end(), s.metric) - names.begin());
                  stats.push_back(k < rec.metrics.size() ? rec.metrics[k] : kNaN);
                  continue;
                }
                const auto vi = static_cast<std::size_t>(
                    std::find(rec.variables.begin(), rec.variables.end(), s.series) - rec.variables.begin());
                const auto at = [&](const std::string& month) {
                  const auto pi = static_cast<std::size_t>(
                      std::find(rec.periods.begin(), rec.periods.end(), month) - rec.periods.begin());
                  return vi < rec.series.size() && pi < rec.periods.size() ? rec.series[vi][pi] : kNaN;
                };
                double x = at(s.month);
                if (!s.ratio_to.empty()) {
                  const double d = at(s.ratio_to);
                  x = d != 0 ? x / d : kNaN;
                }
                stats.push_back(x);
              }
              // inf as NaN: the journal and the MPI messages carry a non-finite value as null, so
              // a fresh, a resumed and a distributed calibration must all see the same NaN.
              for (auto& x : stats)
                if (!std::isfinite(x)) x = kNaN;
              batch.values[p][rep] = std::move(stats);
              batch.done[p][rep] = 1;
            } catch (...) {
              // Kept, not propagated: the other runs finish (or stop at their next tick when
              // interrupted) and what finished is journaled before the failure is rethrown.
              failures[i] = std::current_exception();
            }
          }
        },
        tbb::simple_partitioner());
  });
  // The first failure in task order: the same on every rank, whichever rank met it.
  std::size_t failed_task = std::numeric_limits<std::size_t>::max();
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (failures[i]) {
      failed_task = mine[i];
      batch.error_kind = kind_of(failures[i], batch.error);
      break;
    }
  }
  if (ranks > 1) {
    // Share every rank's results. Doubles travel as JSON numbers, which nlohmann::json writes in
    // the shortest form that reads back to the same double (round-trip exact); NaN as null.
    json mine_json = {{"results", json::array()}};
    for (const std::size_t t : mine) {
      const std::size_t p = t / replicates, rep = t % replicates;
      if (batch.done[p][rep] == 0) continue;
      json v = json::array();
      for (const double d : batch.values[p][rep]) v.push_back(number_or_null(d));
      mine_json["results"].push_back(json{{"t", t}, {"v", v}});
    }
    if (!batch.error_kind.empty())
      mine_json["failure"] = {{"t", failed_task}, {"kind", batch.error_kind}, {"message", batch.error}};
    for (const auto& text : session->all_gather(mine_json.dump())) {
      const json j = json::parse(text);
      for (const auto& r : j.at("results")) {
        const auto t = r.at("t").get<std::size_t>();
        std::vector<double> values;
        for (const auto& x : r.at("v")) values.push_back(x.is_number() ? x.get<double>() : kNaN);
        batch.values[t / replicates][t % replicates] = std::move(values);
        batch.done[t / replicates][t % replicates] = 1;
      }
      if (j.contains("failure") && j["failure"].at("t").get<std::size_t>() < failed_task) {
        failed_task = j["failure"].at("t").get<std::size_t>();
        batch.error_kind = j["failure"].at("kind").get<std::string>();
        batch.error = j["failure"].at("message").get<std::string>();
      }
    }
  }
  return batch;
}

std::vector<std::vector<std::vector<double>>> Model::evaluate(const std::vector<std::vector<double>>& points,
                                                              std::size_t replicates, int jobs) const {
  auto batch = run_batch(points, replicates, jobs, nullptr);
  batch.rethrow_failure();
  return std::move(batch.values);
}

// ---------------------------------------------------------------------------------------------
// Loading

namespace {

struct Loaded {
  Node root;                 //!< the calibration / sensitivity file (after --set)
  Node base;                 //!< the base scenario with `set`
  std::string base_yaml;     //!< resolved base scenario
};

template <class Spec>
Loaded load_common(const fs::path& file, const std::vector<std::string>& overrides, Spec& spec) {
  Loaded l;
  l.root = config::load_file(file);
  for (const auto& o : overrides) config::apply_override(l.root, o);
  spec = config::parse<Spec>(l.root);
  const fs::path folder = file.parent_path();
  l.base = load_scenario_node(spec.scenario, folder, node_at(l.root, "scenario"));
  for (std::size_t i = 0; i < spec.set.size(); ++i) {
    const std::string key = fmt::format("set[{}]", i);
    if (spec.set[i].substr(0, spec.set[i].find('=')) == "seed") {
      config::fail(node_at(l.root, key), key, "replicate seeds come from the file's `seed` (common random numbers)");
    }
    apply_at(l.base, spec.set[i], node_at(l.root, key), key);
  }
  const auto base_cfg = config::parse<ScenarioConfig>(l.base);
  l.base_yaml = to_yaml(base_cfg);
  // Every parameter at both bounds must give a valid scenario: a wrong key or a bound outside a
  // key's range is reported now, at the parameter, not after an hour of optimisation.
  for (std::size_t i = 0; i < spec.parameters.size(); ++i) {
    const auto& p = spec.parameters[i];
    const std::string where = fmt::format("parameters[{}]", i);
    for (const double x : {p.min, p.max}) {
      Node n = l.base;
      const std::string assignment = p.key + "=" + number_text(x, p.integer);
      apply_at(n, assignment, node_at(l.root, where + ".key"), where + ".key");
      try {
        (void)config::parse<ScenarioConfig>(n);
      } catch (const ConfigError& e) {
        const std::string what = e.what();
        const auto pos = what.find("error: ");
        config::fail(node_at(l.root, where + ".key"), where + ".key",
                     fmt::format("{} gives an invalid scenario: {}", assignment,
                                 pos == std::string::npos ? what : what.substr(pos + 7)));
      }
    }
  }
  return l;
}

template <class Stat>
std::vector<Statistic> statistics_of(const std::vector<Stat>& list, const Loaded& l, const std::string& field) {
  std::vector<Statistic> out;
  bool any_series = false;
  for (const auto& t : list) {
    out.push_back({t.name, t.metric, t.series, t.month, t.ratio_to});
    any_series = any_series || !t.series.empty();
  }
  if (any_series) {
    const auto cfg = config::parse<ScenarioConfig>(l.base);
    const Simulation probe(cfg);
    const std::string first = cfg.calendar.start.year_month(), last = cfg.calendar.end.year_month();
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto& t = list[i];
      if (t.series.empty()) continue;
      const std::string key = fmt::format("{}[{}]", field, i);
      if (!probe.series().has_column(t.series)) {
        std::string names;
        for (const auto& n : probe.series().names()) names += (names.empty() ? "" : ", ") + n;
        config::fail(node_at(l.root, key + ".series"), key + ".series",
                     fmt::format("no series named '{}'; series: {}", t.series, names));
      }
      for (const auto& [m, k] : {std::pair{t.month, "month"}, std::pair{t.ratio_to, "ratio_to"}}) {
        if (!m.empty() && (m < first || m > last)) {
          config::fail(node_at(l.root, key + "." + k), key + "." + k,
                       fmt::format("{} is outside the scenario's recorded period {} to {}", m, first, last));
        }
      }
    }
  }
  return out;
}

/// Digest of what determines the VALUE of a journaled replication: the base scenario, the free
/// parameters and their scales (a unit point's values), the statistics and the seed. The
/// optimiser, its budget, the observed values and the weights are left out on purpose: a
/// calibration resumed with a larger budget (--set optimizer.global_evals=60) or other targets'
/// uncertainties reuses every replication already run.
std::string digest_of(const std::string& kind, const std::vector<FreeParameter>& parameters,
                      const std::vector<Statistic>& statistics, std::uint64_t seed, const std::string& base_yaml) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  h = fnv1a(h, kind);
  h = fnv1a(h, base_yaml);
  for (const auto& p : parameters) {
    h = fnv1a(h, p.key);
    h = fnv1a(h, fmt::format("{} {} {} {}", format_number(p.min), format_number(p.max), p.log, p.integer));
  }
  for (const auto& st : statistics) {
    h = fnv1a(h, st.metric);
    h = fnv1a(h, st.series);
    h = fnv1a(h, st.month);
    h = fnv1a(h, st.ratio_to);
  }
  h = fnv1a(h, std::to_string(seed));
  h = fnv1a(h, "metrics v2");
  for (const auto& m : experiment::metric_names()) h = fnv1a(h, m);
  return fmt::format("{:016x}", h);
}

int default_jobs(const RunOptions& o, std::int64_t threads_per_run) {
  return o.jobs > 0 ? o.jobs : std::max(1, tbb::info::default_concurrency() / static_cast<int>(threads_per_run));
}

/// Evaluates points with the journal as a cache: only (point, replicate) pairs not journaled
/// are run, in one parallel batch (shared across MPI ranks); each result is journaled, also when
/// another run of the batch failed or was interrupted -- then the failure is rethrown after.
/// Returns [point][rep][stat].
std::vector<std::vector<std::vector<double>>> evaluate_cached(const Model& model, Journal& journal,
                                                              const std::vector<std::vector<double>>& points,
                                                              std::size_t replicates, int jobs,
                                                              std::int64_t& executed, const mpi::Session& session) {
  std::vector<std::vector<std::vector<double>>> out(points.size(), std::vector<std::vector<double>>(replicates));
  std::vector<std::vector<double>> todo;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const std::string key = unit_key(points[i]);
    bool complete = true;
    for (std::size_t r = 0; r < replicates; ++r) {
      if (const auto* v = journal.find(key, r)) {
        out[i][r] = *v;
      } else {
        complete = false;
      }
    }
    if (!complete && std::find(todo.begin(), todo.end(), points[i]) == todo.end()) todo.push_back(points[i]);
  }
  if (todo.empty()) return out;
  // Runs all replicates of the points to do (journaled replicates rerun identically: CRN).
  const auto batch = model.run_batch(todo, replicates, jobs, &session);
  for (std::size_t j = 0; j < todo.size(); ++j) {
    const std::string key = unit_key(todo[j]);
    for (std::size_t r = 0; r < replicates; ++r) {
      if (batch.done[j][r] != 0 && journal.find(key, r) == nullptr) {
        journal.record(key, r, batch.values[j][r]);
        ++executed;
      }
    }
  }
  batch.rethrow_failure();
  for (std::size_t i = 0; i < points.size(); ++i) {
    const std::string key = unit_key(points[i]);
    for (std::size_t r = 0; r < replicates; ++r) out[i][r] = *journal.find(key, r);
  }
  return out;
}

/// Opens the output directory and the journal: rank 0 prepares the directory, opens (or resumes)
/// the journal and runs `root_setup` (files written before the first run); then it sends the
/// outcome and the journal's text to every other rank, which mirrors it. A refusal on rank 0
/// (an existing directory, a foreign journal, ...) is rethrown on every rank, so that no rank
/// waits for a batch that will never come. Ranks > 0 return nullptr when rank 0 refused: they
/// stop quietly with rank 0's exit code in `exit_code` (rank 0 reports).
std::unique_ptr<Journal> open_journal(const fs::path& dir, const RunOptions& options, const std::string& kind,
                                      const std::string& digest, const std::function<void()>& root_setup,
                                      const mpi::Session& session, int& exit_code) {
  std::unique_ptr<Journal> journal;
  std::string setup;
  if (session.rank() == 0) {
    try {
      const bool resumed = prepare_directory(dir, options);
      journal = std::make_unique<Journal>(dir, kind, digest, !resumed);
      root_setup();
      if (session.size() > 1) setup = json{{"status", 0}, {"journal", journal->text()}}.dump();
    } catch (...) {
      if (session.size() > 1) {
        std::string message;
        const std::string k = kind_of(std::current_exception(), message);
        int code = 1;
        if (k == "config" || k == "usage") code = 2;
        if (k == "interrupted") code = 130;
        setup = json{{"status", code}}.dump();
        session.broadcast(setup);
      }
      throw;
    }
    session.broadcast(setup);
    return journal;
  }
  session.broadcast(setup);
  const json j = json::parse(setup);
  exit_code = j.at("status").get<int>();
  if (exit_code != 0) return nullptr;
  return std::make_unique<Journal>(Journal::Mirror{}, j.at("journal").get<std::string>());
}

std::vector<double> means_of(const std::vector<std::vector<double>>& reps, std::size_t stats) {
  std::vector<double> m(stats, kNaN);
  for (std::size_t k = 0; k < stats; ++k) {
    std::vector<double> x;
    for (const auto& r : reps) x.push_back(r[k]);
    m[k] = summarize_values(x).mean;
  }
  return m;
}

std::string csv_line(const std::vector<std::string>& fields) {
  fmt::memory_buffer b;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) b.push_back(',');
    append_csv_field(b, fields[i]);
  }
  b.push_back('\n');
  return fmt::to_string(b);
}

std::string num(double x) { return format_number(x); }

/// Short human form for the report.
std::string g3(double x) {
  if (!std::isfinite(x)) return "n/a";
  return fmt::format("{:.4g}", x);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Checks without runs (fuzz targets)

void check_calibration_file(const fs::path& file, const std::vector<std::string>& overrides) {
  CalibrationSpec spec;
  const Loaded loaded = load_common(file, overrides, spec);
  (void)statistics_of(spec.targets, loaded, "targets");
}

void check_sensitivity_file(const fs::path& file, const std::vector<std::string>& overrides) {
  SensitivitySpec spec;
  const Loaded loaded = load_common(file, overrides, spec);
  (void)statistics_of(spec.outputs, loaded, "outputs");
}

// ---------------------------------------------------------------------------------------------
// Calibration

CalibrationResult run_calibration(const fs::path& file, const std::vector<std::string>& overrides,
                                  const RunOptions& options, const mpi::Session& session) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string started = utc_now();
  CalibrationSpec spec;
  const Loaded loaded = load_common(file, overrides, spec);
  const auto stats = statistics_of(spec.targets, loaded, "targets");
  const bool root = session.rank() == 0;
  const std::size_t p = spec.parameters.size(), m = spec.targets.size();
  const auto R = static_cast<std::size_t>(spec.replicates);
  const std::size_t RF = spec.final_replicates > 0 ? static_cast<std::size_t>(spec.final_replicates) : R;
  const Model model(loaded.base, spec.parameters, stats, design::replicate_seeds(spec.seed, std::max(R, RF)),
                    static_cast<int>(spec.threads_per_run));
  const int jobs = default_jobs(options, spec.threads_per_run);

  CalibrationResult result;
  result.dir = options.out_dir.empty() ? fs::path("piracy-output") / spec.name : options.out_dir;
  const std::string spec_yaml = config::emit(spec);
  const std::string digest = digest_of("calibration", spec.parameters, stats, spec.seed, loaded.base_yaml);
  const auto journal_ptr = open_journal(
      result.dir, options, "calibration", digest,
      [&] {  // rewritten on resume: a resumed calibration may have a larger budget (see digest_of)
        write_atomic(result.dir / "calibration.yaml",
                     fmt::format("# The resolved calibration {} (from {}), written by piracy-abm {}; scenario.yaml is "
                                 "its base scenario\n",
                                 spec.name, file.string(), kVersion) +
                         spec_yaml);
        write_atomic(result.dir / "scenario.yaml", loaded.base_yaml);
      },
      session, result.exit_code);
  if (!journal_ptr) return result;  // rank > 0: rank 0 refused the setup and reports why
  Journal& journal = *journal_ptr;
  result.resumed = static_cast<std::int64_t>(journal.size());
  std::int64_t executed = 0;

  // Weights.
  std::vector<double> w(m);
  for (std::size_t k = 0; k < m; ++k) w[k] = 1.0 / (spec.targets[k].sigma * spec.targets[k].sigma);
  const std::vector<double> centre(p, 0.5);
  if (spec.weighting == "bootstrap") {
    // Bootstrap variance of the simulated mean over the R replications at the centre of the box:
    // noisy moments are down-weighted (W = diag(1 / (sigma^2 + v))).
    const auto reps = evaluate_cached(model, journal, {centre}, R, jobs, executed, session)[0];
    for (std::size_t k = 0; k < m; ++k) {
      std::vector<double> boot;
      for (std::uint64_t b = 0; b < 200; ++b) {
        Stream s(spec.seed, Purpose::Experiment, sensitivity::kBootstrapEntity, static_cast<std::int64_t>(b));
        double sum = 0;
        for (std::size_t r = 0; r < R; ++r) sum += reps[s.next_u32() % R][k];
        boot.push_back(sum / static_cast<double>(R));
      }
      const auto sm = summarize_values(boot);
      const double v = std::isfinite(sm.sd) ? sm.sd * sm.sd : 0.0;
      w[k] = 1.0 / (spec.targets[k].sigma * spec.targets[k].sigma + v);
    }
  }
  const auto objective_of = [&](const std::vector<double>& means) {
    double j = 0;
    for (std::size_t k = 0; k < m; ++k) {
      const double g = means[k] - spec.targets[k].observed;
      j += std::isfinite(g) ? w[k] * g * g : kMissingPenalty;
    }
    return j;
  };

  struct TraceRow {
    std::string phase;
    std::vector<double> unit;
    std::vector<double> means;
    double objective;
  };
  std::vector<TraceRow> trace;
  std::exception_ptr failure;
  std::size_t best = 0;
  const bool progress = options.progress && root;
  const auto record = [&](const std::string& phase, const std::vector<double>& u,
                          const std::vector<std::vector<double>>& reps) {
    TraceRow row{phase, u, means_of(reps, m), 0};
    row.objective = objective_of(row.means);
    trace.push_back(row);
    if (trace[best].objective > row.objective || trace.size() == 1) best = trace.size() - 1;
    if (progress) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cerr << fmt::format("calibrate {}: eval {} [{}] J = {} (best {}), {:.0f} s\n", spec.name, trace.size(),
                               phase, g3(row.objective), g3(trace[best].objective), el);
    }
    return row.objective;
  };

  struct Ctx {
    std::function<double(const std::vector<double>&)> f;
  };
  std::string phase;
  // NLopt's CRS2 does not always stop at maxeval (it can overshoot while it refills its
  // population), so the budget of a phase is enforced here: the evaluation that reaches it
  // stops the optimiser (force_stop), and the phase never exceeds its stated budget.
  nlopt::opt* current = nullptr;
  std::int64_t phase_evals = 0, phase_budget = 0;
  Ctx ctx{[&](const std::vector<double>& u) {
    if (failure) return std::numeric_limits<double>::max();
    try {
      const auto reps = evaluate_cached(model, journal, {u}, R, jobs, executed, session)[0];
      const double j = record(phase, u, reps);
      if (++phase_evals >= phase_budget && current != nullptr) current->force_stop();
      return j;
    } catch (...) {
      failure = std::current_exception();
      return std::numeric_limits<double>::max();
    }
  }};
  const auto nlopt_f = [](unsigned n, const double* x, double*, void* data) -> double {
    auto* c = static_cast<Ctx*>(data);
    return c->f(std::vector<double>(x, x + n));
  };
  const auto optimise = [&](const std::string& algorithm, std::int64_t evals, std::vector<double>& x) {
    if (algorithm == "none" || evals <= 0) return;
    if (algorithm == "SOBOL") {
      // A batch global phase: NLopt's methods propose one candidate at a time, so only its
      // replications run in parallel. Here the candidates are the first `evals` points of the
      // Sobol' sequence after the origin (point 1 is the centre of the box), evaluated in ONE
      // batch -- every candidate's replications at once, shared by the jobs and the MPI ranks
      // -- then the local phase starts from the best of them.
      phase = "global";
      auto points = design::sobol(static_cast<std::size_t>(evals) + 1, p);
      points.erase(points.begin());
      const auto reps = evaluate_cached(model, journal, points, R, jobs, executed, session);
      const std::size_t before = trace.size();
      for (std::size_t i = 0; i < points.size(); ++i) (void)record(phase, points[i], reps[i]);
      std::size_t b = before;
      for (std::size_t i = before; i < trace.size(); ++i)
        if (trace[i].objective < trace[b].objective) b = i;
      x = trace[b].unit;
      return;
    }
    phase = algorithm.rfind("GN_", 0) == 0 ? "global" : "local";
    nlopt::opt opt(static_cast<nlopt::algorithm>(nlopt_algorithm_from_string(algorithm.c_str())), static_cast<unsigned>(p));
    opt.set_lower_bounds(std::vector<double>(p, 0.0));
    opt.set_upper_bounds(std::vector<double>(p, 1.0));
    opt.set_min_objective(nlopt_f, &ctx);
    opt.set_maxeval(static_cast<int>(evals));
    if (phase == "global" && spec.optimizer.population > 0)
      opt.set_population(static_cast<unsigned>(spec.optimizer.population));
    if (phase == "local") {
      opt.set_xtol_abs(spec.optimizer.xtol);
      opt.set_initial_step(std::vector<double>(p, 0.1));
    }
    double fmin = 0;
    current = &opt;
    phase_evals = 0;
    phase_budget = evals;
    nlopt::srand(spec.optimizer.seed);  // the same candidates in a resumed run
    const std::size_t before = trace.size();
    try {
      (void)opt.optimize(x, fmin);
    } catch (const std::exception&) {
      // NLopt's roundoff/forced stops and its generic failure: the trace holds what was done.
    }
    current = nullptr;
    if (failure) std::rethrow_exception(failure);
    if (trace.size() > before) {  // continue from the best point of this phase
      std::size_t b = before;
      for (std::size_t i = before; i < trace.size(); ++i)
        if (trace[i].objective < trace[b].objective) b = i;
      x = trace[b].unit;
    }
  };
  std::vector<double> x = centre;
  optimise(spec.optimizer.global, spec.optimizer.global_evals, x);
  if (spec.optimizer.global != "none" && !trace.empty()) x = trace[best].unit;
  optimise(spec.optimizer.local, spec.optimizer.local_evals, x);
  if (trace.empty()) throw ModelError("calibration: the optimiser made no evaluation");
  const std::vector<double> uhat = trace[best].unit;
  const std::vector<double> theta = model.values(uhat);

  // Jacobian by central differences (CRN) and the final replications, in one parallel batch.
  std::vector<std::vector<double>> jac_points;
  std::vector<double> dstep(p);
  for (std::size_t i = 0; i < p; ++i) {
    auto up = uhat, dn = uhat;
    up[i] = std::min(1.0, uhat[i] + spec.jacobian_step);
    dn[i] = std::max(0.0, uhat[i] - spec.jacobian_step);
    dstep[i] = up[i] - dn[i];
    jac_points.push_back(up);
    jac_points.push_back(dn);
  }
  const auto jac = evaluate_cached(model, journal, jac_points, R, jobs, executed, session);
  for (std::size_t i = 0; i < jac_points.size(); ++i) {
    TraceRow row{"jacobian", jac_points[i], means_of(jac[i], m), 0};
    row.objective = objective_of(row.means);
    trace.push_back(row);
  }
  const auto final_reps = evaluate_cached(model, journal, {uhat}, RF, jobs, executed, session)[0];

  Eigen::MatrixXd D(m, p);
  for (std::size_t i = 0; i < p; ++i) {
    const auto& up = trace[trace.size() - 2 * p + 2 * i].means;
    const auto& dn = trace[trace.size() - 2 * p + 2 * i + 1].means;
    // d theta / d u of the parameter's scale: linear (max - min), log theta ln(max / min).
    const auto& par = spec.parameters[i];
    const double dtheta_du = par.log ? theta[i] * std::log(par.max / par.min) : par.max - par.min;
    for (std::size_t k = 0; k < m; ++k)
      D(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(i)) = (up[k] - dn[k]) / dstep[i] / dtheta_du;
  }
  Eigen::MatrixXd W = Eigen::MatrixXd::Zero(m, m), Omega = Eigen::MatrixXd::Zero(m, m);
  for (std::size_t k = 0; k < m; ++k) {
    W(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(k)) = w[k];
    Omega(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(k)) = spec.targets[k].sigma * spec.targets[k].sigma;
  }
  std::vector<double> se(p, kNaN);
  std::string se_note;
  if (D.allFinite()) {
    const Eigen::MatrixXd A = D.transpose() * W * D;
    Eigen::FullPivLU<Eigen::MatrixXd> lu(A);
    if (lu.isInvertible() && lu.rank() == static_cast<Eigen::Index>(p)) {
      const Eigen::MatrixXd Ai = lu.inverse();
      const Eigen::MatrixXd V =
          (1.0 + 1.0 / static_cast<double>(R)) * Ai * D.transpose() * W * Omega * W * D * Ai;
      for (std::size_t i = 0; i < p; ++i) {
        const double v = V(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(i));
        se[i] = v >= 0 ? std::sqrt(v) : kNaN;
      }
    } else {
      se_note = "D'WD is singular (a parameter does not move any target at the estimate): standard errors are n/a";
    }
  } else {
    se_note = "the Jacobian has missing values: standard errors are n/a";
  }

  // Fit at the estimate with RF replications: table, J, coverage.
  const double z = normal_quantile(0.5 * (1.0 + spec.coverage_level));
  std::vector<Summary> fit(m);
  double jstat = 0;
  for (std::size_t k = 0; k < m; ++k) {
    std::vector<double> xk;
    for (const auto& r : final_reps) xk.push_back(r[k]);
    fit[k] = summarize_values(xk);
    const double g = (fit[k].mean - spec.targets[k].observed) / spec.targets[k].sigma;
    jstat += std::isfinite(g) ? g * g : kMissingPenalty;
  }
  jstat /= 1.0 + 1.0 / static_cast<double>(RF);
  std::size_t covered = 0;
  for (const auto& r : final_reps) {
    bool all = true;
    for (std::size_t k = 0; k < m; ++k)
      all = all && std::isfinite(r[k]) && std::fabs(r[k] - spec.targets[k].observed) <= z * spec.targets[k].sigma;
    covered += all ? 1 : 0;
  }
  const double df = static_cast<double>(m) - static_cast<double>(p);
  result.estimate = theta;
  result.se = se;
  result.objective = trace[best].objective;
  result.j_statistic = jstat;
  result.j_p_value = df > 0 ? chi_square_sf(jstat, df) : kNaN;
  result.coverage = static_cast<double>(covered) / static_cast<double>(final_reps.size());

  // Tables.
  std::string fit_csv = csv_line({"target", "statistic", "observed", "sigma", "sim_mean", "sim_sd", "sim_ci_low",
                                  "sim_ci_high", "z", "source"});
  for (std::size_t k = 0; k < m; ++k) {
    const auto& t = spec.targets[k];
    const std::string statistic =
        !t.metric.empty() ? t.metric
                          : (t.ratio_to.empty() ? fmt::format("{}[{}]", t.series, t.month)
                                                : fmt::format("{}[{}]/{}[{}]", t.series, t.month, t.series, t.ratio_to));
    fit_csv += csv_line({t.name, statistic, num(t.observed), num(t.sigma), num(fit[k].mean), num(fit[k].sd),
                         num(fit[k].ci_low), num(fit[k].ci_high), num((fit[k].mean - t.observed) / t.sigma), t.source});
  }
  std::string par_csv = csv_line({"name", "key", "estimate", "se", "lower", "upper", "log", "unit_estimate"});
  for (std::size_t i = 0; i < p; ++i) {
    const auto& q = spec.parameters[i];
    par_csv += csv_line({q.name, q.key, num(theta[i]), num(se[i]), num(q.min), num(q.max), q.log ? "true" : "false",
                         num(uhat[i])});
  }
  std::vector<std::string> header = {"eval", "phase"};
  for (const auto& q : spec.parameters) header.push_back(q.name);
  for (const auto& t : spec.targets) header.push_back(t.name);
  header.emplace_back("objective");
  std::string trace_csv = csv_line(header);
  for (std::size_t e = 0; e < trace.size(); ++e) {
    std::vector<std::string> row = {std::to_string(e + 1), trace[e].phase};
    for (const double v : model.values(trace[e].unit)) row.push_back(num(v));
    for (const double v : trace[e].means) row.push_back(num(v));
    row.push_back(num(trace[e].objective));
    trace_csv += csv_line(row);
  }

  // The calibrated scenario: the complete resolved scenario at the estimate (lists such as
  // enforcement.operations cannot be overridden through `extends`, which replaces lists), with
  // a header naming every calibrated value and where it came from.
  const std::string date = started.substr(0, 10);
  std::string scen = fmt::format(
      "# Calibrated scenario written by `piracy-abm calibrate {}` (piracy-abm {}, {}) on {}.\n"
      "# Base scenario: {} (calibration `{}`, {} replications per candidate, {} evaluations).\n"
      "# Calibrated values (estimate +- standard error; method of simulated moments, see report.txt):\n",
      file.string(), kVersion, kGitCommit, date, spec.scenario, spec.name, R, trace.size());
  for (std::size_t i = 0; i < p; ++i) {
    scen += fmt::format("#   {} = {}  (se {}; bounds [{}, {}]; calibrated by {} on {})\n", spec.parameters[i].key,
                        number_text(theta[i], spec.parameters[i].integer), g3(se[i]), num(spec.parameters[i].min),
                        num(spec.parameters[i].max), file.filename().string(), date);
  }
  scen += "# Targets:";
  for (const auto& t : spec.targets) scen += fmt::format(" {} ({})", t.name, t.source.empty() ? "no source" : t.source);
  scen += "\n";
  scen += model.scenario_yaml(uhat);

  result.evaluations = static_cast<std::int64_t>(trace.size());
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double runs_per_eval = static_cast<double>(R);
  result.evals_per_second = executed > 0 ? static_cast<double>(executed) / runs_per_eval / result.wall_seconds : 0.0;

  // Report.
  std::string rep = fmt::format("Calibration {} (method of simulated moments)\n", spec.name);
  rep += fmt::format("file: {}; base scenario: {}\n", file.string(), spec.scenario);
  rep += fmt::format("budget: {} {} evals then {} {} evals; {} replications per candidate (CRN, seed {}); {} "
                     "replications at the estimate; weighting: {}\n",
                     spec.optimizer.global, spec.optimizer.global_evals, spec.optimizer.local,
                     spec.optimizer.local_evals, R, spec.seed, RF, spec.weighting);
  rep += fmt::format("evaluations: {} in the trace ({} journaled replications, {} run in this session)\n\n",
                     trace.size(), journal.size(), executed);
  rep += "Parameters (estimate, standard error from the sandwich formula with the (1 + 1/R) simulation correction):\n";
  for (std::size_t i = 0; i < p; ++i)
    rep += fmt::format("  {:<24} {:<44} {:>12} se {:>10}  [{}, {}]{}\n", spec.parameters[i].name,
                       spec.parameters[i].key, g3(theta[i]), g3(se[i]), g3(spec.parameters[i].min),
                       g3(spec.parameters[i].max), spec.parameters[i].log ? " log" : "");
  if (!se_note.empty()) rep += "  note: " + se_note + "\n";
  rep += fmt::format("\nFit at the estimate ({} replications; CI: 95% Student-t of the simulated mean):\n", RF);
  rep += fmt::format("  {:<10} {:>12} {:>10} {:>12} {:>25} {:>8}\n", "target", "observed", "sigma", "sim_mean",
                     "95% CI", "z");
  for (std::size_t k = 0; k < m; ++k) {
    const auto& t = spec.targets[k];
    rep += fmt::format("  {:<10} {:>12} {:>10} {:>12} {:>25} {:>8}\n", t.name, g3(t.observed), g3(t.sigma),
                       g3(fit[k].mean), fmt::format("[{}, {}]", g3(fit[k].ci_low), g3(fit[k].ci_high)),
                       g3((fit[k].mean - t.observed) / t.sigma));
  }
  rep += fmt::format("\nObjective J(theta_hat) over the optimisation replications: {}\n", g3(result.objective));
  rep += fmt::format("J statistic (Omega^-1 weights, / (1 + 1/{})): {} with {} moments and {} parameters", RF,
                     g3(jstat), m, p);
  rep += df > 0 ? fmt::format(": chi-square({}) p = {}\n", df, g3(result.j_p_value))
                : " (exactly or under-identified: no test)\n";
  rep += fmt::format("Moment coverage ratio (Franke & Westerhoff 2012; observed +- {:.3g} sigma): {} of {} "
                     "replications = {}\n",
                     z, covered, final_reps.size(), g3(result.coverage));
  const bool poor = (df > 0 && result.j_p_value < 0.05) || result.coverage < 0.5;
  rep += poor ? "VERDICT: POOR FIT -- the model does not reproduce the targets at any candidate tried "
                "(large J and/or low coverage); see fit.csv for the targets that miss.\n"
              : "verdict: acceptable fit (J not rejected at 5% and/or coverage >= 0.5).\n";
  rep += fmt::format("\nwall time {:.1f} s; {:.3g} evaluations/s ({} replications each, {} jobs{})\n",
                     result.wall_seconds, result.evals_per_second, R, jobs,
                     session.size() > 1 ? fmt::format(" on each of {} MPI ranks", session.size()) : std::string{});
  result.report = rep;
  if (!root) return result;  // rank 0 writes

  write_atomic(result.dir / "fit.csv", fit_csv);
  write_atomic(result.dir / "parameters.csv", par_csv);
  write_atomic(result.dir / "trace.csv", trace_csv);
  write_atomic(result.dir / "calibrated_scenario.yaml", scen);
  write_atomic(result.dir / "report.txt", rep);
  const json manifest = {{"program", "piracy-abm"},
                         {"version", kVersion},
                         {"git_commit", kGitCommit},
                         {"command", "calibrate"},
                         {"calibration", spec.name},
                         {"source", file.string()},
                         {"overrides", overrides},
                         {"digest", digest},
                         {"replicates", R},
                         {"final_replicates", RF},
                         {"evaluations", trace.size()},
                         {"journaled_replications", journal.size()},
                         {"replications_this_session", executed},
                         {"resumed_replications", result.resumed},
                         {"jobs", jobs},
                         {"mpi_ranks", session.size()},
                         {"threads_per_run", spec.threads_per_run},
                         {"started_utc", started},
                         {"wall_seconds", result.wall_seconds},
                         {"evaluations_per_second", result.evals_per_second},
                         {"objective", result.objective},
                         {"j_statistic", number_or_null(jstat)},
                         {"j_p_value", number_or_null(result.j_p_value)},
                         {"coverage_ratio", result.coverage},
                         {"files", {"fit.csv", "parameters.csv", "trace.csv", "calibrated_scenario.yaml", "report.txt",
                                    "calibration.yaml", "scenario.yaml", "journal.jsonl", "manifest.json"}}};
  write_atomic(result.dir / "manifest.json", manifest.dump(2) + "\n");
  return result;
}

// ---------------------------------------------------------------------------------------------
// Sensitivity

SensitivityResult run_sensitivity(const fs::path& file, const std::vector<std::string>& overrides,
                                  const RunOptions& options, const mpi::Session& session) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string started = utc_now();
  SensitivitySpec spec;
  const Loaded loaded = load_common(file, overrides, spec);
  const auto stats = statistics_of(spec.outputs, loaded, "outputs");
  const bool root = session.rank() == 0;
  const std::size_t k = spec.parameters.size(), m = spec.outputs.size();
  const auto R = static_cast<std::size_t>(spec.replicates);
  const Model model(loaded.base, spec.parameters, stats, design::replicate_seeds(spec.seed, R),
                    static_cast<int>(spec.threads_per_run));
  const int jobs = default_jobs(options, spec.threads_per_run);
  const bool morris = spec.method != "sobol", sobol = spec.method != "morris";

  sensitivity::MorrisDesign md;
  sensitivity::SaltelliDesign sd;
  std::vector<std::vector<double>> points;
  std::vector<std::string> design_of;
  if (morris) {
    md = sensitivity::morris_design(k, static_cast<std::size_t>(spec.trajectories), static_cast<std::size_t>(spec.levels),
                                    spec.seed);
    for (const auto& x : md.points) {
      points.push_back(x);
      design_of.emplace_back("morris");
    }
  }
  if (sobol) {
    sd = sensitivity::saltelli_design(k, static_cast<std::size_t>(spec.base_samples));
    for (const auto& x : sd.points) {
      points.push_back(x);
      design_of.emplace_back("sobol");
    }
  }

  SensitivityResult result;
  result.dir = options.out_dir.empty() ? fs::path("piracy-output") / spec.name : options.out_dir;
  result.points = static_cast<std::int64_t>(points.size());
  const std::string spec_yaml = config::emit(spec);
  const auto journal_ptr = open_journal(
      result.dir, options, "sensitivity", digest_of("sensitivity", spec.parameters, stats, spec.seed, loaded.base_yaml),
      [&] {
        write_atomic(result.dir / "sensitivity.yaml",
                     fmt::format("# The resolved sensitivity analysis {} (from {}), written by piracy-abm {}\n",
                                 spec.name, file.string(), kVersion) +
                         spec_yaml);
        write_atomic(result.dir / "scenario.yaml", loaded.base_yaml);
      },
      session, result.exit_code);
  if (!journal_ptr) return result;  // rank > 0: rank 0 refused the setup and reports why
  Journal& journal = *journal_ptr;
  result.resumed = static_cast<std::int64_t>(journal.size());
  const bool progress = options.progress && root;
  if (progress) {
    std::cerr << fmt::format("sensitivity {}: {} points x {} replications = {} runs ({} journaled), {} jobs{}\n",
                             spec.name, points.size(), R, points.size() * R, journal.size(), jobs,
                             session.size() > 1 ? fmt::format(" on each of {} MPI ranks", session.size()) : std::string{});
  }
  // Points in chunks of jobs x ranks: each chunk's runs are shared by the ranks, run in parallel
  // and journaled when the chunk ends (the chunk size changes no value, only the journal's grain).
  std::int64_t executed = 0;
  std::vector<std::vector<double>> y(points.size());  // [point][output] means
  const std::size_t chunk = static_cast<std::size_t>(std::max(1, jobs)) * static_cast<std::size_t>(session.size());
  for (std::size_t s = 0; s < points.size(); s += chunk) {
    const std::vector<std::vector<double>> part(points.begin() + static_cast<std::ptrdiff_t>(s),
                                                points.begin() + static_cast<std::ptrdiff_t>(std::min(points.size(), s + chunk)));
    const auto reps = evaluate_cached(model, journal, part, R, jobs, executed, session);
    for (std::size_t i = 0; i < part.size(); ++i) y[s + i] = means_of(reps[i], m);
    if (progress) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cerr << fmt::format("sensitivity {}: {} of {} points, {:.0f} s\n", spec.name,
                               std::min(points.size(), s + chunk), points.size(), el);
    }
  }

  // Tables.
  std::vector<std::string> header = {"design", "point"};
  for (const auto& q : spec.parameters) header.push_back(q.name);
  for (const auto& o : spec.outputs) header.push_back(o.name);
  std::string samples = csv_line(header);
  std::size_t morris_points = morris ? md.points.size() : 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    std::vector<std::string> row = {design_of[i], std::to_string(i < morris_points ? i : i - morris_points)};
    for (const double v : model.values(points[i])) row.push_back(num(v));
    for (const double v : y[i]) row.push_back(num(v));
    samples += csv_line(row);
  }
  std::string morris_csv = csv_line({"output", "parameter", "mu", "mu_star", "sigma", "mu_star_ci_low", "mu_star_ci_high"});
  std::string sobol_csv = csv_line({"output", "parameter", "S1", "S1_ci_low", "S1_ci_high", "ST", "ST_ci_low", "ST_ci_high"});
  std::string rep = fmt::format("Sensitivity analysis {} (base scenario {})\n", spec.name, spec.scenario);
  rep += fmt::format("budget: {} points x {} replications (outputs are replication means, CRN seed {})", points.size(),
                     R, spec.seed);
  if (morris) rep += fmt::format("; Morris r = {}, p = {}", spec.trajectories, spec.levels);
  if (sobol) rep += fmt::format("; Sobol N = {} (Saltelli 2010 / Jansen 1999)", spec.base_samples);
  rep += fmt::format("; bootstrap {} resamples, 95% percentile intervals\n", spec.bootstrap);
  rep += "Effects are per unit of each parameter's range (the unit cube; log scale where asked).\n";
  for (std::size_t o = 0; o < m; ++o) {
    rep += fmt::format("\n{}:\n", spec.outputs[o].name);
    if (morris) {
      std::vector<double> yo(md.points.size());
      for (std::size_t i = 0; i < md.points.size(); ++i) yo[i] = y[i][o];
      const auto idx = sensitivity::morris_indices(md, yo, static_cast<std::size_t>(spec.bootstrap), 0.95, spec.seed);
      std::vector<std::size_t> order(k);
      for (std::size_t i = 0; i < k; ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return idx[a].mu_star > idx[b].mu_star; });
      rep += "  Morris (by mu*):";
      for (const auto i : order) rep += fmt::format(" {} mu*={} sigma={};", spec.parameters[i].name, g3(idx[i].mu_star), g3(idx[i].sigma));
      rep += "\n";
      for (std::size_t i = 0; i < k; ++i)
        morris_csv += csv_line({spec.outputs[o].name, spec.parameters[i].name, num(idx[i].mu), num(idx[i].mu_star),
                                num(idx[i].sigma), num(idx[i].mu_star_ci_low), num(idx[i].mu_star_ci_high)});
    }
    if (sobol) {
      std::vector<double> yo(sd.points.size());
      for (std::size_t i = 0; i < sd.points.size(); ++i) yo[i] = y[morris_points + i][o];
      const auto idx = sensitivity::sobol_indices(sd, yo, static_cast<std::size_t>(spec.bootstrap), 0.95, spec.seed);
      rep += "  Sobol:";
      for (std::size_t i = 0; i < k; ++i) {
        rep += fmt::format(" {} S1={} [{}, {}] ST={} [{}, {}];", spec.parameters[i].name, g3(idx[i].s1),
                           g3(idx[i].s1_ci_low), g3(idx[i].s1_ci_high), g3(idx[i].st), g3(idx[i].st_ci_low),
                           g3(idx[i].st_ci_high));
        sobol_csv += csv_line({spec.outputs[o].name, spec.parameters[i].name, num(idx[i].s1), num(idx[i].s1_ci_low),
                               num(idx[i].s1_ci_high), num(idx[i].st), num(idx[i].st_ci_low), num(idx[i].st_ci_high)});
      }
      rep += "\n";
    }
  }
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep += fmt::format("\nwall time {:.1f} s ({} runs in this session, {} jobs{})\n", result.wall_seconds, executed, jobs,
                     session.size() > 1 ? fmt::format(" on each of {} MPI ranks", session.size()) : std::string{});
  result.report = rep;
  if (!root) return result;  // rank 0 writes
  write_atomic(result.dir / "samples.csv", samples);
  if (morris) write_atomic(result.dir / "morris.csv", morris_csv);
  if (sobol) write_atomic(result.dir / "sobol.csv", sobol_csv);
  write_atomic(result.dir / "report.txt", rep);
  const json manifest = {{"program", "piracy-abm"},
                         {"version", kVersion},
                         {"git_commit", kGitCommit},
                         {"command", "sensitivity"},
                         {"name", spec.name},
                         {"source", file.string()},
                         {"overrides", overrides},
                         {"points", points.size()},
                         {"replicates", R},
                         {"runs_this_session", executed},
                         {"resumed_runs", result.resumed},
                         {"jobs", jobs},
                         {"mpi_ranks", session.size()},
                         {"started_utc", started},
                         {"wall_seconds", result.wall_seconds}};
  write_atomic(result.dir / "manifest.json", manifest.dump(2) + "\n");
  return result;
}

}  // namespace piracy::calibration
