// SPDX-License-Identifier: Apache-2.0
#include "sweep/py_expr.hpp"

#include "core/json_excerpt.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace torp::py {
namespace {

using json = nlohmann::json;

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

void utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

/// -v for an integer JSON value, if it is within the 64-bit range.
std::optional<json> negated(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > std::uint64_t{INT64_MAX} + 1) return std::nullopt;
    return u == std::uint64_t{INT64_MAX} + 1 ? json(INT64_MIN) : json(-static_cast<std::int64_t>(u));
  }
  const auto i = v.get<std::int64_t>();
  if (i == INT64_MIN) return std::nullopt;
  return json(-i);
}

struct SyntaxError {
  std::string message;
};

class Parser {
 public:
  Parser(std::string_view s, bool literal_only) : s_(s), literal_(literal_only) {}
  static constexpr int kMaxNesting = 300;  // grammar levels: about 100 nested brackets

  Node parse_all() {
    Node n = expr();
    skip();
    if (p_ != s_.size()) fail("unexpected '" + std::string(1, s_[p_]) + "'");
    return n;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw SyntaxError{what + " at offset " + std::to_string(p_)};
  }
  void skip() {
    while (p_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[p_]))) ++p_;
  }
  bool eat(std::string_view tok) {
    skip();
    if (s_.compare(p_, tok.size(), tok) != 0) return false;
    // "/" must not eat the first half of "//", "*" not of "**", "<" not of "<=" ...
    if (tok.size() == 1 && p_ + 1 < s_.size() && (tok == "/" || tok == "*") && s_[p_ + 1] == tok[0]) return false;
    if (tok.size() == 1 && (tok == "<" || tok == ">" || tok == "=") && p_ + 1 < s_.size() && s_[p_ + 1] == '=')
      return false;
    p_ += tok.size();
    return true;
  }
  bool eat_word(std::string_view w) {
    skip();
    if (s_.compare(p_, w.size(), w) != 0) return false;
    if (p_ + w.size() < s_.size() && ident_char(s_[p_ + w.size()])) return false;
    p_ += w.size();
    return true;
  }
  void expect(std::string_view tok) {
    if (!eat(tok)) fail("expected '" + std::string(tok) + "'");
  }
  void no_operators(const char* what) const {
    if (literal_) fail(std::string(what) + " in a literal");
  }
  static Node make(Node::Kind k, std::string op, std::vector<Node> kids) {
    Node n;
    n.kind = k;
    n.op = std::move(op);
    n.kids = std::move(kids);
    return n;
  }

  /// Counts the nesting of expr() / factor() / not_test(): a deeper input is a syntax error
  /// instead of a stack overflow.
  struct Nesting {
    explicit Nesting(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("nested deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    ~Nesting() { --p.depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;
    Parser& p;
  };

  Node expr() {
    Nesting guard(*this);
    Node value = or_test();
    std::size_t save = p_;
    if (!eat_word("if")) return value;
    no_operators("'if'");
    Node cond = or_test();
    if (!eat_word("else")) {
      p_ = save;
      fail("'if' without 'else'");
    }
    Node other = expr();
    return make(Node::Kind::ifelse, "", {std::move(cond), std::move(value), std::move(other)});
  }
  Node or_test() {
    Node n = and_test();
    while (eat_word("or")) {
      no_operators("'or'");
      n = make(Node::Kind::or_, "or", {std::move(n), and_test()});
    }
    return n;
  }
  Node and_test() {
    Node n = not_test();
    while (eat_word("and")) {
      no_operators("'and'");
      n = make(Node::Kind::and_, "and", {std::move(n), not_test()});
    }
    return n;
  }
  Node not_test() {
    Nesting guard(*this);
    if (eat_word("not")) {
      no_operators("'not'");
      return make(Node::Kind::unary, "not", {not_test()});
    }
    return comparison();
  }
  Node comparison() {
    Node n = arith();
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (!eat(op)) continue;
      no_operators("a comparison");
      return make(Node::Kind::compare, op, {std::move(n), arith()});
    }
    return n;
  }
  Node arith() {
    Node n = term();
    for (;;) {
      const char* op = eat("+") ? "+" : eat("-") ? "-" : nullptr;
      if (!op) return n;
      no_operators("an operator");
      n = make(Node::Kind::binary, op, {std::move(n), term()});
    }
  }
  Node term() {
    Node n = factor();
    for (;;) {
      const char* op = eat("//") ? "//" : eat("/") ? "/" : eat("*") ? "*" : eat("%") ? "%" : nullptr;
      if (!op) return n;
      no_operators("an operator");
      n = make(Node::Kind::binary, op, {std::move(n), factor()});
    }
  }
  Node factor() {
    Nesting guard(*this);
    for (const char* sign : {"-", "+"}) {
      if (!eat(sign)) continue;
      Node operand = factor();
      if (literal_) {  // "-0.5" is a literal: fold the sign
        if (operand.kind != Node::Kind::constant || !operand.value.is_number()) fail("a sign on a non-number");
        if (sign[0] == '-') {
          if (operand.value.is_number_float()) operand.value = -operand.value.get<double>();
          else if (auto neg = negated(operand.value)) operand.value = *neg;
          else fail("integer out of the 64-bit range");
        }
        return operand;
      }
      return make(Node::Kind::unary, sign, {std::move(operand)});
    }
    return postfix();
  }
  Node postfix() {
    Node n = atom();
    while (eat("[")) {
      no_operators("a subscript");
      Node index = expr();
      expect("]");
      n = make(Node::Kind::subscript, "", {std::move(n), std::move(index)});
    }
    return n;
  }
  Node constant(json v) {
    Node n;
    n.value = std::move(v);
    return n;
  }
  Node atom() {
    skip();
    if (p_ >= s_.size()) fail("unexpected end");
    const char c = s_[p_];
    if (c == '(') return sequence(')');
    if (c == '[') return sequence(']');
    if (c == '{') return dict();
    if (c == '\'' || c == '"') return constant(string());
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return constant(number());
    if (!ident_start(c)) fail("unexpected '" + std::string(1, c) + "'");
    std::size_t b = p_;
    while (p_ < s_.size() && ident_char(s_[p_])) ++p_;
    std::string w(s_.substr(b, p_ - b));
    if (w == "True" || w == "true") return constant(true);
    if (w == "False" || w == "false") return constant(false);
    if (w == "None" || w == "null") return constant(nullptr);
    for (const char* kw : {"if", "else", "and", "or", "not", "in", "is", "lambda"})
      if (w == kw) {
        p_ = b;
        fail(std::string("unexpected '") + kw + "'");
      }
    if (literal_) {
      p_ = b;
      fail("a name in a literal");
    }
    Node n;
    n.kind = Node::Kind::name;
    n.op = std::move(w);
    return n;
  }
  /// "(...)" or "[...]": items, `*x` items, a trailing comma; "(x)" is x, "(x,)" a tuple.
  Node sequence(char close) {
    ++p_;
    Node n;
    n.kind = Node::Kind::list;
    const std::string closing(1, close);
    bool trailing_comma = false;
    while (!eat(closing)) {
      bool splat = false;
      if (eat("*")) {
        no_operators("'*'");
        splat = true;
      }
      n.kids.push_back(expr());
      n.splat.push_back(splat);
      trailing_comma = false;
      if (eat(closing)) break;
      expect(",");
      trailing_comma = true;
    }
    if (close == ')' && n.kids.size() == 1 && !trailing_comma && !n.splat[0]) return std::move(n.kids[0]);
    if (literal_) {  // fold to a constant
      json a = json::array();
      for (Node& k : n.kids) a.push_back(std::move(k.value));
      return constant(std::move(a));
    }
    return n;
  }
  Node dict() {
    ++p_;
    Node n;
    n.kind = Node::Kind::dict;
    while (!eat("}")) {
      n.kids.push_back(expr());
      expect(":");
      n.kids.push_back(expr());
      if (eat("}")) break;
      expect(",");
    }
    if (literal_) {
      json o = json::object();
      for (std::size_t i = 0; i < n.kids.size(); i += 2) {
        const json& k = n.kids[i].value;
        o[k.is_string() ? k.get<std::string>() : k.dump(-1, ' ', false, json::error_handler_t::replace)] =
            std::move(n.kids[i + 1].value);
      }
      return constant(std::move(o));
    }
    return n;
  }
  std::string string() {
    const char q = s_[p_++];
    std::string out;
    while (p_ < s_.size() && s_[p_] != q) {
      char c = s_[p_++];
      if (c != '\\' || p_ >= s_.size()) {
        out += c;
        continue;
      }
      char e = s_[p_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'x':
        case 'u': {
          const int digits = e == 'x' ? 2 : 4;
          unsigned v = 0;
          if (p_ + static_cast<std::size_t>(digits) > s_.size()) fail("short escape");
          auto [end, ec] = std::from_chars(s_.data() + p_, s_.data() + p_ + digits, v, 16);
          if (ec != std::errc() || end != s_.data() + p_ + digits) fail("bad escape");
          p_ += static_cast<std::size_t>(digits);
          utf8(out, v);
          break;
        }
        default:  // Python keeps unknown escapes verbatim
          out += '\\';
          out += e;
      }
    }
    if (p_ >= s_.size()) fail("unterminated string");
    ++p_;
    return out;
  }
  json number() {
    std::size_t b = p_;
    bool is_float = false;
    while (p_ < s_.size()) {
      char c = s_[p_];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        ++p_;
      } else if (c == '.' || c == 'e' || c == 'E') {
        is_float = true;
        ++p_;
        if ((c == 'e' || c == 'E') && p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      } else {
        break;
      }
    }
    std::string_view t = s_.substr(b, p_ - b);
    if (p_ < s_.size() && ident_char(s_[p_])) fail("bad number");
    if (!is_float) {
      std::int64_t v = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec == std::errc() && end == t.data() + t.size()) return v;
      fail("bad integer");
    }
    double d = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
    if (ec == std::errc() && end == t.data() + t.size() && std::isfinite(d)) return d;
    fail("bad number");
  }

  std::string_view s_;
  bool literal_;
  std::size_t p_ = 0;
  int depth_ = 0;
};

[[noreturn]] void type_error(const std::string& what, const json& a, const json* b = nullptr) {
  throw std::runtime_error(what + " " + json_excerpt(a) + (b ? " and " + json_excerpt(*b) : std::string()));
}

json arithmetic(const std::string& op, const json& a, const json& b) {
  if (op == "+" && a.is_array() && b.is_array()) {
    json out = a;
    out.insert(out.end(), b.begin(), b.end());
    return out;
  }
  if (op == "+" && a.is_string() && b.is_string()) return a.get<std::string>() + b.get<std::string>();
  auto numeric = [](const json& v) { return v.is_number() || v.is_boolean(); };
  if (!numeric(a) || !numeric(b)) type_error("cannot apply '" + op + "' to", a, &b);
  auto as_int = [](const json& v) {
    if (v.is_boolean()) return std::int64_t{v.get<bool>()};
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t{INT64_MAX})
      throw std::runtime_error("integer beyond the 64-bit range: " + json_excerpt(v));
    return v.get<std::int64_t>();
  };
  const bool ints = !a.is_number_float() && !b.is_number_float();
  if (ints && op != "/") {
    std::int64_t x = as_int(a), y = as_int(b), result = 0;
    // Python's integers do not overflow; TORP's 64-bit ones report it instead of wrapping (UB).
    const bool overflow = op == "+"   ? __builtin_add_overflow(x, y, &result)
                          : op == "-" ? __builtin_sub_overflow(x, y, &result)
                          : op == "*" ? __builtin_mul_overflow(x, y, &result)
                                      : (x == INT64_MIN && y == -1);
    if (overflow) type_error("integer overflow in '" + op + "' of", a, &b);
    if (op == "+" || op == "-" || op == "*") return result;
    if (y == 0) throw std::runtime_error("division by zero");
    std::int64_t q = x / y, r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) {  // Python floors
      --q;
      r += y;
    }
    return op == "//" ? json(q) : json(r);
  }
  double x = a.is_boolean() ? double(a.get<bool>()) : a.get<double>();
  double y = b.is_boolean() ? double(b.get<bool>()) : b.get<double>();
  if (op == "+") return x + y;
  if (op == "-") return x - y;
  if (op == "*") return x * y;
  if (y == 0) throw std::runtime_error("division by zero");
  if (op == "/") return x / y;
  if (op == "//") return std::floor(x / y);
  return x - std::floor(x / y) * y;
}

bool compare(const std::string& op, const json& a, const json& b) {
  if (op == "==") return a == b;
  if (op == "!=") return a != b;
  const bool numbers = a.is_number() && b.is_number(), strings = a.is_string() && b.is_string();
  if (!numbers && !strings) type_error("cannot order", a, &b);
  if (op == "<") return a < b;
  if (op == "<=") return a <= b;
  if (op == ">") return a > b;
  return a >= b;
}

}  // namespace

std::optional<Node> parse(std::string_view text, bool literal_only, std::string* error) {
  try {
    return Parser(text, literal_only).parse_all();
  } catch (const SyntaxError& e) {
    if (error) *error = e.message;
    return std::nullopt;
  }
}

bool truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0.0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return !v.empty();
}

json eval(const Node& n, const Lookup& lookup) {
  switch (n.kind) {
    case Node::Kind::constant: return n.value;
    case Node::Kind::name: {
      const json* v = lookup ? lookup(n.op) : nullptr;
      if (!v) throw std::runtime_error("unknown name '" + n.op + "'");
      return *v;
    }
    case Node::Kind::list: {
      json out = json::array();
      for (std::size_t i = 0; i < n.kids.size(); ++i) {
        json v = eval(n.kids[i], lookup);
        if (!n.splat[i]) {
          out.push_back(std::move(v));
          continue;
        }
        if (!v.is_array()) type_error("cannot unpack '*' of", v);
        for (json& e : v) out.push_back(std::move(e));
      }
      return out;
    }
    case Node::Kind::dict: {
      json out = json::object();
      for (std::size_t i = 0; i < n.kids.size(); i += 2) {
        json k = eval(n.kids[i], lookup);
        out[k.is_string() ? k.get<std::string>() : k.dump(-1, ' ', false, json::error_handler_t::replace)] =
            eval(n.kids[i + 1], lookup);
      }
      return out;
    }
    case Node::Kind::unary: {
      json v = eval(n.kids[0], lookup);
      if (n.op == "not") return !truthy(v);
      if (!v.is_number()) type_error("cannot apply unary '" + n.op + "' to", v);
      if (n.op == "+") return v;
      if (v.is_number_float()) return -v.get<double>();
      if (auto neg = negated(v)) return *neg;
      throw std::runtime_error("integer overflow: -" + json_excerpt(v));
    }
    case Node::Kind::binary: return arithmetic(n.op, eval(n.kids[0], lookup), eval(n.kids[1], lookup));
    case Node::Kind::compare: return compare(n.op, eval(n.kids[0], lookup), eval(n.kids[1], lookup));
    case Node::Kind::and_: {
      json a = eval(n.kids[0], lookup);
      return truthy(a) ? eval(n.kids[1], lookup) : a;
    }
    case Node::Kind::or_: {
      json a = eval(n.kids[0], lookup);
      return truthy(a) ? a : eval(n.kids[1], lookup);
    }
    case Node::Kind::ifelse: return eval(truthy(eval(n.kids[0], lookup)) ? n.kids[1] : n.kids[2], lookup);
    case Node::Kind::subscript: {
      json c = eval(n.kids[0], lookup);
      json i = eval(n.kids[1], lookup);
      if (c.is_array() && i.is_number_integer()) {
        auto k = i.get<std::int64_t>();
        auto size = static_cast<std::int64_t>(c.size());
        if (k < -size || k >= size) throw std::runtime_error("index " + json_excerpt(i) + " out of range for " + json_excerpt(c));
        return c[static_cast<std::size_t>(k < 0 ? k + size : k)];
      }
      if (c.is_object() && i.is_string()) {
        auto it = c.find(i.get<std::string>());
        if (it == c.end()) throw std::runtime_error("no key " + json_excerpt(i) + " in " + json_excerpt(c));
        return *it;
      }
      type_error("cannot index", c, &i);
    }
  }
  throw std::logic_error("py::eval: unknown node");
}

void names(const Node& n, std::vector<std::string>& out) {
  if (n.kind == Node::Kind::name && std::find(out.begin(), out.end(), n.op) == out.end()) out.push_back(n.op);
  for (const Node& k : n.kids) names(k, out);
}

}  // namespace torp::py
