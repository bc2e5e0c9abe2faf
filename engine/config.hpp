#pragma once
// Strict, schema-driven YAML configuration (repast4py / FLAME GPU 2 style: parse YAML once at
// the boundary into typed structs, reject unknown keys and suggest the nearest known one, apply
// `--set key=value` overrides, write the resolved configuration next to the outputs).
//
// Two layers:
//  1. Node: a source-tracked YAML tree. yaml-cpp parses; the result is converted into our own
//     tree so that every node remembers its file, line and column even after `extends` merges
//     documents and `--set` overrides values (yaml-cpp's nodes cannot be re-homed that way).
//  2. Visitor: ONE `describe(Visitor&, S&)` per struct (a free function found by ADL) serves
//     three modes: Parse (Node -> struct, strict), Emit (struct -> complete YAML that reparses to
//     an identical struct) and Document (rows of the generated configuration reference).
//
// Every error is a ConfigError of the form
//     FILE:LINE:COLUMN: error: KEY: what is wrong; what is allowed
// with KEY the full dotted path (`enforcement.operations[0].servers`). Parsing stops at the
// first error: later errors are often consequences of the first (a misspelt key makes a
// required key "missing"), so one precise message beats a cascade.
//
// Decisions worth knowing (also in docs of the functions below):
//  - An empty document (empty file, or only comments / `---`) is an empty map: every field takes
//    its default. A document that is explicitly `null`/`~`, a list or a scalar is an error.
//  - A nested struct whose key is present with no value (`block:` followed by nothing) takes
//    its defaults, as if the key were absent; a list or scalar field with no value is an error.
//    A child document that sets a block to null (`block: ~`) therefore resets it to defaults.
//  - Quoted scalars are strings: `seed: "42"` is rejected where an integer is expected.
//  - `true`/`false` are the only booleans (YAML 1.1's yes/no/on/off are rejected).
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/date.hpp"
#include "engine/error.hpp"

namespace piracy::embedded {
/// File name -> YAML text of every configs/*.yaml, generated at build time
/// (cmake/embed_configs.cmake) so the program finds its scenarios from any folder.
const std::map<std::string, std::string>& configs();
}  // namespace piracy::embedded

namespace piracy::config {

/// Hostile-input limits, checked before the work they protect.
inline constexpr std::size_t kMaxFileBytes = std::size_t{16} << 20;  //!< 16 MiB per document
inline constexpr int kMaxDepth = 64;                                 //!< nested lists/maps
inline constexpr std::size_t kMaxNodes = 200'000;  //!< after alias expansion (alias bombs)

/// File name under which documents from the embedded table are reported.
inline constexpr std::string_view kEmbeddedPrefix = "<embedded>/";

/// A YAML node that remembers where it came from.
struct Node {
  enum class Kind { Null, Scalar, Sequence, Map };
  // Declared here and defaulted below the struct: clang (14, with libstdc++ 12) otherwise
  // instantiates std::pair<std::string, Node> while Node is still incomplete (fuzz preset).
  Node();
  Kind kind = Kind::Null;
  std::string scalar;                             //!< Scalar: the text, escapes resolved
  std::vector<std::pair<std::string, Node>> map;  //!< Map, in document order
  std::vector<Node> seq;                          //!< Sequence
  std::string file;                               //!< file name as given, "--set", or "<embedded>/x.yaml"
  int line = 0;                                   //!< 1-based; 0 when unknown
  int column = 0;                                 //!< 1-based (YAML::Mark is 0-based)
  int key_line = 0;    //!< where this node's key is, when the node is a map value (else 0)
  int key_column = 0;  //!< 1-based
  /// The scalar was quoted in the source (or is a string field when emitted): it is a string,
  /// never a number, boolean or null.
  bool quoted = false;

  [[nodiscard]] const Node* find(std::string_view key) const;
  [[nodiscard]] Node* find(std::string_view key);
};
inline Node::Node() = default;

/// Parses one YAML document held in memory. Enforces the document rules: size <= 16 MiB,
/// UTF-8 text without control characters, nesting <= 64, <= 200,000 nodes after alias
/// expansion, no duplicate keys, string keys only, one document, and a map at the top level
/// (an empty or comment-only document is an empty map). `extends` is NOT resolved here.
Node parse_yaml(std::string_view text, const std::string& filename);

/// Loads a file and resolves `extends: NAME` (see load_file with a table).
Node load_file(const std::filesystem::path& path);
/// Loads a scenario from the embedded table (name with or without ".yaml").
Node load_embedded(const std::string& name);

/// As above with an explicit embedded table (tests use a table of their own).
/// `extends: NAME` at the top level: NAME is loaded relative to the including file's folder;
/// if no such file exists on disk and NAME's file name is in the embedded table, the embedded
/// text is used; inside embedded documents `extends` resolves in the embedded table only.
/// Merge: maps are deep-merged key by key (the child wins), lists and scalars are replaced
/// wholesale, and the `extends` key is removed. Cycles are errors naming the chain.
Node load_file(const std::filesystem::path& path, const std::map<std::string, std::string>& embedded);
Node load_embedded(const std::string& name, const std::map<std::string, std::string>& embedded);

/// Deep merge used by `extends`: maps merged key by key (child wins), everything else replaced.
Node merge(Node parent, Node child);

/// Applies one `--set "a.b[0].c=VALUE"` override. VALUE is parsed as YAML (`--set a=[1,2]`) and
/// located at file "--set", line 1, column = its 1-based position in the argument. Missing map
/// keys are created (unknown ones are then reported by parse<T>); `[n]` with n == size appends.
/// The target is replaced wholesale (a map value replaces the whole map).
void apply_override(Node& root, std::string_view assignment);

/// YAML text of a node (block maps; lists of scalars in flow style `[a, b]`).
std::string to_yaml(const Node& node);
/// One-line flow YAML of a node (used for default values in the reference).
std::string to_flow_yaml(const Node& node);

/// True for a name that is safe as a file or folder name and as a CSV column: 1 to 64 ASCII
/// letters, digits, '_', '-' or '.', not starting with '.' (no path separators, spaces, control
/// characters, "." or ".."). Scenario, experiment, arm and calibration names use it.
bool valid_name(std::string_view s);
/// The message for a name that fails valid_name().
inline constexpr const char* kNameRule = "must be 1 to 64 letters, digits, '_', '-' or '.', not starting with '.'";

/// "file:line:column" of a node ("file" alone when the line is unknown).
std::string location(const Node& node);
/// Throws ConfigError "LOCATION: error: KEY: MESSAGE" (KEY omitted when empty). For checks
/// that live outside describe(), e.g. in a loader that cross-references two files.
[[noreturn]] void fail(const Node& at, std::string_view key_path, std::string_view message);

// ---------------------------------------------------------------------------------------------
// Schema binding

/// What one field accepts and how it is documented.
struct Spec {
  std::string_view doc;                  //!< one sentence for the reference
  std::string_view unit = "";            //!< "USD", "days", "date", "per day"...
  std::optional<double> min{};           //!< numbers and each element of numeric lists
  std::optional<double> max{};
  bool exclusive_min = false;            //!< value must be > min instead of >= min
  std::vector<std::string_view> choices{};  //!< allowed strings (each element of string lists)
  std::string_view source = "";          //!< where a default or a figure comes from
  bool required = false;                 //!< the key must be present (default otherwise)
};

/// One row of the configuration reference.
struct DocRow {
  std::string path;           //!< `enforcement.operations[].servers`
  std::string type;           //!< "integer", "number", "list of numbers", "map", ...
  std::string unit;
  std::string default_value;  //!< flow YAML of the default, "required", or "" for maps
  std::string range;          //!< ">= 0", "[0, 1]", "one of: a, b"
  std::string doc;
  std::string source;
};

class Visitor;
namespace detail {
struct Binder;
}

/// Passed to each `describe(Visitor&, S&)`; see the file comment.
class Visitor {
 public:
  enum class Mode { Parse, Emit, Document };
  [[nodiscard]] Mode mode() const { return mode_; }

  /// Declares one key of the struct. Supported types: bool, int, std::int64_t, std::uint64_t,
  /// double, std::string, piracy::Date, std::vector of any of these or of a supported vector
  /// (std::vector<std::vector<double>> is a matrix; rows may differ in length -- check() if
  /// they must not), any struct S with describe(Visitor&, S&), std::vector<S>. Declare each
  /// describe() next to its struct, before any parse/emit/document of a type that contains it.
  /// A list in the YAML replaces the whole vector (default elements are not kept); each element
  /// of a std::vector<S> starts from a default-constructed S.
  template <class T>
  void field(std::string_view key, T& value, const Spec& spec);

  /// Cross-field check (Parse mode only; a no-op otherwise). Call it after the fields it reads.
  /// relative_path ("end", "ops[2].date", "" for the struct itself) names the offending key; the
  /// error is located at that node, or at the nearest enclosing node present in the YAML.
  /// message says what is wrong and what is allowed: "must be after start (2011-01-01)".
  void check(bool ok, std::string_view relative_path, std::string_view message);

  /// Full dotted path of the struct being visited ("" at the top level).
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  friend struct detail::Binder;
  explicit Visitor(Mode mode) : mode_(mode) {}
  void finish_parse();
  void defer_missing(const std::string& path, const Spec& spec);

  Mode mode_;
  std::string path_;
  // Parse
  const Node* node_ = nullptr;   //!< the map being read; null when the key is absent
  const Node* where_ = nullptr;  //!< nearest node present in the YAML, for error locations
  std::vector<std::string> keys_;        //!< keys declared so far (unknown-key detection)
  std::optional<std::string> pending_;   //!< first deferred error (missing key, failed check)
  // Emit
  Node* out_ = nullptr;
  // Document
  std::vector<DocRow>* rows_ = nullptr;
};

/// Parses a whole configuration. Throws ConfigError.
template <class T>
T parse(const Node& root);
/// Complete YAML of a value: every field, so that parse<T>(parse_yaml(emit(x))) == x.
template <class T>
std::string emit(const T& value);
/// Reference rows from a default-constructed T; fields of std::vector<S> appear as `key[].sub`.
template <class T>
std::vector<DocRow> document();
/// A Markdown page: title, a note that it is generated, and one table row per DocRow.
std::string reference_markdown(const std::vector<DocRow>& rows, std::string_view title);

// ---------------------------------------------------------------------------------------------
// Implementation of the templates.

namespace detail {

template <class T>
struct VectorOf : std::false_type {};
template <class E, class A>
struct VectorOf<std::vector<E, A>> : std::true_type {
  using element = E;
};

template <class T>
concept ScalarField = std::is_same_v<T, bool> || std::is_same_v<T, int> ||
                      std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t> ||
                      std::is_same_v<T, double> || std::is_same_v<T, std::string> ||
                      std::is_same_v<T, Date>;

template <class T>
concept Describable = requires(Visitor& v, T& t) { describe(v, t); };

template <class T>
struct VectorOfStructs : std::false_type {};
template <class E, class A>
struct VectorOfStructs<std::vector<E, A>> : std::bool_constant<Describable<E>> {};

template <class>
inline constexpr bool kAlwaysFalse = false;

// Non-template pieces, defined in config_schema.cpp.
void parse_scalar(const Node& n, bool& out, const std::string& path, const Spec& spec);
void parse_scalar(const Node& n, int& out, const std::string& path, const Spec& spec);
void parse_scalar(const Node& n, std::int64_t& out, const std::string& path, const Spec& spec);
void parse_scalar(const Node& n, std::uint64_t& out, const std::string& path, const Spec& spec);
void parse_scalar(const Node& n, double& out, const std::string& path, const Spec& spec);
void parse_scalar(const Node& n, std::string& out, const std::string& path, const Spec& spec);
void parse_scalar(const Node& n, Date& out, const std::string& path, const Spec& spec);
Node emit_scalar(bool v);
Node emit_scalar(int v);
Node emit_scalar(std::int64_t v);
Node emit_scalar(std::uint64_t v);
Node emit_scalar(double v);
Node emit_scalar(const std::string& v);
Node emit_scalar(Date v);
/// Singular and plural type names for the reference ("number"/"numbers").
std::pair<std::string, std::string> type_name(std::type_identity<bool>);
std::pair<std::string, std::string> type_name(std::type_identity<int>);
std::pair<std::string, std::string> type_name(std::type_identity<std::int64_t>);
std::pair<std::string, std::string> type_name(std::type_identity<std::uint64_t>);
std::pair<std::string, std::string> type_name(std::type_identity<double>);
std::pair<std::string, std::string> type_name(std::type_identity<std::string>);
std::pair<std::string, std::string> type_name(std::type_identity<Date>);

[[noreturn]] void fail_kind(const Node& n, const std::string& path, std::string_view expected);
std::string join_key(const std::string& path, std::string_view key);
std::string join_index(const std::string& path, std::size_t index);
DocRow make_row(const std::string& path, std::string type, const Spec& spec,
                std::string default_value);
/// The node at `relative` ("a.b[2].c") below `from`; when absent, the deepest node present and
/// complete=false.
const Node* resolve(const Node* from, std::string_view relative, bool& complete);

template <class T>
std::pair<std::string, std::string> type_names() {
  if constexpr (ScalarField<T>) {
    return type_name(std::type_identity<T>{});
  } else if constexpr (VectorOf<T>::value) {
    auto inner = type_names<typename VectorOf<T>::element>();
    return {"list of " + inner.second, "lists of " + inner.second};
  } else {
    return {"map", "maps"};
  }
}

struct Binder {
  template <class T>
  static void field(Visitor& v, std::string_view key, T& value, const Spec& spec) {
    const std::string path = join_key(v.path_, key);
    switch (v.mode_) {
      case Visitor::Mode::Parse: {
        v.keys_.emplace_back(key);
        const Node* child = v.node_ != nullptr ? v.node_->find(key) : nullptr;
        if (child == nullptr) {
          if (spec.required) {
            v.defer_missing(path, spec);
          } else if constexpr (Describable<T>) {
            // Descend anyway: required keys inside an absent block are still missing, and
            // the block's checks must hold for its defaults.
            parse_struct(nullptr, v.node_ != nullptr ? *v.node_ : *v.where_, value, path);
          }
          return;
        }
        parse_value(*child, value, path, spec);
        return;
      }
      case Visitor::Mode::Emit:
        v.out_->map.emplace_back(std::string(key), emit_value(value));
        return;
      case Visitor::Mode::Document:
        document_value(*v.rows_, path, value, spec);
        return;
    }
  }

  template <class T>
  static void parse_value(const Node& node, T& value, const std::string& path, const Spec& spec) {
    if constexpr (ScalarField<T>) {
      parse_scalar(node, value, path, spec);
    } else if constexpr (VectorOf<T>::value) {
      using E = typename VectorOf<T>::element;
      if (node.kind != Node::Kind::Sequence) fail_kind(node, path, "a list");
      T out;
      out.reserve(node.seq.size());
      for (std::size_t i = 0; i < node.seq.size(); ++i) {
        E element{};
        parse_value(node.seq[i], element, join_index(path, i), spec);
        out.push_back(std::move(element));
      }
      value = std::move(out);
    } else if constexpr (Describable<T>) {
      parse_struct(&node, node, value, path);
    } else {
      static_assert(kAlwaysFalse<T>, "piracy::config: unsupported field type (see Visitor::field)");
    }
  }

  template <class S>
  static void parse_struct(const Node* node, const Node& where, S& value, const std::string& path) {
    if (node != nullptr && node->kind != Node::Kind::Map && node->kind != Node::Kind::Null) {
      fail_kind(*node, path, "a map of keys");
    }
    Visitor v(Visitor::Mode::Parse);
    v.path_ = path;
    v.node_ = (node != nullptr && node->kind == Node::Kind::Map) ? node : nullptr;
    v.where_ = node != nullptr ? node : &where;
    describe(v, value);
    v.finish_parse();
  }

  template <class T>
  static Node emit_value(const T& value) {
    if constexpr (ScalarField<T>) {
      return emit_scalar(value);
    } else if constexpr (VectorOf<T>::value) {
      using E = typename VectorOf<T>::element;
      Node n;
      n.kind = Node::Kind::Sequence;
      n.seq.reserve(value.size());
      for (const E& element : value) n.seq.push_back(emit_value<E>(element));
      return n;
    } else if constexpr (Describable<T>) {
      Node n;
      n.kind = Node::Kind::Map;
      Visitor v(Visitor::Mode::Emit);
      v.out_ = &n;
      // describe() takes S& because one function serves Parse too; Emit mode only reads.
      describe(v, const_cast<T&>(value));
      return n;
    } else {
      static_assert(kAlwaysFalse<T>, "piracy::config: unsupported field type (see Visitor::field)");
    }
  }

  template <class T>
  static void document_value(std::vector<DocRow>& rows, const std::string& path, T& value,
                             const Spec& spec) {
    if constexpr (Describable<T>) {
      rows.push_back(make_row(path, "map", spec, ""));
      Visitor v(Visitor::Mode::Document);
      v.rows_ = &rows;
      v.path_ = path;
      describe(v, value);
    } else if constexpr (VectorOfStructs<T>::value) {
      using E = typename VectorOf<T>::element;
      rows.push_back(make_row(path, "list of maps", spec,
                              value.empty() ? "[]" : std::to_string(value.size()) + " entries"));
      E element{};
      Visitor v(Visitor::Mode::Document);
      v.rows_ = &rows;
      v.path_ = path + "[]";
      describe(v, element);
    } else {
      rows.push_back(make_row(path, type_names<T>().first, spec, to_flow_yaml(emit_value(value))));
    }
  }

  template <class T>
  static T parse_root(const Node& root) {
    if (root.kind != Node::Kind::Map && root.kind != Node::Kind::Null) {
      fail_kind(root, "", "a map of keys at the top level");
    }
    T value{};
    parse_struct(&root, root, value, "");
    return value;
  }

  template <class T>
  static std::vector<DocRow> document_root() {
    T value{};
    std::vector<DocRow> rows;
    Visitor v(Visitor::Mode::Document);
    v.rows_ = &rows;
    describe(v, value);
    return rows;
  }
};

}  // namespace detail

template <class T>
void Visitor::field(std::string_view key, T& value, const Spec& spec) {
  detail::Binder::field(*this, key, value, spec);
}

template <class T>
T parse(const Node& root) {
  return detail::Binder::parse_root<T>(root);
}

template <class T>
std::string emit(const T& value) {
  return to_yaml(detail::Binder::emit_value(value));
}

template <class T>
std::vector<DocRow> document() {
  return detail::Binder::document_root<T>();
}

}  // namespace piracy::config
