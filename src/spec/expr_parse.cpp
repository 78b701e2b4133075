// SPDX-License-Identifier: Apache-2.0
// The op-spec expression language's parser: expression text -> nodes of the op's one program
// (precedence climbing; identical nodes shared, operators of constants folded).
#include "spec/encoder_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <unordered_map>

namespace torp {
using namespace opspec;
namespace {

using json = nlohmann::json;

/// Named enum constants usable in expressions: every tt-metal enum name (torp/enums.hpp) with
/// its integer, plus true and false.
const std::unordered_map<std::string, double>& enum_constants() {
  static const std::unordered_map<std::string, double> k = [] {
    std::unordered_map<std::string, double> m = {{"true", 1}, {"false", 0}};
    for (EnumKind kind : {EnumKind::data_type, EnumKind::buffer_type, EnumKind::memory_layout, EnumKind::layout,
                          EnumKind::shard_orientation, EnumKind::math_fidelity})
      for (const EnumEntry& e : enum_entries(kind)) m.emplace(e.name, e.value);  // ROW_MAJOR is 0 in both
    return m;
  }();
  return k;
}

struct TPropName {
  const char* name;
  TProp prop;
};
constexpr TPropName kTensorProps[] = {
    {"present", TProp::present},           {"rank", TProp::rank},
    {"volume", TProp::volume},             {"tiles", TProp::tiles},
    {"height", TProp::height},             {"width", TProp::width},
    {"dtype", TProp::dtype},               {"layout", TProp::layout},
    {"buffer_type", TProp::buffer_type},   {"memory_layout", TProp::memory_layout},
    {"sharded", TProp::sharded},           {"shard_cores", TProp::shard_cores},
    {"shard_grid_x", TProp::shard_grid_x}, {"shard_grid_y", TProp::shard_grid_y},
    {"shard_height", TProp::shard_height}, {"shard_width", TProp::shard_width},
    {"shard_orientation", TProp::shard_orientation}, {"is_tensor", TProp::is_tensor},
    {"count", TProp::count},               {"total_tiles", TProp::total_tiles},
    {"total_volume", TProp::total_volume}};

struct FnName {
  const char* name;
  Fn fn;
  int min_args, max_args;
};
constexpr FnName kFunctions[] = {
    {"ceil", Fn::ceil, 1, 1},         {"floor", Fn::floor, 1, 1}, {"round", Fn::round, 1, 1},
    {"log", Fn::log, 1, 1},           {"log2", Fn::log2, 1, 1},   {"exp", Fn::exp, 1, 1},
    {"sqrt", Fn::sqrt, 1, 1},         {"abs", Fn::abs, 1, 1},     {"min", Fn::min, 2, 64},
    {"select", Fn::select, 3, 127},
    {"max", Fn::max, 2, 64},          {"pow", Fn::pow, 2, 2},     {"if", Fn::if_, 3, 3},
    {"in", Fn::in, 2, 64},            {"ceil_div", Fn::ceil_div, 2, 2},
    {"dtype_bytes", Fn::dtype_bytes, 1, 1}, {"value_or", Fn::value_or, 2, 2}};

/// Expressions nest at most this deep (parentheses, calls, unary operators; features using features).
constexpr int kMaxExprDepth = 100;

}  // namespace

std::string Encoder::Impl::signature(const Node& n) {
  std::string s;
  auto put = [&](const auto& v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(n.kind);
  put(n.kind == NodeKind::constant ? n.value : 0.0);
  put(n.arg);
  put(n.prop);
  put(n.field);
  put(n.fn);
  put(n.dim_has_default);
  put(n.of_tensor);
  put(n.default_node);
  for (int k : n.kids) put(k);
  return s;
}

struct Encoder::Impl::Parser {
  Impl& im;
  std::string_view src;
  std::size_t pos = 0;
  std::vector<int>* compiling;  // feature stack for cycle detection
  int depth = 0;                 // nesting of parse_or / parse_unary, at most kMaxExprDepth

  [[noreturn]] void fail(const std::string& msg) const {
    const std::string quoted = src.size() > 120 ? std::string(src.substr(0, 120)) + "..." : std::string(src);
    spec_error("in expression '" + quoted + "' at offset " + std::to_string(pos) + ": " + msg);
  }
  /// Counts nesting (parentheses, call arguments, unary operators): deeper input is an op_spec
  /// error, not a stack overflow.
  struct Nesting {
    explicit Nesting(Parser& parser) : p(parser) {
      if (++p.depth > kMaxExprDepth) p.fail("nested deeper than " + std::to_string(kMaxExprDepth) + " levels");
    }
    ~Nesting() { --p.depth; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;
    Parser& p;
  };
  void skip() {
    while (pos < src.size() && std::isspace(static_cast<unsigned char>(src[pos]))) ++pos;
  }
  bool eat(std::string_view t) {
    skip();
    if (src.substr(pos, t.size()) == t) {
      // do not split "<=" into "<" and "=" etc.
      pos += t.size();
      return true;
    }
    return false;
  }
  int add(Node n) {
    if (!n.kids.empty()) n.k0 = n.kids[0];
    if (n.kids.size() > 1) n.k1 = n.kids[1];
    const auto index = static_cast<int>(im.nodes.size());
    // Fold operators of constants into a constant (e.g. "-1", "1024 * 4", "device.cores * 2").
    if (is_pure(n.kind) && std::all_of(n.kids.begin(), n.kids.end(), [&](int k) {
          return im.nodes[static_cast<std::size_t>(k)].kind == NodeKind::constant;
        })) {
      if (double r = 0.0; im.fold(n, index, r)) {
        n = Node{};
        n.kind = NodeKind::constant;
        n.value = r;
      }
    }
    // An identical node computes the same value: share it (common sub-expressions such as
    // input_tensor.dtype, which many features read, are computed once).
    std::string key = signature(n);
    if (auto it = im.node_by_signature.find(key); it != im.node_by_signature.end()) return it->second;
    im.node_by_signature.emplace(std::move(key), index);
    im.initial_values.push_back(n.kind == NodeKind::constant ? n.value : kNaN);
    if (n.kind != NodeKind::constant) im.code.push_back(index);
    im.nodes.push_back(std::move(n));
    return index;
  }
  int bin(NodeKind k, int a, int b) {
    Node n;
    n.kind = k;
    n.kids = {a, b};
    return add(std::move(n));
  }
  int parse() {
    int r = parse_or();
    skip();
    if (pos != src.size()) fail("unexpected '" + std::string(src.substr(pos)) + "'");
    return r;
  }
  int parse_or() {
    Nesting guard(*this);
    int a = parse_and();
    while (eat("||")) a = bin(NodeKind::or_, a, parse_and());
    return a;
  }
  int parse_and() {
    int a = parse_cmp();
    while (eat("&&")) a = bin(NodeKind::and_, a, parse_cmp());
    return a;
  }
  int parse_cmp() {
    int a = parse_add();
    for (;;) {
      if (eat("==")) a = bin(NodeKind::eq, a, parse_add());
      else if (eat("!=")) a = bin(NodeKind::ne, a, parse_add());
      else if (eat("<=")) a = bin(NodeKind::le, a, parse_add());
      else if (eat(">=")) a = bin(NodeKind::ge, a, parse_add());
      else if (eat("<")) a = bin(NodeKind::lt, a, parse_add());
      else if (eat(">")) a = bin(NodeKind::gt, a, parse_add());
      else return a;
    }
  }
  int parse_add() {
    int a = parse_mul();
    for (;;) {
      if (eat("+")) a = bin(NodeKind::add, a, parse_mul());
      else if (eat("-")) a = bin(NodeKind::sub, a, parse_mul());
      else return a;
    }
  }
  int parse_mul() {
    int a = parse_unary();
    for (;;) {
      if (eat("*")) a = bin(NodeKind::mul, a, parse_unary());
      else if (eat("/")) a = bin(NodeKind::div, a, parse_unary());
      else if (eat("%")) a = bin(NodeKind::mod, a, parse_unary());
      else return a;
    }
  }
  int parse_unary() {
    Nesting guard(*this);
    if (eat("-")) {
      Node n;
      n.kind = NodeKind::neg;
      n.kids = {parse_unary()};
      return add(std::move(n));
    }
    if (eat("!")) {
      Node n;
      n.kind = NodeKind::not_;
      n.kids = {parse_unary()};
      return add(std::move(n));
    }
    return parse_primary();
  }
  std::string ident() {
    skip();
    std::size_t s = pos;
    while (pos < src.size() && (std::isalnum(static_cast<unsigned char>(src[pos])) || src[pos] == '_')) ++pos;
    if (s == pos) fail("expected a name");
    return std::string(src.substr(s, pos - s));
  }
  std::vector<int> call_args() {
    std::vector<int> a;
    if (eat(")")) return a;
    for (;;) {
      a.push_back(parse_or());
      if (eat(")")) return a;
      if (!eat(",")) fail("expected ',' or ')'");
    }
  }
  int parse_primary() {
    skip();
    if (pos >= src.size()) fail("unexpected end of expression");
    if (eat("(")) {
      int r = parse_or();
      if (!eat(")")) fail("expected ')'");
      return r;
    }
    char c = src[pos];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return parse_number();
    std::string name = ident();
    skip();
    if (pos < src.size() && src[pos] == '(') {  // function call
      ++pos;
      return parse_call(name);
    }
    if (pos < src.size() && src[pos] == '.') {  // member access: arg.prop, arg.dim(i), device.key
      ++pos;
      return parse_member(name, ident());
    }
    return parse_name(name);
  }
  int constant(double value) {
    Node n;
    n.kind = NodeKind::constant;
    n.value = value;
    return add(std::move(n));
  }
  int parse_number() {
    char* end = nullptr;
    std::string tmp(src.substr(pos));
    double v = std::strtod(tmp.c_str(), &end);
    std::size_t used = static_cast<std::size_t>(end - tmp.c_str());
    if (used == 0) fail("bad number");
    pos += used;
    return constant(v);
  }
  /// name(args...), after the '('.
  int parse_call(const std::string& name) {
    auto f = std::find_if(std::begin(kFunctions), std::end(kFunctions),
                          [&](const FnName& fn) { return name == fn.name; });
    if (f == std::end(kFunctions)) fail("unknown function '" + name + "'");
    Node n;
    n.kind = NodeKind::call;
    n.fn = f->fn;
    n.kids = call_args();
    if (static_cast<int>(n.kids.size()) < f->min_args || static_cast<int>(n.kids.size()) > f->max_args)
      fail("wrong number of arguments to " + name + "()");
    if (f->fn == Fn::select && n.kids.size() % 2 == 0)
      fail("select() takes condition/value pairs and a final default: select(c1, v1, c2, v2, ..., default)");
    return add(std::move(n));
  }
  /// name.member: a device constant, an argument's presence, a tensor property or an object field.
  int parse_member(const std::string& name, const std::string& member) {
    if (name == "device") {
      auto it = im.device_json.find(member);
      if (it == im.device_json.end() || !it->is_number()) fail("device description has no number '" + member + "'");
      return constant(it->get<double>());
    }
    int ai = im.arg_index(name);
    if (ai < 0) fail("unknown argument '" + name + "'");
    const ArgSpec& as = im.args[ai];
    Node n;
    n.arg = ai;
    if (member == "present") {
      n.kind = NodeKind::arg_present;
      return add(std::move(n));
    }
    if (tensor_like(as.type) || as.type == ArgType::memory_config) return parse_tensor_member(as, std::move(n), member);
    if (as.type == ArgType::object) {
      for (std::size_t i = 0; i < as.fields.size(); ++i)
        if (as.fields[i].name == member) {
          n.kind = NodeKind::object_field;
          n.field = static_cast<int>(i);
          return add(std::move(n));
        }
      fail("argument '" + name + "' declares no field '" + member + "'");
    }
    fail("argument '" + name + "' is a scalar and has no member '" + member + "'");
  }
  /// A tensor's or memory config's member: dim(i), dim_or(i, default) or a property (`n.arg` set).
  int parse_tensor_member(const ArgSpec& as, Node n, const std::string& member) {
    if (member == "dim" || member == "dim_or") {
      if (!tensor_like(as.type)) fail("dim() applies to tensors only");
      if (!eat("(")) fail("expected '(' after " + member);
      n.kind = NodeKind::tensor_dim;
      n.kids = call_args();
      n.dim_has_default = member == "dim_or";
      if (n.kids.size() != (n.dim_has_default ? 2u : 1u)) fail("wrong number of arguments to " + member + "()");
      return add(std::move(n));
    }
    auto p = std::find_if(std::begin(kTensorProps), std::end(kTensorProps),
                          [&](const TPropName& t) { return member == t.name; });
    if (p == std::end(kTensorProps)) fail("unknown tensor property '" + member + "'");
    n.kind = NodeKind::tensor_prop;
    n.prop = p->prop;
    n.of_tensor = tensor_like(as.type);
    if ((p->prop == TProp::count || p->prop == TProp::total_tiles || p->prop == TProp::total_volume) &&
        as.type != ArgType::tensor_list)
      fail("'" + member + "' applies to tensor lists only");
    return add(std::move(n));
  }
  /// A bare name: a scalar argument, a feature or an enum constant.
  int parse_name(const std::string& name) {
    if (int ai = im.arg_index(name); ai >= 0) {
      const ArgSpec& as = im.args[ai];
      if (as.type == ArgType::tensor || as.type == ArgType::tensor_list || as.type == ArgType::memory_config ||
          as.type == ArgType::object)
        fail("argument '" + name + "' is not a scalar; use a member such as " + name + ".present");
      Node n;
      n.kind = NodeKind::scalar_arg;
      n.arg = ai;
      n.default_node = as.default_id;  // -1 while the default itself compiles: no cycle
      return add(std::move(n));
    }
    if (int fi = im.feature_index(name); fi >= 0) {
      im.compile_feature(fi, *compiling);
      return im.feature_root[fi];  // a feature is computed once: its uses share its node
    }
    auto& ec = enum_constants();
    if (auto it = ec.find(name); it != ec.end()) return constant(it->second);
    fail("unknown name '" + name + "' (not an argument, feature or enum constant)");
  }
};

int Encoder::Impl::arg_index(std::string_view name) const {
  for (std::size_t i = 0; i < args.size(); ++i)
    if (args[i].name == name) return static_cast<int>(i);
  return -1;
}

int Encoder::Impl::feature_index(std::string_view name) const {
  for (std::size_t i = 0; i < feature_names.size(); ++i)
    if (feature_names[i] == name) return static_cast<int>(i);
  return -1;
}

int Encoder::Impl::compile_expr(std::string_view src, std::vector<int>& stack) {
  Parser p{*this, src, 0, &stack};
  return p.parse();
}

void Encoder::Impl::compile_feature(int fi, std::vector<int>& stack) {
  if (feature_root[fi] >= 0) return;
  if (std::find(stack.begin(), stack.end(), fi) != stack.end())
    spec_error("feature '" + feature_names[fi] + "' refers to itself", "/features/" + feature_names[fi]);
  if (stack.size() >= static_cast<std::size_t>(kMaxExprDepth))
    spec_error("features refer to features more than " + std::to_string(kMaxExprDepth) + " levels deep",
               "/features/" + feature_names[fi]);
  stack.push_back(fi);
  try {
    feature_root[fi] = compile_expr(feature_src[fi], stack);
  } catch (const TorpError& e) {
    if (!e.error().path.empty()) throw;
    spec_error(e.error().message, "/features/" + feature_names[fi]);
  }
  stack.pop_back();
}

}  // namespace torp
