// libFuzzer target: bytes -> the experiment loader (experiment::load_plan, as
// `piracy-abm experiment FILE --dry-run` runs it: the strict ExperimentSpec schema, then every
// arm or design point resolved into a scenario).
//
// load_plan resolves every design point into a full scenario (about a millisecond each), so a
// valid design of 100,000 points takes minutes: a legitimate request, but a libFuzzer "timeout".
// The target therefore parses the spec first and only resolves plans of at most kMaxRuns arms or
// points; larger ones are still parsed and validated.
//
// TODO(calibration, issue 6): the calibration loader is being written on another branch. When it
// lands, add its entry point below (input bytes -> calibration file -> its load function), under
// the same expect_clean rule, and seed the corpus with configs/calibration*/ (fuzz/make_corpus.sh).
#include <cstdint>
#include <string>

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
  // TODO(calibration, issue 6): piracy::fuzz::expect_clean([&] { (void)calibration::load(path); });
  return 0;
}
