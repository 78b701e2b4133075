// SPDX-License-Identifier: Apache-2.0
// Evaluating an op spec's expressions for bound arguments.
// The nodes form one program: kids precede their parents, so a single pass in index order
// computes every expression of the op once per query (shared sub-expressions and features
// included). Errors do not stop the pass: a node that cannot be computed is "poisoned" with
// its own index, poison flows to the nodes that use its value, and the lazy operators (if,
// select, &&, ||, dim_or) take poison only from the operands they choose, so an error in an
// unused branch is no error. The message of an error is built only when a caller asks for it.
#include "spec/encoder_impl.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/json_excerpt.hpp"

namespace torp {
using namespace opspec;
namespace {

using json = nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double list_total(const Bindings::Arg& a, TProp prop);

/// A tensor / memory-config property; false when it cannot be given (the node is poisoned).
bool tensor_prop(const Bindings::Arg& a, bool is_tensor, TProp prop, double& out) {
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
double list_total(const Bindings::Arg& a, TProp prop) {
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
long dim_index(double di, int rank) {
  auto i = static_cast<long>(di);
  if (!(static_cast<double>(i) == di)) return -1;
  if (i < 0) i += rank;
  return i >= 0 && i < rank ? i : -2;
}

/// An object argument's field; false when missing (without default) or ill-typed.
bool object_field(const Bindings::Arg& a, const FieldSpec& fs, double& out) {
  auto it = a.object->find(fs.name);
  if (it == a.object->end() || it->is_null()) {
    out = fs.default_value.value_or(kNaN);
    return fs.default_value.has_value();
  }
  auto v = read_scalar(*it, fs.type, fs.enum_kind);
  out = v.value_or(kNaN);
  return v.has_value();
}

/// A function call node: its value r and poison e from its operands' values v and poisons p.
// Long because: one case per function of the expression language (docs/op-spec.md), a flat table
// whose cases are one to a dozen lines; split, the language's semantics would be spread thinner.
void call(const Node& n, std::uint32_t self, const double* v, const std::uint32_t* p, double& r,
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

}  // namespace

std::string Encoder::Impl::arg_path(const Bindings& b, int ai) const {
  return std::string(b.args_path) + args[ai].path;
}

std::string Encoder::Impl::prop_path(const Bindings& b, int ai, TProp p) const {
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

/// One pass over the computed nodes: b.values / b.poison for every node (after the arguments
/// are parsed). Constants, folded at compile time, come from `initial_values`.
void Encoder::Impl::run(Bindings& b) const {
  b.values.assign(initial_values.begin(), initial_values.end());
  b.poison.assign(nodes.size(), 0);
  double* v = b.values.data();
  std::uint32_t* p = b.poison.data();
  for (const int i : code) step(nodes[static_cast<std::size_t>(i)], i, &b, v, p);
}

/// Compute node i into v[i] / p[i] from its operands (earlier nodes) and the arguments `b`
/// (null when folding constants at compile time: pure nodes only).
// Long because: one case per node kind, a flat dispatch table inlined into run()'s loop (the query
// hot path); the kinds that need more than a few lines already call helpers.
__attribute__((always_inline)) inline void Encoder::Impl::step(const Node& n, int i, const Bindings* b, double* v,
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

bool Encoder::Impl::fold(const Node& n, int index, double& out) const {
  std::vector<double> values = initial_values;
  std::vector<std::uint32_t> poison(nodes.size() + 1, 0);
  values.push_back(0.0);
  step(n, index, nullptr, values.data(), poison.data());
  if (poison.back() != 0) return false;
  out = values.back();
  return true;
}

/// The error of a poisoned node: rebuilt from the node that failed and the bound arguments.
Error Encoder::Impl::failure(const Bindings& b, std::uint32_t poison) const {
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
std::string Encoder::Impl::blame(const Bindings& b, int ni) const {
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

}  // namespace torp
