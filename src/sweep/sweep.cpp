// SPDX-License-Identifier: Apache-2.0
// tt-metal sweep import: vectors_export + results_export JSON (generations R0..R3, value eras
// A..C) read as streams, joined by (suite, input_hash) and mapped to op arguments by the op
// spec's "sweep" block (Python expressions over the sweep parameters).
#include "torp/train/sweep.hpp"

#include "core/json_excerpt.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "sweep/json_stream.hpp"
#include "spec/bindings.hpp"
#include "spec/memory_config.hpp"
#include "sweep/py_expr.hpp"
#include "torp/encoder.hpp"
#include "torp/log.hpp"
#include "torp/tensor.hpp"

namespace torp {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kKernelDuration = "DEVICE KERNEL DURATION [ns]";
constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

Error bad(std::string msg) { return Error{ErrorCode::dataset, std::move(msg), {}}; }

[[noreturn]] void malformed(const fs::path& file, const std::string& pointer, const std::string& message) {
  throw TorpError(ErrorCode::dataset, message, pointer, file.string());
}

// ---- value normalization ---------------------------------------------------------------------

Result<std::string> enum_field(EnumKind kind, const json& v, const char* what) {
  auto e = parse_enum(kind, v);
  if (!e) return bad(std::string("unknown ") + what + " " + json_excerpt(v));
  return enum_name(kind, *e);
}

Result<json> core_ranges(const json& grid) {
  if (!grid.is_array() || grid.empty()) return bad("shard grid must be a non-empty array of core ranges");
  json out = json::array();
  for (const json& r : grid) {
    json range;
    for (const char* corner : {"start", "end"}) {
      auto c = r.is_object() ? r.find(corner) : r.end();
      if (!r.is_object() || c == r.end() || !c->is_object()) return bad("core range needs start and end");
      for (const char* axis : {"x", "y"}) {
        auto a = c->find(axis);
        auto v = a == c->end() ? std::nullopt : json_integer(decode_sweep_value(*a));
        if (!v || *v < 0) return bad("core coordinate must be a non-negative integer");
        range[corner][axis] = *v;
      }
    }
    out.push_back(std::move(range));
  }
  return out;
}

Result<json> shard_spec(const json& s, const char* shape_key) {
  if (!s.is_object()) return bad("shard spec must be an object");
  json out;
  auto g = core_ranges(s.value("grid", json()));
  if (!g) return g.error();
  out["grid"] = g.value();
  if (auto sh = s.find(shape_key); sh != s.end() && !sh->is_null()) {
    json shape = decode_sweep_value(*sh);
    if (!shape.is_array()) return bad("shard shape must be an array");
    for (const json& d : shape)
      if (!json_integer(d)) return bad("shard shape must hold integers");
    out[shape_key] = shape;
  }
  if (auto o = s.find("orientation"); o != s.end() && !o->is_null()) {
    auto name = enum_field(EnumKind::shard_orientation, *o, "shard orientation");
    if (!name) return name.error();
    out["orientation"] = name.value();
  }
  return out;
}

/// A MemoryConfig in any sweep serialization ({"type","data"} wrapper with data as JSON or Python
/// text or an object, enums as ints or names), read by the query path's reader, in the dataset's
/// form: enum names, only the fields the encoder reads (buffer_type, memory_layout, shard_spec
/// {grid, shape, orientation}).
Result<json> memory_config(const json& v) {
  MemoryConfigFields f;
  if (auto e = read_memory_config_fields(v, "", f, decode_sweep_value))
    return bad(e->message + (e->path.empty() ? "" : " (at " + e->path + ")"));
  json out;
  for (auto [key, kind, value] : {std::tuple{"buffer_type", EnumKind::buffer_type, f.buffer_type},
                                  std::tuple{"memory_layout", EnumKind::memory_layout, f.memory_layout}}) {
    if (value < 0) return bad(std::string("memory config has no ") + key);
    out[key] = enum_name(kind, value);
  }
  if (f.shard_spec != nullptr) {
    auto spec = shard_spec(*f.shard_spec, f.nd ? "shard_shape" : "shape");
    if (!spec) return spec.error();
    out[f.shard_key()] = spec.value();
  }
  return out;
}

bool looks_like_memory_config(const json& v) {
  if (!v.is_object()) return false;
  if (v.contains("buffer_type")) return true;
  auto t = v.find("type");
  return v.contains("data") && t != v.end() && t->is_string() && t->get<std::string>().find("MemoryConfig") != std::string::npos;
}

/// Comparable form of a parameter value, to check a result against its vector.
json comparable(const json& v) {
  json d = decode_sweep_value(v);
  if (looks_like_memory_config(d)) {
    auto m = memory_config(d);
    if (m) return m.value();
  }
  if (d.is_string()) {
    std::string s = d.get<std::string>();
    if (s.rfind("ttnn.", 0) == 0) s.erase(0, 5);
    return s;
  }
  return d;
}


// ---- the op spec's "sweep" block -------------------------------------------------------------

/// How an op argument is declared in the op spec (for normalizing mapped values).
struct Decl {
  std::string type;  // tensor, memory_config, int, float, bool, enum, object
  std::optional<EnumKind> enum_kind;
  std::map<std::string, Decl> fields;  // object
};

Decl decl_of(const json& d) {
  Decl out;
  if (!d.is_object()) return out;
  out.type = d.value("type", std::string());
  if (auto e = d.find("enum"); e != d.end() && e->is_string()) out.enum_kind = enum_kind_named(e->get<std::string>());
  if (auto f = d.find("fields"); f != d.end() && f->is_object())
    for (auto it = f->begin(); it != f->end(); ++it) out.fields[it.key()] = decl_of(it.value());
  return out;
}

/// A mapped value in the form the op spec declares: enum names, integers, booleans.
Result<json> normalize(const json& v, const Decl& d) {
  if (d.type == "int") {
    if (auto i = json_integer(v)) return json(*i);
    return bad("expected an integer, got " + json_excerpt(v));
  }
  if (d.type == "float") {
    if (v.is_number()) return v;
    return bad("expected a number, got " + json_excerpt(v));
  }
  if (d.type == "bool") {
    if (v.is_boolean()) return v;
    if (auto i = json_integer(v); i && (*i == 0 || *i == 1)) return json(*i == 1);
    return bad("expected a boolean, got " + json_excerpt(v));
  }
  if (d.type == "enum" && d.enum_kind) {
    auto name = enum_field(*d.enum_kind, v, "value");
    if (!name) return name.error();
    return json(name.value());
  }
  return v;
}

struct Expr {
  py::Node node;
  std::string text;
};

enum class MapKind { tensor, memory_config, value, object };

struct ArgMap {
  std::string name;
  MapKind kind = MapKind::value;
  Decl decl;
  std::optional<Expr> when;
  std::optional<Expr> value;                          // value / memory_config
  std::optional<Expr> shape, dtype, layout, memory;   // tensor
  std::vector<std::pair<std::string, Expr>> fields;   // object
};

struct SweepMap {
  std::map<std::string, Expr> lets;
  std::vector<ArgMap> args;
  std::vector<std::string> params;  // vector parameters the mapping reads (checked against original_vector_data)
};

Expr compile_expr(const json& j, const std::string& path) {
  if (!j.is_string() || j.get<std::string>().empty())
    throw TorpError(ErrorCode::op_spec, "expected a Python expression over the sweep parameters (a string)", path);
  std::string error;
  auto node = py::parse(j.get<std::string>(), false, &error);
  if (!node) throw TorpError(ErrorCode::op_spec, "cannot parse '" + j.get<std::string>() + "': " + error, path);
  return {std::move(*node), j.get<std::string>()};
}

/// The mapping kind of one argument's body ("tensor", "memory_config", "value" or "object"),
/// reading its optional "when" into `a`.
std::string mapping_kind(const json& body, ArgMap& a, const std::string& path) {
  const char* kinds[] = {"tensor", "memory_config", "value", "object"};
  std::string kind;
  if (body.is_object())
    for (auto f = body.begin(); f != body.end(); ++f) {
      if (f.key() == "when") {
        a.when = compile_expr(f.value(), path + "/when");
      } else if (std::find(std::begin(kinds), std::end(kinds), f.key()) != std::end(kinds) && kind.empty()) {
        kind = f.key();
      } else {
        kind.clear();
        break;
      }
    }
  if (kind.empty())
    throw TorpError(ErrorCode::op_spec,
                    "an argument mapping is {\"tensor\": {...}}, {\"memory_config\": EXPR}, {\"value\": EXPR} or "
                    "{\"object\": {field: EXPR}}, optionally with \"when\": EXPR",
                    path);
  const std::string want = kind == "value" ? "int, float, bool or enum" : kind;
  const bool fits = kind == "value"
                        ? (a.decl.type == "int" || a.decl.type == "float" || a.decl.type == "bool" || a.decl.type == "enum")
                        : a.decl.type == kind;
  if (!fits)
    throw TorpError(ErrorCode::op_spec,
                    "argument '" + a.name + "' is declared \"" + a.decl.type + "\"; a \"" + kind + "\" mapping needs " + want,
                    path + "/" + kind);
  return kind;
}

void compile_tensor_mapping(const json& body, ArgMap& a, const std::string& kpath) {
  a.kind = MapKind::tensor;
  if (!body.is_object())
    throw TorpError(ErrorCode::op_spec, "\"tensor\" maps shape, dtype, layout and memory_config to expressions", kpath);
  for (auto f = body.begin(); f != body.end(); ++f) {
    std::optional<Expr>* slot = f.key() == "shape"           ? &a.shape
                                : f.key() == "dtype"         ? &a.dtype
                                : f.key() == "layout"        ? &a.layout
                                : f.key() == "memory_config" ? &a.memory
                                                             : nullptr;
    if (!slot)
      throw TorpError(ErrorCode::op_spec, "tensor fields are shape, dtype, layout and memory_config", kpath + "/" + f.key());
    *slot = compile_expr(f.value(), kpath + "/" + f.key());
  }
  if (!a.shape) throw TorpError(ErrorCode::op_spec, "a tensor mapping needs \"shape\"", kpath);
}

ArgMap compile_arg(const std::string& name, const json& body, const json& declared) {
  const std::string path = "/sweep/args/" + name;
  ArgMap a;
  a.name = name;
  if (!declared.contains(a.name))
    throw TorpError(ErrorCode::op_spec, "the op has no argument '" + a.name + "' (see \"args\")", path);
  a.decl = decl_of(declared[a.name]);
  const std::string kind = mapping_kind(body, a, path);
  const json& m_body = body[kind];
  const std::string kpath = path + "/" + kind;
  if (kind == "tensor") {
    compile_tensor_mapping(m_body, a, kpath);
  } else if (kind == "object") {
    a.kind = MapKind::object;
    if (!m_body.is_object() || m_body.empty())
      throw TorpError(ErrorCode::op_spec, "\"object\" maps the argument's fields to expressions", kpath);
    for (auto f = m_body.begin(); f != m_body.end(); ++f) {
      if (!a.decl.fields.count(f.key()))
        throw TorpError(ErrorCode::op_spec, "argument '" + a.name + "' has no field '" + f.key() + "'", kpath + "/" + f.key());
      a.fields.emplace_back(f.key(), compile_expr(f.value(), kpath + "/" + f.key()));
    }
  } else {
    a.kind = kind == "value" ? MapKind::value : MapKind::memory_config;
    a.value = compile_expr(m_body, kpath);
  }
  return a;
}

/// The vector parameters the mapping reads, through lets too (a let name shadows a parameter).
std::vector<std::string> read_params(const SweepMap& m) {
  std::vector<std::string> names;
  auto collect = [&](const std::optional<Expr>& e) {
    if (e) py::names(e->node, names);
  };
  for (const auto& [name, e] : m.lets) py::names(e.node, names);
  for (const ArgMap& a : m.args) {
    for (const auto* e : {&a.when, &a.value, &a.shape, &a.dtype, &a.layout, &a.memory}) collect(*e);
    for (const auto& [f, e] : a.fields) py::names(e.node, names);
  }
  std::vector<std::string> params;
  for (const std::string& n : names)
    if (!m.lets.count(n)) params.push_back(n);
  return params;
}

SweepMap compile_sweep(const json& spec) {
  auto sw = spec.is_object() ? spec.find("sweep") : spec.end();
  if (!spec.is_object() || sw == spec.end() || !sw->is_object())
    throw TorpError(ErrorCode::op_spec,
                    "op spec " + spec.value("op", std::string("?")) +
                        " has no \"sweep\" block mapping sweep parameters to arguments",
                    "/sweep");
  for (auto it = sw->begin(); it != sw->end(); ++it)
    if (it.key() != "args" && it.key() != "let" && it.key() != "notes" && it.key() != "module" && it.key() != "inverse")
      throw TorpError(ErrorCode::op_spec, "unknown key \"" + it.key() + "\" (args, let, notes, module, inverse)",
                      "/sweep/" + it.key());
  SweepMap m;
  if (auto let = sw->find("let"); let != sw->end()) {
    if (!let->is_object()) throw TorpError(ErrorCode::op_spec, "\"let\" maps names to expressions", "/sweep/let");
    for (auto it = let->begin(); it != let->end(); ++it) m.lets[it.key()] = compile_expr(it.value(), "/sweep/let/" + it.key());
  }
  auto args = sw->find("args");
  if (args == sw->end() || !args->is_object() || args->empty())
    throw TorpError(ErrorCode::op_spec, "\"sweep\" needs a non-empty \"args\" object", "/sweep/args");
  const json declared = spec.value("args", json::object());
  for (auto it = args->begin(); it != args->end(); ++it) m.args.push_back(compile_arg(it.key(), it.value(), declared));
  m.params = read_params(m);
  return m;
}

/// Evaluation scope of one vector: its decoded parameters and the "let" values, each computed once.
class Scope {
 public:
  Scope(const SweepMap& m, const json& vec) : m_(m), vec_(vec) {}
  json eval(const Expr& e) {
    return py::eval(e.node, [this](const std::string& name) { return lookup(name); });
  }

 private:
  const json* lookup(const std::string& name) {
    if (auto it = values_.find(name); it != values_.end()) return &it->second;
    if (auto let = m_.lets.find(name); let != m_.lets.end()) {
      if (std::find(active_.begin(), active_.end(), name) != active_.end())
        throw std::runtime_error("\"let\" " + name + " refers to itself");
      active_.push_back(name);
      json v = eval(let->second);
      active_.pop_back();
      return &(values_[name] = std::move(v));
    }
    auto it = vec_.find(name);
    if (it == vec_.end()) return nullptr;
    return &(values_[name] = decode_sweep_value(*it));
  }

  const SweepMap& m_;
  const json& vec_;
  std::map<std::string, json> values_;
  std::vector<std::string> active_;
};

/// The op's arguments for one vector; errors name the argument and its expression.
Result<json> map_args(const SweepMap& m, const json& vec) {
  Scope scope(m, vec);
  json args = json::object();
  for (const ArgMap& a : m.args) {
    const Expr* current = nullptr;
    auto eval = [&](const Expr& e) {
      current = &e;
      return scope.eval(e);
    };
    try {
      if (a.when && !py::truthy(eval(*a.when))) continue;
      if (a.kind == MapKind::object) {
        json o = json::object();
        for (const auto& [field, e] : a.fields) {
          json v = eval(e);
          if (v.is_null()) continue;
          auto n = normalize(v, a.decl.fields.at(field));
          if (!n) return bad("argument '" + a.name + "' field '" + field + "' ('" + e.text + "'): " + n.error().message);
          o[field] = n.value();
        }
        args[a.name] = std::move(o);
        continue;
      }
      if (a.kind != MapKind::tensor) {
        json v = eval(*a.value);
        if (v.is_null()) continue;  // None: the optional argument is not given
        auto n = a.kind == MapKind::value ? normalize(v, a.decl) : memory_config(v);
        if (!n) return bad("argument '" + a.name + "' ('" + a.value->text + "'): " + n.error().message);
        args[a.name] = n.value();
        continue;
      }
      json shape = eval(*a.shape);
      if (shape.is_null()) continue;
      json t;
      if (!shape.is_array() || shape.empty())
        return bad("argument '" + a.name + "' shape ('" + a.shape->text + "') is not a shape: " + json_excerpt(shape));
      for (const json& d : shape) {
        auto v = json_integer(d);
        if (!v) return bad("argument '" + a.name + "' shape ('" + a.shape->text + "') is not integers: " + json_excerpt(shape));
        t["logical_shape"].push_back(*v);
      }
      for (auto [e, field, kind] : {std::tuple{&a.dtype, "dtype", EnumKind::data_type},
                                    std::tuple{&a.layout, "layout", EnumKind::layout}}) {
        if (!*e) continue;
        json v = eval(**e);
        if (v.is_null()) continue;
        auto name = enum_field(kind, v, field);
        if (!name) return bad("argument '" + a.name + "' " + field + " ('" + (*e)->text + "'): " + name.error().message);
        t[field] = name.value();
      }
      if (a.memory) {
        json v = eval(*a.memory);
        if (!v.is_null()) {
          auto mc = memory_config(v);
          if (!mc) return bad("argument '" + a.name + "' memory_config ('" + a.memory->text + "'): " + mc.error().message);
          t["memory_config"] = mc.value();
        }
      }
      args[a.name] = std::move(t);
    } catch (const std::runtime_error& e) {
      return bad("argument '" + a.name + "' ('" + (current ? current->text : std::string()) + "'): " + e.what());
    }
  }
  return args;
}

// ---- result records --------------------------------------------------------------------------

const std::string* string_field(const json& o, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (auto it = o.find(k); it != o.end() && it->is_string()) return &it->get_ref<const std::string&>();
  return nullptr;
}

std::string str_field(const json& o, std::initializer_list<const char*> keys) {
  const std::string* s = string_field(o, keys);
  return s ? *s : std::string();
}

/// tt-metal's TestStatus names (statuses.py), then the generic failure of an R3 record that
/// only says success: false.
constexpr const char* kStatuses[] = {"PASS",     "FAIL_ASSERT_EXCEPTION", "FAIL_CRASH_HANG",
                                     "NOT_RUN",  "FAIL_L1_OUT_OF_MEM",    "FAIL_WATCHER",
                                     "FAIL_UNSUPPORTED_DEVICE_PERF", "XFAIL", "XPASS",
                                     "FAIL_NON_DETERMINISTIC", "FAIL"};
constexpr std::uint8_t kPass = 0, kNotRun = 3, kFail = 10;

/// "TestStatus.PASS" (R0/R1) or "pass" (R2/R3; "skipped" is NOT_RUN); an R3 record without
/// status uses "success". Anything else is an error naming the record's field.
std::uint8_t parse_status(const json& rec, const fs::path& file, const std::string& pointer) {
  auto s = rec.find("status");
  if (s == rec.end() || s->is_null()) {
    if (auto ok = rec.find("success"); ok != rec.end() && ok->is_boolean()) return ok->get<bool>() ? kPass : kFail;
    malformed(file, pointer + "/status", "a result record needs a \"status\"");
  }
  if (!s->is_string()) malformed(file, pointer + "/status", "status must be a string, got " + json_excerpt(*s));
  std::string v = s->get<std::string>();
  if (v.rfind("TestStatus.", 0) == 0) v.erase(0, 11);
  for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (v == "SKIPPED") return kNotRun;
  for (std::uint8_t i = 0; i < kFail; ++i)
    if (v == kStatuses[i]) return i;
  malformed(file, pointer + "/status", "unknown status " + json_excerpt(*s) + " (expected a tt-metal TestStatus, e.g. \"TestStatus.PASS\" or \"pass\")");
}

struct Perf {
  enum class Kind { none, bad, ok } kind = Kind::none;
  double ns = 0;
  std::string detail;
};

std::optional<double> number_of(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::nullopt;
  std::string s = v.get<std::string>();
  s.erase(0, s.find_first_not_of(" \t"));
  s.erase(s.find_last_not_of(" \t") + 1);
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return d;
}

Perf perf_value(const json& v) {
  auto d = number_of(v);
  if (!d) return {Perf::Kind::bad, 0, "unreadable kernel duration " + json_excerpt(v)};
  if (!std::isfinite(*d) || *d <= 0) return {Perf::Kind::bad, 0, "kernel duration " + json_excerpt(v)};
  return {Perf::Kind::ok, *d, {}};
}

/// DEVICE KERNEL DURATION from one device_perf shape: an object (possibly {uncached, cached}) or
/// a list of {metric_name, metric_value}.
Perf kernel_duration(const json& p, const std::string& where) {
  if (p.is_null()) return {Perf::Kind::none, 0, where + " is null"};
  if (p.is_object()) {
    if (auto it = p.find(kKernelDuration); it != p.end()) return perf_value(*it);
    for (const char* k : {"cached", "uncached"})
      if (auto it = p.find(k); it != p.end() && it->is_object()) return kernel_duration(*it, where + "." + k);
    return {Perf::Kind::none, 0, where + (p.empty() ? " is {}" : " has no " + std::string(kKernelDuration))};
  }
  if (p.is_array()) {
    const std::string prefixed = std::string("device_") + kKernelDuration;
    for (const json& m : p) {
      if (!m.is_object()) continue;
      auto name = m.find("metric_name");
      if (name == m.end() || !name->is_string()) continue;
      if (name->get<std::string>() == kKernelDuration || name->get<std::string>() == prefixed)
        return perf_value(m.value("metric_value", json()));
    }
    return {Perf::Kind::none, 0, where + " lists no " + std::string(kKernelDuration)};
  }
  return {Perf::Kind::bad, 0, where + " is neither an object nor a list: " + json_excerpt(p)};
}

/// The first duration found under device_perf (R0..R2), metrics (R3) or split device_perf_* keys.
Perf record_perf(const json& rec) {
  std::optional<Perf> first_none;
  for (const char* key : {"device_perf", "metrics", "device_perf_cached", "device_perf_uncached"}) {
    auto it = rec.find(key);
    if (it == rec.end()) continue;
    Perf p = kernel_duration(*it, key);
    if (p.kind != Perf::Kind::none) return p;
    if (!first_none) first_none = std::move(p);
  }
  return first_none ? *first_none : Perf{Perf::Kind::none, 0, "no device_perf"};
}


/// A timestamp ("2025-10-21 09:14:03.512204", "2025-10-21_09-14-04", ISO 8601) as a number that
/// orders like the time; 0 if absent.
std::uint64_t timestamp_value(const std::string* s) {
  if (!s) return 0;
  int digits[20] = {};
  int n = 0;
  for (char c : *s)
    if (c >= '0' && c <= '9' && n < 20) digits[n++] = c - '0';
  if (n == 0) return 0;
  auto num = [&](int from, int len) {
    std::uint64_t v = 0;
    for (int i = from; i < from + len; ++i) v = v * 10 + static_cast<std::uint64_t>(digits[i]);
    return v;
  };
  // year, month, day, hour, minute, second, microseconds
  std::uint64_t v = num(0, 4);
  v = v * 13 + num(4, 2);
  v = v * 32 + num(6, 2);
  v = v * 24 + num(8, 2);
  v = v * 60 + num(10, 2);
  v = v * 60 + num(12, 2);
  return v * 1000000 + num(14, 6) + 1;
}

struct Vec {
  std::uint32_t suite = 0;
  std::string hash;
  bool invalid = false, filtered = false, has_record = false, has_row = false;
  std::string invalid_reason;
  std::string args_json;   // mapped arguments (if args_error is empty)
  std::string args_error;  // why the vector has no valid arguments
  std::vector<json> compare;         // comparable() of SweepMap::params (null: the vector lacks it)
  std::uint64_t verified_original = 0;  // hash of an original_vector_data that agreed with the vector
  std::uint32_t row_vector = kNone;  // index in SweepDataset::vectors
};

constexpr std::uint8_t kKept = 255;

struct Rec {
  std::uint64_t run_a = 0, run_b = 0;  // (suite, input_hash, run) key
  std::uint64_t content = 0;           // hash of the record's full content
  std::uint64_t start = 0, end = 0;    // timestamp_value of start / end (or write) time
  double ns = 0;
  std::uint32_t vector = kNone;
  std::uint32_t index = 0;  // position in its file
  std::uint16_t file = 0, git = 0;
  std::uint8_t outcome = kKept, status = kPass;
};

/// Up to a few candidate examples per reason; the first one whose record stays under that
/// reason after duplicate resolution is reported.
struct Examples {
  std::array<std::vector<std::pair<std::size_t, std::string>>, kSweepDropReasons> candidates;
  void note(SweepDrop r, std::size_t rec, std::string text) {
    auto& c = candidates[static_cast<std::size_t>(r)];
    if (c.size() < 4) c.emplace_back(rec, std::move(text));
  }
};

std::string mb(std::uint64_t bytes) { return std::to_string((bytes + (1 << 19)) >> 20) + " MB"; }

double median_of(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Marks the records that are not the one record of their (suite, input_hash, run): exact
/// copies are duplicates; of different records the newest (end time, then input order) stays.
/// With latest_only, only the newest kept record of each vector (start time, end time, order)
/// stays. Returns, per record, the record a dropped one yields to (kNone for the others).
std::vector<std::uint32_t> resolve_runs(std::deque<Rec>& recs, std::size_t vectors, bool latest_only) {
  std::vector<std::uint32_t> other(recs.size(), kNone);
  std::vector<std::uint32_t> order(recs.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return std::tie(recs[a].run_a, recs[a].run_b, a) < std::tie(recs[b].run_a, recs[b].run_b, b);
  });
  for (std::size_t g = 0; g < order.size();) {
    std::size_t e = g + 1;
    while (e < order.size() && recs[order[e]].run_a == recs[order[g]].run_a && recs[order[e]].run_b == recs[order[g]].run_b) ++e;
    std::vector<std::uint32_t> unique;
    for (std::size_t k = g; k < e; ++k) {
      const std::uint32_t i = order[k];
      auto same = std::find_if(unique.begin(), unique.end(), [&](std::uint32_t u) { return recs[u].content == recs[i].content; });
      if (same == unique.end()) {
        unique.push_back(i);
        continue;
      }
      recs[i].outcome = static_cast<std::uint8_t>(SweepDrop::duplicate);
      other[i] = *same;
    }
    if (unique.size() > 1) {
      std::uint32_t newest = unique[0];
      for (std::uint32_t u : unique)
        if (std::tie(recs[u].end, u) > std::tie(recs[newest].end, newest)) newest = u;
      for (std::uint32_t u : unique)
        if (u != newest) {
          recs[u].outcome = static_cast<std::uint8_t>(SweepDrop::superseded);
          other[u] = newest;
        }
    }
    g = e;
  }
  if (latest_only) {
    std::vector<std::uint32_t> latest(vectors, kNone);
    for (std::uint32_t i = 0; i < recs.size(); ++i) {
      if (recs[i].outcome != kKept) continue;
      std::uint32_t& l = latest[recs[i].vector];
      if (l == kNone || std::tie(recs[i].start, recs[i].end, i) > std::tie(recs[l].start, recs[l].end, l)) l = i;
    }
    for (std::uint32_t i = 0; i < recs.size(); ++i)
      if (recs[i].outcome == kKept && latest[recs[i].vector] != i) {
        recs[i].outcome = static_cast<std::uint8_t>(SweepDrop::superseded);
        other[i] = latest[recs[i].vector];
      }
  }
  return other;
}

/// Rows far from the median of their configuration (identical arguments), in row order; counts
/// the configurations.
std::vector<SweepOutlier> find_outliers(const SweepDataset& d, double mads, std::size_t* configurations) {
  std::unordered_map<std::string_view, std::uint32_t> config_of_args;
  std::vector<std::uint32_t> config(d.vectors.size());
  for (std::size_t v = 0; v < d.vectors.size(); ++v)
    config[v] = config_of_args.emplace(d.vectors[v].args_json, static_cast<std::uint32_t>(config_of_args.size())).first->second;
  *configurations = config_of_args.size();
  std::vector<std::vector<std::uint32_t>> rows_of(config_of_args.size());
  for (std::uint32_t i = 0; i < d.rows.size(); ++i) rows_of[config[d.rows[i].vector]].push_back(i);
  struct Flag {
    std::uint32_t row;
    double median, scale;
    std::size_t repeats;
  };
  std::vector<Flag> flagged;
  for (const auto& rows : rows_of) {
    if (rows.size() < 3) continue;
    std::vector<double> x;
    for (std::uint32_t i : rows) x.push_back(d.rows[i].kernel_duration_ns);
    const double med = median_of(x);
    std::vector<double> dev;
    for (double v : x) dev.push_back(std::fabs(v - med));
    const double scale = std::max(1.4826 * median_of(dev), 0.01 * med);
    for (std::uint32_t i : rows)
      if (std::fabs(d.rows[i].kernel_duration_ns - med) > mads * scale) flagged.push_back({i, med, scale, rows.size()});
  }
  std::sort(flagged.begin(), flagged.end(), [](const Flag& a, const Flag& b) { return a.row < b.row; });
  std::vector<SweepOutlier> out;
  for (const Flag& f : flagged) {
    const auto& vec = d.vectors[d.rows[f.row].vector];
    out.push_back({vec.suite, vec.input_hash, d.rows[f.row].kernel_duration_ns, f.median, f.scale, f.repeats});
  }
  return out;
}

}  // namespace

std::string_view to_string(SweepDrop reason) noexcept {
  switch (reason) {
    case SweepDrop::no_matching_vector: return "no_matching_vector";
    case SweepDrop::filtered_out: return "filtered_out";
    case SweepDrop::vector_mismatch: return "vector_mismatch";
    case SweepDrop::invalid_vector: return "invalid_vector";
    case SweepDrop::not_pass: return "not_pass";
    case SweepDrop::no_device_perf: return "no_device_perf";
    case SweepDrop::zero_device_perf: return "zero_device_perf";
    case SweepDrop::bad_args: return "bad_args";
    case SweepDrop::duplicate: return "duplicate";
    case SweepDrop::superseded: return "superseded";
  }
  return "?";
}

std::size_t SweepImportReport::dropped_total() const {
  std::size_t n = 0;
  for (std::size_t c : dropped) n += c;
  return n;
}

nlohmann::ordered_json SweepImportReport::to_json() const {
  json files = json::array();
  for (const File& f : results) files.push_back({{"file", f.name}, {"records", f.records}});
  nlohmann::ordered_json drops, examples;
  for (std::size_t i = 0; i < kSweepDropReasons; ++i) {
    drops[std::string(torp::to_string(static_cast<SweepDrop>(i)))] = dropped[i];
    if (!example[i].empty()) examples[std::string(torp::to_string(static_cast<SweepDrop>(i)))] = example[i];
  }
  json out_rows = json::array();
  for (const SweepOutlier& o : outliers)
    out_rows.push_back({{"suite", o.suite},
                        {"input_hash", o.input_hash},
                        {"kernel_duration_ns", o.kernel_duration_ns},
                        {"median_ns", o.median_ns},
                        {"scaled_mads", o.scale_ns > 0 ? std::fabs(o.kernel_duration_ns - o.median_ns) / o.scale_ns : 0.0},
                        {"repeats", o.repeats}});
  nlohmann::ordered_json r;
  r["results"] = files;
  r["records"] = records;
  r["rows"] = rows;
  r["configurations"] = configurations;
  r["dropped"] = drops;
  r["dropped_total"] = dropped_total();
  r["not_pass_by_status"] = not_pass_by_status;
  r["examples"] = examples;
  r["vectors"] = {{"total", vectors},
                  {"with_rows", vectors_with_rows},
                  {"invalid", vectors_invalid},
                  {"filtered_out", vectors_filtered_out},
                  {"without_result", vectors_without_result},
                  {"all_records_dropped", vectors_all_dropped}};
  r["git_hashes"] = git_hashes;
  r["outliers"] = {{"rule", "more than " + json(outlier_mads).dump() +
                                " scaled MADs (1.4826 x median absolute deviation, at least 1% of the median) from "
                                "the median of the configuration's rows; configurations with 3 or more rows"},
                   {"count", outliers.size()},
                   {"rows", out_rows}};
  return r;
}

Dataset SweepDataset::to_dataset() const {
  Dataset d;
  d.op = op;
  d.header = header;
  std::vector<json> args;
  args.reserve(vectors.size());
  for (const Vector& v : vectors) args.push_back(json::parse(v.args_json));
  d.rows.reserve(rows.size());
  for (const Row& r : rows) {
    Measurement m;
    m.args = args[r.vector];
    m.runtime_ns = r.kernel_duration_ns;
    m.suite = vectors[r.vector].suite;
    m.input_hash = vectors[r.vector].input_hash;
    d.rows.push_back(std::move(m));
  }
  return d;
}

void SweepDataset::save(const fs::path& file, bool overwrite, const std::function<void()>& before_commit) const {
  DatasetWriter w(file, op, header, true, overwrite);
  std::vector<std::string> prefix;
  prefix.reserve(vectors.size());
  for (const Vector& v : vectors) prefix.push_back(w.row_prefix(v.args_json, v.suite, v.input_hash));
  for (const Row& r : rows) w.add(prefix[r.vector], r.kernel_duration_ns);
  if (before_commit) before_commit();
  w.commit();
}

json sweep_vector_args(const json& op_spec, const json& vector) {
  const SweepMap map = compile_sweep(op_spec);
  Result<json> a = map_args(map, vector);
  if (!a) throw TorpError(ErrorCode::dataset, a.error().message);
  return a.value();
}

json decode_sweep_value(const json& value) {
  if (value.is_string()) {
    // Most strings are enum names ("DataType.BFLOAT16"): only a few first characters can start
    // a literal.
    const std::string& s = value.get_ref<const std::string&>();
    const std::size_t first = s.find_first_not_of(" \t");
    if (first == std::string::npos) return value;
    const char c = s[first];
    const bool maybe = std::strchr("[({'\"+-.", c) != nullptr || (c >= '0' && c <= '9') || c == 'T' || c == 'F' ||
                       c == 'N' || c == 't' || c == 'f' || c == 'n';
    if (!maybe) return value;
    auto node = py::parse(s, true);
    if (!node) return value;
    json v = py::eval(*node, nullptr);
    if (v.is_string() && v == value) return value;
    return decode_sweep_value(v);
  }
  if (value.is_array()) {
    json out = json::array();
    for (const json& e : value) out.push_back(decode_sweep_value(e));
    return out;
  }
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) out[it.key()] = decode_sweep_value(it.value());
    return out;
  }
  return value;
}

namespace {

/// One sweep import: the state import_sweep builds up, one method per stage (vectors, results,
/// one record per run, rows and report).
class SweepImporter {
 public:
  SweepImporter(const fs::path& vectors_file, const std::vector<fs::path>& results, const json& op_spec,
                const json& device, const SweepOptions& options)
      : vectors_file_(vectors_file), results_(results), options_(options), map_(compile_sweep(op_spec)),
        encoder_(op_spec, device) {
    auto name = device.is_object() ? device.find("name") : device.end();
    if (!device.is_object() || name == device.end() || !name->is_string())
      throw TorpError(ErrorCode::dataset, "the device description has no \"name\"", "/name");
    device_name_ = name->get<std::string>();
    if (results.empty()) throw TorpError(ErrorCode::dataset, "no results_export file given");
    if (results.size() > std::numeric_limits<std::uint16_t>::max())
      throw TorpError(ErrorCode::dataset, "too many results files");
    rep_.outlier_mads = options.outlier_mads;
  }

  SweepDataset run(SweepImportReport* report) {
    read_vectors();
    for (std::size_t fi = 0; fi < results_.size(); ++fi) read_results(fi);
    rep_.records = recs_.size();
    note_resolved_runs();
    SweepDataset d = build_rows();
    count_vectors();
    rep_.rows = d.rows.size();
    rep_.outliers = find_outliers(d, options_.outlier_mads, &rep_.configurations);
    d.header = header();
    if (report) *report = std::move(rep_);
    return d;
  }

 private:
  // ---- vectors: {suite: {vector_id: {...}}}, one vector in memory at a time
  void read_vectors() {
    JsonItemReader vr;
    vr.root_is_array = false;
    vr.item_depth = 2;
    vr.expect = "a vectors_export file: {suite: {vector_id: {parameter: value}}}";
    vr.on_progress = [&](std::uint64_t bytes) {
      log(LogLevel::info,
          vectors_file_.filename().string() + ": " + mb(bytes) + ", " + std::to_string(vecs_.size()) + " vectors");
    };
    vr.on_item = [&](const JsonItemReader::Item& item) { on_vector(item); };
    vectors_sha256_ = vr.read(vectors_file_);
    rep_.vectors = vecs_.size();
  }

  void on_vector(const JsonItemReader::Item& item) {
    const json& v = item.value;
    const JsonItemPath& at = item.where;
    const std::string& suite = at.keys[0];
    Vec vec;
    if (suites_.empty() || suites_.back() != suite) suites_.push_back(suite);
    vec.suite = static_cast<std::uint32_t>(suites_.size() - 1);
    vec.hash = str_field(v, {"input_hash"});
    if (vec.hash.empty()) vec.hash = at.keys[1];
    if (auto val = v.find("validity"); val != v.end() && !val->is_null()) {
      std::string s = val->is_string() ? val->get<std::string>() : std::string();
      if (s.rfind("VectorValidity.", 0) == 0) s.erase(0, 15);
      if (s != "VALID" && s != "INVALID")
        malformed(vectors_file_, at.pointer() + "/validity", "unknown validity " + json_excerpt(*val) + " (VALID or INVALID)");
      vec.invalid = s == "INVALID";
    }
    vec.invalid_reason = str_field(v, {"invalid_reason"});
    vec.filtered = (options_.tag && str_field(v, {"tag"}) != *options_.tag) ||
                   (!options_.suites.empty() &&
                    std::find(options_.suites.begin(), options_.suites.end(), suite) == options_.suites.end());
    if (!vec.invalid && !vec.filtered) map_vector(v, vec);
    for (const std::string& p : map_.params) {
      auto it = v.find(p);
      vec.compare.push_back(it == v.end() ? json() : comparable(*it));
    }
    const auto idx = static_cast<std::uint32_t>(vecs_.size());
    by_hash_[vec.hash].push_back(idx);
    if (at.keys[1] != vec.hash) by_hash_[at.keys[1]].push_back(idx);
    vecs_.push_back(std::move(vec));
  }

  /// The vector's query arguments (checked by binding them to the op spec), or why it has none.
  void map_vector(const json& v, Vec& vec) {
    Result<json> a = map_args(map_, v);
    if (!a) {
      vec.args_error = a.error().message;
      return;
    }
    if (auto err = encoder_.bind(a.value(), bindings_)) vec.args_error = err->describe();
    else vec.args_json = a.value().dump(-1, ' ', false, json::error_handler_t::replace);
  }

  // ---- results: one record in memory at a time; a few dozen bytes kept per record
  void read_results(std::size_t fi) {
    const fs::path& rf = results_[fi];
    const std::string fname = rf.filename().string();
    file_start_.push_back(recs_.size());
    std::error_code ec;
    const std::uint64_t size = fs::file_size(rf, ec);
    JsonItemReader rr;
    rr.root_is_array = true;
    rr.item_depth = 1;
    rr.expect = "a results_export file: a JSON list of result records";
    rr.capture = {"input_hash", "vector_id", "suite_name", "test_case_name", "status", "success",
                  "start_time_ts", "test_start_ts", "end_time_ts", "test_end_ts", "timestamp", "git_hash",
                  "device_perf", "metrics", "device_perf_cached", "device_perf_uncached", "original_vector_data"};
    rr.on_progress = [&](std::uint64_t bytes) {
      std::string pct = size > 0 ? " (" + std::to_string(bytes * 100 / size) + "%)" : "";
      log(LogLevel::info, fname + ": " + mb(bytes) + " of " + mb(size) + pct + ", " +
                              std::to_string(recs_.size() - file_start_.back()) + " records");
    };
    rr.hash_key = "original_vector_data";
    rr.on_item = [&](const JsonItemReader::Item& item) { on_record(fi, item); };
    sources_.push_back({{"file", fname}, {"sha256", rr.read(rf)}});
    rep_.results.push_back({fname, recs_.size() - file_start_.back()});
  }

  void on_record(std::size_t fi, const JsonItemReader::Item& item) {
    const json& r = item.value;
    const fs::path& rf = results_[fi];
    const std::string pointer = "/" + std::to_string(item.where.indices[0]);
    const std::size_t ri = recs_.size();
    Rec rec;
    rec.content = item.hash;
    rec.file = static_cast<std::uint16_t>(fi);
    rec.index = static_cast<std::uint32_t>(item.where.indices[0]);
    const std::string* hash = string_field(r, {"input_hash", "vector_id"});
    if (!hash) malformed(rf, pointer + "/input_hash", "a result record needs an \"input_hash\" string");
    rec.status = parse_status(r, rf, pointer);
    // R0..R2 copy suite_name from a header list indexed by position (it can be shifted): the
    // suite only chooses between vectors that share the hash.
    const std::string rsuite = str_field(r, {"suite_name", "test_case_name"});
    if (auto c = by_hash_.find(*hash); c != by_hash_.end()) {
      rec.vector = c->second.front();
      for (std::uint32_t v : c->second)
        if (suites_[vecs_[v].suite] == rsuite) rec.vector = v;
    }
    const std::string* start = string_field(r, {"start_time_ts", "test_start_ts"});
    rec.start = timestamp_value(start);
    rec.end = timestamp_value(string_field(r, {"end_time_ts", "test_end_ts", "timestamp"}));
    std::string run = (rec.vector == kNone ? rsuite : suites_[vecs_[rec.vector].suite]) + '\x1f' + *hash + '\x1f' +
                      (start ? *start : "file " + std::to_string(fi));
    rec.run_a = hash_bytes(run, 1);
    rec.run_b = hash_bytes(run, 2);
    const std::string where = rf.filename().string() + " " + pointer + ": ";
    if (rec.vector == kNone) {
      note(rec, ri, SweepDrop::no_matching_vector,
           where + "input_hash " + *hash + " is in no suite of " + vectors_file_.filename().string());
    } else {
      classify(rec, ri, r, item, where);
    }
    recs_.push_back(rec);
  }

  void note(Rec& rec, std::size_t ri, SweepDrop reason, std::string detail) {
    rec.outcome = static_cast<std::uint8_t>(reason);
    examples_.note(reason, ri, std::move(detail));
  }

  /// Why a record of a known vector is dropped (noted on it), or its duration and git hash.
  void classify(Rec& rec, std::size_t ri, const json& r, const JsonItemReader::Item& item, const std::string& where) {
    Vec& vec = vecs_[rec.vector];
    vec.has_record = true;
    const std::string vname = "vector " + suites_[vec.suite] + "/" + vec.hash;
    const std::string mismatch = original_mismatch(vec, r, item, vname);
    if (vec.filtered) {
      note(rec, ri, SweepDrop::filtered_out, where + vname + " is excluded by the tag / suite filters");
    } else if (!mismatch.empty()) {
      note(rec, ri, SweepDrop::vector_mismatch, where + mismatch);
    } else if (vec.invalid) {
      note(rec, ri, SweepDrop::invalid_vector, where + vname + " is INVALID: " + vec.invalid_reason);
    } else if (rec.status != kPass) {
      note(rec, ri, SweepDrop::not_pass, where + "status " + std::string(kStatuses[rec.status]));
    } else if (Perf perf = record_perf(r); perf.kind != Perf::Kind::ok) {
      note(rec, ri, perf.kind == Perf::Kind::none ? SweepDrop::no_device_perf : SweepDrop::zero_device_perf,
           where + perf.detail);
    } else if (!vec.args_error.empty()) {
      note(rec, ri, SweepDrop::bad_args, where + vname + ": " + vec.args_error);
    } else {
      rec.ns = perf.ns;
      if (const std::string* g = string_field(r, {"git_hash"})) rec.git = git_index(*g);
    }
  }

  std::uint16_t git_index(const std::string& g) {
    auto it = std::find(gits_.begin(), gits_.end(), g);
    if (it == gits_.end() && gits_.size() < std::numeric_limits<std::uint16_t>::max()) it = gits_.insert(gits_.end(), g);
    return static_cast<std::uint16_t>(it - gits_.begin());
  }

  /// The pairing check: the record's copy of the vector's parameters must agree ("" if it does).
  /// Records of one vector mostly carry the same copy: one that agreed before (same hash) agrees again.
  std::string original_mismatch(Vec& vec, const json& r, const JsonItemReader::Item& item, const std::string& vname) {
    auto o = r.find("original_vector_data");
    if (o == r.end() || o->is_null() || vec.filtered || item.key_hash == vec.verified_original) return {};
    json decoded;
    const json* orig = &*o;
    if (o->is_string()) {  // R0: a Python repr string
      decoded = decode_sweep_value(*o);
      orig = &decoded;
    }
    if (orig->is_object())
      for (std::size_t p = 0; p < map_.params.size(); ++p) {
        auto ov = orig->find(map_.params[p]);
        if (ov == orig->end() || vec.compare[p].is_null()) continue;
        const json c = comparable(*ov);
        if (c != vec.compare[p])
          return "parameter '" + map_.params[p] + "': " + vname + " has " + json_excerpt(vec.compare[p]) +
                 ", the record's original_vector_data " + json_excerpt(c);
      }
    vec.verified_original = item.key_hash;
    return {};
  }

  // ---- one record per (suite, input_hash, run)
  void note_resolved_runs() {
    const std::vector<std::uint32_t> other = resolve_runs(recs_, vecs_.size(), options_.latest_only);
    auto where = [&](std::size_t i) {
      return results_[recs_[i].file].filename().string() + " /" + std::to_string(recs_[i].index);
    };
    for (std::uint32_t i = 0; i < recs_.size(); ++i) {
      if (other[i] == kNone) continue;
      const auto reason = static_cast<SweepDrop>(recs_[i].outcome);
      examples_.note(reason, i,
                     where(i) + ": " +
                         (reason == SweepDrop::duplicate ? "a copy of " + where(other[i])
                          : recs_[i].start == recs_[other[i]].start
                              ? "the same run of the vector has a newer record, " + where(other[i])
                              : "an older run of the vector (latest only), newest " + where(other[i])));
    }
  }

  // ---- rows, counts, report
  SweepDataset build_rows() {
    SweepDataset d;
    d.op = encoder_.op();
    for (const Rec& r : recs_) {
      if (r.outcome != kKept) {
        ++rep_.dropped[r.outcome];
        if (r.outcome == static_cast<std::uint8_t>(SweepDrop::not_pass)) ++rep_.not_pass_by_status[kStatuses[r.status]];
        continue;
      }
      Vec& v = vecs_[r.vector];
      v.has_row = true;
      if (v.row_vector == kNone) {
        v.row_vector = static_cast<std::uint32_t>(d.vectors.size());
        d.vectors.push_back({suites_[v.suite], v.hash, std::move(v.args_json)});
      }
      d.rows.push_back({v.row_vector, r.ns});
      if (r.git != 0) rep_.git_hashes.insert(gits_[r.git]);
    }
    for (std::size_t i = 0; i < kSweepDropReasons; ++i)
      for (const auto& [rec, text] : examples_.candidates[i])
        if (recs_[rec].outcome == i) {
          rep_.example[i] = text;
          break;
        }
    return d;
  }

  void count_vectors() {
    for (const Vec& v : vecs_) {
      if (v.has_row) ++rep_.vectors_with_rows;
      else if (v.invalid) ++rep_.vectors_invalid;
      else if (v.filtered) ++rep_.vectors_filtered_out;
      else if (!v.has_record) ++rep_.vectors_without_result;
      else ++rep_.vectors_all_dropped;
    }
  }

  json header() const {
    json commit = nullptr;
    if (options_.tt_metal_commit) commit = *options_.tt_metal_commit;
    else if (rep_.git_hashes.size() == 1) commit = *rep_.git_hashes.begin();
    json source = {{"importer", "torp dataset from-sweep"},
                   {"vectors", {{"file", vectors_file_.filename().string()}, {"sha256", vectors_sha256_}}},
                   {"results", sources_}};
    if (options_.tag) source["tag"] = *options_.tag;
    if (!options_.suites.empty()) source["suites"] = options_.suites;
    if (!options_.origin.is_null()) source["origin"] = options_.origin;
    return {{"device", device_name_},
            {"tt_metal_commit", commit},
            {"source", source},
            {"notes", std::string("Imported from tt-metal sweep output: results joined to vectors by (suite, "
                                  "input_hash); PASS records with DEVICE KERNEL DURATION [ns] > 0 only; arguments "
                                  "mapped by the op spec's \"sweep\" block; suite and input_hash trace each row to "
                                  "its vector and result records. ") +
                          (options_.latest_only ? "Only the newest record of each vector is kept."
                                                : "Records of separate runs are kept as repeats.")}};
  }

  const fs::path& vectors_file_;
  const std::vector<fs::path>& results_;
  const SweepOptions& options_;
  const SweepMap map_;
  const Encoder encoder_;
  std::string device_name_, vectors_sha256_;
  SweepImportReport rep_;
  Bindings bindings_;
  std::vector<std::string> suites_;
  std::vector<Vec> vecs_;
  std::unordered_map<std::string, std::vector<std::uint32_t>> by_hash_;
  std::deque<Rec> recs_;                // no reallocation peaks: millions of records
  std::vector<std::size_t> file_start_;  // index in recs_ of each file's first record
  std::vector<std::string> gits_{""};
  json sources_ = json::array();
  Examples examples_;
};

}  // namespace

SweepDataset import_sweep(const fs::path& vectors_file, const std::vector<fs::path>& results, const json& op_spec,
                          const json& device, const SweepOptions& options, SweepImportReport* report) {
  return SweepImporter(vectors_file, results, op_spec, device, options).run(report);
}

}  // namespace torp
