// Schema binding: strict scalar parsing, emission, reference rows, Visitor bookkeeping.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "engine/config.hpp"

namespace piracy::config {

namespace {

/// The scalar as the user wrote it (quoted if it was), shortened for messages.
std::string shown_value(const Node& n) {
  std::string s = n.scalar;
  constexpr std::size_t kMax = 60;
  if (s.size() > kMax) {
    std::size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0u) == 0x80u) --cut;  // UTF-8 boundary
    s = s.substr(0, cut) + "...";
  }
  return n.quoted ? "\"" + s + "\"" : s;
}

std::string error_text(const Node& at, std::string_view key, std::string_view message) {
  if (key.empty()) return fmt::format("{}: error: {}", location(at), message);
  return fmt::format("{}: error: {}: {}", location(at), key, message);
}

[[noreturn]] void fail_value(const Node& n, const std::string& path, std::string_view message) {
  fail(n, path + " = " + shown_value(n), message);
}

void require_scalar(const Node& n, const std::string& path, std::string_view expected) {
  if (n.kind != Node::Kind::Scalar) detail::fail_kind(n, path, expected);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions, so that
/// "strat" is one edit from "start"), case-insensitive.
std::size_t edit_distance(std::string_view a_in, std::string_view b_in) {
  const std::string a = lower(a_in);
  const std::string b = lower(b_in);
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

/// The nearest candidate, if it is near enough to be a plausible typo.
template <class Strings>
std::optional<std::string> nearest(std::string_view word, const Strings& candidates) {
  // Keys are long (40 characters is not rare): allow a third of the word, at least 2 edits,
  // but never as many edits as the word has characters ("x" is not a typo of "ab").
  if (word.size() > 200) return std::nullopt;  // not a typo; and keeps the table small
  const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  std::optional<std::string> best;
  std::size_t best_d = limit + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d && d < std::max<std::size_t>(word.size(), 1)) {
      best_d = d;
      best = std::string(c);
    }
  }
  return best;
}

template <class Strings>
std::string join(const Strings& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out.empty() ? "(none)" : out;
}

std::string number(double v) { return fmt::format("{}", v); }

/// ">= 0", "> 0", "<= 1", "[0, 1]", "(0, 1]", or "" without bounds.
std::string range_text(const Spec& spec) {
  if (spec.min && spec.max) {
    return fmt::format("{}{}, {}]", spec.exclusive_min ? "(" : "[", number(*spec.min), number(*spec.max));
  }
  if (spec.min) return fmt::format("{} {}", spec.exclusive_min ? ">" : ">=", number(*spec.min));
  if (spec.max) return fmt::format("<= {}", number(*spec.max));
  return "";
}

void check_range(const Node& n, const std::string& path, double v, const Spec& spec) {
  const bool below = spec.min && (spec.exclusive_min ? !(v > *spec.min) : v < *spec.min);
  const bool above = spec.max && v > *spec.max;
  if (below || above) {
    fail_value(n, path, fmt::format("must be {}{}", spec.min && spec.max ? "in " : "", range_text(spec)));
  }
}

bool non_finite_word(std::string_view s) {
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) s.remove_prefix(1);
  if (!s.empty() && s.front() == '.') s.remove_prefix(1);
  const std::string w = lower(s);
  return w == "nan" || w == "inf" || w == "infinity";
}

/// from_chars rejects a leading '+', which YAML allows.
std::string_view strip_plus(std::string_view s) {
  if (s.size() > 1 && s.front() == '+' && s[1] != '+' && s[1] != '-') s.remove_prefix(1);
  return s;
}

bool parses_as_double(std::string_view s) {
  s = strip_plus(s);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ptr == s.data() + s.size() && ec != std::errc::invalid_argument && !s.empty();
}

template <class I>
void parse_integer(const Node& n, I& out, const std::string& path, const Spec& spec) {
  require_scalar(n, path, "an integer");
  if (n.quoted) fail_value(n, path, "a quoted string where an integer is expected; remove the quotes");
  const std::string_view s = strip_plus(n.scalar);
  I v{};
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  const bool whole = ptr == s.data() + s.size() && !s.empty();
  if (ec == std::errc{} && whole) {
    check_range(n, path, static_cast<double>(v), spec);
    out = v;
    return;
  }
  if (ec == std::errc::result_out_of_range && whole) {
    fail_value(n, path,
               fmt::format("out of range; an integer here lies in [{}, {}]",
                           std::numeric_limits<I>::min(), std::numeric_limits<I>::max()));
  }
  if constexpr (std::is_unsigned_v<I>) {
    std::int64_t negative = 0;
    const auto [p2, e2] = std::from_chars(s.data(), s.data() + s.size(), negative);
    if ((e2 == std::errc{} || e2 == std::errc::result_out_of_range) && p2 == s.data() + s.size()) {
      fail_value(n, path, "negative; must be >= 0");
    }
  }
  if (parses_as_double(s) || non_finite_word(s)) {
    fail_value(n, path, "not an integer; write a whole number such as 3 (no decimal point or exponent)");
  }
  fail_value(n, path, "not a number; write a whole number such as 3");
}

}  // namespace

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || s.front() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

// ---------------------------------------------------------------------------------------------
// detail: scalars

namespace detail {

std::string join_key(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string join_index(const std::string& path, std::size_t index) {
  return fmt::format("{}[{}]", path, index);
}

void fail_kind(const Node& n, const std::string& path, std::string_view expected) {
  const char* got = "a single value";
  const char* hint = "";
  switch (n.kind) {
    case Node::Kind::Null:
      got = "no value (null)";
      break;
    case Node::Kind::Scalar:
      got = "a single value";
      break;
    case Node::Kind::Sequence:
      got = "a list";
      break;
    case Node::Kind::Map:
      got = "a map";
      break;
  }
  if (expected.starts_with("a list")) {
    hint = "write a list such as [1, 2] or one `- item` per line";
  } else if (expected.starts_with("a map")) {
    hint = "write indented `key: value` lines";
  } else {
    hint = "write a single value after the colon";
  }
  const std::string key = n.kind == Node::Kind::Scalar && !path.empty() ? path + " = " + shown_value(n) : path;
  fail(n, key, fmt::format("wrong type: {} where {} is expected; {}", got, expected, hint));
}

void parse_scalar(const Node& n, bool& out, const std::string& path, const Spec&) {
  require_scalar(n, path, "a boolean (true or false)");
  if (n.quoted) fail_value(n, path, "a quoted string where a boolean is expected; write true or false without quotes");
  if (n.scalar == "true") {
    out = true;
  } else if (n.scalar == "false") {
    out = false;
  } else {
    fail_value(n, path, "not a boolean; write true or false (yes/no/on/off are not accepted)");
  }
}

void parse_scalar(const Node& n, int& out, const std::string& path, const Spec& spec) {
  parse_integer(n, out, path, spec);
}
void parse_scalar(const Node& n, std::int64_t& out, const std::string& path, const Spec& spec) {
  parse_integer(n, out, path, spec);
}
void parse_scalar(const Node& n, std::uint64_t& out, const std::string& path, const Spec& spec) {
  parse_integer(n, out, path, spec);
}

void parse_scalar(const Node& n, double& out, const std::string& path, const Spec& spec) {
  require_scalar(n, path, "a number");
  if (n.quoted) fail_value(n, path, "a quoted string where a number is expected; remove the quotes");
  const std::string_view s = strip_plus(n.scalar);
  if (non_finite_word(s)) {
    fail_value(n, path, "not a finite number; NaN and infinity are not allowed, write a finite number");
  }
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ptr != s.data() + s.size() || ec == std::errc::invalid_argument) {
    fail_value(n, path, "not a number; write a decimal number such as 0.25, 3 or 1e-3");
  }
  if (ec == std::errc::result_out_of_range) {
    // from_chars reports overflow and underflow alike; strtod tells them apart.
    const double w = std::strtod(std::string(s).c_str(), nullptr);
    if (std::isinf(w)) {
      fail_value(n, path,
                 "out of range for a double (overflow); write a finite number of magnitude below 1.8e308");
    }
    v = w;  // underflow: rounds towards zero, as any reader of this number would
  }
  check_range(n, path, v, spec);
  out = v;
}

void parse_scalar(const Node& n, std::string& out, const std::string& path, const Spec& spec) {
  require_scalar(n, path, "a string");
  if (!spec.choices.empty() &&
      std::find(spec.choices.begin(), spec.choices.end(), n.scalar) == spec.choices.end()) {
    const auto guess = nearest(n.scalar, spec.choices);
    fail_value(n, path,
               fmt::format("not one of the allowed values; {}allowed: {}",
                           guess ? fmt::format("did you mean '{}'? ", *guess) : "", join(spec.choices)));
  }
  out = n.scalar;
}

void parse_scalar(const Node& n, Date& out, const std::string& path, const Spec&) {
  require_scalar(n, path, "an ISO date YYYY-MM-DD");
  const auto d = Date::parse(n.scalar);
  if (!d) fail_value(n, path, "not a valid date; must be an ISO date YYYY-MM-DD, e.g. 2020-08-25");
  out = *d;
}

namespace {
Node scalar_node(std::string text, bool quoted = false) {
  Node n;
  n.kind = Node::Kind::Scalar;
  n.scalar = std::move(text);
  n.quoted = quoted;
  return n;
}
}  // namespace

Node emit_scalar(bool v) { return scalar_node(v ? "true" : "false"); }
Node emit_scalar(int v) { return scalar_node(std::to_string(v)); }
Node emit_scalar(std::int64_t v) { return scalar_node(std::to_string(v)); }
Node emit_scalar(std::uint64_t v) { return scalar_node(std::to_string(v)); }
Node emit_scalar(double v) {
  // fmt's "{}" is the shortest text that reads back to the same double (Ryu-like, fmt >= 7).
  if (std::isnan(v)) return scalar_node(".nan");
  if (std::isinf(v)) return scalar_node(v > 0 ? ".inf" : "-.inf");
  return scalar_node(fmt::format("{}", v));
}
Node emit_scalar(const std::string& v) { return scalar_node(v, true); }
Node emit_scalar(Date v) { return scalar_node(v.iso()); }

std::pair<std::string, std::string> type_name(std::type_identity<bool>) { return {"boolean", "booleans"}; }
std::pair<std::string, std::string> type_name(std::type_identity<int>) { return {"integer", "integers"}; }
std::pair<std::string, std::string> type_name(std::type_identity<std::int64_t>) {
  return {"integer (64-bit)", "integers (64-bit)"};
}
std::pair<std::string, std::string> type_name(std::type_identity<std::uint64_t>) {
  return {"integer (unsigned 64-bit)", "integers (unsigned 64-bit)"};
}
std::pair<std::string, std::string> type_name(std::type_identity<double>) { return {"number", "numbers"}; }
std::pair<std::string, std::string> type_name(std::type_identity<std::string>) { return {"string", "strings"}; }
std::pair<std::string, std::string> type_name(std::type_identity<Date>) {
  return {"date (YYYY-MM-DD)", "dates (YYYY-MM-DD)"};
}

DocRow make_row(const std::string& path, std::string type, const Spec& spec, std::string default_value) {
  DocRow row;
  row.path = path;
  row.type = std::move(type);
  row.unit = spec.unit;
  row.default_value = spec.required ? "required" : std::move(default_value);
  row.range = range_text(spec);
  if (!spec.choices.empty()) {
    row.range += (row.range.empty() ? "" : "; ") + std::string("one of: ") + join(spec.choices);
  }
  row.doc = spec.doc;
  row.source = spec.source;
  return row;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Visitor

void Visitor::check(bool ok, std::string_view relative_path, std::string_view message) {
  if (mode_ != Mode::Parse || ok || pending_) return;
  bool complete = false;
  const Node* at = detail::resolve(node_, relative_path, complete);
  if (at == nullptr) at = where_;
  std::string key = path_;
  if (!relative_path.empty()) {
    key = relative_path.front() == '[' ? path_ + std::string(relative_path)
                                       : detail::join_key(path_, relative_path);
  }
  if (complete && at->kind == Node::Kind::Scalar && !key.empty()) key += " = " + shown_value(*at);
  pending_ = error_text(*at, key, message);
}

void Visitor::defer_missing(const std::string& path, const Spec& spec) {
  if (pending_) return;
  const Node& at = node_ != nullptr ? *node_ : *where_;
  const auto dot = path.rfind('.');
  const std::string key = dot == std::string::npos ? path : path.substr(dot + 1);
  pending_ = error_text(at, path,
                        fmt::format("missing required key; add `{}:` to this map{}", key,
                                    spec.doc.empty() ? "" : fmt::format(" ({})", spec.doc)));
}

void Visitor::finish_parse() {
  if (node_ != nullptr) {
    for (const auto& [key, value] : node_->map) {
      if (std::find(keys_.begin(), keys_.end(), key) != keys_.end()) continue;
      std::string message;
      if (key == "extends" && path_.empty()) {
        message = fmt::format("unknown key; `extends` is resolved by load_file()/load_embedded(), not by "
                              "parse_yaml(); allowed keys: {}",
                              join(keys_));
      } else if (key == "<<") {
        message = fmt::format("YAML merge keys (<<) are not supported; use `extends:` or repeat the "
                              "keys; allowed keys: {}",
                              join(keys_));
      } else if (const auto guess = nearest(key, keys_)) {
        message = fmt::format("unknown key; did you mean '{}'? allowed keys: {}", *guess, join(keys_));
      } else {
        message = fmt::format("unknown key; allowed keys: {}", join(keys_));
      }
      Node at;
      at.file = value.file;
      at.line = value.key_line > 0 ? value.key_line : value.line;
      at.column = value.key_line > 0 ? value.key_column : value.column;
      throw ConfigError(error_text(at, detail::join_key(path_, key), message));
    }
  }
  if (pending_) throw ConfigError(*pending_);
}

// ---------------------------------------------------------------------------------------------
// Reference

namespace {
std::string cell(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string code(std::string_view text) {
  if (text.empty()) return "";
  const std::string fence = text.find('`') == std::string_view::npos ? "`" : "`` ";
  const std::string close = fence == "`" ? "`" : " ``";
  return fence + cell(text) + close;
}
}  // namespace

std::string reference_markdown(const std::vector<DocRow>& rows, std::string_view title) {
  std::string out = fmt::format("# {}\n\n", title);
  out +=
      "Generated from the configuration schema (the `describe` functions); do not edit by hand.\n"
      "Entries of a list of maps are written `key[].field`. Unknown keys are errors.\n";
  out += fmt::format(
      "Limits of every file (and of each `extends` parent), checked before parsing: at most {} bytes (16 MiB), "
      "{} levels of nested lists and maps, {} nodes after expanding aliases; UTF-8 text without control "
      "characters (a double-quoted escape may write a C0 control such as `\\t`, not DEL or a C1 control) and with LF or CRLF line "
      "endings (a lone CR is refused); one document, a map at the top level, not empty. Numbers must be finite.\n\n",
      kMaxFileBytes, kMaxDepth, kMaxNodes);
  out += "| Key | Type | Unit | Default | Allowed | Description | Source |\n";
  out += "|---|---|---|---|---|---|---|\n";
  for (const DocRow& r : rows) {
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", code(r.path), cell(r.type), cell(r.unit),
                       r.default_value == "required" ? std::string("**required**")
                       : r.type == "list of maps"    ? cell(r.default_value)  // "[]" or "3 entries"
                                                     : code(r.default_value),
                       cell(r.range), cell(r.doc), cell(r.source));
  }
  return out;
}

}  // namespace piracy::config
