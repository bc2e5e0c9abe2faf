// Regression scenario: the small raid scenario (tests/support/scenarios.hpp) and its expected
// headline figures in tests/regression/small_raid_expected.json. Any change of model
// behaviour shows up here. When a change is intended, regenerate the expected figures with
//   PIRACY_REGENERATE=1 ./build/release/tests/piracy_tests "[regression][small]"
// and state the change in the commit message.
#include <catch2/catch.hpp>
#include <tbb/global_control.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "support/scenarios.hpp"

using namespace piracy;
using nlohmann::json;

namespace {
const std::string kExpected = std::string(PIRACY_SOURCE_DIR) + "/tests/regression/small_raid_expected.json";

json figures(const Simulation& sim) {
  const auto s = summarize(sim, nullptr);
  json f;
  f["releases"] = s["releases"];
  f["p2p_share"] = s["p2p_share"]["value"];
  const auto& c = s["crackdowns"][0];
  for (const char* k : {"servers_seized", "sites_seized", "countries", "arrests", "sites_dark", "releases_month_before",
                        "releases_month_after", "drop_ratio", "half_life_days"})
    f["crackdown"][k] = c[k];
  f["losses_total_usd"] = s["losses"]["total_usd"];
  f["groups"] = s["groups"];
  return f;
}

void compare(const json& got, const json& want, const std::string& path) {
  if (want.is_object()) {
    for (const auto& [k, v] : want.items()) {
      INFO(path + "." + k);
      REQUIRE(got.contains(k));
      compare(got[k], v, path + "." + k);
    }
  } else if (want.is_number()) {
    INFO(path);
    REQUIRE(got.is_number());
    // Same platform and libm: results are deterministic; the tolerance only absorbs a last-bit
    // difference from a different libm in exp/log.
    CHECK(got.get<double>() == Approx(want.get<double>()).epsilon(1e-9).margin(1e-9));
  } else {
    INFO(path);
    CHECK(got == want);
  }
}
}  // namespace

TEST_CASE("the small raid scenario reproduces its expected figures", "[regression][small][agents]") {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
  Simulation sim(testing::small_raid_scenario());
  sim.run();
  const auto got = figures(sim);
  if (std::getenv("PIRACY_REGENERATE") != nullptr) {
    std::ofstream(kExpected) << got.dump(2) << "\n";
    WARN("regenerated " << kExpected);
    return;
  }
  std::ifstream in(kExpected);
  REQUIRE(in.good());
  std::stringstream buf;
  buf << in.rdbuf();
  compare(got, json::parse(buf.str()), "figures");
}
