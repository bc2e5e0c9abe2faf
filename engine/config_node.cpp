// Source-tracked YAML tree: parsing with hostile-input limits, `extends`, `--set`, emission.
#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>
#include <unordered_map>

#include "engine/config.hpp"

namespace piracy::config {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Node

const Node* Node::find(std::string_view key) const {
  for (const auto& [k, v] : map) {
    if (k == key) return &v;
  }
  return nullptr;
}

Node* Node::find(std::string_view key) {
  for (auto& [k, v] : map) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

std::string shown_file(std::string_view file) { return file.empty() ? "<input>" : std::string(file); }

/// The "file" of an error in a `--set` override (apply_override), also used by check_text() to
/// word its advice for a command-line value rather than a file.
constexpr std::string_view kSetSource = "--set";

[[noreturn]] void fail_at(std::string_view file, int line, int column, std::string_view key,
                          std::string_view message) {
  std::string where = shown_file(file);
  if (line > 0) where += fmt::format(":{}:{}", line, column);
  if (key.empty()) throw ConfigError(fmt::format("{}: error: {}", where, message));
  throw ConfigError(fmt::format("{}: error: {}: {}", where, key, message));
}

std::string path_key(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// --- text checks -----------------------------------------------------------------------------

void check_size(std::size_t bytes, const std::string& file) {
  if (bytes > kMaxFileBytes) {
    fail_at(file, 0, 0, "",
            fmt::format("file too large: {} bytes; the limit is {} bytes (16 MiB) -- is this the "
                        "right file?",
                        bytes, kMaxFileBytes));
  }
}

/// Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF) restricted to YAML's
/// printable set (YAML 1.2 section 5.1: tab, LF, CR, x20-x7E, x85, xA0-xD7FF, xE000-xFFFD,
/// x10000-x10FFFF). Columns count code points, as yaml-cpp's do.
void check_text(std::string_view text, const std::string& file, int column_offset) {
  int line = 1;
  int column = 1;
  std::size_t i = 0;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  while (i < text.size()) {
    const unsigned char b = s[i];
    char32_t cp = 0;
    std::size_t len = 0;
    if (b < 0x80) {
      cp = b;
      len = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      cp = b & 0x1Fu;
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      cp = b & 0x0Fu;
      len = 3;
    } else if (b >= 0xF0 && b <= 0xF4) {
      cp = b & 0x07u;
      len = 4;
    }
    bool valid = len > 0 && i + len <= text.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      if ((s[i + k] & 0xC0u) != 0x80u) {
        valid = false;
      } else {
        cp = (cp << 6) | (s[i + k] & 0x3Fu);
      }
    }
    if (valid) {
      // Overlong encodings, surrogates and values beyond Unicode.
      valid = !((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
                (cp >= 0xD800 && cp <= 0xDFFF));
    }
    const int col = column + (line == 1 ? column_offset : 0);
    if (!valid) {
      fail_at(file, line, col, "",
              fmt::format("byte 0x{:02X} is not valid UTF-8; configuration files must be UTF-8 "
                          "text (is this a binary file, or saved in another encoding?)",
                          b));
    }
    const bool printable = cp == 0x09 || cp == 0x0A || cp == 0x0D || (cp >= 0x20 && cp <= 0x7E) ||
                           cp == 0x85 || (cp >= 0xA0 && cp <= 0xD7FF) ||
                           (cp >= 0xE000 && cp <= 0xFFFD) || cp >= 0x10000;
    if (!printable) {
      fail_at(file, line, col, "",
              fmt::format("control character U+{:04X} is not allowed in YAML; configuration "
                          "files must be plain text",
                          static_cast<std::uint32_t>(cp)));
    }
    // YAML 1.2 (section 5.4) reads a lone CR as a line break, yaml-cpp 0.7 as part of the text:
    // old Mac line endings would parse into a different configuration (or a puzzling "illegal
    // map value"), and a trailing CR inside a value does not survive emit -> reparse.
    if (cp == '\r' && (i + 1 >= text.size() || s[i + 1] != '\n')) {
      fail_at(file, line, col, "",
              file == kSetSource ? "a carriage return (CR) in a --set value; remove it (write \"\\r\" in double "
                                "quotes for a CR in a string)"
                              : "a carriage return (CR) that is not followed by a line feed; save the file with "
                                "LF (Unix) or CRLF (Windows) line endings");
    }
    if (cp == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += len;
  }
}

/// True when the text holds something other than blank lines, comments, directives and
/// document markers: such a document is "empty" and stands for an empty map.
bool has_content(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) continue;
    line.remove_prefix(first);
    if (line.front() == '#' || line.front() == '%') continue;
    for (std::string_view marker : {"---", "..."}) {
      if (line.starts_with(marker)) {
        const auto rest = line.substr(3).find_first_not_of(" \t\r");
        if (rest == std::string_view::npos || line.substr(3)[rest] == '#') line = {};
      }
    }
    if (!line.empty()) return true;
  }
  return false;
}

// --- conversion from yaml-cpp ------------------------------------------------------------------

/// Builds our tree from yaml-cpp's parser events (not from YAML::Node: its node graph shares
/// aliased subtrees, and walking it node by node is slow and unbounded). Limits are enforced
/// before the work they protect: an alias is expanded only if the node budget allows its whole
/// subtree (a "billion laughs" document is a few hundred bytes that expand to 10^9 nodes), and
/// nesting is checked as collections open, long before yaml-cpp's own recursion guard (2000).
class Builder : public YAML::EventHandler {
 public:
  Builder(std::string file, int column_offset, std::string_view text = {})
      : file_(std::move(file)), offset_(column_offset), text_(text) {}

  /// Our location for a yaml-cpp mark (0-based; columns shifted on line 1 for --set values).
  void locate(Node& n, const YAML::Mark& m) const {
    n.file = file_;
    if (m.is_null() || m.line < 0) return;
    n.line = m.line + 1;
    n.column = m.column + 1 + (m.line == 0 ? offset_ : 0);
  }

  [[noreturn]] void fail_mark(const YAML::Mark& m, std::string_view key, std::string_view message) const {
    Node at;
    locate(at, m);
    fail_at(file_, at.line, at.column, key, message);
  }

  [[noreturn]] void too_deep(const YAML::Mark& m) const {
    fail_mark(m, "",
              fmt::format("nesting deeper than {} levels of lists and maps; flatten the structure", kMaxDepth));
  }

  [[noreturn]] void too_many(const YAML::Mark& m) const {
    fail_mark(m, "",
              fmt::format("more than {} nodes after expanding aliases (an alias bomb?); use fewer anchors "
                          "and aliases",
                          kMaxNodes));
  }

  std::optional<Node>& root() { return root_; }
  int documents() const { return documents_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) {
      fail_mark(mark, "",
                "a second YAML document starts here; a configuration holds one document (remove the "
                "'---' separator)");
    }
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Node n;
    locate(n, mark);
    leaf(std::move(n), mark, anchor);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    Node n;
    locate(n, mark);
    n.kind = Node::Kind::Scalar;
    n.scalar = value;
    n.quoted = tag == "!";  // yaml-cpp tags quoted scalars "!" and plain ones "?"
    if (n.quoted) {
      require_closing_quote(mark);
      refuse_escaped_controls(mark, value);
    }
    leaf(std::move(n), mark, anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (anchor >= anchors_.size() || !anchors_[anchor].node) {
      fail_mark(mark, "", "an alias refers to the anchor that contains it (a recursive alias); remove it");
    }
    const Anchored& a = anchors_[anchor];
    spend(a.size, mark);
    if (stack_.size() + static_cast<std::size_t>(a.height) > static_cast<std::size_t>(kMaxDepth)) too_deep(mark);
    attach(Node(*a.node), a.height);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, Node::Kind::Sequence);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, Node::Kind::Map);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    Node node;
    YAML::Mark mark;
    YAML::anchor_t anchor = YAML::NullAnchor;
    std::size_t count_at_start = 0;
    int height = 1;
    bool expecting_key = true;
    std::string key;  //!< the pending key of a map
    int key_line = 0;
    int key_column = 0;
    std::unordered_map<std::string, std::size_t> seen;  //!< key -> index in node.map
  };
  struct Anchored {
    std::optional<Node> node;
    std::size_t size = 0;
    int height = 0;
  };

  void spend(std::size_t nodes, const YAML::Mark& mark) {
    if (nodes > kMaxNodes - count_) too_many(mark);
    count_ += nodes;
  }

  /// Full dotted path of the position being filled (for messages).
  std::string path() const {
    std::string out;
    for (const Frame& f : stack_) {
      if (f.node.kind == Node::Kind::Sequence) {
        out += fmt::format("[{}]", f.node.seq.size());
      } else if (!f.expecting_key) {
        out = path_key(out, f.key);
      }
    }
    return out;
  }

  void leaf(Node n, const YAML::Mark& mark, YAML::anchor_t anchor) {
    spend(1, mark);
    if (anchor != YAML::NullAnchor) remember(anchor, n, 1, 0);
    attach(std::move(n), 0);
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, Node::Kind kind) {
    if (stack_.size() + 1 > static_cast<std::size_t>(kMaxDepth)) too_deep(mark);
    spend(1, mark);
    Frame f;
    locate(f.node, mark);
    f.node.kind = kind;
    f.mark = mark;
    f.anchor = anchor;
    f.count_at_start = count_ - 1;
    if (anchor != YAML::NullAnchor) {
      if (anchors_.size() <= anchor) anchors_.resize(anchor + 1);
      anchors_[anchor] = Anchored{};  // open: an alias to it now is recursive
    }
    stack_.push_back(std::move(f));
  }

  void close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.node.kind == Node::Kind::Map && !f.expecting_key) {
      // yaml-cpp always pairs keys with values; kept as a guard for malformed event streams.
      fail_mark(f.mark, "", "malformed YAML: a key without a value");
    }
    const std::size_t size = count_ - f.count_at_start;
    if (f.anchor != YAML::NullAnchor) remember(f.anchor, f.node, size, f.height);
    attach(std::move(f.node), f.height);
  }

  void remember(YAML::anchor_t anchor, const Node& n, std::size_t size, int height) {
    if (anchors_.size() <= anchor) anchors_.resize(anchor + 1);
    anchors_[anchor] = Anchored{n, size, height};
  }

  /// Adds a finished node (of the given height) to the collection being built.
  void attach(Node n, int height) {
    if (stack_.empty()) {
      root_ = std::move(n);
      return;
    }
    Frame& top = stack_.back();
    top.height = std::max(top.height, height + 1);
    if (top.node.kind == Node::Kind::Sequence) {
      top.node.seq.push_back(std::move(n));
      return;
    }
    if (top.expecting_key) {
      if (n.kind != Node::Kind::Scalar) {
        fail_at(file_, n.line, n.column, path(),
                "a key must be a plain string, not a list, map or null; quote it");
      }
      const std::string child_path = path_key(path(), n.scalar);
      const auto found = top.seen.find(n.scalar);
      if (found != top.seen.end()) {
        const Node& first = top.node.map[found->second].second;
        fail_at(file_, n.line, n.column, child_path,
                fmt::format("duplicate key; first defined at line {}, column {}; a key may appear "
                            "once per map",
                            first.key_line, first.key_column));
      }
      top.key = std::move(n.scalar);
      top.key_line = n.line;
      top.key_column = n.column;
      top.expecting_key = false;
      return;
    }
    n.key_line = top.key_line;
    n.key_column = top.key_column;
    // yaml-cpp places an empty value (`key:` then a newline) on the next line: point at the
    // key instead, which is where the user sees the empty value.
    if (n.kind == Node::Kind::Null && n.line != top.key_line) {
      n.line = top.key_line;
      n.column = top.key_column;
    }
    top.seen.emplace(top.key, top.node.map.size());
    top.node.map.emplace_back(std::move(top.key), std::move(n));
    top.key.clear();
    top.expecting_key = true;
  }

  /// check_text() refuses DEL and the C1 controls in the file; a double-quoted escape (`"\x7f"`)
  /// can still put them into a value. yaml-cpp's emitter would write them back raw (it escapes C0
  /// controls only), and the emitted config.yaml would then be refused: so they are refused here.
  /// NEL (U+0085) is YAML-printable and round-trips.
  void refuse_escaped_controls(const YAML::Mark& mark, const std::string& value) const {
    for (std::size_t i = 0; i < value.size(); ++i) {
      const auto b = static_cast<unsigned char>(value[i]);
      std::uint32_t cp = 0;
      if (b == 0x7F) {
        cp = 0x7F;
      } else if (b == 0xC2 && i + 1 < value.size()) {
        const auto c = static_cast<unsigned char>(value[i + 1]);
        if (c >= 0x80 && c <= 0x9F && c != 0x85) cp = c;
      }
      if (cp != 0) {
        fail_mark(mark, "",
                  fmt::format("control character U+{:04X} (written as an escape) is not allowed in a value; "
                              "remove it",
                              cp));
      }
    }
  }

  /// yaml-cpp 0.7 accepts a quoted scalar that the end of the text cuts off (`name: "half`
  /// as the last line): the typical truncated file. Scans from the opening quote at `mark` to
  /// its closing quote (YAML 1.2 7.3: `\"` escapes in double quotes, `''` in single quotes);
  /// each scalar is scanned once, so the cost is linear in the text.
  void require_closing_quote(const YAML::Mark& mark) const {
    // Mark::pos counts bytes of the UTF-8 text after a byte order mark, which yaml-cpp skips.
    const std::size_t bom = text_.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    if (mark.pos < 0 || static_cast<std::size_t>(mark.pos) + bom >= text_.size()) return;
    std::size_t i = static_cast<std::size_t>(mark.pos) + bom;
    const char quote = text_[i];
    if (quote != '"' && quote != '\'') return;  // not at the quote (e.g. a tagged scalar): not ours to judge
    for (++i; i < text_.size(); ++i) {
      if (quote == '"' && text_[i] == '\\') {
        ++i;
      } else if (text_[i] == quote) {
        if (quote == '\'' && i + 1 < text_.size() && text_[i + 1] == '\'') {
          ++i;
        } else {
          return;
        }
      }
    }
    fail_mark(mark, "",
              fmt::format("unterminated quoted string: the {} quote opened here is never closed (a truncated file?)",
                          quote == '"' ? "double" : "single"));
  }

  std::string file_;
  int offset_;
  std::string_view text_;  //!< the whole text (for require_closing_quote); empty: no check
  std::size_t count_ = 0;
  int documents_ = 0;
  std::vector<Frame> stack_;
  std::vector<Anchored> anchors_;  //!< by yaml-cpp anchor id (1, 2, ... per document)
  std::optional<Node> root_;
};

/// A first pass over the events that only measures, used when the text may hold aliases: an
/// alias bomb is then rejected before a single node is built. It applies the same limits, with
/// the same messages, as Builder (which keeps its own checks for documents without aliases).
class Counter : public YAML::EventHandler {
 public:
  explicit Counter(const Builder& locator) : locator_(locator) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string&) override {
    leaf(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (anchor >= anchors_.size() || !anchors_[anchor].done) {
      locator_.fail_mark(mark, "", "an alias refers to the anchor that contains it (a recursive alias); remove it");
    }
    const Measure& a = anchors_[anchor];
    spend(a.size, mark);
    if (stack_.size() + static_cast<std::size_t>(a.height) > static_cast<std::size_t>(kMaxDepth)) {
      locator_.too_deep(mark);
    }
    grow(a.height);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Measure {
    std::size_t size = 0;
    int height = 0;
    bool done = false;
  };
  struct Open {
    YAML::anchor_t anchor;
    std::size_t count_at_start;
    int height;
  };

  void spend(std::size_t nodes, const YAML::Mark& mark) {
    if (nodes > kMaxNodes - count_) locator_.too_many(mark);
    count_ += nodes;
  }
  void grow(int height) {
    if (!stack_.empty()) stack_.back().height = std::max(stack_.back().height, height + 1);
  }
  void record(YAML::anchor_t anchor, std::size_t size, int height, bool done) {
    if (anchor == YAML::NullAnchor) return;
    if (anchors_.size() <= anchor) anchors_.resize(anchor + 1);
    anchors_[anchor] = Measure{size, height, done};
  }
  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    spend(1, mark);
    record(anchor, 1, 0, true);
    grow(0);
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (stack_.size() + 1 > static_cast<std::size_t>(kMaxDepth)) locator_.too_deep(mark);
    spend(1, mark);
    record(anchor, 0, 0, false);
    stack_.push_back(Open{anchor, count_ - 1, 1});
  }
  void close() {
    const Open o = stack_.back();
    stack_.pop_back();
    record(o.anchor, count_ - o.count_at_start, o.height, true);
    grow(o.height);
  }

  const Builder& locator_;
  std::size_t count_ = 0;
  std::vector<Open> stack_;
  std::vector<Measure> anchors_;
};

/// Parses YAML text. A document (document=true) must be a map; a fragment (a --set value) may
/// be anything. column_offset shifts columns on the first line (for --set values).
Node parse_text(std::string_view text, const std::string& file, int column_offset, bool document) {
  check_size(text.size(), file);
  check_text(text, file, column_offset);
  Builder builder(file, column_offset, text);
  try {
    if (text.find('*') != std::string_view::npos) {  // no '*', no alias: nothing to pre-count
      Counter counter(builder);
      std::istringstream in{std::string(text)};
      YAML::Parser parser(in);
      // One document only: a second one is reported by the building pass.
      parser.HandleNextDocument(counter);
    }
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const YAML::DeepRecursion& e) {
    builder.too_deep(e.mark);
  } catch (const YAML::Exception& e) {
    builder.fail_mark(e.mark, "", fmt::format("malformed YAML: {}", e.msg));
  }
  Node empty;
  empty.file = file;
  empty.line = 1;
  empty.column = 1 + column_offset;
  if (!builder.root()) {
    if (document) empty.kind = Node::Kind::Map;
    return empty;
  }
  Node root = std::move(*builder.root());
  if (!document) return root;
  if (root.kind == Node::Kind::Null && !has_content(text)) {
    empty.kind = Node::Kind::Map;
    return empty;
  }
  if (root.kind != Node::Kind::Map) {
    const char* what = root.kind == Node::Kind::Null       ? "null"
                       : root.kind == Node::Kind::Sequence ? "a list"
                                                           : "a single value";
    fail_at(file, root.line, root.column, "",
            fmt::format("the top level is {}; a configuration must be a map of `key: value` "
                        "entries",
                        what));
  }
  return root;
}

// --- files and extends -------------------------------------------------------------------------

struct Source {
  bool embedded = false;
  fs::path path;      //!< on disk
  std::string name;   //!< embedded table key
  std::string display;
  std::string id;     //!< identity for cycle detection
};

Source disk_source(const fs::path& path) {
  Source s;
  s.path = path;
  s.display = path.string();
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(path, ec);
  s.id = ec ? path.lexically_normal().string() : canonical.string();
  return s;
}

Source embedded_source(const std::string& name) {
  Source s;
  s.embedded = true;
  s.name = name;
  s.display = std::string(kEmbeddedPrefix) + name;
  s.id = s.display;
  return s;
}

std::string read_file(const fs::path& path, const std::string& display) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (fs::is_directory(status)) {
    fail_at(display, 0, 0, "", "cannot open: is a directory; check the path (give a YAML file)");
  }
  if (fs::is_regular_file(status)) {
    const auto size = fs::file_size(path, ec);
    if (!ec) check_size(size, display);
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    fail_at(display, 0, 0, "", fmt::format("cannot open: {}; check the path", std::strerror(errno)));
  }
  // Read at most one byte past the limit, so pipes and devices (/dev/zero) cannot exhaust memory.
  std::string text;
  char buffer[65536];
  while (text.size() <= kMaxFileBytes) {
    const std::size_t n = std::fread(buffer, 1, sizeof buffer, f.get());
    text.append(buffer, n);
    if (n < sizeof buffer) break;
  }
  if (std::ferror(f.get())) {
    fail_at(display, 0, 0, "", fmt::format("cannot read: {}; check the path", std::strerror(errno)));
  }
  check_size(text.size(), display);
  return text;
}

std::string embedded_names(const std::map<std::string, std::string>& table) {
  std::string out;
  for (const auto& [name, text] : table) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "(none)" : out;
}

Node load_source(const Source& src, const std::map<std::string, std::string>& table,
                 std::vector<const Source*>& chain) {
  std::string text;
  if (src.embedded) {
    text = table.at(src.name);
  } else {
    text = read_file(src.path, src.display);
  }
  Node doc = parse_yaml(text, src.display);
  const auto it = std::find_if(doc.map.begin(), doc.map.end(),
                               [](const auto& kv) { return kv.first == "extends"; });
  if (it == doc.map.end()) return doc;
  const Node& ext = it->second;
  const int line = ext.key_line;
  const int column = ext.key_column;
  if (ext.kind != Node::Kind::Scalar || ext.scalar.empty()) {
    fail_at(src.display, line, column, "extends",
            "must name the parent configuration file; write e.g. `extends: sparks_2020.yaml`");
  }
  const std::string base_name = fs::path(ext.scalar).filename().string();
  Source parent;
  if (!src.embedded) {
    const fs::path candidate = (src.path.parent_path() / ext.scalar).lexically_normal();
    std::error_code ec;
    if (fs::exists(candidate, ec)) {
      parent = disk_source(candidate);
    } else if (table.count(base_name) != 0) {
      parent = embedded_source(base_name);
    } else {
      fail_at(src.display, line, column, "extends",
              fmt::format("cannot open {}: {}; check the path (embedded scenarios: {})",
                          candidate.string(), std::strerror(ENOENT), embedded_names(table)));
    }
  } else if (table.count(base_name) != 0) {
    parent = embedded_source(base_name);
  } else {
    fail_at(src.display, line, column, "extends",
            fmt::format("no embedded scenario named '{}'; embedded scenarios: {}", base_name,
                        embedded_names(table)));
  }
  const bool cycle = parent.id == src.id ||
                     std::any_of(chain.begin(), chain.end(),
                                 [&](const Source* s) { return s->id == parent.id; });
  if (cycle) {
    std::string names;
    for (const Source* s : chain) names += s->display + " -> ";
    names += src.display + " -> " + parent.display;
    fail_at(src.display, line, column, "extends",
            fmt::format("cycle {}; remove one of these `extends`", names));
  }
  chain.push_back(&src);
  Node base = load_source(parent, table, chain);
  chain.pop_back();
  doc.map.erase(it);
  return merge(std::move(base), std::move(doc));
}

// --- key paths (--set, check) ------------------------------------------------------------------

struct Segment {
  std::string key;        //!< empty for an index
  std::size_t index = 0;  //!< for an index
  bool is_index = false;
  int column = 0;         //!< 1-based position of the segment in the text
};

/// "a.b[0].c" -> [a, b, [0], c]; nullopt when malformed.
std::optional<std::vector<Segment>> split_path(std::string_view text, int column_base) {
  std::vector<Segment> out;
  std::size_t i = 0;
  bool expect_name = true;
  while (i < text.size()) {
    if (text[i] == '[') {
      const auto close = text.find(']', i);
      if (close == std::string_view::npos || close == i + 1 || out.empty()) return std::nullopt;
      Segment s;
      s.is_index = true;
      s.column = column_base + static_cast<int>(i);
      const auto digits = text.substr(i + 1, close - i - 1);
      const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), s.index);
      if (ec != std::errc{} || ptr != digits.data() + digits.size()) return std::nullopt;
      out.push_back(s);
      i = close + 1;
      expect_name = false;
      continue;
    }
    if (text[i] == '.') {
      if (expect_name) return std::nullopt;
      expect_name = true;
      ++i;
      continue;
    }
    if (!expect_name || text[i] == ']') return std::nullopt;
    const auto end = text.find_first_of(".[]", i);
    Segment s;
    s.key = std::string(text.substr(i, end == std::string_view::npos ? end : end - i));
    s.column = column_base + static_cast<int>(i);
    out.push_back(s);
    i = end == std::string_view::npos ? text.size() : end;
    expect_name = false;
  }
  if (expect_name) return std::nullopt;  // empty, or a trailing dot
  return out;
}

const char* kind_name(Node::Kind k) {
  switch (k) {
    case Node::Kind::Null: return "empty (null)";
    case Node::Kind::Scalar: return "a single value";
    case Node::Kind::Sequence: return "a list";
    case Node::Kind::Map: return "a map";
  }
  return "?";
}

// --- emission ------------------------------------------------------------------------------------

/// Strings that other YAML readers (PyYAML in the notebooks: YAML 1.1) would read as something
/// else are quoted when they are strings; our own reader keeps scalars as text either way.
bool ambiguous_plain(const std::string& s) {
  static const char* const kWords[] = {"y", "n", "yes", "no", "on", "off", "true", "false", "null",
                                       "~", ".nan", ".inf", "-.inf", "+.inf", "nan", "inf"};
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* w : kWords) {
    if (lower == w) return true;
  }
  if (s.empty()) return true;
  const char c = s.front();
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.';
}

/// A C0 control character (U+0000-U+001F), which yaml-cpp escapes only in double quotes. (DEL
/// and the C1 controls never reach a value: check_text() and refuse_escaped_controls() refuse
/// them, since yaml-cpp writes them raw even in double quotes.)
bool has_control_char(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

void write(YAML::Emitter& out, const Node& n) {
  switch (n.kind) {
    case Node::Kind::Null:
      out << YAML::Null;
      break;
    case Node::Kind::Scalar:
      // C0 control characters (a CR or tab written as an escape in a double-quoted input) are
      // written by yaml-cpp unescaped in a plain scalar, and a trailing CR is then read back as
      // part of the line break: double quotes escape them, so emit -> reparse is exact.
      if ((n.quoted && ambiguous_plain(n.scalar)) || has_control_char(n.scalar)) out << YAML::DoubleQuoted;
      out << n.scalar;
      break;
    case Node::Kind::Sequence: {
      const bool flat = std::all_of(n.seq.begin(), n.seq.end(), [](const Node& e) {
        return e.kind == Node::Kind::Scalar || e.kind == Node::Kind::Null;
      });
      if (flat) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const Node& e : n.seq) write(out, e);
      out << YAML::EndSeq;
      break;
    }
    case Node::Kind::Map:
      if (n.map.empty()) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& [k, v] : n.map) {
        out << YAML::Key << k << YAML::Value;
        write(out, v);
      }
      out << YAML::EndMap;
      break;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public functions

std::string location(const Node& node) {
  std::string where = shown_file(node.file);
  if (node.line > 0) where += fmt::format(":{}:{}", node.line, node.column);
  return where;
}

void fail(const Node& at, std::string_view key_path, std::string_view message) {
  fail_at(at.file, at.line, at.column, key_path, message);
}

Node parse_yaml(std::string_view text, const std::string& filename) {
  return parse_text(text, shown_file(filename), 0, true);
}

Node merge(Node parent, Node child) {
  if (parent.kind != Node::Kind::Map || child.kind != Node::Kind::Map) return child;
  for (auto& [key, value] : child.map) {
    Node* existing = parent.find(key);
    if (existing == nullptr) {
      parent.map.emplace_back(key, std::move(value));
    } else {
      *existing = merge(std::move(*existing), std::move(value));
    }
  }
  // The merged map is located where the child wrote it (that is the file the user edits).
  parent.file = child.file;
  parent.line = child.line;
  parent.column = child.column;
  parent.key_line = child.key_line;
  parent.key_column = child.key_column;
  return parent;
}

Node load_file(const fs::path& path, const std::map<std::string, std::string>& embedded) {
  std::vector<const Source*> chain;
  const Source src = disk_source(path);
  return load_source(src, embedded, chain);
}

Node load_file(const fs::path& path) { return load_file(path, piracy::embedded::configs()); }

Node load_embedded(const std::string& name, const std::map<std::string, std::string>& embedded) {
  std::string key = name;
  if (embedded.count(key) == 0 && embedded.count(key + ".yaml") != 0) key += ".yaml";
  if (embedded.count(key) == 0) {
    fail_at(std::string(kEmbeddedPrefix) + name, 0, 0, "",
            fmt::format("no embedded scenario named '{}'; embedded scenarios: {}", name,
                        embedded_names(embedded)));
  }
  std::vector<const Source*> chain;
  const Source src = embedded_source(key);
  return load_source(src, embedded, chain);
}

Node load_embedded(const std::string& name) { return load_embedded(name, piracy::embedded::configs()); }

void apply_override(Node& root, std::string_view assignment) {
  const std::string file(kSetSource);
  const auto eq = assignment.find('=');
  if (eq == std::string_view::npos) {
    fail_at(file, 1, 1, assignment,
            "missing '='; write --set key.path=VALUE, e.g. --set seed=7 or "
            "--set enforcement.operations[0].servers=60");
  }
  const std::string_view key_text = assignment.substr(0, eq);
  const auto segments = split_path(key_text, 1);
  if (!segments || segments->front().is_index) {
    fail_at(file, 1, 1, key_text,
            "malformed key path; write names separated by dots, with [N] for list entries, e.g. "
            "enforcement.operations[0].servers=60");
  }
  const int value_column = static_cast<int>(eq) + 2;  // 1-based position after '='
  Node value = parse_text(assignment.substr(eq + 1), file, value_column - 1, false);

  Node* current = &root;
  std::string path;
  for (const Segment& s : *segments) {
    const std::string next_path = s.is_index ? fmt::format("{}[{}]", path, s.index) : path_key(path, s.key);
    Node fresh;
    fresh.file = file;
    fresh.line = 1;
    fresh.column = s.column;
    if (!s.is_index) {
      if (current->kind == Node::Kind::Null) current->kind = Node::Kind::Map;
      if (current->kind != Node::Kind::Map) {
        fail_at(file, 1, s.column, path,
                fmt::format("is {}, so it has no key '{}'; set {} itself, or fix the path",
                            kind_name(current->kind), s.key, path));
      }
      Node* child = current->find(s.key);
      if (child == nullptr) {
        fresh.key_line = 1;
        fresh.key_column = s.column;
        current->map.emplace_back(s.key, std::move(fresh));
        child = &current->map.back().second;
      }
      current = child;
    } else {
      if (current->kind == Node::Kind::Null) current->kind = Node::Kind::Sequence;
      if (current->kind != Node::Kind::Sequence) {
        fail_at(file, 1, s.column, path,
                fmt::format("is {}, not a list, so [{}] does not apply; fix the path",
                            kind_name(current->kind), s.index));
      }
      if (s.index > current->seq.size()) {
        fail_at(file, 1, s.column, next_path,
                fmt::format("index out of range; the list has {} entries (use [{}] to append)",
                            current->seq.size(), current->seq.size()));
      }
      if (s.index == current->seq.size()) current->seq.push_back(std::move(fresh));
      current = &current->seq[s.index];
    }
    path = next_path;
  }
  const int key_line = current->key_line;
  const int key_column = current->key_column;
  *current = std::move(value);
  current->key_line = key_line;
  current->key_column = key_column;
}

std::string to_yaml(const Node& node) {
  YAML::Emitter out;
  write(out, node);
  if (!out.good()) throw ModelError("cannot write YAML: " + out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

std::string to_flow_yaml(const Node& node) {
  YAML::Emitter out;
  out << YAML::Flow;
  write(out, node);
  if (!out.good()) throw ModelError("cannot write YAML: " + out.GetLastError());
  return out.c_str();
}

// Used by Visitor::check: the node at a relative path, or the deepest one present.
namespace detail {
const Node* resolve(const Node* from, std::string_view relative, bool& complete) {
  complete = true;
  if (relative.empty() || from == nullptr) {
    complete = relative.empty() && from != nullptr;
    return from;
  }
  const auto segments = split_path(relative, 1);
  if (!segments) {
    complete = false;
    return from;
  }
  const Node* current = from;
  for (const Segment& s : *segments) {
    const Node* next = nullptr;
    if (!s.is_index && current->kind == Node::Kind::Map) next = current->find(s.key);
    if (s.is_index && current->kind == Node::Kind::Sequence && s.index < current->seq.size()) {
      next = &current->seq[s.index];
    }
    if (next == nullptr) {
      complete = false;
      return current;
    }
    current = next;
  }
  return current;
}
}  // namespace detail

}  // namespace piracy::config
