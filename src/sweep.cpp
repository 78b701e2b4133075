// SPDX-License-Identifier: Apache-2.0
// tt-metal sweep import: vectors_export + results_export JSON (generations R0..R3, value eras
// A..C) joined by (suite, input_hash) and mapped to op arguments by the op spec's "sweep" block.
#include "torp/sweep.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "torp/encoder.hpp"
#include "torp/tensor.hpp"

namespace torp {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kKernelDuration = "DEVICE KERNEL DURATION [ns]";

// ---- reading JSON files ----------------------------------------------------------------------

/// Parse a JSON file, reading Python's bare NaN / Infinity / -Infinity as null. Errors name the
/// file, line and column.
json read_json_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TorpError(ErrorCode::io, "cannot read " + file.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::string clean;
  clean.reserve(text.size());
  std::vector<std::size_t> grown;  // positions in `clean` after which one extra byte was written
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      clean += c;
      if (c == '\\' && i + 1 < text.size()) clean += text[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    auto word = [&](std::string_view w) { return text.compare(i, w.size(), w) == 0; };
    if (word("NaN")) {
      clean += "null";
      grown.push_back(clean.size());
      i += 2;
    } else if (word("-Infinity")) {
      clean += "null     ";
      i += 8;
    } else if (word("Infinity")) {
      clean += "null    ";
      i += 7;
    } else {
      clean += c;
    }
  }
  try {
    return json::parse(clean);
  } catch (const json::parse_error& e) {
    std::size_t at = e.byte == 0 ? 0 : e.byte - 1;
    at -= static_cast<std::size_t>(std::count_if(grown.begin(), grown.end(), [&](std::size_t g) { return g <= at; }));
    at = std::min(at, text.size());
    std::size_t line = 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
    std::size_t line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
    std::size_t col = line_start == std::string::npos || at == 0 ? at + 1 : at - line_start;
    std::string what = e.what();
    std::size_t p = what.find(": ", what.find("column"));
    throw TorpError(ErrorCode::dataset, file.string() + ":" + std::to_string(line) + ":" + std::to_string(col) +
                                            ": invalid JSON: " + (p == std::string::npos ? what : what.substr(p + 2)));
  }
}

// ---- Python literals (Era A strings, R0 original_vector_data) ---------------------------------

class PyLiteral {
 public:
  explicit PyLiteral(std::string_view s) : s_(s) {}
  std::optional<json> parse() {
    auto v = value();
    skip();
    if (!v || p_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  void skip() {
    while (p_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[p_]))) ++p_;
  }
  bool eat(char c) {
    skip();
    if (p_ < s_.size() && s_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  std::optional<json> value() {
    skip();
    if (p_ >= s_.size()) return std::nullopt;
    char c = s_[p_];
    if (c == '[') return sequence(']');
    if (c == '(') return sequence(')');
    if (c == '{') return dict();
    if (c == '\'' || c == '"') return string();
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.') return number();
    std::size_t b = p_;
    while (p_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[p_])) || s_[p_] == '_')) ++p_;
    std::string_view w = s_.substr(b, p_ - b);
    if (w == "True" || w == "true") return json(true);
    if (w == "False" || w == "false") return json(false);
    if (w == "None" || w == "null") return json(nullptr);
    return std::nullopt;
  }
  std::optional<json> sequence(char close) {
    ++p_;
    json a = json::array();
    bool trailing_comma = false;
    if (eat(close)) return a;
    for (;;) {
      auto v = value();
      if (!v) return std::nullopt;
      a.push_back(std::move(*v));
      trailing_comma = false;
      if (eat(close)) break;
      if (!eat(',')) return std::nullopt;
      trailing_comma = true;
      if (eat(close)) break;
    }
    if (close == ')' && a.size() == 1 && !trailing_comma) return a[0];  // "(x)" is x, "(x,)" a tuple
    return a;
  }
  std::optional<json> dict() {
    ++p_;
    json o = json::object();
    if (eat('}')) return o;
    for (;;) {
      auto k = value();
      if (!k || !eat(':')) return std::nullopt;
      auto v = value();
      if (!v) return std::nullopt;
      o[k->is_string() ? k->get<std::string>() : k->dump()] = std::move(*v);
      if (eat('}')) return o;
      if (!eat(',')) return std::nullopt;
      if (eat('}')) return o;
    }
  }
  static void utf8(std::string& out, unsigned cp) {
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
  std::optional<json> string() {
    char q = s_[p_++];
    std::string out;
    while (p_ < s_.size() && s_[p_] != q) {
      char c = s_[p_++];
      if (c != '\\' || p_ >= s_.size()) {
        out += c;
        continue;
      }
      char e = s_[p_++];
      auto hex = [&](int n) -> std::optional<unsigned> {
        unsigned v = 0;
        if (p_ + static_cast<std::size_t>(n) > s_.size()) return std::nullopt;
        auto [end, ec] = std::from_chars(s_.data() + p_, s_.data() + p_ + n, v, 16);
        if (ec != std::errc() || end != s_.data() + p_ + n) return std::nullopt;
        p_ += static_cast<std::size_t>(n);
        return v;
      };
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'x':
        case 'u': {
          auto v = hex(e == 'x' ? 2 : 4);
          if (!v) return std::nullopt;
          utf8(out, *v);
          break;
        }
        default:  // Python keeps unknown escapes verbatim
          out += '\\';
          out += e;
      }
    }
    if (p_ >= s_.size()) return std::nullopt;
    ++p_;
    return json(std::move(out));
  }
  std::optional<json> number() {
    std::size_t b = p_;
    if (s_[p_] == '+' || s_[p_] == '-') ++p_;
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
    if (!t.empty() && t[0] == '+') t.remove_prefix(1);
    if (!is_float) {
      std::int64_t v = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec == std::errc() && end == t.data() + t.size()) return json(v);
      return std::nullopt;
    }
    double d = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
    if (ec == std::errc() && end == t.data() + t.size() && std::isfinite(d)) return json(d);
    return std::nullopt;
  }

  std::string_view s_;
  std::size_t p_ = 0;
};

// ---- value normalization ---------------------------------------------------------------------

Error bad(std::string msg) { return Error{ErrorCode::dataset, std::move(msg), {}}; }


Result<std::string> enum_field(EnumKind kind, const json& v, const char* what) {
  auto e = parse_enum(kind, v);
  if (!e) return bad(std::string("unknown ") + what + " " + v.dump());
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

/// A MemoryConfig in any sweep serialization ({"type","data"} wrapper with data as JSON string
/// or object, enums as ints or names) in the dataset's form: enum names, only the fields the
/// encoder reads (buffer_type, memory_layout, shard_spec {grid, shape, orientation}).
Result<json> memory_config(const json& v) {
  json data = v;
  if (v.is_object() && v.contains("data") && !v.contains("buffer_type")) {
    data = v["data"];
    if (data.is_string()) {
      json parsed = json::parse(data.get<std::string>(), nullptr, false);
      data = parsed.is_discarded() ? decode_sweep_value(data) : parsed;
    }
  }
  if (!data.is_object()) return bad("memory config is not an object: " + v.dump());
  json out;
  for (auto [key, kind, what] : {std::tuple{"buffer_type", EnumKind::buffer_type, "buffer type"},
                                 std::tuple{"memory_layout", EnumKind::memory_layout, "memory layout"}}) {
    auto it = data.find(key);
    if (it == data.end()) return bad(std::string("memory config has no ") + key);
    auto name = enum_field(kind, *it, what);
    if (!name) return name.error();
    out[key] = name.value();
  }
  if (auto s = data.find("shard_spec"); s != data.end() && !s->is_null()) {
    auto spec = shard_spec(*s, "shape");
    if (!spec) return spec.error();
    out["shard_spec"] = spec.value();
  } else if (auto nd = data.find("nd_shard_spec"); nd != data.end() && !nd->is_null()) {
    auto spec = shard_spec(*nd, "shard_shape");
    if (!spec) return spec.error();
    out["nd_shard_spec"] = spec.value();
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

struct ArgMap {
  enum class Kind { tensor, memory_config, value } kind = Kind::value;
  std::string name;
  std::string param;  // memory_config / value
  std::string shape, dtype, layout, memory;  // tensor: parameter names ("" = not mapped)
};

std::vector<ArgMap> compile_sweep_block(const json& spec) {
  auto sw = spec.find("sweep");
  if (!spec.is_object() || sw == spec.end() || !sw->is_object())
    throw TorpError(ErrorCode::op_spec,
                    "op spec " + spec.value("op", std::string("?")) +
                        " has no \"sweep\" block mapping sweep parameters to arguments",
                    "/sweep");
  auto args = sw->find("args");
  if (args == sw->end() || !args->is_object() || args->empty())
    throw TorpError(ErrorCode::op_spec, "\"sweep\" needs a non-empty \"args\" object", "/sweep/args");
  std::vector<ArgMap> out;
  for (auto it = args->begin(); it != args->end(); ++it) {
    const std::string path = "/sweep/args/" + it.key();
    const json& m = it.value();
    if (!m.is_object() || m.size() != 1)
      throw TorpError(ErrorCode::op_spec, "an argument mapping is {\"tensor\": {...}}, {\"memory_config\": \"<param>\"} or "
                                          "{\"value\": \"<param>\"}", path);
    ArgMap a;
    a.name = it.key();
    const std::string kind = m.begin().key();
    const json& body = m.begin().value();
    if (kind == "tensor") {
      a.kind = ArgMap::Kind::tensor;
      if (!body.is_object()) throw TorpError(ErrorCode::op_spec, "\"tensor\" maps shape/dtype/layout/memory_config to parameters", path + "/tensor");
      for (auto f = body.begin(); f != body.end(); ++f) {
        std::string* slot = f.key() == "shape"           ? &a.shape
                            : f.key() == "dtype"         ? &a.dtype
                            : f.key() == "layout"        ? &a.layout
                            : f.key() == "memory_config" ? &a.memory
                                                         : nullptr;
        if (!slot || !f->is_string() || f->get<std::string>().empty())
          throw TorpError(ErrorCode::op_spec, "tensor fields are shape, dtype, layout and memory_config, each a parameter name",
                          path + "/tensor/" + f.key());
        *slot = f->get<std::string>();
      }
      if (a.shape.empty()) throw TorpError(ErrorCode::op_spec, "a tensor mapping needs \"shape\"", path + "/tensor");
    } else if (kind == "memory_config" || kind == "value") {
      a.kind = kind == "value" ? ArgMap::Kind::value : ArgMap::Kind::memory_config;
      if (!body.is_string() || body.get<std::string>().empty())
        throw TorpError(ErrorCode::op_spec, "\"" + kind + "\" takes a parameter name", path + "/" + kind);
      a.param = body.get<std::string>();
    } else {
      throw TorpError(ErrorCode::op_spec, "unknown mapping kind \"" + kind + "\" (tensor, memory_config or value)", path);
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<std::string> referenced_params(const std::vector<ArgMap>& maps) {
  std::vector<std::string> out;
  for (const ArgMap& a : maps)
    for (const std::string* p : {&a.param, &a.shape, &a.dtype, &a.layout, &a.memory})
      if (!p->empty() && std::find(out.begin(), out.end(), *p) == out.end()) out.push_back(*p);
  return out;
}

/// The decoded value of a vector parameter; error if the vector lacks it.
Result<json> param(const json& vec, const std::string& name) {
  auto it = vec.find(name);
  if (it == vec.end()) return bad("the vector has no parameter '" + name + "'");
  return decode_sweep_value(*it);
}

Result<json> map_args(const std::vector<ArgMap>& maps, const json& vec) {
  json args = json::object();
  for (const ArgMap& a : maps) {
    if (a.kind == ArgMap::Kind::value || a.kind == ArgMap::Kind::memory_config) {
      auto v = param(vec, a.param);
      if (!v) return v.error();
      if (v.value().is_null()) continue;  // None: the optional argument is not given
      if (a.kind == ArgMap::Kind::value) {
        args[a.name] = v.value();
        continue;
      }
      auto m = memory_config(v.value());
      if (!m) return bad("parameter '" + a.param + "': " + m.error().message);
      args[a.name] = m.value();
      continue;
    }
    auto shape = param(vec, a.shape);
    if (!shape) return shape.error();
    if (shape.value().is_null()) continue;
    if (!shape.value().is_array() || shape.value().empty())
      return bad("parameter '" + a.shape + "' is not a shape: " + vec[a.shape].dump());
    json t;
    for (const json& d : shape.value()) {
      auto v = json_integer(d);
      if (!v) return bad("parameter '" + a.shape + "' is not a shape of integers: " + vec[a.shape].dump());
      t["logical_shape"].push_back(*v);
    }
    for (auto [pname, field, kind] : {std::tuple{&a.dtype, "dtype", EnumKind::data_type},
                                      std::tuple{&a.layout, "layout", EnumKind::layout}}) {
      if (pname->empty()) continue;
      auto v = param(vec, *pname);
      if (!v) return v.error();
      if (v.value().is_null()) continue;
      auto name = enum_field(kind, v.value(), field);
      if (!name) return bad("parameter '" + *pname + "': " + name.error().message);
      t[field] = name.value();
    }
    if (!a.memory.empty()) {
      auto v = param(vec, a.memory);
      if (!v) return v.error();
      if (!v.value().is_null()) {
        auto m = memory_config(v.value());
        if (!m) return bad("parameter '" + a.memory + "': " + m.error().message);
        t["memory_config"] = m.value();
      }
    }
    args[a.name] = std::move(t);
  }
  return args;
}

// ---- result records --------------------------------------------------------------------------

std::string str_field(const json& o, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (auto it = o.find(k); it != o.end() && it->is_string()) return it->get<std::string>();
  return {};
}

/// "TestStatus.PASS" / "pass" -> "PASS"; R3 records without status use "success".
std::string status_of(const json& rec) {
  if (auto s = rec.find("status"); s != rec.end() && s->is_string()) {
    std::string v = s->get<std::string>();
    if (auto dot = v.rfind('.'); dot != std::string::npos) v.erase(0, dot + 1);
    for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return v.empty() ? "EMPTY" : v;
  }
  if (auto s = rec.find("success"); s != rec.end() && s->is_boolean()) return s->get<bool>() ? "PASS" : "FAIL";
  return "MISSING";
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
  if (!d) return {Perf::Kind::bad, 0, "unreadable kernel duration " + v.dump()};
  if (!std::isfinite(*d) || *d <= 0) return {Perf::Kind::bad, 0, "kernel duration " + v.dump()};
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
  return {Perf::Kind::bad, 0, where + " is neither an object nor a list: " + p.dump()};
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

struct Vector {
  std::string suite, hash;
  const json* data = nullptr;
  bool filtered = false, invalid = false;
  std::optional<Result<json>> args;  // mapped and validated lazily
};

struct Kept {
  Measurement row;
  std::string vector_key, timestamp, git_hash;
};

}  // namespace

std::string_view to_string(SweepDrop reason) noexcept {
  switch (reason) {
    case SweepDrop::no_matching_vector: return "no_matching_vector";
    case SweepDrop::filtered_out: return "filtered_out";
    case SweepDrop::invalid_vector: return "invalid_vector";
    case SweepDrop::not_pass: return "not_pass";
    case SweepDrop::no_device_perf: return "no_device_perf";
    case SweepDrop::zero_device_perf: return "zero_device_perf";
    case SweepDrop::vector_mismatch: return "vector_mismatch";
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

json decode_sweep_value(const json& value) {
  if (value.is_string()) {
    auto v = PyLiteral(value.get_ref<const std::string&>()).parse();
    if (!v || (v->is_string() && *v == value)) return value;
    return decode_sweep_value(*v);
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

Dataset import_sweep(const fs::path& vectors_file, const std::vector<fs::path>& results, const json& op_spec,
                     const json& device, const SweepOptions& options, SweepImportReport* report) {
  const std::vector<ArgMap> maps = compile_sweep_block(op_spec);
  const std::vector<std::string> params = referenced_params(maps);
  const Encoder encoder(op_spec, device);
  auto dev_name = device.find("name");
  if (!device.is_object() || dev_name == device.end() || !dev_name->is_string())
    throw TorpError(ErrorCode::dataset, "the device description has no \"name\"", "/name");
  if (results.empty()) throw TorpError(ErrorCode::dataset, "no results_export file given");

  SweepImportReport rep;
  // Vectors: {suite: {vector_id: {...}}}.
  const json vdoc = read_json_file(vectors_file);
  if (!vdoc.is_object())
    throw TorpError(ErrorCode::dataset, vectors_file.string() + ": a vectors_export file is {suite: {vector_id: {...}}}");
  std::vector<Vector> vecs;
  std::unordered_map<std::string, std::vector<std::size_t>> by_hash;
  for (auto s = vdoc.begin(); s != vdoc.end(); ++s) {
    if (!s->is_object())
      throw TorpError(ErrorCode::dataset, vectors_file.string() + ": suite '" + s.key() + "' is not an object of vectors",
                      "/" + s.key());
    for (auto v = s->begin(); v != s->end(); ++v) {
      if (!v->is_object())
        throw TorpError(ErrorCode::dataset, vectors_file.string() + ": vector '" + v.key() + "' is not an object",
                        "/" + s.key() + "/" + v.key());
      Vector vec;
      vec.suite = s.key();
      vec.hash = str_field(*v, {"input_hash"});
      if (vec.hash.empty()) vec.hash = v.key();
      vec.data = &*v;
      std::string validity = str_field(*v, {"validity"});
      vec.invalid = validity == "INVALID" || validity == "VectorValidity.INVALID";
      vec.filtered = (options.tag && str_field(*v, {"tag"}) != *options.tag) ||
                     (!options.suites.empty() &&
                      std::find(options.suites.begin(), options.suites.end(), vec.suite) == options.suites.end());
      by_hash[vec.hash].push_back(vecs.size());
      if (v.key() != vec.hash) by_hash[v.key()].push_back(vecs.size());
      vecs.push_back(std::move(vec));
    }
  }
  rep.vectors = vecs.size();

  std::vector<Kept> kept;
  std::unordered_set<std::string> seen;
  Bindings bindings;
  json sources = json::array();
  for (const fs::path& rf : results) {
    const json rdoc = read_json_file(rf);
    sources.push_back({{"file", rf.filename().string()}, {"sha256", sha256_file(rf)}});
    if (!rdoc.is_array() && !rdoc.is_object())
      throw TorpError(ErrorCode::dataset, rf.string() + ": a results_export file is a list of records");
    const json records = rdoc.is_array() ? rdoc : json::array({rdoc});
    for (std::size_t i = 0; i < records.size(); ++i) {
      const json& rec = records[i];
      const std::string where = rf.filename().string() + "[" + std::to_string(i) + "]";
      if (!rec.is_object())
        throw TorpError(ErrorCode::dataset, rf.string() + ": record [" + std::to_string(i) + "] is not an object");
      ++rep.records;
      auto drop = [&](SweepDrop r, const std::string& detail) {
        auto k = static_cast<std::size_t>(r);
        if (rep.dropped[k]++ == 0) rep.example[k] = where + ": " + detail;
      };
      std::string hash = str_field(rec, {"input_hash", "vector_id"});
      auto cand = by_hash.find(hash);
      if (hash.empty() || cand == by_hash.end()) {
        drop(SweepDrop::no_matching_vector, hash.empty() ? "no input_hash" : "input_hash " + hash);
        continue;
      }
      // R0/R1/R2 copy suite_name from a header list indexed by position (it can be shifted), so the
      // suite only disambiguates between vectors sharing a hash.
      const std::string rsuite = str_field(rec, {"suite_name", "test_case_name"});
      std::size_t vi = cand->second.front();
      for (std::size_t c : cand->second)
        if (vecs[c].suite == rsuite) vi = c;
      Vector& vec = vecs[vi];
      if (vec.filtered) {
        drop(SweepDrop::filtered_out, "suite " + vec.suite);
        continue;
      }
      if (vec.invalid) {
        drop(SweepDrop::invalid_vector, str_field(*vec.data, {"invalid_reason"}));
        continue;
      }
      std::string status = status_of(rec);
      if (status != "PASS") {
        ++rep.not_pass_by_status[status];
        drop(SweepDrop::not_pass, "status " + status);
        continue;
      }
      Perf perf = record_perf(rec);
      if (perf.kind != Perf::Kind::ok) {
        drop(perf.kind == Perf::Kind::none ? SweepDrop::no_device_perf : SweepDrop::zero_device_perf, perf.detail);
        continue;
      }
      if (auto o = rec.find("original_vector_data"); o != rec.end() && !o->is_null()) {
        json orig = decode_sweep_value(*o);
        std::string mismatch;
        if (orig.is_object())
          for (const std::string& p : params) {
            auto ov = orig.find(p);
            auto vv = vec.data->find(p);
            if (ov == orig.end() || vv == vec.data->end()) continue;
            if (comparable(*ov) != comparable(*vv)) {
              mismatch = "parameter '" + p + "': vector " + vv->dump() + ", record " + ov->dump();
              break;
            }
          }
        if (!mismatch.empty()) {
          drop(SweepDrop::vector_mismatch, mismatch);
          continue;
        }
      }
      if (!vec.args) {
        Result<json> a = map_args(maps, *vec.data);
        if (a) {
          if (auto err = encoder.bind(a.value(), bindings)) a = bad(err->describe());
        }
        vec.args = std::move(a);
      }
      if (!*vec.args) {
        drop(SweepDrop::bad_args, "vector " + vec.suite + "/" + vec.hash + ": " + vec.args->error().message);
        continue;
      }
      std::string vector_key = vec.suite + '\n' + vec.hash;
      if (!seen.insert(vector_key + '\n' + rec.dump()).second) {
        drop(SweepDrop::duplicate, "vector " + vec.suite + "/" + vec.hash);
        continue;
      }
      Kept k;
      k.row.args = vec.args->value();
      k.row.runtime_ns = perf.ns;
      k.row.source = {{"suite", vec.suite}, {"input_hash", vec.hash}, {"results", rf.filename().string()}};
      k.vector_key = std::move(vector_key);
      k.timestamp = str_field(rec, {"start_time_ts", "test_start_ts", "timestamp"});
      k.git_hash = str_field(rec, {"git_hash"});
      kept.push_back(std::move(k));
    }
  }

  if (options.latest_only) {
    std::unordered_map<std::string, std::size_t> latest;  // vector -> index in kept
    for (std::size_t i = 0; i < kept.size(); ++i) {
      auto [it, inserted] = latest.try_emplace(kept[i].vector_key, i);
      if (!inserted && kept[i].timestamp >= kept[it->second].timestamp) it->second = i;
    }
    std::vector<Kept> newest;
    for (std::size_t i = 0; i < kept.size(); ++i) {
      if (latest[kept[i].vector_key] == i) {
        newest.push_back(std::move(kept[i]));
        continue;
      }
      auto k = static_cast<std::size_t>(SweepDrop::superseded);
      if (rep.dropped[k]++ == 0)
        rep.example[k] = kept[i].row.source["results"].get<std::string>() + ": older record of vector " +
                         kept[i].row.source["suite"].get<std::string>() + "/" +
                         kept[i].row.source["input_hash"].get<std::string>();
    }
    kept = std::move(newest);
  }

  Dataset d;
  d.op = encoder.op();
  for (Kept& k : kept) {
    if (!k.git_hash.empty()) rep.git_hashes.insert(k.git_hash);
    d.rows.push_back(std::move(k.row));
  }
  rep.imported = d.rows.size();
  json commit = nullptr;
  if (options.tt_metal_commit) commit = *options.tt_metal_commit;
  else if (rep.git_hashes.size() == 1) commit = *rep.git_hashes.begin();
  json source = {{"importer", "torp dataset import-sweep"},
                 {"vectors", {{"file", vectors_file.filename().string()}, {"sha256", sha256_file(vectors_file)}}},
                 {"results", sources}};
  if (options.tag) source["tag"] = *options.tag;
  if (!options.suites.empty()) source["suites"] = options.suites;
  if (!options.source.is_null()) source["origin"] = options.source;
  d.header = {{"format", kDatasetFormat},
              {"format_version", kDatasetFormatVersion},
              {"op", d.op},
              {"device", *dev_name},
              {"tt_metal_commit", commit},
              {"source", source},
              {"notes", std::string("Imported from tt-metal sweep output: results joined to vectors by (suite, "
                                    "input_hash); PASS records with DEVICE KERNEL DURATION [ns] > 0 only; arguments "
                                    "mapped by the op spec's \"sweep\" block. ") +
                            (options.latest_only ? "Only the latest record of each vector is kept."
                                                 : "Records of separate runs are kept as repeats.")}};
  if (report) *report = std::move(rep);
  return d;
}

}  // namespace torp
