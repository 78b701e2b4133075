// SPDX-License-Identifier: Apache-2.0
// A direct JSON reader for the common forms of query text. Whatever it does not take on itself
// (\u escapes, non-ASCII bytes, integers beyond 64 bits, out-of-range floats, deep nesting, any
// syntax error) goes to nlohmann's parser, which then decides: the result is always what
// nlohmann::json::parse(text, nullptr, false) gives, except that a document nested deeper than
// kMaxJsonDepth is refused (discarded) before nlohmann builds it.
#include "torp/json_text.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace torp {
namespace {

using json = nlohmann::json;

class Reader {
 public:
  explicit Reader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  /// The whole text as one value; false to hand the text to nlohmann.
  bool document(json& out) {
    if (!value(out, 0)) return false;
    skip();
    return p_ == end_;
  }

 private:
  static constexpr int kMaxDepth = 128;
  const char* p_;
  const char* end_;

  void skip() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }

  bool value(json& out, int depth) {
    skip();
    if (p_ == end_ || depth > kMaxDepth) return false;
    switch (*p_) {
      case '{': return object(out, depth + 1);
      case '[': return array(out, depth + 1);
      case '"': {
        out = json::value_t::string;
        return string(out.get_ref<std::string&>());
      }
      case 't': out = true; return literal("true");
      case 'f': out = false; return literal("false");
      case 'n': out = nullptr; return literal("null");
      default: return number(out);
    }
  }

  bool object(json& out, int depth) {
    ++p_;  // '{'
    out = json::value_t::object;
    auto& members = out.get_ref<json::object_t&>();
    skip();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    std::string key;
    for (;;) {
      skip();
      if (p_ == end_ || *p_ != '"' || !string(key)) return false;
      skip();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      // Keys often arrive sorted (nlohmann writes them so): hint the end. A repeated key keeps
      // its last value, as nlohmann does.
      if (!value(members.emplace_hint(members.end(), key, nullptr)->second, depth)) return false;
      skip();
      if (p_ == end_) return false;
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      if (*p_++ != ',') return false;
    }
  }

  bool array(json& out, int depth) {
    ++p_;  // '['
    out = json::value_t::array;
    auto& items = out.get_ref<json::array_t&>();
    skip();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      if (!value(items.emplace_back(), depth)) return false;
      skip();
      if (p_ == end_) return false;
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_++ != ',') return false;
    }
  }

  /// A string at p_ (on its opening quote) into `out`.
  bool string(std::string& out) {
    ++p_;
    out.clear();
    const char* run = p_;  // start of the bytes not yet copied
    for (;;) {
      if (p_ == end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out.append(run, p_);
        ++p_;
        return true;
      }
      if (c < 0x20 || c >= 0x80) return false;  // control characters are errors; UTF-8 is checked by nlohmann
      if (c != '\\') {
        ++p_;
        continue;
      }
      out.append(run, p_);
      if (++p_ == end_) return false;
      switch (*p_) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        default: return false;  // \u escapes (and invalid ones)
      }
      run = ++p_;
    }
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  /// A number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  bool number(json& out) {
    const char* begin = p_;
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_ || !digit(*p_)) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    bool integral = true;
    if (p_ != end_ && *p_ == '.') {
      integral = false;
      if (++p_ == end_ || !digit(*p_)) return false;
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) return false;
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (integral) {
      if (*begin == '-') {
        std::int64_t v = 0;
        auto r = std::from_chars(begin, p_, v);
        if (r.ec != std::errc() || r.ptr != p_) return false;
        out = static_cast<json::number_integer_t>(v);
      } else {
        std::uint64_t v = 0;
        auto r = std::from_chars(begin, p_, v);
        if (r.ec != std::errc() || r.ptr != p_) return false;
        out = static_cast<json::number_unsigned_t>(v);
      }
      return true;
    }
    double v = 0.0;
    auto r = std::from_chars(begin, p_, v);  // correctly rounded, as strtod (nlohmann's) is
    if (r.ec != std::errc() || r.ptr != p_) return false;
    out = v;
    return true;
  }
};

}  // namespace

std::size_t json_nesting_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

json parse_json(std::string_view text) {
  json out;
  if (Reader(text).document(out)) return out;
  // Deeper documents are refused: copying, comparing or printing one would recurse that deep.
  if (json_nesting_depth(text) > kMaxJsonDepth) return json(json::value_t::discarded);
  return json::parse(text, nullptr, false);
}

}  // namespace torp
