// libFuzzer target: bytes -> the scenario loader, as `piracy-abm check FILE` runs it
// (config::load_file: size, UTF-8, nesting, alias and `extends` rules; then the strict schema
// parse of ScenarioConfig with every range and cross-field check), and, for inputs that are
// accepted, the emit -> reparse round trip that `config.yaml` in every output relies on.
//
// `extends` is resolved like the program does; the input file sits alone in a scratch folder,
// so `extends: sparks_2020.yaml` falls back to the embedded scenarios. Run the fuzzer with
// stdin from /dev/null (`< /dev/null`): `extends: /dev/stdin` would otherwise wait for input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "agents/params.hpp"
#include "engine/config.hpp"
#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = piracy::fuzz::write_input("scenario.yaml", data, size);
  piracy::fuzz::expect_clean([&] {
    const piracy::ScenarioConfig cfg = piracy::load_scenario(path.string(), {});
    // An accepted configuration must write back to YAML that is accepted again and resolves
    // to the same configuration (engine/config.hpp: parse(emit(x)) == x).
    const std::string yaml = piracy::to_yaml(cfg);
    try {
      const auto again = piracy::config::parse<piracy::ScenarioConfig>(piracy::config::parse_yaml(yaml, "<emitted>"));
      if (piracy::to_yaml(again) != yaml) {
        std::fprintf(stderr, "piracy fuzz: emit/parse round trip changed the configuration\n");
        std::abort();
      }
    } catch (const piracy::Error& e) {
      std::fprintf(stderr, "piracy fuzz: an accepted configuration does not reparse: %s\n", e.what());
      std::abort();
    }
  });
  return 0;
}
