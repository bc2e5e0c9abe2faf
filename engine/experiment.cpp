#include "engine/experiment.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <tbb/blocked_range.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "agents/simulation.hpp"
#include "economics/recovery.hpp"
#include "engine/config.hpp"
#include "engine/design.hpp"
#include "engine/error.hpp"
#include "engine/files.hpp"
#include "engine/interrupt.hpp"
#include "engine/mpi.hpp"
#include "engine/output.hpp"
#include "engine/progress.hpp"
#include "piracy/version.hpp"

namespace piracy::experiment {
namespace {

namespace fs = std::filesystem;
using config::Node;
using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Set when the thread that journals fails: the runs in flight stop at their next tick.
std::atomic<bool> g_cancel{false};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Schema

void describe(config::Visitor& v, Arm& a) {
  v.field("name", a.name, {.doc = "Name of the arm (the first arm is the baseline of effects.csv)", .required = true});
  v.check(config::valid_name(a.name), "name", config::kNameRule);
  v.field("extends", a.extends,
          {.doc = "Scenario file of this arm instead of the experiment's `scenario` (relative to the experiment "
                  "file; else an embedded scenario)"});
  v.field("set", a.set, {.doc = "Overrides key=value applied after the experiment's `set`"});
}

void describe(config::Visitor& v, DesignParameter& p) {
  v.field("key", p.key,
          {.doc = "Scenario key varied, written as for --set (enforcement.operations[0].servers)", .required = true});
  v.check(!p.key.empty() && p.key.find('=') == std::string::npos, "key", "must be a key path without '='");
  v.field("values", p.values, {.doc = "Discrete levels (any YAML values); or give min and max"});
  v.field("min", p.min, {.doc = "Lower end of a numeric range"});
  v.field("max", p.max, {.doc = "Upper end of a numeric range"});
  v.field("levels", p.levels, {.doc = "Grid with min/max: number of evenly spaced levels", .min = 0, .max = 1e6});
  v.field("log", p.log, {.doc = "Spread evenly in log(value) (needs min > 0)"});
  v.field("integer", p.integer, {.doc = "Round values to the nearest integer (for integer keys)"});
  const bool has_values = !p.values.empty();
  v.check(!has_values || (p.min == 0 && p.max == 0 && p.levels == 0 && !p.log && !p.integer), "values",
          "give either values or a range (min, max, levels, log, integer), not both");
  v.check(has_values || (std::isfinite(p.min) && std::isfinite(p.max) && p.max > p.min), "max",
          "must be greater than min; give a range with min < max, or a list of values");
  v.check(has_values || !p.log || p.min > 0, "min", "must be > 0 when log is true");
}

void describe(config::Visitor& v, DesignSpec& d) {
  v.field("type", d.type,
          {.doc = "none (arms or an ensemble), grid (every combination), lhs (Latin hypercube, McKay et al. 1979) "
                  "or sobol (Joe & Kuo 2008 direction numbers)",
           .choices = {"none", "grid", "lhs", "sobol"}});
  v.field("points", d.points, {.doc = "Design points of lhs and sobol (sobol is balanced for powers of 2)",
                               .min = 0, .max = 1e5});
  v.field("parameters", d.parameters, {.doc = "Keys varied by the design"});
  const bool none = d.type == "none";
  v.check(!none || d.parameters.empty(), "type", "must be grid, lhs or sobol when parameters are given");
  v.check(none || !d.parameters.empty(), "parameters", "must list at least one parameter");
  v.check(d.type != "grid" || d.points == 0, "points",
          "is not used by a grid (its size is the product of the levels); remove it");
  v.check(none || d.type == "grid" || d.points >= 1, "points", "must be >= 1 for lhs and sobol designs");
  v.check(d.type != "sobol" || d.parameters.size() <= design::kSobolMaxDims, "parameters",
          fmt::format("sobol designs take at most {} parameters", design::kSobolMaxDims));
  for (std::size_t i = 0; i < d.parameters.size(); ++i) {
    const auto& p = d.parameters[i];
    v.check(d.type != "grid" || !p.values.empty() || p.levels >= 2, fmt::format("parameters[{}].levels", i),
            "a grid over min/max needs levels >= 2");
    v.check(d.type == "grid" || p.levels == 0, fmt::format("parameters[{}].levels", i),
            "only a grid uses levels; lhs and sobol spread `points` over [min, max]");
    for (std::size_t j = 0; j < i; ++j) {
      v.check(d.parameters[j].key != p.key, fmt::format("parameters[{}].key", i),
              fmt::format("is already varied by parameters[{}]", j));
    }
  }
}

void describe(config::Visitor& v, ExperimentSpec& e) {
  v.field("name", e.name, {.doc = "Name of the experiment (default output directory piracy-output/<name>)"});
  v.check(config::valid_name(e.name), "name", config::kNameRule);
  v.field("description", e.description, {.doc = "Free text"});
  v.field("scenario", e.scenario,
          {.doc = "Base scenario: a file relative to the experiment file, else an embedded scenario"});
  v.field("set", e.set, {.doc = "Overrides key=value applied to every run's scenario"});
  v.field("seed", e.seed, {.doc = "Experiment seed: replicate seeds are derived from it (common random numbers)"});
  v.field("replicates", e.replicates, {.doc = "Replicates of every arm or design point", .min = 1, .max = 1e6});
  v.field("threads_per_run", e.threads_per_run,
          {.doc = "Threads inside one run (results never depend on it)", .min = 1, .max = 1024});
  v.field("series", e.series, {.doc = "Also write series.csv: monthly series of every run, long format"});
  v.field("series_variables", e.series_variables, {.doc = "Series written to series.csv (empty: all)"});
  v.field("arms", e.arms, {.doc = "Policy arms; the first is the baseline. Without arms or design: an ensemble"});
  v.field("design", e.design, {.doc = "A design over scenario keys (instead of arms)"});
  v.check(e.arms.empty() || e.design.type == "none", "design", "an experiment has arms or a design, not both");
  for (std::size_t i = 0; i < e.arms.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      v.check(e.arms[j].name != e.arms[i].name, fmt::format("arms[{}].name", i),
              fmt::format("is already the name of arms[{}]", j));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Plan

namespace {

/// Rewrites "--set:1:C: error: ..." (an error of config::apply_override) to the place of the
/// `set` entry in the experiment file.
std::string relocate_message(const std::string& message, const Node& at) {
  const std::string prefix = "--set:1:";
  if (message.rfind(prefix, 0) != 0) return message;
  std::size_t end = prefix.size();
  while (end < message.size() && std::isdigit(static_cast<unsigned char>(message[end])) != 0) ++end;
  const int column = std::stoi(message.substr(prefix.size(), end - prefix.size()));
  return fmt::format("{}:{}:{}{}", at.file, at.line, at.column + (at.quoted ? 1 : 0) + column - 1,
                     message.substr(end));
}

/// Gives nodes created by an override the place of its source in the experiment file: with
/// `offset`, columns are shifted to where the override text stands; without, the place of `at`.
void relocate(Node& n, const Node& at, bool offset) {
  if (n.file == "--set") {
    const int base = at.column + (at.quoted ? 1 : 0) - 1;
    n.file = at.file;
    n.line = at.line;
    n.column = offset ? base + n.column : at.column;
    if (n.key_line == 1) {
      n.key_line = at.line;
      n.key_column = offset ? base + n.key_column : at.column;
    }
  }
  for (auto& [key, child] : n.map) relocate(child, at, offset);
  for (auto& child : n.seq) relocate(child, at, offset);
}

/// Applies "key=value" written at `at` in the experiment file.
void apply_set(Node& scenario, const std::string& assignment, const Node& at, bool offset = true) {
  if (assignment.substr(0, assignment.find('=')) == "seed") {
    config::fail(at, "seed",
                 "every run's seed comes from the experiment's `seed` and the replicate (common random numbers); "
                 "change the experiment's seed instead");
  }
  try {
    config::apply_override(scenario, assignment);
  } catch (const ConfigError& e) {
    if (offset) throw ConfigError(relocate_message(e.what(), at));
    // A generated override (a design value): report it at the design parameter.
    const std::string what = e.what();
    const auto pos = what.find("error: ");
    throw ConfigError(fmt::format("{}: error: {}: {}", config::location(at), assignment,
                                  pos == std::string::npos ? what : what.substr(pos + 7)));
  }
  relocate(scenario, at, offset);
}

const Node& node_at(const Node& root, const std::string& path) {
  bool complete = false;
  const Node* n = config::detail::resolve(&root, path, complete);
  return n != nullptr ? *n : root;
}

/// A scenario named in the experiment: a file relative to the experiment's folder if there is
/// one, else an embedded scenario of that name.
Node load_scenario_node(const std::string& name, const fs::path& folder, const Node& at, const std::string& key) {
  fs::path p(name);
  if (p.is_relative()) p = folder / p;
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return config::load_file(p);
  const auto& table = embedded::configs();
  if (table.count(name) != 0 || table.count(name + ".yaml") != 0) return config::load_embedded(name);
  std::string names;
  for (const auto& [n, text] : table) names += (names.empty() ? "" : ", ") + n;
  config::fail(at, key,
               fmt::format("no file {} and no embedded scenario named '{}'; embedded scenarios: {}", p.string(),
                           name, names));
}

/// Leaf paths where two resolved scenarios differ (lists of maps of equal length element by
/// element, other lists as a whole).
void diff_nodes(const Node& a, const Node& b, const std::string& path, std::vector<std::string>& out) {
  if (a.kind == Node::Kind::Map && b.kind == Node::Kind::Map) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : a.map) keys.push_back(k);
    for (const auto& [k, v] : b.map)
      if (a.find(k) == nullptr) keys.push_back(k);
    for (const auto& k : keys) {
      if (path.empty() && (k == "name" || k == "description" || k == "seed" || k == "threads")) continue;
      const std::string child = path.empty() ? k : path + "." + k;
      const Node* pa = a.find(k);
      const Node* pb = b.find(k);
      if (pa == nullptr || pb == nullptr) {
        out.push_back(child);
      } else {
        diff_nodes(*pa, *pb, child, out);
      }
    }
    return;
  }
  if (a.kind == Node::Kind::Sequence && b.kind == Node::Kind::Sequence && a.seq.size() == b.seq.size() &&
      std::any_of(a.seq.begin(), a.seq.end(), [](const Node& n) { return n.kind == Node::Kind::Map; })) {
    for (std::size_t i = 0; i < a.seq.size(); ++i) diff_nodes(a.seq[i], b.seq[i], fmt::format("{}[{}]", path, i), out);
    return;
  }
  if (a.kind != b.kind || config::to_flow_yaml(a) != config::to_flow_yaml(b)) out.push_back(path);
}

std::string value_text(const Node& root, const std::string& path) {
  bool complete = false;
  const Node* n = config::detail::resolve(&root, path, complete);
  return complete && n != nullptr ? config::to_flow_yaml(*n) : std::string();
}

/// Resolves a scenario node into a group: parse (strict, located errors), emit, parse back.
void resolve_group(RunGroup& g, const Node& scenario) {
  const auto cfg = config::parse<ScenarioConfig>(scenario);
  g.scenario_yaml = to_yaml(cfg);
  g.scenario = config::parse<ScenarioConfig>(config::parse_yaml(g.scenario_yaml, "<resolved " + g.name + ">"));
}

std::string number_text(double x, bool integer) {
  if (integer) return fmt::format("{}", static_cast<long long>(std::llround(x)));
  return format_number(x);
}

std::uint64_t fnv1a(std::uint64_t h, std::string_view s) {
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  // A separator byte that cannot occur in text keeps ("ab","c") apart from ("a","bc").
  h ^= 0xffu;
  h *= 0x100000001b3ULL;
  return h;
}

}  // namespace

RunSpec Plan::run(std::int64_t id) const {
  const auto reps = static_cast<std::int64_t>(seeds.size());
  if (id < 0 || id >= runs()) throw ModelError(fmt::format("run {} is not in the plan ({} runs)", id, runs()));
  RunSpec r;
  r.id = id;
  r.group = id / reps;
  r.replicate = id % reps;
  r.seed = seeds[static_cast<std::size_t>(r.replicate)];
  return r;
}

std::string Plan::digest() const {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  h = fnv1a(h, kind == Kind::Arms ? "arms" : "design");
  for (const auto& c : param_columns) h = fnv1a(h, c);
  for (const auto& g : groups) {
    h = fnv1a(h, g.name);
    for (const auto& v : g.param_values) h = fnv1a(h, v);
    h = fnv1a(h, g.scenario_yaml);
  }
  for (const auto s : seeds) h = fnv1a(h, std::to_string(s));
  // Metric definitions: bump when a metric's meaning changes, so old journals are not mixed in.
  h = fnv1a(h, "metrics v2");
  for (const auto& m : metric_names()) h = fnv1a(h, m);
  h = fnv1a(h, spec.series ? "series" : "no series");
  for (const auto& v : spec.series_variables) h = fnv1a(h, v);
  return fmt::format("{:016x}", h);
}

std::string Plan::resolved_yaml() const {
  ExperimentSpec r = spec;
  r.scenario = "scenario.yaml";
  r.set.clear();
  for (auto& a : r.arms) {
    a.extends = "arms/" + a.name + ".yaml";
    a.set.clear();
  }
  return fmt::format(
      "# The resolved experiment {} (from {}), written by piracy-abm {}: every `set` is folded into\n"
      "# scenario.yaml and arms/<arm>.yaml beside this file. Replay: piracy-abm experiment experiment.yaml -o OTHER\n",
      spec.name, source, kVersion) +
         config::emit(r);
}

Plan load_plan(const fs::path& file, const std::vector<std::string>& overrides) {
  Node root = config::load_file(file);
  if (root.map.empty()) {  // as for scenarios (agents/params.cpp): a truncated file, not "all defaults"
    config::fail(root, "",
                 "the file is empty (no experiment keys; a truncated or half-written file?); write at least "
                 "`scenario: sparks_2020.yaml`");
  }
  for (const auto& o : overrides) config::apply_override(root, o);
  Plan plan;
  plan.spec = config::parse<ExperimentSpec>(root);
  plan.source = file.string();
  const auto& spec = plan.spec;
  const fs::path folder = file.parent_path();

  plan.seeds = design::replicate_seeds(spec.seed, static_cast<std::size_t>(spec.replicates));

  // The base scenario with the experiment's overrides.
  Node base = load_scenario_node(spec.scenario, folder, node_at(root, "scenario"), "scenario");
  for (std::size_t i = 0; i < spec.set.size(); ++i) apply_set(base, spec.set[i], node_at(root, fmt::format("set[{}]", i)));
  {
    RunGroup probe;
    probe.name = "scenario";
    resolve_group(probe, base);
    plan.base_scenario_yaml = probe.scenario_yaml;
  }

  if (spec.design.type == "none") {
    plan.kind = Kind::Arms;
    std::vector<Arm> arms = spec.arms;
    if (arms.empty()) arms.push_back(Arm{"baseline", "", {}});
    std::vector<Node> resolved;
    for (std::size_t a = 0; a < arms.size(); ++a) {
      const auto& arm = arms[a];
      RunGroup g;
      g.name = arm.name;
      Node node = base;
      if (!arm.extends.empty()) {
        const std::string key = fmt::format("arms[{}].extends", a);
        node = load_scenario_node(arm.extends, folder, node_at(root, key), key);
        for (std::size_t i = 0; i < spec.set.size(); ++i)
          apply_set(node, spec.set[i], node_at(root, fmt::format("set[{}]", i)));
      }
      for (std::size_t i = 0; i < arm.set.size(); ++i)
        apply_set(node, arm.set[i], node_at(root, fmt::format("arms[{}].set[{}]", a, i)));
      resolve_group(g, node);
      resolved.push_back(config::parse_yaml(g.scenario_yaml, "<resolved>"));
      plan.groups.push_back(std::move(g));
    }
    // Varied parameters: every key where an arm differs from the baseline.
    for (std::size_t a = 1; a < resolved.size(); ++a) {
      std::vector<std::string> paths;
      diff_nodes(resolved[0], resolved[a], "", paths);
      for (const auto& p : paths)
        if (std::find(plan.param_columns.begin(), plan.param_columns.end(), p) == plan.param_columns.end())
          plan.param_columns.push_back(p);
    }
    for (std::size_t a = 0; a < resolved.size(); ++a)
      for (const auto& c : plan.param_columns) plan.groups[a].param_values.push_back(value_text(resolved[a], c));
  } else {
    plan.kind = Kind::Design;
    const auto& d = spec.design;
    const std::size_t dims = d.parameters.size();
    std::vector<std::vector<double>> unit;  // design points in [0,1)^dims (lhs, sobol)
    std::vector<std::vector<std::size_t>> grid;
    if (d.type == "grid") {
      std::vector<std::size_t> levels;
      for (const auto& p : d.parameters)
        levels.push_back(p.values.empty() ? static_cast<std::size_t>(p.levels) : p.values.size());
      try {
        grid = design::grid_indices(levels);
      } catch (const ConfigError& e) {
        config::fail(node_at(root, "design"), "design", e.what());
      }
    } else if (d.type == "lhs") {
      unit = design::latin_hypercube(static_cast<std::size_t>(d.points), dims, spec.seed);
    } else {
      unit = design::sobol(static_cast<std::size_t>(d.points), dims);
    }
    const std::size_t n_points = d.type == "grid" ? grid.size() : unit.size();
    // Every point holds its resolved scenario (a few kB) in memory and on every MPI rank.
    constexpr std::size_t kMaxPoints = 100'000;
    if (n_points > kMaxPoints) {
      config::fail(node_at(root, "design"), "design",
                   fmt::format("{} design points: at most {}; split the experiment", n_points, kMaxPoints));
    }
    for (const auto& p : d.parameters) plan.param_columns.push_back(p.key);
    for (std::size_t i = 0; i < n_points; ++i) {
      // Resolving a point takes milliseconds, so a 100,000-point design takes many minutes:
      // Ctrl-C / SIGTERM must stop it here too, not only once runs start (issue 9).
      throw_if_interrupted();
      RunGroup g;
      g.name = std::to_string(i);
      Node node = base;
      for (std::size_t k = 0; k < dims; ++k) {
        const auto& p = d.parameters[k];
        const std::string where = fmt::format("design.parameters[{}]", k);
        if (!p.values.empty()) {
          const std::size_t level =
              d.type == "grid" ? grid[i][k]
                               : std::min(p.values.size() - 1,
                                          static_cast<std::size_t>(unit[i][k] * static_cast<double>(p.values.size())));
          // The value node of the experiment file itself: its type, quoting and place are kept.
          const Node& value = node_at(root, fmt::format("{}.values[{}]", where, level));
          apply_set(node, p.key + "=~", value, false);
          bool complete = false;
          auto* target = const_cast<Node*>(config::detail::resolve(&node, p.key, complete));
          if (target == nullptr || !complete) throw ModelError("design: cannot resolve " + p.key);
          const int kl = target->key_line, kc = target->key_column;
          *target = value;
          target->key_line = kl;
          target->key_column = kc;
          g.param_values.push_back(config::to_flow_yaml(value));
          g.overrides.push_back(p.key + "=" + g.param_values.back());
        } else {
          double t = 0;
          if (d.type == "grid") {
            t = static_cast<double>(grid[i][k]) / static_cast<double>(p.levels - 1);
          } else {
            t = unit[i][k];
          }
          const double x = p.log ? std::exp(std::log(p.min) + t * (std::log(p.max) - std::log(p.min)))
                                 : p.min + t * (p.max - p.min);
          const std::string text = number_text(std::clamp(x, p.min, p.max), p.integer);
          g.param_values.push_back(text);
          g.overrides.push_back(p.key + "=" + text);
          apply_set(node, g.overrides.back(), node_at(root, where + ".key"), false);
        }
      }
      resolve_group(g, node);
      plan.groups.push_back(std::move(g));
    }
  }

  // Series names: checked against a scenario's series table now rather than after the first run.
  if (spec.series && !spec.series_variables.empty()) {
    const Simulation probe(plan.groups.front().scenario);
    for (std::size_t i = 0; i < spec.series_variables.size(); ++i) {
      if (!probe.series().has_column(spec.series_variables[i])) {
        std::string names;
        for (const auto& n : probe.series().names()) names += (names.empty() ? "" : ", ") + n;
        config::fail(node_at(root, fmt::format("series_variables[{}]", i)), fmt::format("series_variables[{}]", i),
                     fmt::format("no series named '{}'; series: {}", spec.series_variables[i], names));
      }
    }
  }
  return plan;
}

json plan_to_json(const Plan& plan) {
  json groups = json::array();
  for (const auto& g : plan.groups) {
    groups.push_back({{"name", g.name},
                      {"param_values", g.param_values},
                      {"overrides", g.overrides},
                      {"scenario_yaml", g.scenario_yaml}});
  }
  return {{"spec_yaml", config::emit(plan.spec)},
          {"source", plan.source},
          {"kind", plan.kind == Kind::Arms ? "arms" : "design"},
          {"param_columns", plan.param_columns},
          {"groups", groups},
          {"seeds", plan.seeds},
          {"base_scenario_yaml", plan.base_scenario_yaml}};
}

Plan plan_from_json(const json& j) {
  Plan plan;
  plan.spec = config::parse<ExperimentSpec>(config::parse_yaml(j.at("spec_yaml").get<std::string>(), "<plan>"));
  plan.source = j.at("source").get<std::string>();
  plan.kind = j.at("kind").get<std::string>() == "arms" ? Kind::Arms : Kind::Design;
  plan.param_columns = j.at("param_columns").get<std::vector<std::string>>();
  plan.seeds = j.at("seeds").get<std::vector<std::uint64_t>>();
  plan.base_scenario_yaml = j.at("base_scenario_yaml").get<std::string>();
  for (const auto& jg : j.at("groups")) {
    RunGroup g;
    g.name = jg.at("name").get<std::string>();
    g.param_values = jg.at("param_values").get<std::vector<std::string>>();
    g.overrides = jg.at("overrides").get<std::vector<std::string>>();
    g.scenario_yaml = jg.at("scenario_yaml").get<std::string>();
    g.scenario = config::parse<ScenarioConfig>(config::parse_yaml(g.scenario_yaml, "<resolved " + g.name + ">"));
    plan.groups.push_back(std::move(g));
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Metrics

namespace {

struct SummaryMetric {
  const char* name;     //!< column of runs.csv: the path in summary.json
  const char* pointer;  //!< JSON pointer into summary.json
};

constexpr SummaryMetric kSummaryMetrics[] = {
    {"releases.scene_total", "/releases/scene_total"},
    {"releases.p2p_total", "/releases/p2p_total"},
    {"p2p_share.value", "/p2p_share/value"},
    {"crackdowns[0].servers_seized", "/crackdowns/0/servers_seized"},
    {"crackdowns[0].sites_seized", "/crackdowns/0/sites_seized"},
    {"crackdowns[0].arrests", "/crackdowns/0/arrests"},
    {"crackdowns[0].sites_dark", "/crackdowns/0/sites_dark"},
    {"crackdowns[0].releases_month_before", "/crackdowns/0/releases_month_before"},
    {"crackdowns[0].releases_month_after", "/crackdowns/0/releases_month_after"},
    {"crackdowns[0].ratio_month_after", "/crackdowns/0/ratio_month_after"},
    {"crackdowns[0].ratio_month_plus5", "/crackdowns/0/ratio_month_plus5"},
    {"crackdowns[0].drop_ratio", "/crackdowns/0/drop_ratio"},
    {"crackdowns[0].t50_days", "/crackdowns/0/t50_days"},
    {"crackdowns[0].t90_days", "/crackdowns/0/t90_days"},
    {"crackdowns[0].half_life_days", "/crackdowns/0/half_life_days"},
    {"crackdowns[0].var_half_life_days", "/crackdowns/0/var_half_life_days"},
    {"losses.total_usd", "/losses/total_usd"},
    {"losses.scene_usd", "/losses/scene_usd"},
    {"losses.p2p_usd", "/losses/p2p_usd"},
    {"losses.pre_release_usd", "/losses/pre_release_usd"},
    {"losses.paired_counterfactual.caused_loss_usd", "/losses/paired_counterfactual/caused_loss_usd"},
};

constexpr const char* kWindowMetrics[] = {
    "first_op_12m.scene_releases", "first_op_12m.p2p_releases", "first_op_12m.p2p_share",
    "first_op_12m.studio_loss_usd", "first_op_12m.arrests"};

}  // namespace

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& m : kSummaryMetrics) n.emplace_back(m.name);
    for (const auto* m : kWindowMetrics) n.emplace_back(m);
    return n;
  }();
  return names;
}

std::vector<double> extract_metrics(const json& summary, const Simulation& sim, std::optional<Date> window_fallback) {
  std::vector<double> out;
  out.reserve(metric_names().size());
  for (const auto& m : kSummaryMetrics) {
    const json::json_pointer ptr(m.pointer);
    out.push_back(summary.contains(ptr) && summary.at(ptr).is_number() ? summary.at(ptr).get<double>() : kNaN);
  }
  // The 12 months from the first operation: releases lost and displaced, losses, arrests.
  const auto& s = sim.series();
  double scene = kNaN, p2p = kNaN, loss = kNaN, arrests = kNaN;
  std::optional<Date> start = window_fallback;
  if (!sim.operations().empty()) start = sim.operations().front().date;
  if (start && s.days() > 0) {
    const Date op = *start;
    const Date from = std::max(op, s.first_day());
    const Date to = std::min(op + 364, s.last_day());
    if (from <= to) {
      scene = s.over("releases_scene", from, to);
      p2p = s.over("releases_p2p", from, to);
      loss = s.over("studio_loss_usd", from, to);
      arrests = s.over("arrests", from, to);
    }
  }
  out.push_back(scene);
  out.push_back(p2p);
  out.push_back(scene + p2p > 0 ? p2p / (scene + p2p) : kNaN);
  out.push_back(loss);
  out.push_back(arrests);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Runs

RunRecord execute_run(const Plan& plan, std::int64_t id, int threads) {
  const RunSpec rs = plan.run(id);
  ScenarioConfig cfg = plan.groups[static_cast<std::size_t>(rs.group)].scenario;
  cfg.seed = rs.seed;
  cfg.threads = std::max(1, threads);
  RunRecord rec;
  rec.id = rs.id;
  rec.group = rs.group;
  rec.replicate = rs.replicate;
  rec.seed = rs.seed;
  // An arena of `threads` slots: a run's parallel loops use at most that many threads whatever
  // else runs in the process (tbb::global_control, as run_scenario uses, would be process-wide).
  tbb::task_arena arena(std::max(1, threads));
  arena.execute([&] {
    const auto poll = [](std::int64_t, std::int64_t) {
      throw_if_interrupted();
      if (g_cancel.load(std::memory_order_relaxed)) throw Interrupted("cancelled");
    };
    Simulation sim(cfg);
    std::unique_ptr<Simulation> cf;
    if (!cfg.counterfactual.remove_groups.empty()) cf = std::make_unique<Simulation>(cfg, cfg.counterfactual.remove_groups);
    run_paired(sim, cf.get(), [&](int, std::int64_t done, std::int64_t total) { poll(done, total); });
    const json summary = summarize(sim, cf.get());
    // Runs without an operation are measured over the baseline's window (its first operation).
    std::optional<Date> fallback;
    for (const auto& op : plan.groups.front().scenario.enforcement.operations)
      if (!fallback || op.date < *fallback) fallback = op.date;
    rec.metrics = extract_metrics(summary, sim, fallback);
    if (plan.spec.series) {
      const auto& s = sim.series();
      rec.variables = plan.spec.series_variables.empty() ? s.names() : plan.spec.series_variables;
      if (s.days() > 0) {
        for (Date d = s.first_day().month_start(); d <= s.last_day();
             d = Date::from_ymd(d.year() + (d.month() == 12 ? 1 : 0), d.month() == 12 ? 1 : d.month() + 1, 1)) {
          rec.periods.push_back(d.year_month());
        }
      }
      for (const auto& v : rec.variables) {
        std::vector<double> values;
        values.reserve(rec.periods.size());
        for (const auto& p : rec.periods) values.push_back(s.monthly(v, p));
        rec.series.push_back(std::move(values));
      }
    }
  });
  return rec;
}

namespace {
json number_or_null(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }
double from_json_number(const json& j) { return j.is_number() ? j.get<double>() : kNaN; }
}  // namespace

std::string to_journal_line(const RunRecord& r) {
  json metrics = json::array();
  for (const double x : r.metrics) metrics.push_back(number_or_null(x));
  json j = {{"run", r.id}, {"group", r.group}, {"replicate", r.replicate}, {"seed", r.seed}, {"metrics", metrics}};
  if (!r.variables.empty()) {
    json series = json::array();
    for (const auto& v : r.series) {
      json row = json::array();
      for (const double x : v) row.push_back(number_or_null(x));
      series.push_back(row);
    }
    j["periods"] = r.periods;
    j["variables"] = r.variables;
    j["series"] = series;
  }
  return j.dump();
}

RunRecord from_journal_line(std::string_view line) {
  try {
    const json j = json::parse(line);
    RunRecord r;
    r.id = j.at("run").get<std::int64_t>();
    r.group = j.at("group").get<std::int64_t>();
    r.replicate = j.at("replicate").get<std::int64_t>();
    r.seed = j.at("seed").get<std::uint64_t>();
    for (const auto& x : j.at("metrics")) r.metrics.push_back(from_json_number(x));
    if (j.contains("variables")) {
      r.periods = j.at("periods").get<std::vector<std::string>>();
      r.variables = j.at("variables").get<std::vector<std::string>>();
      for (const auto& row : j.at("series")) {
        std::vector<double> v;
        for (const auto& x : row) v.push_back(from_json_number(x));
        r.series.push_back(std::move(v));
      }
    }
    return r;
  } catch (const json::exception& e) {
    throw IoError(fmt::format("not a run record: {}", e.what()));
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics and tables

namespace {

struct Moments {
  std::size_t n = 0;
  double mean = kNaN;
  double var = kNaN;  //!< sample variance (n - 1)
};

/// Mean and variance by Welford's algorithm (Welford 1962), finite values only.
Moments moments(std::span<const double> x) {
  Moments m;
  double mean = 0, m2 = 0;
  for (const double v : x) {
    if (!std::isfinite(v)) continue;
    ++m.n;
    const double delta = v - mean;
    mean += delta / static_cast<double>(m.n);
    m2 += delta * (v - mean);
  }
  if (m.n > 0) m.mean = mean;
  if (m.n > 1) m.var = m2 / static_cast<double>(m.n - 1);
  return m;
}

double t_quantile(double level, double df) { return economics::student_t_quantile(0.5 * (1.0 + level), df); }

}  // namespace

EffectEstimate estimate_effect(std::span<const double> arm, std::span<const double> baseline, double level) {
  if (arm.size() != baseline.size()) {
    throw ModelError(fmt::format("estimate_effect: {} arm values but {} baseline values", arm.size(), baseline.size()));
  }
  EffectEstimate e;
  std::vector<double> diff;
  for (std::size_t i = 0; i < arm.size(); ++i)
    if (std::isfinite(arm[i]) && std::isfinite(baseline[i])) diff.push_back(arm[i] - baseline[i]);
  const Moments d = moments(diff), a = moments(arm), b = moments(baseline);
  e.n = d.n;
  e.arm_mean = a.mean;
  e.baseline_mean = b.mean;
  e.mean_diff = d.mean;
  e.ci_low = e.ci_high = kNaN;
  if (d.n >= 2) {
    const double half = d.var > 0 ? t_quantile(level, static_cast<double>(d.n - 1)) * std::sqrt(d.var / static_cast<double>(d.n)) : 0.0;
    e.ci_low = d.mean - half;
    e.ci_high = d.mean + half;
  }
  // Welch (1947) with the Welch-Satterthwaite degrees of freedom.
  e.unpaired_ci_low = e.unpaired_ci_high = kNaN;
  if (a.n >= 2 && b.n >= 2) {
    const double va = a.var / static_cast<double>(a.n), vb = b.var / static_cast<double>(b.n);
    const double se2 = va + vb;
    double half = 0;
    if (se2 > 0) {
      const double df = se2 * se2 / (va * va / static_cast<double>(a.n - 1) + vb * vb / static_cast<double>(b.n - 1));
      half = t_quantile(level, df) * std::sqrt(se2);
    }
    e.unpaired_ci_low = a.mean - b.mean - half;
    e.unpaired_ci_high = a.mean - b.mean + half;
  }
  return e;
}

namespace {

/// Records indexed by run id; every run of the plan must be present exactly once.
std::vector<const RunRecord*> by_id(const Plan& plan, const std::vector<RunRecord>& records) {
  std::vector<const RunRecord*> out(static_cast<std::size_t>(plan.runs()), nullptr);
  for (const auto& r : records) {
    if (r.id < 0 || r.id >= plan.runs()) throw ModelError(fmt::format("run {} is not in the plan", r.id));
    out[static_cast<std::size_t>(r.id)] = &r;
  }
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] == nullptr) throw ModelError(fmt::format("run {} has no record: the experiment is incomplete", i));
  return out;
}

void field(fmt::memory_buffer& b, std::string_view s) { append_csv_field(b, s); }
void comma(fmt::memory_buffer& b) { b.push_back(','); }
void number(fmt::memory_buffer& b, double x) { append_number(b, x); }
void end_row(fmt::memory_buffer& b) { b.push_back('\n'); }

}  // namespace

std::string runs_csv(const Plan& plan, const std::vector<RunRecord>& records) {
  const auto runs = by_id(plan, records);
  fmt::memory_buffer b;
  fmt::format_to(std::back_inserter(b), "run_id,{},replicate,seed", plan.group_column());
  for (const auto& c : plan.param_columns) { comma(b); field(b, c); }
  for (const auto& m : metric_names()) { comma(b); field(b, m); }
  end_row(b);
  for (const auto* r : runs) {
    const auto& g = plan.groups[static_cast<std::size_t>(r->group)];
    fmt::format_to(std::back_inserter(b), "{},", r->id);
    field(b, g.name);
    fmt::format_to(std::back_inserter(b), ",{},{}", r->replicate, r->seed);
    for (const auto& v : g.param_values) { comma(b); field(b, v); }
    for (const double x : r->metrics) { comma(b); number(b, x); }
    end_row(b);
  }
  return fmt::to_string(b);
}

std::string effects_csv(const Plan& plan, const std::vector<RunRecord>& records) {
  const auto runs = by_id(plan, records);
  fmt::memory_buffer b;
  fmt::format_to(std::back_inserter(b),
                 "arm,metric,n,baseline_mean,arm_mean,mean_diff,ci_low,ci_high,unpaired_ci_low,unpaired_ci_high\n");
  if (plan.kind != Kind::Arms) return fmt::to_string(b);
  const auto reps = plan.seeds.size();
  const auto& names = metric_names();
  std::vector<double> base(reps), arm(reps);
  for (std::size_t a = 1; a < plan.groups.size(); ++a) {
    for (std::size_t m = 0; m < names.size(); ++m) {
      for (std::size_t r = 0; r < reps; ++r) {
        base[r] = runs[r]->metrics[m];
        arm[r] = runs[a * reps + r]->metrics[m];
      }
      const auto e = estimate_effect(arm, base);
      field(b, plan.groups[a].name);
      comma(b);
      field(b, names[m]);
      fmt::format_to(std::back_inserter(b), ",{}", e.n);
      for (const double x : {e.baseline_mean, e.arm_mean, e.mean_diff, e.ci_low, e.ci_high, e.unpaired_ci_low,
                             e.unpaired_ci_high}) {
        comma(b);
        number(b, x);
      }
      end_row(b);
    }
  }
  return fmt::to_string(b);
}

std::string means_csv(const Plan& plan, const std::vector<RunRecord>& records) {
  const auto runs = by_id(plan, records);
  fmt::memory_buffer b;
  fmt::format_to(std::back_inserter(b), "{},metric,n,mean,sd,ci_low,ci_high\n", plan.group_column());
  const auto reps = plan.seeds.size();
  const auto& names = metric_names();
  std::vector<double> x(reps);
  for (std::size_t g = 0; g < plan.groups.size(); ++g) {
    for (std::size_t m = 0; m < names.size(); ++m) {
      for (std::size_t r = 0; r < reps; ++r) x[r] = runs[g * reps + r]->metrics[m];
      const Moments mo = moments(x);
      double half = kNaN;
      if (mo.n >= 2) half = mo.var > 0 ? t_quantile(0.95, static_cast<double>(mo.n - 1)) * std::sqrt(mo.var / static_cast<double>(mo.n)) : 0.0;
      field(b, plan.groups[g].name);
      comma(b);
      field(b, names[m]);
      fmt::format_to(std::back_inserter(b), ",{}", mo.n);
      for (const double v : {mo.mean, std::sqrt(mo.var), mo.mean - half, mo.mean + half}) {
        comma(b);
        number(b, v);
      }
      end_row(b);
    }
  }
  return fmt::to_string(b);
}

std::string series_csv(const Plan& plan, const std::vector<RunRecord>& records) {
  const auto runs = by_id(plan, records);
  fmt::memory_buffer b;
  fmt::format_to(std::back_inserter(b), "run_id,period,variable,value\n");
  for (const auto* r : runs) {
    for (std::size_t v = 0; v < r->variables.size(); ++v) {
      for (std::size_t p = 0; p < r->periods.size(); ++p) {
        fmt::format_to(std::back_inserter(b), "{},{},", r->id, r->periods[p]);
        field(b, r->variables[v]);
        comma(b);
        number(b, r->series[v][p]);
        end_row(b);
      }
    }
  }
  return fmt::to_string(b);
}

// ---------------------------------------------------------------------------------------------
// The experiment directory and its journal

namespace {

constexpr const char* kJournal = "journal.jsonl";

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

/// The journal: a header line, then one line per finished run, appended with one write(2) each
/// and flushed to the disk (fdatasync), so that a run, once journaled, survives any crash.
/// An exclusive flock keeps two experiments from writing the same directory.
class Journal {
 public:
  Journal(const fs::path& dir, const Plan& plan, bool fresh) : path_(dir / kJournal) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(fmt::format("cannot open {}: {}", path_.string(), errno_text()));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw UsageError(fmt::format("{} is in use by another piracy-abm experiment", path_.string()));
    }
    const json header = {{"journal", "piracy-abm experiment"},
                         {"experiment", plan.spec.name},
                         {"runs", plan.runs()},
                         {"digest", plan.digest()}};
    if (fresh) {
      if (::ftruncate(fd_, 0) != 0) throw IoError(fmt::format("cannot write {}: {}", path_.string(), errno_text()));
      append(header.dump());
      return;
    }
    // Resume: check the header, keep the complete lines, drop a torn last line.
    const std::string text = read_text(path_);
    const auto last_newline = text.rfind('\n');
    const std::size_t keep = last_newline == std::string::npos ? 0 : last_newline + 1;
    if (keep < text.size() && ::ftruncate(fd_, static_cast<off_t>(keep)) != 0) {
      throw IoError(fmt::format("cannot truncate {}: {}", path_.string(), errno_text()));
    }
    std::istringstream lines(text.substr(0, keep));
    std::string line;
    std::size_t number = 0;
    while (std::getline(lines, line)) {
      ++number;
      if (number == 1) {
        json h;
        try {
          h = json::parse(line);
        } catch (const json::exception&) {
        }
        if (!h.is_object() || h.value("journal", "") != "piracy-abm experiment") {
          throw IoError(fmt::format("{}:1: not an experiment journal", path_.string()));
        }
        if (h.value("digest", "") != plan.digest()) {
          throw UsageError(fmt::format(
              "{} was started by a different experiment (plan digest {} here, {} now): the scenarios, seeds, "
              "arms or design changed. Start again with --force, or write to another directory with -o",
              path_.string(), h.value("digest", "?"), plan.digest()));
        }
        continue;
      }
      RunRecord r;
      try {
        r = from_journal_line(line);
      } catch (const IoError& e) {
        throw IoError(fmt::format("{}:{}: {}; remove that line to resume", path_.string(), number, e.what()));
      }
      const bool fits = r.id >= 0 && r.id < plan.runs() && plan.run(r.id).seed == r.seed &&
                        plan.run(r.id).group == r.group && r.metrics.size() == metric_names().size();
      if (!fits) {
        throw IoError(fmt::format("{}:{}: run {} does not belong to this experiment", path_.string(), number, r.id));
      }
      done_.insert(r.id);
    }
    if (number == 0) append(header.dump());  // an empty journal (killed before the header): start it
  }
  ~Journal() {
    if (fd_ >= 0) ::close(fd_);
  }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  void append(const std::string& line) {
    std::string text = line + "\n";
    std::size_t done = 0;
    while (done < text.size()) {
      const auto n = ::write(fd_, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw IoError(fmt::format("cannot write {}: {}", path_.string(), errno_text()));
      done += static_cast<std::size_t>(n);
    }
    ::fdatasync(fd_);
  }
  [[nodiscard]] const std::set<std::int64_t>& done() const { return done_; }
  void mark(std::int64_t id) { done_.insert(id); }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  int fd_ = -1;
  std::set<std::int64_t> done_;
};

/// Every run of the journal (the first record of each run id), for the final tables.
std::vector<RunRecord> read_journal(const fs::path& path) {
  const std::string text = read_text(path);
  std::istringstream lines(text);
  std::string line;
  std::vector<RunRecord> out;
  std::set<std::int64_t> seen;
  bool header = true;
  while (std::getline(lines, line)) {
    if (header) {
      header = false;
      continue;
    }
    auto r = from_journal_line(line);
    if (seen.insert(r.id).second) out.push_back(std::move(r));
  }
  return out;
}

/// Throws UsageError when another process holds the journal's lock (an experiment running).
void ensure_unlocked(const fs::path& journal) {
  const int fd = ::open(journal.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  const bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
  ::close(fd);
  if (locked) throw UsageError(fmt::format("{} is in use by another piracy-abm experiment", journal.string()));
}

bool is_empty_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::directory_iterator(dir, ec) == fs::directory_iterator();
}

/// Prepares the experiment directory; returns its journal.
std::unique_ptr<Journal> open_directory(const Plan& plan, const fs::path& dir, const RunOptions& options,
                                        bool& resumed) {
  std::error_code ec;
  const fs::path name = dir.filename().empty() ? dir.parent_path().filename() : dir.filename();
  if (name.empty() || name == "." || name == "..") {
    throw UsageError(fmt::format("-o {}: name a directory of its own for the experiment", dir.string()));
  }
  const bool exists = fs::exists(dir, ec);
  if (exists && !fs::is_directory(dir, ec)) throw UsageError(fmt::format("{} exists and is not a directory", dir.string()));
  const bool has_journal = fs::exists(dir / kJournal, ec);
  resumed = options.resume && has_journal;
  if (resumed) return std::make_unique<Journal>(dir, plan, false);
  if (exists && !is_empty_dir(dir)) {
    if (options.resume) {
      throw UsageError(fmt::format("{} holds no {}: there is no experiment to resume there", dir.string(), kJournal));
    }
    if (!options.force) {
      throw UsageError(fmt::format("{} is not empty: continue its experiment with --resume, replace it with --force, "
                                   "or choose another directory with -o",
                                   dir.string()));
    }
    if (!has_journal) {
      throw UsageError(fmt::format("{} is not an experiment directory (no {}): --force replaces only experiment "
                                   "directories; choose another directory with -o",
                                   dir.string(), kJournal));
    }
    ensure_unlocked(dir / kJournal);
    fs::remove_all(dir, ec);
    if (ec) throw IoError(fmt::format("cannot remove {}: {}", dir.string(), ec.message()));
  }
  fs::create_directories(dir / "arms", ec);
  if (ec) throw IoError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  write_atomic(dir / "experiment.yaml", plan.resolved_yaml());
  write_atomic(dir / "scenario.yaml", plan.base_scenario_yaml);
  if (plan.kind == Kind::Arms && !plan.spec.arms.empty()) {
    for (const auto& g : plan.groups) write_atomic(dir / "arms" / (g.name + ".yaml"), g.scenario_yaml);
  } else {
    fs::remove(dir / "arms", ec);
  }
  return std::make_unique<Journal>(dir, plan, true);
}

[[noreturn]] void throw_with_code(int code, const std::string& message) {
  if (code == 130) throw Interrupted(message);
  if (code == 2) throw ConfigError(message);
  throw ModelError(message);
}

int exit_code_of(std::exception_ptr e, std::string& message) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& x) {
    message = x.what();
    return x.exit_code();
  } catch (const std::exception& x) {
    message = x.what();
    return 1;
  }
}

/// Progress for logs: when stderr is not a terminal (mpirun, nohup, CI), Progress stays silent,
/// so a plain line is printed at most every 30 s.
class LogProgress {
 public:
  LogProgress(std::string label, std::int64_t total, bool enabled)
      : label_(std::move(label)), total_(total), enabled_(enabled && ::isatty(STDERR_FILENO) != 1) {}
  void update(std::int64_t done) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(30)) return;
    last_ = now;
    std::cerr << format_progress_line(label_, done, total_, std::chrono::duration<double>(now - start_).count())
              << std::endl;
  }

 private:
  std::string label_;
  std::int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_;
};

}  // namespace

Outcome run_experiment(const fs::path& file, const std::vector<std::string>& overrides, const RunOptions& options,
                       const mpi::Session& session) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string started = utc_now();
  const bool root = session.rank() == 0;
  Outcome out;
  Plan plan;
  std::vector<std::int64_t> pending;
  std::unique_ptr<Journal> journal;

  // 1. Rank 0 plans, prepares the directory and tells every rank what is left to do.
  std::string setup;
  if (root) {
    try {
      plan = load_plan(file, overrides);
      out.dir = options.out_dir.empty() ? fs::path("piracy-output") / plan.spec.name : options.out_dir;
      bool resumed = false;
      journal = open_directory(plan, out.dir, options, resumed);
      for (std::int64_t id = 0; id < plan.runs(); ++id)
        if (journal->done().count(id) == 0) pending.push_back(id);
      out.resumed = plan.runs() - static_cast<std::int64_t>(pending.size());
      if (session.size() > 1) setup = json{{"status", 0}, {"plan", plan_to_json(plan)}, {"pending", pending}}.dump();
    } catch (...) {
      std::string message;
      const int code = exit_code_of(std::current_exception(), message);
      if (session.size() > 1) {
        setup = json{{"status", code}}.dump();
        session.broadcast(setup);
      }
      throw;
    }
    session.broadcast(setup);
  } else {
    session.broadcast(setup);
    const json j = json::parse(setup);
    if (j.at("status").get<int>() != 0) {
      out.exit_code = j.at("status").get<int>();
      return out;
    }
    plan = plan_from_json(j.at("plan"));
    pending = j.at("pending").get<std::vector<std::int64_t>>();
  }
  out.runs = plan.runs();

  // 2. Every rank runs its share (round-robin over the runs left) on a worker thread; this
  //    thread journals (rank 0) or forwards (ranks > 0) each finished run as it comes.
  std::vector<std::int64_t> mine;
  for (std::size_t i = 0; i < pending.size(); ++i)
    if (static_cast<int>(i % static_cast<std::size_t>(session.size())) == session.rank()) mine.push_back(pending[i]);
  const int per_run = static_cast<int>(plan.spec.threads_per_run);
  int jobs = options.jobs > 0 ? options.jobs : std::max(1, tbb::info::default_concurrency() / per_run);
  jobs = std::max(1, std::min<int>(jobs, static_cast<int>(std::max<std::size_t>(1, mine.size()))));

  if (root && options.progress) {
    std::cerr << fmt::format("experiment {}: {} runs ({} {} x {} replicates){}; {} to run on {} rank{} x {} job{}\n",
                             plan.spec.name, plan.runs(), plan.groups.size(),
                             plan.kind == Kind::Arms ? "arms" : "design points", plan.seeds.size(),
                             out.resumed > 0 ? fmt::format(", {} already journaled", out.resumed) : "",
                             pending.size(), session.size(), session.size() == 1 ? "" : "s", jobs,
                             jobs == 1 ? "" : "s");
  }

  struct Shared {
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::string> lines;
    bool done = false;
    std::exception_ptr error;
  } shared;
  std::thread worker([&] {
    try {
      tbb::task_arena arena(jobs);
      arena.execute([&] {
        tbb::parallel_for(
            tbb::blocked_range<std::size_t>(0, mine.size(), 1),
            [&](const tbb::blocked_range<std::size_t>& r) {
              for (std::size_t i = r.begin(); i != r.end(); ++i) {
                std::string line = to_journal_line(execute_run(plan, mine[i], per_run));
                {
                  std::lock_guard lock(shared.m);
                  shared.lines.push_back(std::move(line));
                }
                shared.cv.notify_one();
              }
            },
            tbb::simple_partitioner());
      });
    } catch (...) {
      std::lock_guard lock(shared.m);
      shared.error = std::current_exception();
    }
    {
      std::lock_guard lock(shared.m);
      shared.done = true;
    }
    shared.cv.notify_one();
  });

  const std::string label = fmt::format("experiment {}", plan.spec.name);
  Progress bar(label, static_cast<std::int64_t>(pending.size()), root && options.progress);
  LogProgress log(label, static_cast<std::int64_t>(pending.size()), root && options.progress);
  int remote_done = 0;
  int remote_code = 0;
  std::string remote_error;
  const auto journal_line = [&](const std::string& line) {
    const RunRecord r = from_journal_line(line);
    if (journal->done().count(r.id) != 0) return;  // never journal a run twice
    journal->append(line);
    journal->mark(r.id);
    ++out.executed;
  };
  try {
    for (;;) {
      std::deque<std::string> batch;
      bool local_done = false;
      {
        std::unique_lock lock(shared.m);
        shared.cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return !shared.lines.empty() || shared.done; });
        batch.swap(shared.lines);
        local_done = shared.done;
      }
      for (const auto& line : batch) {
        if (root) {
          journal_line(line);
        } else {
          session.send_to_root(mpi::kTagResult, line);
        }
      }
      if (root) {
        while (auto msg = session.poll()) {
          if (msg->tag == mpi::kTagResult) {
            journal_line(msg->text);
          } else if (msg->tag == mpi::kTagDone) {
            ++remote_done;
            const json status = json::parse(msg->text);
            if (status.at("status").get<int>() != 0 && remote_code == 0) {
              remote_code = status.at("status").get<int>();
              remote_error = fmt::format("rank {}: {}", msg->source, status.value("error", ""));
            }
          }
        }
        bar.update(out.executed);
        log.update(out.executed);
      }
      if (local_done && (!root || remote_done == session.size() - 1)) break;
    }
  } catch (const std::exception& e) {
    // This thread failed (a journal write, a message): stop the workers at their next tick.
    g_cancel.store(true, std::memory_order_relaxed);
    worker.join();
    g_cancel.store(false, std::memory_order_relaxed);
    if (session.size() > 1) {  // the other ranks cannot be told in order: stop them all
      std::cerr << fmt::format("piracy-abm experiment (rank {}): {}\n", session.rank(), e.what());
      session.abort(1);
    }
    throw;
  }
  worker.join();
  bar.finish();

  if (!root) {
    json status = {{"status", 0}};
    if (shared.error) {
      std::string message;
      status["status"] = exit_code_of(shared.error, message);
      status["error"] = message;
      out.exit_code = status["status"].get<int>();
    }
    session.send_to_root(mpi::kTagDone, status.dump());
    return out;
  }

  if (shared.error || remote_code != 0) {
    std::string message;
    int code = remote_code;
    if (shared.error) {
      code = exit_code_of(shared.error, message);
    } else {
      message = remote_error;
    }
    const auto journaled = static_cast<std::int64_t>(journal->done().size());
    if (code == 130) {
      throw Interrupted(fmt::format("{}: {} of {} runs are journaled in {}; continue with --resume", message, journaled,
                                    plan.runs(), out.dir.string()));
    }
    throw_with_code(code, fmt::format("{}\n({} of {} runs are journaled in {}; after a fix, continue with --resume)",
                                      message, journaled, plan.runs(), out.dir.string()));
  }

  // 3. The tables, from the journal alone: the same bytes after any interruption and resume.
  const std::vector<RunRecord> records = read_journal(journal->path());
  write_atomic(out.dir / "runs.csv", runs_csv(plan, records));
  out.files = {"experiment.yaml", "scenario.yaml", "journal.jsonl", "runs.csv", "means.csv"};
  write_atomic(out.dir / "means.csv", means_csv(plan, records));
  if (plan.kind == Kind::Arms) {
    write_atomic(out.dir / "effects.csv", effects_csv(plan, records));
    out.files.push_back("effects.csv");
    if (!plan.spec.arms.empty()) out.files.push_back("arms/");
  }
  if (plan.spec.series) {
    write_atomic(out.dir / "series.csv", series_csv(plan, records));
    out.files.push_back("series.csv");
  }
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.files.push_back("manifest.json");
  const json manifest = {
      {"program", "piracy-abm"},
      {"version", kVersion},
      {"git_commit", kGitCommit},
      {"experiment", plan.spec.name},
      {"source", plan.source},
      {"overrides", overrides},
      {"kind", plan.kind == Kind::Arms ? "arms" : "design"},
      {"design", plan.spec.design.type},
      {"groups", plan.groups.size()},
      {"replicates", plan.seeds.size()},
      {"runs", plan.runs()},
      {"resumed_runs", out.resumed},
      {"runs_this_session", out.executed},
      {"seed", plan.spec.seed},
      {"replicate_seeds", plan.seeds},
      {"plan_digest", plan.digest()},
      {"mpi_ranks", session.size()},
      {"jobs_per_rank", jobs},
      {"threads_per_run", per_run},
      {"started_utc", started},
      {"wall_seconds", out.wall_seconds},
      {"metrics", metric_names()},
      {"files", out.files},
      {"note", "runs.csv, effects.csv, means.csv and series.csv are built from journal.jsonl and do not depend on "
               "threads, jobs, MPI ranks or interruptions; one run replays with: piracy-abm run arms/<arm>.yaml "
               "--seed <seed> (or scenario.yaml with the design point's --set overrides)"}};
  write_atomic(out.dir / "manifest.json", manifest.dump(2) + "\n");
  return out;
}

}  // namespace piracy::experiment
