// Tests of the strict YAML configuration machinery (engine/config.hpp).
// Every error test checks the exact "FILE:LINE:COLUMN: error: KEY: ..." prefix: the location
// is what lets a user find the mistake, so it is the part most worth pinning.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <unistd.h>

#include "engine/config.hpp"

namespace fs = std::filesystem;
using piracy::ConfigError;
using piracy::Date;
using namespace piracy::config;

namespace cfgtest {

// A small schema with every supported field type.
struct Operation {
  Date date = Date::from_ymd(2020, 8, 25);
  int servers = 0;
  std::vector<std::string> countries;
  bool operator==(const Operation&) const = default;
};

void describe(Visitor& v, Operation& o) {
  v.field("date", o.date, {.doc = "Day of the raid", .unit = "date", .required = true});
  v.field("servers", o.servers, {.doc = "Servers seized", .min = 0});
  v.field("countries", o.countries, {.doc = "ISO country codes"});
}

struct Enforcement {
  double chill = 0.5;
  std::string target = "top_tiers";
  std::vector<Operation> operations;
  bool operator==(const Enforcement&) const = default;
};

void describe(Visitor& v, Enforcement& e) {
  v.field("chill", e.chill, {.doc = "Chilling effect", .min = 0, .max = 1, .source = "assumption"});
  v.field("target", e.target, {.doc = "Targeting rule", .choices = {"top_tiers", "sellers", "groups"}});
  v.field("operations", e.operations, {.doc = "Scheduled operations"});
  for (std::size_t i = 0; i < e.operations.size(); ++i) {
    v.check(e.operations[i].date >= Date::from_ymd(2011, 1, 1), "operations[" + std::to_string(i) + "].date",
            "must lie within the horizon [2011-01-01, 2021-12-31]");
  }
}

struct Scenario {
  std::uint64_t seed = 42;
  Date start = Date::from_ymd(2011, 1, 1);
  Date end = Date::from_ymd(2021, 12, 31);
  bool seatbelts = true;
  std::int64_t big = std::int64_t{1} << 40;
  double rate = 0.25;
  std::vector<double> weights = {0.5, 0.5};
  std::vector<int> tiers = {2, 3, 4};
  std::vector<std::vector<double>> matrix = {{1, 0}, {0, 1}};
  std::string name = "default";
  Enforcement enforcement;
  bool operator==(const Scenario&) const = default;
};

void describe(Visitor& v, Scenario& s) {
  v.field("seed", s.seed, {.doc = "Random seed"});
  v.field("start", s.start, {.doc = "First reported day", .unit = "date"});
  v.field("end", s.end, {.doc = "Last reported day", .unit = "date"});
  v.field("seatbelts", s.seatbelts, {.doc = "Invariant checks"});
  v.field("big", s.big, {.doc = "A 64-bit count"});
  v.field("rate", s.rate, {.doc = "A rate", .unit = "per day", .min = 0, .exclusive_min = true});
  v.field("weights", s.weights, {.doc = "Weights", .min = 0, .max = 1});
  v.field("tiers", s.tiers, {.doc = "Sites per tier", .min = 1});
  v.field("matrix", s.matrix, {.doc = "A matrix", .min = -1});
  v.field("name", s.name, {.doc = "Scenario name"});
  v.field("enforcement", s.enforcement, {.doc = "Enforcement block"});
  v.check(s.end > s.start, "end", "must be after start (" + s.start.iso() + ")");
}

struct Required {
  int must = 0;
  bool operator==(const Required&) const = default;
};
void describe(Visitor& v, Required& r) { v.field("must", r.must, {.doc = "A key that must be given", .required = true}); }

struct Holder {
  Required inner;
  bool operator==(const Holder&) const = default;
};
void describe(Visitor& v, Holder& h) { v.field("inner", h.inner, {.doc = "Holds a required key"}); }

}  // namespace cfgtest

namespace {

using cfgtest::Scenario;

std::string fixtures() { return std::string(PIRACY_SOURCE_DIR) + "/tests/engine/config_fixtures/"; }

/// The ConfigError message of `f`, or "" if it did not throw one.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(const std::string& yaml) {
  return error_of([&] { (void)parse<Scenario>(parse_yaml(yaml, "t.yaml")); });
}

/// A fresh folder under the system temporary directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("piracy_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path write(const std::string& name, const std::string& content) const {
    const fs::path p = path / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
};

}  // namespace

TEST_CASE("parse_yaml keeps 1-based locations, key locations and quoting", "[config]") {
  const Node root = parse_yaml("a: 1\nb:\n  c: \"x\"\n  d: [1, 2]\ne:\n", "f.yaml");
  REQUIRE(root.kind == Node::Kind::Map);
  CHECK(root.file == "f.yaml");
  CHECK(root.line == 1);
  CHECK(root.column == 1);
  const Node* a = root.find("a");
  REQUIRE(a);
  CHECK(a->scalar == "1");
  CHECK(a->line == 1);
  CHECK(a->column == 4);
  CHECK(a->key_column == 1);
  CHECK_FALSE(a->quoted);
  const Node* c = root.find("b")->find("c");
  REQUIRE(c);
  CHECK(c->quoted);
  CHECK(c->line == 3);
  CHECK(c->column == 6);
  const Node* d = root.find("b")->find("d");
  REQUIRE(d->kind == Node::Kind::Sequence);
  REQUIRE(d->seq.size() == 2);
  CHECK(d->seq[1].column == 10);
  // An empty value is located at its key (yaml-cpp would put it on the next line).
  const Node* e = root.find("e");
  REQUIRE(e);
  CHECK(e->kind == Node::Kind::Null);
  CHECK(e->line == 5);
  CHECK(e->column == 1);
  // Document order is kept.
  CHECK(root.map[0].first == "a");
  CHECK(root.map[2].first == "e");
  CHECK(root.find("zz") == nullptr);
}

TEST_CASE("a valid configuration parses into the struct", "[config]") {
  const Scenario s = parse<Scenario>(parse_yaml(R"(
seed: 7
start: 2012-03-04
seatbelts: false
big: -9000000000
rate: 1e-3
weights: [0, 1, 0.25]
tiers: [2, 3]
matrix:
  - [1, 2.5]
  - [-1]
name: "x y"
enforcement:
  target: groups
  operations:
    - date: 2020-08-25
      servers: 60
      countries: [US, NL]
    - {date: 2015-06-01}
)",
                                                "ok.yaml"));
  CHECK(s.seed == 7u);
  CHECK(s.start == Date::from_ymd(2012, 3, 4));
  CHECK(s.end == Date::from_ymd(2021, 12, 31));  // default kept
  CHECK_FALSE(s.seatbelts);
  CHECK(s.big == -9000000000LL);
  CHECK(s.rate == 1e-3);
  CHECK(s.weights == std::vector<double>{0, 1, 0.25});
  CHECK(s.tiers == std::vector<int>{2, 3});
  CHECK(s.matrix == std::vector<std::vector<double>>{{1, 2.5}, {-1}});
  CHECK(s.name == "x y");
  CHECK(s.enforcement.chill == 0.5);  // default kept
  CHECK(s.enforcement.target == "groups");
  REQUIRE(s.enforcement.operations.size() == 2);
  CHECK(s.enforcement.operations[0].servers == 60);
  CHECK(s.enforcement.operations[0].countries == std::vector<std::string>{"US", "NL"});
  CHECK(s.enforcement.operations[1].date == Date::from_ymd(2015, 6, 1));
  CHECK(s.enforcement.operations[1].servers == 0);  // element default
}

TEST_CASE("unknown keys are rejected with the nearest known key", "[config]") {
  CHECK(parse_error("seed: 1\nenforcement:\n  operatons: []\n") ==
        "t.yaml:3:3: error: enforcement.operatons: unknown key; did you mean 'operations'? allowed "
        "keys: chill, target, operations");
  // Far from every key: no suggestion, but the list of allowed keys.
  CHECK(parse_error("zzzzzzzz: 1\n") ==
        "t.yaml:1:1: error: zzzzzzzz: unknown key; allowed keys: seed, start, end, seatbelts, big, "
        "rate, weights, tiers, matrix, name, enforcement");
  // A transposition is one edit.
  CHECK_THAT(parse_error("strat: 2012-01-01\n"), Catch::Contains("did you mean 'start'?"));
  // Inside a list entry: the path carries the index.
  CHECK(parse_error("enforcement:\n  operations:\n    - date: 2020-01-01\n      severs: 3\n")
            .starts_with("t.yaml:4:7: error: enforcement.operations[0].severs: unknown key; did you mean "
                         "'servers'?"));
  // parse_yaml does not resolve extends: say where it is resolved.
  CHECK_THAT(parse_error("extends: base.yaml\n"),
             Catch::StartsWith("t.yaml:1:1: error: extends: unknown key; `extends` is resolved by load_file()"));
  // Merge keys are not YAML 1.2 and not supported: say so.
  CHECK_THAT(parse_error("enforcement:\n  <<: {chill: 0.1}\n"),
             Catch::StartsWith("t.yaml:2:3: error: enforcement.<<: YAML merge keys (<<) are not supported; use "
                               "`extends:`"));
}

TEST_CASE("wrong types are reported at the offending node", "[config]") {
  CHECK(parse_error("rate:\n  a: 1\n") ==
        "t.yaml:2:3: error: rate: wrong type: a map where a number is expected; write a single value "
        "after the colon");
  CHECK(parse_error("rate: abc\n") ==
        "t.yaml:1:7: error: rate = abc: not a number; write a decimal number such as 0.25, 3 or 1e-3");
  CHECK(parse_error("enforcement:\n  operations:\n    - date: 2020-01-01\n      servers: 1.5\n") ==
        "t.yaml:4:16: error: enforcement.operations[0].servers = 1.5: not an integer; write a whole "
        "number such as 3 (no decimal point or exponent)");
  CHECK(parse_error("seatbelts: yes\n") ==
        "t.yaml:1:12: error: seatbelts = yes: not a boolean; write true or false (yes/no/on/off are not "
        "accepted)");
  CHECK_THAT(parse_error("seatbelts: True\n"), Catch::StartsWith("t.yaml:1:12: error: seatbelts = True: not a boolean"));
  CHECK_THAT(parse_error("seed: \"42\"\n"),
             Catch::StartsWith("t.yaml:1:7: error: seed = \"42\": a quoted string where an integer is expected"));
  CHECK_THAT(parse_error("weights: 0.5\n"),
             Catch::StartsWith("t.yaml:1:10: error: weights = 0.5: wrong type: a single value where a list "
                               "is expected"));
  CHECK_THAT(parse_error("matrix: [1, 2]\n"),
             Catch::StartsWith("t.yaml:1:10: error: matrix[0] = 1: wrong type: a single value where a list"));
  CHECK_THAT(parse_error("enforcement: [1]\n"),
             Catch::StartsWith("t.yaml:1:14: error: enforcement: wrong type: a list where a map of keys is expected"));
  CHECK_THAT(parse_error("name:\n"),
             Catch::StartsWith("t.yaml:1:1: error: name: wrong type: no value (null) where a string is expected"));
  CHECK_THAT(parse_error("tiers: [1, x]\n"), Catch::StartsWith("t.yaml:1:12: error: tiers[1] = x: not a number"));
}

TEST_CASE("numbers must be finite, in range and fit their type", "[config]") {
  CHECK(parse_error("enforcement:\n  operations:\n    - date: 2020-01-01\n      servers: -3\n") ==
        "t.yaml:4:16: error: enforcement.operations[0].servers = -3: must be >= 0");
  CHECK(parse_error("enforcement: {chill: 1.5}\n") ==
        "t.yaml:1:22: error: enforcement.chill = 1.5: must be in [0, 1]");
  CHECK(parse_error("rate: 0\n") == "t.yaml:1:7: error: rate = 0: must be > 0");
  CHECK(parse_error("weights: [0.5, -0.1]\n") == "t.yaml:1:16: error: weights[1] = -0.1: must be in [0, 1]");
  CHECK(parse_error("matrix: [[0], [0, -2]]\n") == "t.yaml:1:19: error: matrix[1][1] = -2: must be >= -1");
  for (const char* bad : {".nan", ".NaN", "nan", ".inf", "-.inf", "inf", "+Infinity"}) {
    INFO(bad);
    CHECK(parse_error(std::string("rate: ") + bad + "\n") ==
          std::string("t.yaml:1:7: error: rate = ") + bad +
              ": not a finite number; NaN and infinity are not allowed, write a finite number");
  }
  CHECK_THAT(parse_error("rate: 1e999\n"),
             Catch::StartsWith("t.yaml:1:7: error: rate = 1e999: out of range for a double (overflow)"));
  CHECK(parse_error("tiers: [1, 99999999999]\n") ==
        "t.yaml:1:12: error: tiers[1] = 99999999999: out of range; an integer here lies in "
        "[-2147483648, 2147483647]");
  CHECK_THAT(parse_error("big: 9223372036854775808\n"),
             Catch::StartsWith("t.yaml:1:6: error: big = 9223372036854775808: out of range"));
  CHECK(parse_error("seed: -1\n") == "t.yaml:1:7: error: seed = -1: negative; must be >= 0");
  // Accepted edge forms: explicit plus sign, the extreme 64-bit values, subnormal underflow.
  const Scenario s = parse<Scenario>(
      parse_yaml("seed: 18446744073709551615\nbig: -9223372036854775808\nrate: +2.5\nweights: [1e-400]\n", "t.yaml"));
  CHECK(s.seed == std::numeric_limits<std::uint64_t>::max());
  CHECK(s.big == std::numeric_limits<std::int64_t>::min());
  CHECK(s.rate == 2.5);
  CHECK(s.weights == std::vector<double>{0.0});
}

TEST_CASE("choices, dates and duplicate keys", "[config]") {
  CHECK(parse_error("enforcement:\n  target: seller\n") ==
        "t.yaml:2:11: error: enforcement.target = seller: not one of the allowed values; did you mean "
        "'sellers'? allowed: top_tiers, sellers, groups");
  CHECK(parse_error("start: 2020-13-01\n") ==
        "t.yaml:1:8: error: start = 2020-13-01: not a valid date; must be an ISO date YYYY-MM-DD, e.g. "
        "2020-08-25");
  CHECK_THAT(parse_error("start: 2020/01/01\n"), Catch::Contains("must be an ISO date YYYY-MM-DD"));
  CHECK(parse_error("seed: 1\nenforcement:\n  chill: 0.1\n  chill: 0.2\n") ==
        "t.yaml:4:3: error: enforcement.chill: duplicate key; first defined at line 3, column 3; a key "
        "may appear once per map");
}

TEST_CASE("missing required keys and failed checks are located", "[config]") {
  // Missing required key: at the enclosing map (the list entry starts at line 3, column 7).
  CHECK(parse_error("enforcement:\n  operations:\n    - servers: 1\n") ==
        "t.yaml:3:7: error: enforcement.operations[0].date: missing required key; add `date:` to this map "
        "(Day of the raid)");
  // A required key in a block that is absent altogether: at the nearest enclosing node present.
  CHECK(error_of([] { (void)parse<cfgtest::Holder>(parse_yaml("# nothing\n", "h.yaml")); }) ==
        "h.yaml:1:1: error: inner.must: missing required key; add `must:` to this map (A key that must be "
        "given)");
  CHECK(error_of([] { (void)parse<cfgtest::Holder>(parse_yaml("inner:\n  must: 3\n", "h.yaml")); }).empty());
  // A failed check on a key that is present: at that key's value, with the value.
  CHECK(parse_error("start: 2015-01-01\nend: 2014-12-31\n") ==
        "t.yaml:2:6: error: end = 2014-12-31: must be after start (2015-01-01)");
  // ... on a key that is absent (end keeps its default): at the enclosing map.
  CHECK(parse_error("seed: 3\nstart: 2030-01-01\n") ==
        "t.yaml:1:1: error: end: must be after start (2030-01-01)");
  // A check that names an element of a list.
  CHECK(parse_error("enforcement:\n  operations:\n    - date: 2020-01-01\n    - date: 2001-01-01\n") ==
        "t.yaml:4:13: error: enforcement.operations[1].date = 2001-01-01: must lie within the horizon "
        "[2011-01-01, 2021-12-31]");
  // Unknown keys are reported before missing keys and failed checks: a misspelt key is the cause.
  CHECK_THAT(parse_error("enforcement:\n  operations:\n    - dat: 2020-01-01\n"),
             Catch::StartsWith("t.yaml:3:7: error: enforcement.operations[0].dat: unknown key; did you mean 'date'?"));
}

TEST_CASE("malformed YAML and document rules", "[config]") {
  CHECK(error_of([] { (void)parse_yaml("a: [1, 2\n", "m.yaml"); }) ==
        "m.yaml:2:1: error: malformed YAML: end of sequence flow not found");
  CHECK(error_of([] { (void)parse_yaml("a: 1\n b: 2\n", "m.yaml"); }) ==
        "m.yaml:2:3: error: malformed YAML: illegal map value");
  CHECK_THAT(error_of([] { (void)parse_yaml("- 1\n- 2\n", "m.yaml"); }),
             Catch::StartsWith("m.yaml:1:1: error: the top level is a list; a configuration must be a map"));
  CHECK_THAT(error_of([] { (void)parse_yaml("~\n", "m.yaml"); }),
             Catch::StartsWith("m.yaml:1:1: error: the top level is null"));
  CHECK_THAT(error_of([] { (void)parse_yaml("just text\n", "m.yaml"); }),
             Catch::StartsWith("m.yaml:1:1: error: the top level is a single value"));
  CHECK_THAT(error_of([] { (void)parse_yaml("a: 1\n---\nb: 2\n", "m.yaml"); }),
             Catch::StartsWith("m.yaml:2:1: error: a second YAML document starts here"));
  CHECK_THAT(error_of([] { (void)parse_yaml("[a]: 1\n", "m.yaml"); }),
             Catch::StartsWith("m.yaml:1:1: error: a key must be a plain string"));
  // Empty documents stand for an empty map: every field takes its default.
  for (const char* empty : {"", "\n\n", "# only a comment\n  # another\n", "---\n", "--- # c\n...\n"}) {
    INFO(empty);
    const Node root = parse_yaml(empty, "e.yaml");
    CHECK(root.kind == Node::Kind::Map);
    CHECK(root.map.empty());
    CHECK(parse<Scenario>(root) == Scenario{});
  }
}

TEST_CASE("hostile input: nesting, alias bombs, binary data, size", "[config]") {
  // 64 nested lists are allowed, 65 are not (kMaxDepth).
  const auto nested = [](int depth) { return "a: " + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "\n"; };
  CHECK_NOTHROW(parse_yaml(nested(64), "d.yaml"));
  CHECK(error_of([&] { (void)parse_yaml(nested(65), "d.yaml"); }) ==
        "d.yaml:1:67: error: nesting deeper than 64 levels of lists and maps; flatten the structure");
  // Far deeper than yaml-cpp's own recursion guard (2000): still a clean error, no crash.
  CHECK_THAT(error_of([&] { (void)parse_yaml(nested(100000), "d.yaml"); }),
             Catch::Contains("error: nesting deeper than 64 levels"));
  // A self-referencing alias would be a cycle (yaml-cpp's own loader builds one).
  CHECK(error_of([] { (void)parse_yaml("a: &x [1, *x]\n", "d.yaml"); }) ==
        "d.yaml:1:11: error: an alias refers to the anchor that contains it (a recursive alias); remove it");
  // Aliases count towards the depth too: 40 levels inside 40 levels.
  const std::string forty = std::string(39, '[') + std::string(39, ']');
  CHECK_THAT(error_of([&] { (void)parse_yaml("a: &x " + forty + "\nb: " + forty.substr(0, 39) + "*x" + forty.substr(39) + "\n", "d.yaml"); }),
             Catch::StartsWith("d.yaml:2:43: error: nesting deeper than 64 levels"));

  // Billion laughs: 9 levels of 10 aliases = 10^9 nodes once expanded, a few hundred bytes here.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  const auto t0 = std::chrono::steady_clock::now();
  // Reported at the alias that would cross the budget (a5's first *a4: 10^4-node copies).
  CHECK(error_of([&] { (void)parse_yaml(bomb, "bomb.yaml"); }) ==
        "bomb.yaml:6:10: error: more than 200000 nodes after expanding aliases (an alias bomb?); use fewer "
        "anchors and aliases");
  // Measured before anything is built: milliseconds, not the seconds that building 200,000
  // nodes takes (the bound is loose for sanitizer builds on a loaded machine).
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  // Aliases within the limit are expanded.
  const Node small = parse_yaml("a: &v [1, 2]\nb: *v\n", "s.yaml");
  CHECK(small.find("b")->seq.size() == 2);

  // Invalid UTF-8 (0xFF never occurs in UTF-8) at line 2, column 4.
  CHECK(error_of([] { (void)parse_yaml("a: 1\nb: \xFF\xFE\x01\n", "bin.yaml"); }) ==
        "bin.yaml:2:4: error: byte 0xFF is not valid UTF-8; configuration files must be UTF-8 text (is "
        "this a binary file, or saved in another encoding?)");
  // Columns count characters, not bytes: "é" is one column.
  CHECK_THAT(error_of([] { (void)parse_yaml("é: \xC3(\n", "bin.yaml"); }), Catch::StartsWith("bin.yaml:1:4: error: byte 0xC3"));
  CHECK_THAT(error_of([] { (void)parse_yaml(std::string("a: x\0y\n", 7), "bin.yaml"); }),
             Catch::StartsWith("bin.yaml:1:5: error: control character U+0000 is not allowed"));
  // A CR without an LF (old Mac line endings) is refused at its place; CRLF is fine.
  CHECK(error_of([] { (void)parse_yaml("a: 1\rb: 2\r", "cr.yaml"); }) ==
        "cr.yaml:1:5: error: a carriage return (CR) that is not followed by a line feed; save the file "
        "with LF (Unix) or CRLF (Windows) line endings");
  CHECK_THAT(error_of([] { (void)parse_yaml("a: 1\r\nb: e\r", "cr.yaml"); }), Catch::StartsWith("cr.yaml:2:5: error: a carriage return"));
  CHECK(parse_yaml("a: 1\r\nb: e\r\n", "crlf.yaml").find("b")->scalar == "e");
  CHECK(parse_yaml("a: \"e\\r\"\n", "esc.yaml").find("a")->scalar == "e\r");
  {
    Node root = parse_yaml("a: 1\n", "s.yaml");
    CHECK(error_of([&] { apply_override(root, "a=e\r"); }) ==
          "--set:1:4: error: a carriage return (CR) in a --set value; remove it (write \"\\r\" in double quotes for "
          "a CR in a string)");
  }
  // DEL and C1 controls written as escapes are refused too (yaml-cpp would emit them raw);
  // NEL is printable in YAML and allowed.
  CHECK(error_of([] { (void)parse_yaml("a: 1\nb: \"x\\x7f\"\n", "esc.yaml"); }) ==
        "esc.yaml:2:4: error: control character U+007F (written as an escape) is not allowed in a value; remove it");
  CHECK_THAT(error_of([] { (void)parse_yaml("b: \"\\x80\"\n", "esc.yaml"); }), Catch::Contains("U+0080 (written as an escape)"));
  CHECK_THAT(error_of([] { (void)parse_yaml("b: \"\\u009f\"\n", "esc.yaml"); }), Catch::Contains("U+009F (written as an escape)"));
  CHECK(parse_yaml("b: \"\\x85\"\n", "esc.yaml").find("b")->scalar == "\u0085");
  // Overlong encoding of '/' and a UTF-16 surrogate are not UTF-8 either.
  CHECK_THAT(error_of([] { (void)parse_yaml("a: \xC0\xAF\n", "bin.yaml"); }), Catch::Contains("not valid UTF-8"));
  CHECK_THAT(error_of([] { (void)parse_yaml("a: \xED\xA0\x80\n", "bin.yaml"); }), Catch::Contains("not valid UTF-8"));
  // Valid multilingual text passes.
  CHECK(parse_yaml("name: \"Décary-Hétu 日本 🎬\"\n", "u.yaml").find("name")->scalar == "Décary-Hétu 日本 🎬");

  // Size: one byte over 16 MiB is refused before parsing.
  CHECK_THAT(error_of([] { (void)parse_yaml(std::string(kMaxFileBytes + 1, '#'), "big.yaml"); }),
             Catch::StartsWith("big.yaml: error: file too large: 16777217 bytes; the limit is 16777216 bytes"));
}

TEST_CASE("files: missing, directory, binary, empty, oversized", "[config]") {
  TempDir dir;
  const std::string missing = (dir.path / "nope.yaml").string();
  CHECK(error_of([&] { (void)load_file(missing); }) ==
        missing + ": error: cannot open: No such file or directory; check the path");
  CHECK(error_of([&] { (void)load_file(dir.path); }) ==
        dir.path.string() + ": error: cannot open: is a directory; check the path (give a YAML file)");
  const fs::path bin = dir.write("garbage.yaml", std::string("\x7F" "ELF\x02\x01\x01\x00\x00\x00\x89\xFF", 12));
  CHECK_THAT(error_of([&] { (void)load_file(bin); }),
             Catch::StartsWith(bin.string() + ":1:1: error: control character U+007F"));
  const fs::path empty = dir.write("empty.yaml", "");
  const Node root = load_file(empty);
  CHECK(root.kind == Node::Kind::Map);
  CHECK(root.map.empty());
  const fs::path big = dir.write("big.yaml", std::string(kMaxFileBytes + 10, '#'));
  CHECK(error_of([&] { (void)load_file(big); }) ==
        big.string() + ": error: file too large: 16777226 bytes; the limit is 16777216 bytes (16 MiB) -- is "
                       "this the right file?");
}

TEST_CASE("extends: the child wins, maps merge, lists are replaced", "[config]") {
  const Node child = load_file(fixtures() + "child.yaml");
  CHECK(child.find("extends") == nullptr);
  const Scenario s = parse<Scenario>(child);
  CHECK(s.seed == 2u);                                  // child over parent
  CHECK(s.rate == 0.5);                                 // from the parent
  CHECK(s.weights == std::vector<double>{1.0});         // list replaced, not concatenated
  CHECK(s.name == "base");
  CHECK(s.enforcement.chill == 0.9);                    // nested map merged: child's key...
  CHECK(s.enforcement.target == "sellers");             // ...next to the parent's keys
  REQUIRE(s.enforcement.operations.size() == 2);
  CHECK(s.enforcement.operations[0].servers == 60);
  // Each node remembers its file: the merged value from the child, the inherited one from base.
  CHECK(child.find("seed")->file == fixtures() + "child.yaml");
  CHECK(child.find("seed")->line == 3);
  CHECK(child.find("rate")->file == fixtures() + "base.yaml");
  CHECK(child.find("enforcement")->find("target")->line == 8);

  // Two levels, the parent in another folder; the grandchild replaces the whole list.
  const Scenario g = parse<Scenario>(load_file(fixtures() + "sub/grandchild.yaml"));
  CHECK(g.seed == 2u);
  CHECK(g.enforcement.chill == 0.9);
  REQUIRE(g.enforcement.operations.size() == 1);
  CHECK(g.enforcement.operations[0].date == Date::from_ymd(2019, 1, 1));
  CHECK(g.enforcement.operations[0].countries.empty());

  // Errors in an inherited file point into that file.
  TempDir dir;
  dir.write("p.yaml", "seed: 1\nrate: -1\n");
  const fs::path c = dir.write("c.yaml", "extends: p.yaml\nseed: 2\n");
  CHECK(error_of([&] { (void)parse<Scenario>(load_file(c)); }) ==
        (dir.path / "p.yaml").string() + ":2:7: error: rate = -1: must be > 0");
  // extends must be a string.
  const fs::path bad = dir.write("bad.yaml", "seed: 1\nextends: [a.yaml]\n");
  CHECK_THAT(error_of([&] { (void)load_file(bad); }),
             Catch::StartsWith(bad.string() + ":2:1: error: extends: must name the parent configuration file"));
}

TEST_CASE("extends: cycles and missing parents", "[config]") {
  const std::string a = fixtures() + "cycle_a.yaml";
  const std::string b = fixtures() + "cycle_b.yaml";
  CHECK(error_of([&] { (void)load_file(a); }) ==
        b + ":2:1: error: extends: cycle " + a + " -> " + b + " -> " + a + "; remove one of these `extends`");
  TempDir dir;
  const fs::path self = dir.write("self.yaml", "extends: self.yaml\n");
  CHECK(error_of([&] { (void)load_file(self); }) ==
        self.string() + ":1:1: error: extends: cycle " + self.string() + " -> " + self.string() +
            "; remove one of these `extends`");
  const std::map<std::string, std::string> table;
  CHECK(error_of([&] { (void)load_file(fixtures() + "missing_parent.yaml", table); }) ==
        fixtures() + "missing_parent.yaml:2:1: error: extends: cannot open " + fixtures() +
            "no_such_parent.yaml: No such file or directory; check the path (embedded scenarios: (none))");
}

TEST_CASE("extends: falls back to the embedded table", "[config]") {
  const std::map<std::string, std::string> table = {
      {"virtual_base.yaml", "extends: virtual_root.yaml\nseed: 5\nname: from-table\n"},
      {"virtual_root.yaml", "rate: 0.125\nseed: 4\n"},
      {"loop_a.yaml", "extends: loop_b.yaml\n"},
      {"loop_b.yaml", "extends: loop_a.yaml\n"},
      // Same name as a fixture on disk: a disk file wins when it exists next to the child.
      {"base.yaml", "seed: 1000\n"},
  };
  // On disk -> embedded -> embedded.
  const Node root = load_file(fixtures() + "virtual_child.yaml", table);
  const Scenario s = parse<Scenario>(root);
  CHECK(s.seed == 9u);
  CHECK(s.name == "from-table");
  CHECK(s.rate == 0.125);
  CHECK(root.find("rate")->file == "<embedded>/virtual_root.yaml");
  CHECK(root.find("name")->file == "<embedded>/virtual_base.yaml");
  CHECK(parse<Scenario>(load_file(fixtures() + "child.yaml", table)).rate == 0.5);  // disk base.yaml
  // load_embedded, with or without the extension.
  CHECK(parse<Scenario>(load_embedded("virtual_base", table)).seed == 5u);
  CHECK(error_of([&] { (void)load_embedded("loop_a.yaml", table); }) ==
        "<embedded>/loop_b.yaml:1:1: error: extends: cycle <embedded>/loop_a.yaml -> <embedded>/loop_b.yaml "
        "-> <embedded>/loop_a.yaml; remove one of these `extends`");
  CHECK(error_of([&] { (void)load_embedded("nope.yaml", table); }) ==
        "<embedded>/nope.yaml: error: no embedded scenario named 'nope.yaml'; embedded scenarios: base.yaml, "
        "loop_a.yaml, loop_b.yaml, virtual_base.yaml, virtual_root.yaml");
  // Inside an embedded document, extends never looks at the disk.
  const std::map<std::string, std::string> dangling = {{"d.yaml", "extends: base.yaml\n"}};
  CHECK(error_of([&] { (void)load_embedded("d.yaml", dangling); }) ==
        "<embedded>/d.yaml:1:1: error: extends: no embedded scenario named 'base.yaml'; embedded "
        "scenarios: d.yaml");
}

TEST_CASE("every scenario compiled into the program is well-formed YAML", "[config]") {
  // The table is generated from configs/*.yaml; it may be empty early in the project.
  for (const auto& [name, text] : piracy::embedded::configs()) {
    INFO(name);
    CHECK_NOTHROW(load_embedded(name));
  }
}

TEST_CASE("overrides given with --set beat files, parse YAML values and create keys", "[config]") {
  Node root = load_file(fixtures() + "child.yaml");
  apply_override(root, "seed=11");
  apply_override(root, "weights=[0.25, 0.75]");
  apply_override(root, "enforcement.operations[1].servers=5");
  apply_override(root, "enforcement.operations[2]={date: 2016-02-02}");  // [size] appends
  apply_override(root, "matrix[0]=[3, 4]");                               // creates the list
  const Scenario s = parse<Scenario>(root);
  CHECK(s.seed == 11u);
  CHECK(s.weights == std::vector<double>{0.25, 0.75});
  REQUIRE(s.enforcement.operations.size() == 3);
  CHECK(s.enforcement.operations[1].servers == 5);
  CHECK(s.enforcement.operations[1].date == Date::from_ymd(2015, 1, 1));  // sibling key kept
  CHECK(s.enforcement.operations[2].date == Date::from_ymd(2016, 2, 2));
  CHECK(s.matrix == std::vector<std::vector<double>>{{3, 4}});
  // The value is located on the command line: column = position of the value in the argument.
  CHECK(root.find("seed")->file == "--set");
  CHECK(root.find("seed")->line == 1);
  CHECK(root.find("seed")->column == 6);
  CHECK(root.find("weights")->seq[1].column == 16);

  // Errors in overridden values point at the argument.
  Node r2 = parse_yaml("seed: 1\n", "f.yaml");
  apply_override(r2, "enforcement.chill=2");
  CHECK(error_of([&] { (void)parse<Scenario>(r2); }) == "--set:1:19: error: enforcement.chill = 2: must be in [0, 1]");
  // A misspelt key is created, then reported as unknown where it was typed.
  Node r3 = parse_yaml("seed: 1\n", "f.yaml");
  apply_override(r3, "enforcement.chil=0.2");
  CHECK(error_of([&] { (void)parse<Scenario>(r3); }) ==
        "--set:1:13: error: enforcement.chil: unknown key; did you mean 'chill'? allowed keys: chill, "
        "target, operations");

  Node r4 = parse_yaml("seed: 1\n", "f.yaml");
  CHECK_THAT(error_of([&] { apply_override(r4, "seed"); }), Catch::StartsWith("--set:1:1: error: seed: missing '='"));
  CHECK_THAT(error_of([&] { apply_override(r4, "a..b=1"); }), Catch::StartsWith("--set:1:1: error: a..b: malformed key path"));
  CHECK_THAT(error_of([&] { apply_override(r4, "=1"); }), Catch::Contains("malformed key path"));
  CHECK_THAT(error_of([&] { apply_override(r4, "seed.x=1"); }),
             Catch::StartsWith("--set:1:6: error: seed: is a single value, so it has no key 'x'"));
  CHECK_THAT(error_of([&] { apply_override(r4, "w[3]=1"); }),
             Catch::StartsWith("--set:1:2: error: w[3]: index out of range; the list has 0 entries"));
  CHECK_THAT(error_of([&] { apply_override(r4, "x=[1, 2"); }), Catch::StartsWith("--set:1:3: error: malformed YAML"));
  // The value is YAML: a quoted number stays a string and is then refused for a number.
  apply_override(r4, "rate=\"0.5\"");
  CHECK_THAT(error_of([&] { (void)parse<Scenario>(r4); }),
             Catch::StartsWith("--set:1:6: error: rate = \"0.5\": a quoted string where a number is expected"));
}

TEST_CASE("emit writes every field and reparses to an identical struct", "[config]") {
  Scenario s;
  s.seed = std::numeric_limits<std::uint64_t>::max();
  s.start = Date::from_ymd(2012, 2, 29);
  s.seatbelts = false;
  s.big = std::numeric_limits<std::int64_t>::min();
  // Doubles that need all 17 significant digits, extremes and a subnormal.
  s.rate = 0.1 + 0.2;
  s.weights = {1.0 / 3.0, 1e-300, 5e-324, 0.0, 1.0};
  s.tiers = {};
  s.matrix = {{1.5, -0.5}, {}, {1.7976931348623157e308, -0.0, 123456789.125}};
  // Strings another YAML reader would retype, or that need quoting.
  s.name = "true";
  s.enforcement.target = "groups";
  s.enforcement.operations = {
      {Date::from_ymd(2020, 8, 25), 60, {"", "null", "a: b", " lead", "#x", "1e3", "Décary-Hétu", "x\ny", "[1]",
        // Control characters (written as escapes in a double-quoted input): yaml-cpp writes them
        // raw in a plain scalar, and a trailing CR was then read back as part of the line break
        // (found by fuzz_scenario).
        "e\r", "a\rb", "\r", "tab\t", "x\r\n", "bell\a", "soh\x01", "nel\u0085"}},
      {Date::from_ymd(2011, 1, 1), 0, {}}};
  const std::string text = emit(s);
  INFO(text);
  const Scenario back = parse<Scenario>(parse_yaml(text, "emitted.yaml"));
  CHECK(back == s);
  CHECK(std::signbit(back.matrix[2][1]));
  // Emission is a fixed point, and the default struct round-trips too.
  CHECK(emit(back) == text);
  CHECK(parse<Scenario>(parse_yaml(emit(Scenario{}), "d.yaml")) == Scenario{});
  // Every field is written, including defaults; strings YAML 1.1 would retype are quoted.
  CHECK_THAT(text, Catch::Contains("end: 2021-12-31"));
  CHECK_THAT(text, Catch::Contains("chill: 0.5"));
  CHECK_THAT(text, Catch::Contains("name: \"true\""));
  CHECK_THAT(text, Catch::Contains("rate: 0.30000000000000004"));
  CHECK_THAT(text, Catch::Contains("tiers: []"));
}

TEST_CASE("document lists every field with type, default, range and source", "[config]") {
  const auto rows = document<Scenario>();
  const auto row = [&](const std::string& path) -> const DocRow* {
    for (const auto& r : rows) {
      if (r.path == path) return &r;
    }
    return nullptr;
  };
  REQUIRE(rows.size() == 17);  // 11 top-level keys + enforcement's 3 + operations[]'s 3
  CHECK(rows.front().path == "seed");
  const DocRow* seed = row("seed");
  REQUIRE(seed);
  CHECK(seed->type == "integer (unsigned 64-bit)");
  CHECK(seed->default_value == "42");
  const DocRow* rate = row("rate");
  REQUIRE(rate);
  CHECK(rate->type == "number");
  CHECK(rate->unit == "per day");
  CHECK(rate->range == "> 0");
  CHECK(rate->default_value == "0.25");
  CHECK(row("weights")->type == "list of numbers");
  CHECK(row("weights")->range == "[0, 1]");
  CHECK(row("weights")->default_value == "[0.5, 0.5]");
  CHECK(row("matrix")->type == "list of lists of numbers");
  CHECK(row("matrix")->default_value == "[[1, 0], [0, 1]]");
  CHECK(row("start")->type == "date (YYYY-MM-DD)");
  CHECK(row("start")->default_value == "2011-01-01");
  CHECK(row("enforcement")->type == "map");
  CHECK(row("enforcement.chill")->source == "assumption");
  CHECK(row("enforcement.target")->range == "one of: top_tiers, sellers, groups");
  CHECK(row("enforcement.operations")->type == "list of maps");
  CHECK(row("enforcement.operations")->default_value == "[]");
  REQUIRE(row("enforcement.operations[].date"));
  CHECK(row("enforcement.operations[].date")->default_value == "required");
  CHECK(row("enforcement.operations[].servers")->range == ">= 0");
  CHECK(row("enforcement.operations[].countries")->type == "list of strings");

  const std::string md = reference_markdown(rows, "Test reference");
  CHECK(md.starts_with("# Test reference\n"));
  CHECK_THAT(md, Catch::Contains("| Key | Type | Unit | Default | Allowed | Description | Source |"));
  CHECK_THAT(md, Catch::Contains("| `rate` | number | per day | `0.25` | > 0 | A rate |  |"));
  CHECK_THAT(md, Catch::Contains("| `enforcement.operations[].date` | date (YYYY-MM-DD) | date | **required** |"));
}

TEST_CASE("a quoted string cut off by the end of the text is an error (truncated files)", "[config]") {
  // yaml-cpp 0.7 accepts these and returns the text up to the end (found for issue 9).
  CHECK(error_of([] { (void)parse_yaml("a: 1\nname: \"half written\n", "t.yaml"); }) ==
        "t.yaml:2:7: error: unterminated quoted string: the double quote opened here is never closed (a truncated "
        "file?)");
  CHECK_THAT(error_of([] { (void)parse_yaml("name: 'half\n", "t.yaml"); }),
             Catch::StartsWith("t.yaml:1:7: error: unterminated quoted string: the single quote"));
  // Escaped quotes do not close a string. (Without the final newline yaml-cpp itself reports
  // "illegal EOF in scalar"; with it, it accepted the text.)
  CHECK_THAT(error_of([] { (void)parse_yaml("a: \"x\\\"\n", "t.yaml"); }), Catch::Contains("unterminated quoted string"));
  CHECK_THAT(error_of([] { (void)parse_yaml("a: 'it''\n", "t.yaml"); }), Catch::Contains("unterminated quoted string"));
  CHECK_THAT(error_of([] { (void)parse_yaml("a: 'half", "t.yaml"); }), Catch::Contains("error: malformed YAML: illegal EOF in scalar"));
  // Closed strings are fine: escapes, doubled single quotes, several lines, multi-byte text
  // before them, and a byte order mark (yaml-cpp's positions count bytes after it).
  CHECK(parse_yaml("a: \"x\\\"y\"\nb: 'it''s'\n", "t.yaml").find("b")->scalar == "it's");
  CHECK(parse_yaml("a: \"multi\n  line\"\n", "t.yaml").find("a")->scalar == "multi line");
  CHECK(parse_yaml("é日🎬: \"x\"\nb: 'y'\n", "t.yaml").find("b")->scalar == "y");
  CHECK(parse_yaml("\xEF\xBB\xBF" "a: \"q\"\n", "t.yaml").find("a")->scalar == "q");
}
