// SPDX-License-Identifier: Apache-2.0
// Op spec compilation and evaluation: argument parsing plus a small expression language
// (arithmetic, comparisons, functions, tensor properties, device constants, named features).
#include "torp/encoder.hpp"

#include "core/json_excerpt.hpp"
#include "spec/bindings.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <unordered_map>

namespace torp {
namespace {

using json = nlohmann::json;

[[noreturn]] void spec_error(std::string msg, std::string path = {}) {
  throw TorpError(ErrorCode::op_spec, std::move(msg), std::move(path));
}

enum class ArgType { tensor, memory_config, integer, number, boolean, enumeration, object, tensor_or_number, tensor_list };

/// Arguments whose members are tensor properties.
bool tensor_like(ArgType t) { return t == ArgType::tensor || t == ArgType::tensor_or_number || t == ArgType::tensor_list; }

struct FieldSpec {
  std::string name;
  ArgType type = ArgType::number;
  EnumKind enum_kind = EnumKind::data_type;
  std::optional<double> default_value;  ///< used when the field is absent or null
};

struct ArgSpec {
  std::string name;
  std::string path;  // "/<name>" (appended to the args path)
  ArgType type = ArgType::number;
  EnumKind enum_kind = EnumKind::data_type;
  bool optional = false;
  std::optional<double> default_value;
  std::string default_expr;
  int default_id = -1;
  int min_rank = 1, max_rank = TensorInfo::kMaxRank;
  std::optional<double> min, max;
  std::vector<FieldSpec> fields;  // object arguments
};

enum class TProp : std::uint8_t {
  present, rank, volume, tiles, height, width, dtype, layout, buffer_type, memory_layout, sharded,
  shard_cores, shard_grid_x, shard_grid_y, shard_height, shard_width, shard_orientation,
  is_tensor, count, total_tiles, total_volume
};

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

enum class Fn : std::uint8_t {
  ceil, floor, round, log, log2, exp, sqrt, abs, min, max, pow, if_, select, in, ceil_div, dtype_bytes, value_or
};
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

enum class NodeKind : std::uint8_t {
  constant, scalar_arg, arg_present, tensor_prop, tensor_dim, object_field, neg, not_,
  add, sub, mul, div, mod, lt, le, gt, ge, eq, ne, and_, or_, call
};

struct Node {
  NodeKind kind = NodeKind::constant;
  double value = 0.0;
  int arg = -1;       // argument index
  TProp prop = TProp::present;
  int field = -1;     // object field index within the arg spec
  Fn fn = Fn::ceil;
  bool dim_has_default = false;
  bool of_tensor = false;  // tensor_prop: the argument is a tensor (else a memory config)
  int default_node = -1;   // scalar_arg: the node of the argument's expression default, if any
  std::vector<int> kids;
  int k0 = -1, k1 = -1;  // kids[0], kids[1] (the hot operands, without the vector's indirection)
};

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

ArgType parse_arg_type(const std::string& s, const std::string& path) {
  if (s == "tensor") return ArgType::tensor;
  if (s == "memory_config") return ArgType::memory_config;
  if (s == "int") return ArgType::integer;
  if (s == "float" || s == "number") return ArgType::number;
  if (s == "bool") return ArgType::boolean;
  if (s == "enum") return ArgType::enumeration;
  if (s == "object") return ArgType::object;
  if (s == "tensor_or_number") return ArgType::tensor_or_number;
  if (s == "tensor_list") return ArgType::tensor_list;
  spec_error("unknown argument type '" + s +
                 "' (expected tensor, tensor_or_number, tensor_list, memory_config, int, float, bool, enum or object)",
             path);
}

EnumKind parse_enum_kind(const std::string& s, const std::string& path) {
  if (auto k = enum_kind_named(s)) return *k;
  spec_error("unknown enum '" + s + "'", path);
}

const char* type_word(ArgType t) {
  switch (t) {
    case ArgType::tensor: return "a tensor object";
    case ArgType::memory_config: return "a memory config object";
    case ArgType::integer: return "an integer";
    case ArgType::number: return "a number";
    case ArgType::boolean: return "a boolean";
    case ArgType::enumeration: return "an enum value (integer or name)";
    case ArgType::object: return "an object";
    case ArgType::tensor_or_number: return "a tensor object or a number";
    case ArgType::tensor_list: return "an array of tensor objects";
  }
  return "?";
}

/// Read a scalar of type t from JSON; nullopt if ill-typed. Strings such as "32"/"True" are not
/// accepted in queries (they come from sweep files, which the sweep importer normalizes).
std::optional<double> read_scalar(const json& v, ArgType t, EnumKind ek) {
  switch (t) {
    case ArgType::integer:
      if (v.is_number_integer()) return static_cast<double>(v.get<std::int64_t>());
      if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d)) return d;
      }
      return std::nullopt;
    case ArgType::number:
      if (v.is_number()) {
        double d = v.get<double>();
        if (std::isfinite(d)) return d;
      }
      return std::nullopt;
    case ArgType::boolean:
      if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
      if (v.is_number_integer() && (v.get<std::int64_t>() == 0 || v.get<std::int64_t>() == 1))
        return static_cast<double>(v.get<std::int64_t>());
      return std::nullopt;
    case ArgType::enumeration: {
      auto e = parse_enum(ek, v);
      if (e) return static_cast<double>(*e);
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

}  // namespace

std::vector<json> expand_op_family(const json& spec) {
  auto members = spec.find("members");
  if (!spec.is_object() || members == spec.end()) return {spec};
  if (!members->is_object() || members->empty())
    spec_error("\"members\" must be a non-empty object of op name -> {features, aliases, description}", "/members");
  std::vector<json> out;
  for (auto it = members->begin(); it != members->end(); ++it) {
    const std::string path = "/members/" + it.key();
    if (!it->is_object()) spec_error("a family member must be an object", path);
    json one = spec;
    one.erase("members");
    one["op"] = it.key();
    for (const char* key : {"aliases", "description"})
      if (it->contains(key)) one[key] = (*it)[key];
    if (auto ar = it->find("args"); ar != it->end()) {
      if (!ar->is_object()) spec_error("a member's args must be an object", path + "/args");
      for (auto ai = ar->begin(); ai != ar->end(); ++ai) one["args"][ai.key()] = ai.value();
    }
    if (auto f = it->find("features"); f != it->end()) {
      if (!f->is_object()) spec_error("a member's features must be an object", path + "/features");
      for (auto fi = f->begin(); fi != f->end(); ++fi) one["features"][fi.key()] = fi.value();
    }
    out.push_back(std::move(one));
  }
  return out;
}

std::string canonical_op_name(std::string_view name) {
  std::string s(name);
  for (std::size_t p; (p = s.find("::")) != std::string::npos;) s.replace(p, 2, ".");
  return s;
}

/// Expressions nest at most this deep (parentheses, calls, unary operators; features using features).
constexpr int kMaxExprDepth = 100;

struct Encoder::Impl {
  json spec_json;
  json device_json;
  std::string op;
  std::vector<std::string> names;
  std::vector<ArgSpec> args;
  std::vector<std::string> feature_names;
  std::vector<std::string> feature_src;
  std::vector<int> feature_root;  // node index, -1 until compiled
  std::vector<Node> nodes;
  std::vector<double> initial_values;  // per node: a constant's value, else NaN
  std::vector<int> code;               // the nodes run() computes (all but constants), in order
  std::map<std::string, int> node_by_signature;  // compile time: each distinct node once

  static std::string signature(const Node& n) {
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
  std::vector<int> exprs;  // ExprId -> root node
  struct Rule {
    int expr;
    std::string message;
  };
  std::vector<Rule> validate;

  // ---- compile ------------------------------------------------------------------------------
  struct Parser {
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
        std::vector<double> values = im.initial_values;
        std::vector<std::uint32_t> poison(im.nodes.size() + 1, 0);
        values.push_back(0.0);
        im.step(n, index, nullptr, values.data(), poison.data());
        if (poison.back() == 0) {
          const double r = values.back();
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
      if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
        const char* begin = src.data() + pos;
        char* end = nullptr;
        std::string tmp(src.substr(pos));
        double v = std::strtod(tmp.c_str(), &end);
        std::size_t used = static_cast<std::size_t>(end - tmp.c_str());
        if (used == 0) fail("bad number");
        (void)begin;
        pos += used;
        Node n;
        n.kind = NodeKind::constant;
        n.value = v;
        return add(std::move(n));
      }
      std::string name = ident();
      skip();
      if (pos < src.size() && src[pos] == '(') {  // function call
        ++pos;
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
      if (pos < src.size() && src[pos] == '.') {  // member access: arg.prop, arg.dim(i), device.key
        ++pos;
        std::string member = ident();
        if (name == "device") {
          auto it = im.device_json.find(member);
          if (it == im.device_json.end() || !it->is_number()) fail("device description has no number '" + member + "'");
          Node n;
          n.kind = NodeKind::constant;
          n.value = it->get<double>();
          return add(std::move(n));
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
        if (tensor_like(as.type) || as.type == ArgType::memory_config) {
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
      // bare name: scalar argument, feature, enum constant
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
      if (auto it = ec.find(name); it != ec.end()) {
        Node n;
        n.kind = NodeKind::constant;
        n.value = it->second;
        return add(std::move(n));
      }
      fail("unknown name '" + name + "' (not an argument, feature or enum constant)");
    }
  };

  int arg_index(std::string_view name) const {
    for (std::size_t i = 0; i < args.size(); ++i)
      if (args[i].name == name) return static_cast<int>(i);
    return -1;
  }
  int feature_index(std::string_view name) const {
    for (std::size_t i = 0; i < feature_names.size(); ++i)
      if (feature_names[i] == name) return static_cast<int>(i);
    return -1;
  }
  int compile_expr(std::string_view src, std::vector<int>& stack) {
    Parser p{*this, src, 0, &stack};
    return p.parse();
  }
  void compile_feature(int fi, std::vector<int>& stack) {
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

  void load(const json& spec) {
    if (!spec.is_object()) spec_error("op spec must be a JSON object");
    auto op_it = spec.find("op");
    if (op_it == spec.end() || !op_it->is_string() || op_it->get<std::string>().empty())
      spec_error("op spec needs a string \"op\" (e.g. \"ttnn.exp\")", "/op");
    op = canonical_op_name(op_it->get<std::string>());
    auto add_name = [&](const std::string& n) {
      if (!n.empty() && std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    };
    add_name(op);
    std::string cpp = op;
    for (std::size_t p; (p = cpp.find('.')) != std::string::npos;) cpp.replace(p, 1, "::");
    add_name(cpp);
    add_name(op.substr(op.rfind('.') + 1));
    if (auto a = spec.find("aliases"); a != spec.end()) {
      if (!a->is_array()) spec_error("aliases must be an array of strings", "/aliases");
      for (const auto& n : *a) {
        if (!n.is_string()) spec_error("aliases must be an array of strings", "/aliases");
        add_name(canonical_op_name(n.get<std::string>()));
      }
    }
    auto ar = spec.find("args");
    if (ar == spec.end() || !ar->is_object()) spec_error("op spec needs an \"args\" object", "/args");
    // Keep the declaration order of the file: nlohmann::json sorts keys, so "args" may be an
    // object (order irrelevant for parsing) — arguments are addressed by name only.
    for (auto it = ar->begin(); it != ar->end(); ++it) {
      ArgSpec a;
      a.name = it.key();
      a.path = "/" + it.key();
      std::string sp = "/args/" + it.key();
      const json& d = it.value();
      if (!d.is_object() || !d.contains("type") || !d["type"].is_string())
        spec_error("argument needs a string \"type\"", sp + "/type");
      a.type = parse_arg_type(d["type"].get<std::string>(), sp + "/type");
      if (a.type == ArgType::enumeration) {
        if (!d.contains("enum") || !d["enum"].is_string()) spec_error("enum argument needs \"enum\"", sp + "/enum");
        a.enum_kind = parse_enum_kind(d["enum"].get<std::string>(), sp + "/enum");
      }
      a.optional = d.value("optional", false);
      if (auto df = d.find("default"); df != d.end()) {
        a.optional = true;
        if (df->is_string()) a.default_expr = df->get<std::string>();
        else if (df->is_boolean()) a.default_value = df->get<bool>() ? 1.0 : 0.0;
        else if (df->is_number()) a.default_value = df->get<double>();
        else spec_error("default must be a number, boolean or expression string", sp + "/default");
      }
      if (auto r = d.find("rank"); r != d.end()) {
        if (!r->is_array() || r->size() != 2) spec_error("rank must be [min, max]", sp + "/rank");
        a.min_rank = (*r)[0].get<int>();
        a.max_rank = (*r)[1].get<int>();
      }
      if (auto m = d.find("min"); m != d.end()) a.min = m->get<double>();
      if (auto m = d.find("max"); m != d.end()) a.max = m->get<double>();
      if (a.type == ArgType::object) {
        auto f = d.find("fields");
        if (f == d.end() || !f->is_object()) spec_error("object argument needs \"fields\"", sp + "/fields");
        for (auto fi = f->begin(); fi != f->end(); ++fi) {
          FieldSpec fs;
          fs.name = fi.key();
          std::string fp = sp + "/fields/" + fi.key();
          if (!fi->is_object() || !fi->contains("type")) spec_error("field needs a \"type\"", fp);
          fs.type = parse_arg_type((*fi)["type"].get<std::string>(), fp + "/type");
          if (fs.type == ArgType::tensor || fs.type == ArgType::memory_config || fs.type == ArgType::object)
            spec_error("object fields must be scalars", fp + "/type");
          if (fs.type == ArgType::enumeration)
            fs.enum_kind = parse_enum_kind(fi->value("enum", std::string()), fp + "/enum");
          if (auto df = fi->find("default"); df != fi->end()) {
            if (df->is_boolean()) fs.default_value = df->get<bool>() ? 1.0 : 0.0;
            else if (df->is_number()) fs.default_value = df->get<double>();
            else spec_error("a field default must be a number or boolean", fp + "/default");
          }
          a.fields.push_back(std::move(fs));
        }
      }
      args.push_back(std::move(a));
    }
    if (auto f = spec.find("features"); f != spec.end()) {
      if (!f->is_object()) spec_error("features must be an object of name -> expression", "/features");
      for (auto it = f->begin(); it != f->end(); ++it) {
        if (!it->is_string()) spec_error("feature must be an expression string", "/features/" + it.key());
        if (arg_index(it.key()) >= 0) spec_error("feature name clashes with an argument", "/features/" + it.key());
        feature_names.push_back(it.key());
        feature_src.push_back(it->get<std::string>());
      }
    }
    feature_root.assign(feature_names.size(), -1);
    std::vector<int> stack;
    // Argument defaults first: nodes run in index order, and uses of an argument read its default.
    for (auto& a : args) {
      if (a.default_expr.empty()) continue;
      try {
        a.default_id = compile_expr(a.default_expr, stack);
      } catch (const TorpError& e) {
        spec_error(e.error().message, "/args/" + a.name + "/default");
      }
    }
    for (std::size_t i = 0; i < feature_names.size(); ++i) compile_feature(static_cast<int>(i), stack);
    for (std::size_t i = 0; i < feature_names.size(); ++i) exprs.push_back(feature_root[i]);  // ExprId i = feature i
    if (auto v = spec.find("validate"); v != spec.end()) {
      if (!v->is_array()) spec_error("validate must be an array of {expr, message}", "/validate");
      for (std::size_t i = 0; i < v->size(); ++i) {
        const json& r = (*v)[i];
        std::string rp = "/validate/" + std::to_string(i);
        if (!r.is_object() || !r.contains("expr") || !r["expr"].is_string())
          spec_error("validate rule needs \"expr\"", rp);
        Rule rule;
        try {
          rule.expr = compile_expr(r["expr"].get<std::string>(), stack);
        } catch (const TorpError& e) {
          spec_error(e.error().message, rp + "/expr");
        }
        rule.message = r.value("message", "validation failed: " + r["expr"].get<std::string>());
        validate.push_back(std::move(rule));
      }
    }
  }

  // ---- evaluate -----------------------------------------------------------------------------
  // The nodes form one program: kids precede their parents, so a single pass in index order
  // computes every expression of the op once per query (shared sub-expressions and features
  // included). Errors do not stop the pass: a node that cannot be computed is "poisoned" with
  // its own index, poison flows to the nodes that use its value, and the lazy operators (if,
  // select, &&, ||, dim_or) take poison only from the operands they choose, so an error in an
  // unused branch is no error. The message of an error is built only when a caller asks for it.

  std::string arg_path(const Bindings& b, int ai) const {
    return std::string(b.args_path) + args[ai].path;
  }

  std::string prop_path(const Bindings& b, int ai, TProp p) const {
    std::string base = arg_path(b, ai);
    const ArgSpec& as = args[ai];
    if (as.type == ArgType::memory_config) {
      switch (p) {
        case TProp::buffer_type: return base + "/buffer_type";
        case TProp::memory_layout: return base + "/memory_layout";
        default:
          if (p >= TProp::sharded) return base + "/shard_spec";
          return base;
      }
    }
    if (as.type == ArgType::tensor_list) base += "/0";
    const TensorInfo& t = b.args[ai].tensor;
    switch (p) {
      case TProp::dtype: return base + t.dtype_path;
      case TProp::layout: return base + t.layout_path;
      case TProp::buffer_type: return base + t.memory_path + "/buffer_type";
      case TProp::memory_layout: return base + t.memory_path + "/memory_layout";
      case TProp::present: return base;
      default:
        if (p >= TProp::sharded) return base + t.memory_path + "/shard_spec";
        return base + t.shape_path;
    }
  }

  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

  /// A tensor / memory-config property; false when it cannot be given (the node is poisoned).
  static bool tensor_prop(const Bindings::Arg& a, bool is_tensor, TProp prop, double& out) {
    if (prop == TProp::present) {
      out = a.present ? 1.0 : 0.0;
      return true;
    }
    if (prop == TProp::is_tensor) {
      out = a.present && a.is_tensor ? 1.0 : 0.0;
      return true;
    }
    if (!a.present || (is_tensor && !a.is_tensor)) return false;
    const MemoryConfigInfo& m = is_tensor ? a.tensor.memory : a.memory;
    const TensorInfo& t = a.tensor;
    auto given = [&](int v) {
      out = v;
      return v >= 0;
    };
    auto shard = [&](int v) {
      out = v;
      return m.shard.present;
    };
    switch (prop) {
      case TProp::rank: out = t.rank; return true;
      case TProp::volume: {
        double v = 1;
        for (int i = 0; i < t.rank; ++i) v *= static_cast<double>(t.shape[i]);
        out = v;
        return true;
      }
      case TProp::tiles: {
        double h = t.rank >= 2 ? static_cast<double>(t.shape[t.rank - 2]) : 1.0;
        double w = static_cast<double>(t.shape[t.rank - 1]);
        double outer = 1;
        for (int i = 0; i + 2 < t.rank; ++i) outer *= static_cast<double>(t.shape[i]);
        out = outer * std::ceil(h / 32.0) * std::ceil(w / 32.0);
        return true;
      }
      case TProp::height: {
        double v = 1;
        for (int i = 0; i + 1 < t.rank; ++i) v *= static_cast<double>(t.shape[i]);
        out = v;
        return true;
      }
      case TProp::width: out = static_cast<double>(t.shape[t.rank - 1]); return true;
      case TProp::dtype: return given(t.dtype);
      case TProp::layout: return given(t.layout);
      case TProp::buffer_type: return given(m.buffer_type);
      case TProp::memory_layout: return given(m.memory_layout);
      case TProp::sharded: out = m.shard.present ? 1.0 : 0.0; return true;
      case TProp::shard_cores: return shard(m.shard.cores);
      case TProp::shard_grid_x: return shard(m.shard.grid_x);
      case TProp::shard_grid_y: return shard(m.shard.grid_y);
      case TProp::shard_height: return shard(m.shard.shape_h);
      case TProp::shard_width: return shard(m.shard.shape_w);
      case TProp::shard_orientation: return shard(m.shard.orientation);
      case TProp::count: out = static_cast<double>(a.list.size()); return true;
      case TProp::total_tiles:
      case TProp::total_volume: out = list_total(a, prop); return true;
      case TProp::present:
      case TProp::is_tensor: break;
    }
    return true;
  }

  /// Sum of tiles / volume over a tensor list's elements.
  static double list_total(const Bindings::Arg& a, TProp prop) {
    double total = 0.0;
    for (const TensorInfo& t : a.list) {
      Bindings::Arg one;
      one.present = true;
      one.is_tensor = true;
      one.tensor = t;
      double x = 0.0;
      tensor_prop(one, true, prop == TProp::total_tiles ? TProp::tiles : TProp::volume, x);
      total += x;
    }
    return total;
  }

  /// Index into the shape for dim(i): -1 if i is not an integer, -2 if out of range.
  static long dim_index(double di, int rank) {
    auto i = static_cast<long>(di);
    if (!(static_cast<double>(i) == di)) return -1;
    if (i < 0) i += rank;
    return i >= 0 && i < rank ? i : -2;
  }

  /// An object argument's field; false when missing (without default) or ill-typed.
  bool object_field(const Bindings::Arg& a, const FieldSpec& fs, double& out) const {
    auto it = a.object->find(fs.name);
    if (it == a.object->end() || it->is_null()) {
      out = fs.default_value.value_or(kNaN);
      return fs.default_value.has_value();
    }
    auto v = read_scalar(*it, fs.type, fs.enum_kind);
    out = v.value_or(kNaN);
    return v.has_value();
  }

  /// One pass over the computed nodes: b.values / b.poison for every node (after the arguments
  /// are parsed). Constants, folded at compile time, come from `initial_values`.
  void run(Bindings& b) const {
    b.values.assign(initial_values.begin(), initial_values.end());
    b.poison.assign(nodes.size(), 0);
    double* v = b.values.data();
    std::uint32_t* p = b.poison.data();
    for (const int i : code) step(nodes[static_cast<std::size_t>(i)], i, &b, v, p);
  }

  /// The nodes that read no argument: operators and functions of other nodes' values.
  static bool is_pure(NodeKind k) { return k >= NodeKind::neg; }

  /// Compute node i into v[i] / p[i] from its operands (earlier nodes) and the arguments `b`
  /// (null when folding constants at compile time: pure nodes only).
  __attribute__((always_inline)) inline void step(const Node& n, int i, const Bindings* b, double* v,
                                                  std::uint32_t* p) const {
    const auto self = static_cast<std::uint32_t>(i + 1);
    const int k0 = n.k0, k1 = n.k1;
    double r = 0.0;
    std::uint32_t e = 0;
    auto strict2 = [&] { e = p[k0] ? p[k0] : p[k1]; };
    switch (n.kind) {
      case NodeKind::constant: r = n.value; break;
      case NodeKind::scalar_arg: {
        const Bindings::Arg& a = b->args[n.arg];
        if (a.present && !a.is_tensor) {
          r = a.number;
        } else if (a.present) {
          e = self;
        } else if (n.default_node >= 0) {  // expression default, computed before this node
          r = v[n.default_node];
          e = p[n.default_node];
        } else {
          e = self;
        }
        break;
      }
      case NodeKind::arg_present: r = b->args[n.arg].present || args[n.arg].default_id >= 0 ? 1.0 : 0.0; break;
      case NodeKind::tensor_prop:
        if (!tensor_prop(b->args[n.arg], n.of_tensor, n.prop, r)) e = self;
        break;
      case NodeKind::tensor_dim: {
        const Bindings::Arg& a = b->args[n.arg];
        e = a.present && a.is_tensor ? p[k0] : self;
        if (e) break;
        const long at = dim_index(v[k0], a.tensor.rank);
        if (at >= 0) {
          r = static_cast<double>(a.tensor.shape[static_cast<std::size_t>(at)]);
        } else if (at == -2 && n.dim_has_default) {
          r = v[k1];
          e = p[k1];
        } else {
          e = self;
        }
        break;
      }
      case NodeKind::object_field: {
        const Bindings::Arg& a = b->args[n.arg];
        if (!a.present || !object_field(a, args[n.arg].fields[n.field], r)) e = self;
        break;
      }
      case NodeKind::neg: r = -v[k0]; e = p[k0]; break;
      case NodeKind::not_: r = v[k0] == 0.0 ? 1.0 : 0.0; e = p[k0]; break;
      case NodeKind::add: r = v[k0] + v[k1]; strict2(); break;
      case NodeKind::sub: r = v[k0] - v[k1]; strict2(); break;
      case NodeKind::mul: r = v[k0] * v[k1]; strict2(); break;
      case NodeKind::div: r = v[k0] / v[k1]; strict2(); break;
      case NodeKind::mod: r = std::fmod(v[k0], v[k1]); strict2(); break;
      case NodeKind::lt: r = v[k0] < v[k1] ? 1.0 : 0.0; strict2(); break;
      case NodeKind::le: r = v[k0] <= v[k1] ? 1.0 : 0.0; strict2(); break;
      case NodeKind::gt: r = v[k0] > v[k1] ? 1.0 : 0.0; strict2(); break;
      case NodeKind::ge: r = v[k0] >= v[k1] ? 1.0 : 0.0; strict2(); break;
      case NodeKind::eq: r = v[k0] == v[k1] ? 1.0 : 0.0; strict2(); break;
      case NodeKind::ne: r = v[k0] != v[k1] ? 1.0 : 0.0; strict2(); break;
      case NodeKind::and_:  // the right operand only matters when the left one holds
        if (p[k0] || v[k0] == 0.0) {
          e = p[k0];
        } else {
          r = v[k1] != 0.0 ? 1.0 : 0.0;
          e = p[k1];
        }
        break;
      case NodeKind::or_:
        if (p[k0] || v[k0] != 0.0) {
          r = 1.0;
          e = p[k0];
        } else {
          r = v[k1] != 0.0 ? 1.0 : 0.0;
          e = p[k1];
        }
        break;
      case NodeKind::call: call(n, self, v, p, r, e); break;
    }
    v[i] = e ? kNaN : r;
    p[i] = e;
  }

  static void call(const Node& n, std::uint32_t self, const double* v, const std::uint32_t* p, double& r,
                   std::uint32_t& e) {
    const int k0 = n.k0, k1 = n.k1;
    auto first_poison = [&](std::size_t from, std::size_t to) {
      for (std::size_t j = from; j < to; ++j)
        if (p[n.kids[j]]) return p[n.kids[j]];
      return std::uint32_t{0};
    };
    switch (n.fn) {
      case Fn::ceil: r = std::ceil(v[k0]); e = p[k0]; return;
      case Fn::floor: r = std::floor(v[k0]); e = p[k0]; return;
      case Fn::round: r = std::round(v[k0]); e = p[k0]; return;
      case Fn::log: r = std::log(v[k0]); e = p[k0]; return;
      case Fn::log2: r = std::log2(v[k0]); e = p[k0]; return;
      case Fn::exp: r = std::exp(v[k0]); e = p[k0]; return;
      case Fn::sqrt: r = std::sqrt(v[k0]); e = p[k0]; return;
      case Fn::abs: r = std::fabs(v[k0]); e = p[k0]; return;
      case Fn::pow: r = std::pow(v[k0], v[k1]); e = p[k0] ? p[k0] : p[k1]; return;
      case Fn::ceil_div: r = std::ceil(v[k0] / v[k1]); e = p[k0] ? p[k0] : p[k1]; return;
      case Fn::min:
      case Fn::max: {
        r = v[k0];
        for (std::size_t j = 1; j < n.kids.size(); ++j)
          r = n.fn == Fn::min ? std::min(r, v[n.kids[j]]) : std::max(r, v[n.kids[j]]);
        e = first_poison(0, n.kids.size());
        return;
      }
      case Fn::if_:
        if (p[k0]) {
          e = p[k0];
        } else {
          const int chosen = v[k0] != 0.0 ? k1 : n.kids[2];
          r = v[chosen];
          e = p[chosen];
        }
        return;
      case Fn::select: {  // the first value whose condition holds, else the default
        for (std::size_t j = 0; j + 1 < n.kids.size(); j += 2) {
          const int c = n.kids[j];
          if (p[c]) {
            e = p[c];
            return;
          }
          if (v[c] != 0.0) {
            r = v[n.kids[j + 1]];
            e = p[n.kids[j + 1]];
            return;
          }
        }
        r = v[n.kids.back()];
        e = p[n.kids.back()];
        return;
      }
      case Fn::in: {  // stops at the first match, as written left to right
        e = p[k0];
        if (e) return;
        r = 0.0;
        for (std::size_t j = 1; j < n.kids.size(); ++j) {
          if (p[n.kids[j]]) {
            e = p[n.kids[j]];
            return;
          }
          if (v[n.kids[j]] == v[k0]) {
            r = 1.0;
            return;
          }
        }
        return;
      }
      case Fn::value_or:  // the first operand, or the second when the first has no value
        r = p[k0] ? v[k1] : v[k0];
        e = p[k0] ? p[k1] : 0;
        return;
      case Fn::dtype_bytes: {
        e = p[k0];
        if (e) return;
        auto bytes = dtype_bytes(static_cast<int>(v[k0]));
        r = bytes.value_or(kNaN);
        if (!bytes) e = self;
        return;
      }
    }
  }

  /// The error of a poisoned node: rebuilt from the node that failed and the bound arguments.
  Error failure(const Bindings& b, std::uint32_t poison) const {
    const int i = static_cast<int>(poison) - 1;
    const Node& n = nodes[static_cast<std::size_t>(i)];
    auto absent = [&] {
      return Error{ErrorCode::invalid_argument, "argument '" + args[n.arg].name + "' is required here but absent",
                   arg_path(b, n.arg)};
    };
    switch (n.kind) {
      case NodeKind::scalar_arg:
        if (b.args[n.arg].present)
          return Error{ErrorCode::invalid_argument, "'" + args[n.arg].name + "' must be a number here, got a tensor",
                       arg_path(b, n.arg)};
        return absent();
      case NodeKind::tensor_prop: {
        if (!b.args[n.arg].present) return absent();
        if (!b.args[n.arg].is_tensor && n.of_tensor)
          return Error{ErrorCode::invalid_argument, "'" + args[n.arg].name + "' must be a tensor here, got a number",
                       arg_path(b, n.arg)};
        if (n.prop >= TProp::shard_cores)
          return Error{ErrorCode::invalid_argument, "'" + args[n.arg].name + "' has no shard_spec",
                       prop_path(b, n.arg, n.prop)};
        const char* what = n.prop == TProp::dtype         ? "dtype"
                           : n.prop == TProp::layout      ? "layout"
                           : n.prop == TProp::buffer_type ? "buffer_type"
                                                          : "memory_layout";
        return Error{ErrorCode::invalid_argument, std::string(what) + " of '" + args[n.arg].name + "' is not given",
                     prop_path(b, n.arg, n.prop)};
      }
      case NodeKind::tensor_dim: {
        if (!b.args[n.arg].present) return absent();
        if (!b.args[n.arg].is_tensor)
          return Error{ErrorCode::invalid_argument, "'" + args[n.arg].name + "' must be a tensor here, got a number",
                       arg_path(b, n.arg)};
        const double di = b.values[static_cast<std::size_t>(n.k0)];
        const int rank = b.args[n.arg].tensor.rank;
        if (dim_index(di, rank) == -1) return Error{ErrorCode::op_spec, "dim() index must be an integer", {}};
        return Error{ErrorCode::invalid_argument,
                     "'" + args[n.arg].name + "' has rank " + std::to_string(rank) + ", dimension " +
                         std::to_string(static_cast<long>(di)) + " does not exist",
                     prop_path(b, n.arg, TProp::rank)};
      }
      case NodeKind::object_field: {
        if (!b.args[n.arg].present) return absent();
        const FieldSpec& fs = args[n.arg].fields[static_cast<std::size_t>(n.field)];
        const std::string path = arg_path(b, n.arg) + "/" + fs.name;
        auto it = b.args[n.arg].object->find(fs.name);
        if (it == b.args[n.arg].object->end() || it->is_null())
          return Error{ErrorCode::invalid_argument, "field '" + fs.name + "' is missing", path};
        return Error{ErrorCode::invalid_argument, "field '" + fs.name + "' must be " + type_word(fs.type) + ", got " + json_excerpt(*it),
                     path};
      }
      case NodeKind::call:  // dtype_bytes
        return Error{ErrorCode::invalid_argument,
                     "unsupported dtype " + std::to_string(static_cast<int>(b.values[static_cast<std::size_t>(n.k0)])),
                     blame(b, n.k0)};
      default: return Error{ErrorCode::op_spec, "expression evaluation failed", {}};
    }
  }

  /// Path of the first argument field read by a node (depth-first).
  std::string blame(const Bindings& b, int ni) const {
    const Node& n = nodes[ni];
    switch (n.kind) {
      case NodeKind::scalar_arg:
      case NodeKind::arg_present: return arg_path(b, n.arg);
      case NodeKind::tensor_prop: return prop_path(b, n.arg, n.prop);
      case NodeKind::tensor_dim: return prop_path(b, n.arg, TProp::rank);
      case NodeKind::object_field: return arg_path(b, n.arg) + "/" + args[n.arg].fields[n.field].name;
      default:
        for (int kid : n.kids) {
          std::string p = blame(b, kid);
          if (!p.empty()) return p;
        }
        return {};
    }
  }
  // The device's limits (0 = not described): a tensor or shard grid beyond them is invalid_argument.
  double dram_bytes = 0;
  int grid_x = 0, grid_y = 0;

  void read_device_limits() {
    auto number = [&](const char* key) {
      auto it = device_json.find(key);
      return it != device_json.end() && it->is_number() && it->get<double>() > 0 ? it->get<double>() : 0.0;
    };
    dram_bytes = number("dram_bytes");
    auto arch = device_json.find("arch");  // descriptions without dram_bytes: a Wormhole chip has 12 GiB
    if (dram_bytes == 0 && arch != device_json.end() && *arch == "wormhole_b0") dram_bytes = 12.0 * (1 << 30);
    grid_x = static_cast<int>(std::min(number("grid_x"), 1e6));
    grid_y = static_cast<int>(std::min(number("grid_y"), 1e6));
  }

  /// A tensor (if given) and its memory config fit the device: at most its DRAM, shard grid within
  /// its core grid. `path` is the argument's JSON pointer.
  std::optional<Error> fits_device(const std::optional<TensorInfo>& t, const MemoryConfigInfo& m,
                                   std::string_view path) const {
    if (t && dram_bytes > 0) {
      double bytes = dtype_bytes(t->dtype).value_or(1.0);
      for (int i = 0; i < t->rank; ++i) bytes *= static_cast<double>(t->shape[static_cast<std::size_t>(i)]);
      if (bytes > dram_bytes)
        return Error{ErrorCode::invalid_argument,
                     "tensor of " + std::to_string(bytes / 1e9) + " GB does not fit the device's " +
                         std::to_string(dram_bytes / 1e9) + " GB of DRAM",
                     std::string(path) + t->shape_path};
    }
    const ShardInfo& g = m.shard;
    if (g.present && grid_x > 0 && grid_y > 0 && (g.end_x > grid_x || g.end_y > grid_y || g.cores > grid_x * grid_y))
      return Error{ErrorCode::invalid_argument,
                   "shard grid reaches core (" + std::to_string(g.end_x - 1) + ", " + std::to_string(g.end_y - 1) +
                       ") with " + std::to_string(g.cores) + " cores; the device grid is " + std::to_string(grid_x) +
                       " x " + std::to_string(grid_y),
                   std::string(path) + (t ? t->memory_path : "") + "/shard_spec/grid"};
    return std::nullopt;
  }

  /// One tensor of an argument (the argument itself, or an element of a list) with its rank check.
  std::optional<Error> bind_tensor(const ArgSpec& as, const json& v, const std::string& path, TensorInfo& out) const {
    auto t = parse_tensor(v, path);
    if (!t) return t.error();
    out = t.value();
    if (auto e = fits_device(out, out.memory, path)) return *e;
    if (out.rank < as.min_rank || out.rank > as.max_rank)
      return Error{ErrorCode::invalid_argument,
                   "'" + as.name + "' has rank " + std::to_string(out.rank) + "; this op takes rank " +
                       std::to_string(as.min_rank) + ".." + std::to_string(as.max_rank),
                   path + out.shape_path};
    return std::nullopt;
  }

  /// A list of tensors (e.g. concat's `tensors`): every element parsed; the first one also
  /// answers the plain tensor properties.
  std::optional<Error> bind_list(const ArgSpec& as, const json& v, Bindings& b, Bindings::Arg& a) const {
    const std::string base = std::string(b.args_path) + as.path;
    if (!v.is_array() || v.empty())
      return Error{ErrorCode::invalid_argument, "'" + as.name + "' must be a non-empty array of tensors", base};
    a.list.resize(v.size());
    for (std::size_t k = 0; k < v.size(); ++k)
      if (auto e = bind_tensor(as, v[k], base + "/" + std::to_string(k), a.list[k])) return e;
    a.tensor = a.list.front();
    a.is_tensor = true;
    return std::nullopt;
  }

  std::optional<Error> bind(const json& q, Bindings& b, std::string_view args_path) const {
    b.args_path = args_path;
    b.args.resize(args.size());
    if (!q.is_object()) return Error{ErrorCode::invalid_argument, "\"args\" must be a JSON object", std::string(args_path)};
    for (std::size_t i = 0; i < args.size(); ++i) {
      const ArgSpec& as = args[i];
      Bindings::Arg& a = b.args[i];
      a.present = a.given = false;
      a.is_tensor = false;
      auto it = q.find(as.name);
      // tt-metal passes `{}` for an absent memory config (nlohmann::json::object()).
      const bool empty_config = as.type == ArgType::memory_config && it != q.end() && it->is_object() && it->empty();
      if (it == q.end() || it->is_null() || empty_config) {
        if (!as.optional)
          return Error{ErrorCode::invalid_argument, "missing required argument '" + as.name + "'",
                       std::string(args_path) + as.path};
        if (as.default_value) {
          a.present = true;
          a.number = *as.default_value;
        }
        continue;
      }
      a.given = true;
      const json& v = *it;
      ArgType type = as.type;
      if (type == ArgType::tensor_or_number) type = v.is_number() ? ArgType::number : ArgType::tensor;
      switch (type) {
        case ArgType::tensor: {
          b.path.assign(args_path);
          b.path += as.path;
          if (auto e = bind_tensor(as, v, b.path, a.tensor)) return e;
          a.is_tensor = true;
          break;
        }
        case ArgType::tensor_list: {
          if (auto e = bind_list(as, v, b, a)) return e;
          break;
        }
        case ArgType::memory_config: {
          b.path.assign(args_path);
          b.path += as.path;
          auto m = parse_memory_config(v, b.path);
          if (!m) return m.error();
          a.memory = m.value();
          if (auto e = fits_device(std::nullopt, a.memory, b.path)) return *e;
          break;
        }
        case ArgType::object: {
          // tt-metal writes std::variant configs (e.g. DeviceComputeKernelConfig) as {"index", "value"}.
          const json* o = &v;
          if (o->is_object() && o->size() == 2 && o->contains("index") && o->contains("value")) o = &(*o)["value"];
          if (!o->is_object())
            return Error{ErrorCode::invalid_argument, "'" + as.name + "' must be an object",
                         std::string(args_path) + as.path};
          a.object = o;
          break;
        }
        default: {
          auto s = read_scalar(v, type, as.enum_kind);
          if (!s)
            return Error{ErrorCode::invalid_argument,
                         "'" + as.name + "' must be " + type_word(as.type) + ", got " + json_excerpt(v),
                         std::string(args_path) + as.path};
          if ((as.min && *s < *as.min) || (as.max && *s > *as.max))
            return Error{ErrorCode::invalid_argument, "'" + as.name + "' is out of range", std::string(args_path) + as.path};
          a.number = *s;
        }
      }
      a.present = true;
    }
    run(b);
    // Expression defaults (e.g. num_kv_heads defaults to num_heads) must be computable.
    for (std::size_t i = 0; i < args.size(); ++i)
      if (!b.args[i].present && args[i].default_id >= 0 && b.poison[static_cast<std::size_t>(args[i].default_id)])
        return failure(b, b.poison[static_cast<std::size_t>(args[i].default_id)]);
    for (const Rule& r : validate) {
      const auto at = static_cast<std::size_t>(r.expr);
      if (b.poison[at]) return failure(b, b.poison[at]);
      if (b.values[at] == 0.0) return Error{ErrorCode::invalid_argument, r.message, blame(b, r.expr)};
    }
    return std::nullopt;
  }
};

Encoder::Encoder(const json& spec, const json& device) : impl_(std::make_unique<Impl>()) {
  impl_->spec_json = spec;
  impl_->device_json = device.is_object() ? device : json::object();
  impl_->read_device_limits();
  impl_->load(spec);
}
Encoder::~Encoder() = default;
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;

const std::string& Encoder::op() const { return impl_->op; }
const std::vector<std::string>& Encoder::names() const { return impl_->names; }
const json& Encoder::spec() const { return impl_->spec_json; }
const json& Encoder::device() const { return impl_->device_json; }
std::vector<std::string> Encoder::feature_names() const { return impl_->feature_names; }

ExprId Encoder::feature(std::string_view name) const {
  int fi = impl_->feature_index(name);
  if (fi < 0) throw TorpError(ErrorCode::op_spec, "op spec of " + impl_->op + " has no feature '" + std::string(name) + "'");
  return fi;  // ExprIds below the feature count are the features themselves
}

ExprId Encoder::compile(std::string_view expression) {
  std::vector<int> stack;
  int root = impl_->compile_expr(expression, stack);
  impl_->exprs.push_back(root);
  return static_cast<ExprId>(impl_->exprs.size()) - 1;
}

std::optional<Error> Encoder::bind(const json& args, Bindings& b, std::string_view args_path) const {
  return impl_->bind(args, b, args_path);
}

Result<double> Encoder::eval(ExprId id, const Bindings& b) const {
  const auto at = static_cast<std::size_t>(expr_slot(*this, id));
  if (at >= b.poison.size()) return Error{ErrorCode::op_spec, "expression compiled after the arguments were bound", {}};
  if (b.poison[at]) return impl_->failure(b, b.poison[at]);
  return b.values[at];
}

std::optional<Error> Encoder::eval_all(std::span<const ExprId> ids, const Bindings& b, std::span<double> out) const {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto v = eval(ids[i], b);
    if (!v) return v.error();
    out[i] = v.value();
  }
  return std::nullopt;
}

int EncoderAccess::slot(const Encoder& encoder, ExprId id) {
  return encoder.impl_->exprs.at(static_cast<std::size_t>(id));
}

std::vector<std::string> EncoderAccess::argument_paths(const Encoder& encoder) {
  std::vector<std::string> out;
  for (const auto& a : encoder.impl_->args) out.push_back(a.path);
  return out;
}

std::vector<int> EncoderAccess::arguments_read(const Encoder& encoder, ExprId id) {
  const auto& im = *encoder.impl_;
  std::vector<bool> read(im.args.size(), false), visited(im.nodes.size(), false);
  std::vector<int> todo = {im.exprs.at(static_cast<std::size_t>(id))};
  while (!todo.empty()) {
    const int ni = todo.back();
    todo.pop_back();
    if (ni < 0 || visited[static_cast<std::size_t>(ni)]) continue;
    visited[static_cast<std::size_t>(ni)] = true;
    const Node& n = im.nodes[static_cast<std::size_t>(ni)];
    if (n.kind != NodeKind::constant && n.arg >= 0) {
      read[static_cast<std::size_t>(n.arg)] = true;
      todo.push_back(im.args[static_cast<std::size_t>(n.arg)].default_id);
    }
    todo.push_back(n.default_node);
    todo.insert(todo.end(), n.kids.begin(), n.kids.end());
  }
  std::vector<int> out;
  for (std::size_t a = 0; a < read.size(); ++a)
    if (read[a]) out.push_back(static_cast<int>(a));
  return out;
}

std::string Encoder::blame_path(ExprId id, const Bindings& b) const {
  return impl_->blame(b, impl_->exprs.at(static_cast<std::size_t>(id)));
}

Result<std::vector<double>> Encoder::encode(const json& args, std::span<const std::string> features) const {
  std::vector<ExprId> ids;
  try {
    for (const auto& f : features) ids.push_back(feature(f));
  } catch (const TorpError& e) {
    return e.error();
  }
  Bindings b;
  if (auto e = bind(args, b)) return *e;
  std::vector<double> out(ids.size());
  if (auto e = eval_all(ids, b, out)) return *e;
  return out;
}

}  // namespace torp
