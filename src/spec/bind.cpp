// SPDX-License-Identifier: Apache-2.0
// Binding a query's arguments (tt-metal JSON) to an op spec: types, ranks, defaults, device limits,
// then one evaluation pass and the spec's validate rules.
#include "spec/encoder_impl.hpp"

#include <algorithm>
#include <cmath>

#include "core/json_excerpt.hpp"

namespace torp {
using namespace opspec;

using json = nlohmann::json;

const char* opspec::type_word(ArgType t) {
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

std::optional<double> opspec::read_scalar(const json& v, ArgType t, EnumKind ek) {
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

void Encoder::Impl::read_device_limits() {
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
std::optional<Error> Encoder::Impl::fits_device(const std::optional<TensorInfo>& t, const MemoryConfigInfo& m,
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
std::optional<Error> Encoder::Impl::bind_tensor(const ArgSpec& as, const json& v, const std::string& path,
                                               TensorInfo& out) const {
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
std::optional<Error> Encoder::Impl::bind_list(const ArgSpec& as, const json& v, Bindings& b, Bindings::Arg& a) const {
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

std::optional<Error> Encoder::Impl::bind_args(const json& q, Bindings& b, std::string_view args_path) const {
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
  return std::nullopt;
}

std::optional<Error> Encoder::Impl::bind(const json& q, Bindings& b, std::string_view args_path) const {
  if (auto e = bind_args(q, b, args_path)) return e;
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

}  // namespace torp
