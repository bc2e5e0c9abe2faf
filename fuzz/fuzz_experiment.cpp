// libFuzzer target: bytes -> the experiment loader (experiment::load_plan, as
// `piracy-abm experiment FILE --dry-run` runs it: the strict ExperimentSpec schema, then every
// arm or design point resolved into a scenario).
//
// load_plan resolves every design point into a full scenario (about a millisecond each), so a
// valid design of 100,000 points takes minutes: a legitimate request, but a libFuzzer "timeout".
// The target therefore parses the spec first and only resolves plans of at most kMaxRuns arms or
// points; larger ones are still parsed and validated.
//
// The calibration and sensitivity loaders (engine/calibration.hpp check_*_file) are fuzzed on the
// same inputs; the corpus includes configs/calibration/ and configs/sensitivity/ (make_corpus.sh).
#include <cstdint>
#include <string>

#include "engine/calibration.hpp"
#include "engine/config.hpp"
#include "engine/experiment.hpp"
#include "fuzz/fuzz_common.hpp"

namespace {
constexpr std::int64_t kMaxRuns = 64;  //!< arms or design points resolved per input
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = piracy::fuzz::write_input("experiment.yaml", data, size);
  piracy::fuzz::expect_clean([&] {
    using piracy::experiment::ExperimentSpec;
    const ExperimentSpec spec = piracy::config::parse<ExperimentSpec>(piracy::config::load_file(path));
    std::int64_t runs = static_cast<std::int64_t>(spec.arms.size());
    if (spec.design.type == "grid") {
      runs = 1;
      for (const auto& p : spec.design.parameters) {
        const std::int64_t levels = p.values.empty() ? p.levels : static_cast<std::int64_t>(p.values.size());
        runs = levels > 0 && runs <= kMaxRuns ? runs * levels : runs;
      }
    } else if (spec.design.type != "none") {
      runs = spec.design.points;
    }
    if (runs > kMaxRuns) return;
    (void)piracy::experiment::load_plan(path);
  });
  // The same bytes as a calibration file and as a sensitivity file (their loaders share the
  // schema machinery and the base-scenario resolution; nothing is run).
  piracy::fuzz::expect_clean([&] { piracy::calibration::check_calibration_file(path); });
  piracy::fuzz::expect_clean([&] { piracy::calibration::check_sensitivity_file(path); });
  return 0;
}
