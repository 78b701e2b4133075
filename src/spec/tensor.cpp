// SPDX-License-Identifier: Apache-2.0
#include "torp/tensor.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/json_excerpt.hpp"
#include "spec/memory_config.hpp"
#include "torp/json_text.hpp"

namespace torp {
namespace {

using json = nlohmann::json;


std::string child(std::string_view path, std::string_view key) {
  std::string p(path);
  p += '/';
  p += key;
  return p;
}

Error bad(std::string_view path, std::string msg) {
  return Error{ErrorCode::invalid_argument, std::move(msg), std::string(path)};
}

Result<ShardInfo> parse_grid(const json& grid, std::string_view path) {
  ShardInfo s;
  if (!grid.is_array() || grid.empty()) return bad(path, "shard grid must be a non-empty array of core ranges");
  if (grid.size() > static_cast<std::size_t>(ShardInfo::kMaxCores))
    return bad(path, "shard grid has more core ranges than any device has cores");
  int min_x = std::numeric_limits<int>::max(), min_y = min_x, max_x = -1, max_y = -1;
  std::int64_t cores = 0;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const json& r = grid[i];
    std::string rp = child(path, std::to_string(i));
    if (!r.is_object()) return bad(rp, "core range must be an object {start, end}");
    int c[4];
    const char* names[4] = {"start", "start", "end", "end"};
    const char* axes[4] = {"x", "y", "x", "y"};
    for (int k = 0; k < 4; ++k) {
      auto it = r.find(names[k]);
      if (it == r.end() || !it->is_object()) return bad(child(rp, names[k]), "missing core coordinate");
      auto a = it->find(axes[k]);
      std::optional<std::int64_t> v = a == it->end() ? std::nullopt : json_integer(*a);
      if (!v || *v < 0 || *v >= ShardInfo::kMaxCoordinate)
        return bad(child(child(rp, names[k]), axes[k]),
                   "core coordinate must be an integer in [0, " + std::to_string(ShardInfo::kMaxCoordinate) + ")");
      c[k] = static_cast<int>(*v);
    }
    if (c[2] < c[0] || c[3] < c[1]) return bad(rp, "core range end lies before its start");
    cores += std::int64_t{c[2] - c[0] + 1} * (c[3] - c[1] + 1);  // <= 128 * 1024^2: no overflow
    if (cores > ShardInfo::kMaxCores) return bad(path, "shard grid has more cores than any device");
    min_x = std::min(min_x, c[0]);
    min_y = std::min(min_y, c[1]);
    max_x = std::max(max_x, c[2]);
    max_y = std::max(max_y, c[3]);
  }
  s.cores = static_cast<int>(cores);
  s.grid_x = max_x - min_x + 1;
  s.grid_y = max_y - min_y + 1;
  s.end_x = max_x + 1;
  s.end_y = max_y + 1;
  s.present = true;
  return s;
}

Result<ShardInfo> parse_shard_spec(const json& j, std::string_view path, bool nd) {
  if (!j.is_object()) return bad(path, "shard spec must be an object");
  auto g = j.find("grid");
  if (g == j.end()) return bad(child(path, "grid"), "shard spec has no grid");
  auto grid = parse_grid(*g, child(path, "grid"));
  if (!grid) return grid.error();
  ShardInfo s = grid.value();
  const char* shape_key = nd ? "shard_shape" : "shape";
  auto sh = j.find(shape_key);
  if (sh != j.end()) {
    if (!sh->is_array() || sh->size() < 2) return bad(child(path, shape_key), "shard shape must have 2 or more dims");
    auto h = json_integer((*sh)[sh->size() - 2]);
    auto w = json_integer((*sh)[sh->size() - 1]);
    if (!h || !w || *h <= 0 || *w <= 0 || *h > TensorInfo::kMaxVolume || *w > TensorInfo::kMaxVolume)
      return bad(child(path, shape_key), "shard shape must hold positive integers");
    s.shape_h = static_cast<int>(*h);
    s.shape_w = static_cast<int>(*w);
  }
  auto o = j.find("orientation");
  if (o != j.end() && !o->is_null()) {
    auto v = parse_enum(EnumKind::shard_orientation, *o);
    if (!v) return bad(child(path, "orientation"), "unknown shard orientation " + json_excerpt(*o));
    s.orientation = *v;
  }
  return s;
}

}  // namespace

std::optional<std::int64_t> json_integer(const json& v) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::optional<double> dtype_bytes(int data_type) {
  switch (data_type) {
    case dtype::BFLOAT16: return 2.0;
    case dtype::FLOAT32: return 4.0;
    case dtype::UINT32: return 4.0;
    case dtype::BFLOAT8_B: return 1088.0 / 1024.0;
    case dtype::BFLOAT4_B: return 576.0 / 1024.0;
    case dtype::UINT8: return 1.0;
    case dtype::UINT16: return 2.0;
    case dtype::INT32: return 4.0;
    default: return std::nullopt;
  }
}

namespace {

/// The members of a JSON object that tensor parsing reads, found in one pass over the object
/// (a query's tensors are small objects read once: one walk beats a lookup per key).
struct Members {
  const json* tensor_spec = nullptr;
  const json* tensor_layout = nullptr;
  const json* logical_shape = nullptr;
  const json* shape = nullptr;
  const json* dtype = nullptr;
  const json* memory_config = nullptr;
  const json* layout = nullptr;
  const json* page_config = nullptr;
  const json* buffer_type = nullptr;
  const json* memory_layout = nullptr;
  const json* shard_spec = nullptr;
  const json* nd_shard_spec = nullptr;
  const json* data = nullptr;
};

Members members(const json& object) {
  Members m;
  for (const auto& [key, value] : object.get_ref<const json::object_t&>()) {
    const std::string_view k = key;
    const json* v = &value;
    switch (k.size()) {
      case 4:
        if (k == "data") m.data = v;
        break;
      case 5:
        if (k == "dtype") m.dtype = v;
        else if (k == "shape") m.shape = v;
        break;
      case 6:
        if (k == "layout") m.layout = v;
        break;
      case 10:
        if (k == "shard_spec") m.shard_spec = v;
        break;
      case 11:
        if (k == "tensor_spec") m.tensor_spec = v;
        else if (k == "buffer_type") m.buffer_type = v;
        else if (k == "page_config") m.page_config = v;
        break;
      case 13:
        if (k == "tensor_layout") m.tensor_layout = v;
        else if (k == "logical_shape") m.logical_shape = v;
        else if (k == "memory_config") m.memory_config = v;
        else if (k == "memory_layout") m.memory_layout = v;
        else if (k == "nd_shard_spec") m.nd_shard_spec = v;
        break;
      default: break;
    }
  }
  return m;
}

bool given(const json* v) { return v != nullptr && !v->is_null(); }

}  // namespace

std::optional<Error> read_memory_config_fields(const json& j, std::string_view path, MemoryConfigFields& out,
                                               DecodeText decode_text) {
  if (!j.is_object()) return bad(path, "memory config must be an object");
  Members f = members(j);
  // Sweep vectors wrap it as {"type": "...MemoryConfig", "data": <object or JSON string>}.
  if (f.data != nullptr && f.buffer_type == nullptr) {
    out.wrapped = true;
    const json* d = f.data;
    if (d->is_string()) {
      out.parsed = parse_json(d->get_ref<const std::string&>());
      if (out.parsed.is_discarded()) {
        if (decode_text == nullptr) return bad(child(path, "data"), "memory config data is not valid JSON");
        out.parsed = decode_text(*d);
      }
      d = &out.parsed;
    }
    if (!d->is_object()) return bad(child(path, "data"), "memory config must be an object");
    f = members(*d);
  }
  if (f.buffer_type != nullptr) {
    auto v = parse_enum(EnumKind::buffer_type, *f.buffer_type);
    if (!v) return bad(child(out.fields_path(path), "buffer_type"), "unknown buffer type " + json_excerpt(*f.buffer_type));
    out.buffer_type = *v;
  }
  if (f.memory_layout != nullptr) {
    auto v = parse_enum(EnumKind::memory_layout, *f.memory_layout);
    if (!v)
      return bad(child(out.fields_path(path), "memory_layout"),
                 "unsupported memory layout " + json_excerpt(*f.memory_layout));
    out.memory_layout = *v;
  }
  if (given(f.shard_spec)) {
    out.shard_spec = f.shard_spec;
  } else if (given(f.nd_shard_spec)) {
    out.shard_spec = f.nd_shard_spec;
    out.nd = true;
  }
  return std::nullopt;
}

Result<MemoryConfigInfo> parse_memory_config(const json& j, std::string_view path) {
  MemoryConfigFields f;
  if (auto e = read_memory_config_fields(j, path, f)) return *e;
  MemoryConfigInfo m;
  m.present = true;
  m.buffer_type = f.buffer_type;
  m.memory_layout = f.memory_layout;
  if (f.shard_spec != nullptr) {
    auto s = parse_shard_spec(*f.shard_spec, child(f.fields_path(path), f.shard_key()), f.nd);
    if (!s) return s.error();
    m.shard = s.value();
  }
  return m;
}

namespace {

/// The tensor's shape (`sh`: its logical_shape, or the reduced form's shape) into t.shape and t.rank.
std::optional<Error> read_shape(const json* sh, bool flat, std::string_view path, TensorInfo& t) {
  if (sh == nullptr) return bad(std::string(path) + t.shape_path, "tensor has no logical_shape");
  if (!sh->is_array()) return bad(std::string(path) + t.shape_path, "logical_shape must be an array of integers");
  const auto& dims = sh->get_ref<const json::array_t&>();
  std::size_t n = dims.size();
  if (flat)  // trailing zeros of the reduced form: the reference's padding to rank 4
    while (n > 0) {
      auto v = json_integer(dims[n - 1]);
      if (!v || *v != 0) break;
      --n;
    }
  if (n == 0) return bad(std::string(path) + t.shape_path, "logical_shape is empty");
  if (n > static_cast<std::size_t>(TensorInfo::kMaxRank))
    return bad(std::string(path) + t.shape_path, "tensor rank above 8 is not supported");
  std::int64_t volume = 1;
  for (std::size_t i = 0; i < n; ++i) {
    auto v = json_integer(dims[i]);
    if (!v || *v < 0) return bad(std::string(path) + t.shape_path + "/" + std::to_string(i), "dimension must be a non-negative integer");
    if (*v == 0) return bad(std::string(path) + t.shape_path + "/" + std::to_string(i), "empty tensor (a 0 dimension) has no runtime to predict");
    if (*v > TensorInfo::kMaxVolume / volume)  // volume * v > kMaxVolume, without overflow
      return bad(std::string(path) + t.shape_path,
                 "tensor has more than 2^40 elements: larger than the memory of any device");
    volume *= *v;
    t.shape[i] = *v;
  }
  t.rank = static_cast<int>(n);
  return std::nullopt;
}

/// The tensor's layout: from page_config {"config": {"index": 0 (RowMajor) | 1 (Tile), "value": {...}}},
/// else from a "layout" enum beside it (in_layout: inside tensor_layout).
std::optional<Error> read_layout(const Members& holder, bool in_layout, bool wrapped, std::string_view path,
                                 TensorInfo& t) {
  if (holder.page_config != nullptr && holder.page_config->is_object()) {
    const auto& page_config = holder.page_config->get_ref<const json::object_t&>();
    auto c = page_config.find("config");
    if (c != page_config.end() && c->second.is_object()) {
      const auto& config = c->second.get_ref<const json::object_t&>();
      auto idx = config.find("index");
      if (idx != config.end()) {
        auto v = json_integer(idx->second);
        if (!v || (*v != 0 && *v != 1))
          return bad(std::string(path) + t.layout_path + "/config/index", "page_config index must be 0 (ROW_MAJOR) or 1 (TILE)");
        t.layout = static_cast<int>(*v);
      }
    }
  } else if (given(holder.layout)) {
    t.layout_path = in_layout ? (wrapped ? "/tensor_spec/tensor_layout/layout" : "/tensor_layout/layout")
                              : (wrapped ? "/tensor_spec/layout" : "/layout");
    auto v = parse_enum(EnumKind::layout, *holder.layout);
    if (!v) return bad(std::string(path) + t.layout_path, "unknown layout " + json_excerpt(*holder.layout));
    t.layout = *v;
  }
  return std::nullopt;
}

}  // namespace

Result<TensorInfo> parse_tensor(const json& j, std::string_view path) {
  if (!j.is_object()) return bad(path, "tensor must be a JSON object (a ttnn Tensor or TensorSpec)");
  TensorInfo t;
  t.present = true;
  // Find the TensorSpec node: full Tensor form wraps it in "tensor_spec".
  Members spec = members(j);
  const bool wrapped = spec.tensor_spec != nullptr;
  if (wrapped) {
    if (!spec.tensor_spec->is_object()) return bad(child(path, "tensor_spec"), "tensor_spec must be an object");
    spec = members(*spec.tensor_spec);
  }
  if (spec.tensor_layout != nullptr && !spec.tensor_layout->is_object())
    return bad(std::string(path) + (wrapped ? "/tensor_spec" : "") + "/tensor_layout", "tensor_layout must be an object");
  // Reduced forms may put dtype / memory_config / layout beside the shape ("flat").
  const bool flat = spec.tensor_layout == nullptr &&
                    (spec.dtype != nullptr || spec.memory_config != nullptr || spec.layout != nullptr);
  if (wrapped) {
    t.shape_path = "/tensor_spec/logical_shape";
    t.dtype_path = flat ? "/tensor_spec/dtype" : "/tensor_spec/tensor_layout/dtype";
    t.memory_path = flat ? "/tensor_spec/memory_config" : "/tensor_spec/tensor_layout/memory_config";
    t.layout_path = "/tensor_spec/tensor_layout/page_config";
  } else {
    t.shape_path = "/logical_shape";
    t.dtype_path = flat ? "/dtype" : "/tensor_layout/dtype";
    t.memory_path = flat ? "/memory_config" : "/tensor_layout/memory_config";
    t.layout_path = "/tensor_layout/page_config";
  }

  const json* sh = spec.logical_shape != nullptr ? spec.logical_shape : spec.shape;
  if (auto e = read_shape(sh, flat, path, t)) return *e;

  // dtype / memory_config / layout live in tensor_layout; reduced forms may put them beside the shape.
  const Members holder = spec.tensor_layout != nullptr ? members(*spec.tensor_layout) : spec;
  if (given(holder.dtype)) {
    auto v = parse_enum(EnumKind::data_type, *holder.dtype);
    if (!v) return bad(std::string(path) + t.dtype_path, "unsupported dtype " + json_excerpt(*holder.dtype));
    t.dtype = *v;
  }
  if (given(holder.memory_config)) {
    thread_local std::string memory_path;  // reused: no allocation per query
    memory_path.assign(path);
    memory_path += t.memory_path;
    auto m = parse_memory_config(*holder.memory_config, memory_path);
    if (!m) return m.error();
    t.memory = m.value();
  }
  if (auto e = read_layout(holder, spec.tensor_layout != nullptr, wrapped, path, t)) return *e;
  return t;
}

}  // namespace torp
