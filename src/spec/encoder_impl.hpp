// SPDX-License-Identifier: Apache-2.0
// Internal to src/spec (not installed): the compiled op spec behind Encoder, shared by its parts:
//   encoder.cpp     reading the op spec (arguments, features, validate rules) and Encoder's API
//   expr_parse.cpp  the expression language's parser: text -> shared, constant-folded nodes
//   expr_eval.cpp   evaluation: one pass over the nodes per query, errors of poisoned nodes
//   bind.cpp        a query's arguments (tt-metal JSON) -> Bindings, device limits, validate rules
// The expression language is documented in docs/op-spec.md.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "spec/bindings.hpp"
#include "torp/encoder.hpp"
#include "torp/enums.hpp"
#include "torp/error.hpp"
#include "torp/tensor.hpp"

namespace torp {
namespace opspec {

[[noreturn]] void spec_error(std::string msg, std::string path = {});

enum class ArgType { tensor, memory_config, integer, number, boolean, enumeration, object, tensor_or_number, tensor_list };

/// Arguments whose members are tensor properties.
inline bool tensor_like(ArgType t) { return t == ArgType::tensor || t == ArgType::tensor_or_number || t == ArgType::tensor_list; }

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


enum class Fn : std::uint8_t {
  ceil, floor, round, log, log2, exp, sqrt, abs, min, max, pow, if_, select, in, ceil_div, dtype_bytes, value_or
};

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

/// A description of what an argument of type t must be ("an integer"), for error messages.
const char* type_word(ArgType t);
/// Read a scalar of type t from JSON; nullopt if ill-typed. Strings such as "32"/"True" are not
/// accepted in queries (they come from sweep files, which the sweep importer normalizes).
std::optional<double> read_scalar(const nlohmann::json& v, ArgType t, EnumKind ek);

}  // namespace opspec

struct Encoder::Impl {
  using json = nlohmann::json;
  using ArgSpec = opspec::ArgSpec;
  using FieldSpec = opspec::FieldSpec;
  using Node = opspec::Node;
  using NodeKind = opspec::NodeKind;
  using TProp = opspec::TProp;

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
  std::vector<int> exprs;  // ExprId -> root node
  struct Rule {
    int expr;
    std::string message;
  };
  std::vector<Rule> validate;
  // The device's limits (0 = not described): a tensor or shard grid beyond them is invalid_argument.
  double dram_bytes = 0;
  int grid_x = 0, grid_y = 0;

  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

  // ---- reading the op spec (encoder.cpp) ----------------------------------------------------
  void load(const json& spec);
  void load_names(const json& spec);  // op, its C++ and short forms, aliases
  static ArgSpec load_arg(const std::string& name, const json& d);
  static FieldSpec load_field(const std::string& name, const json& d, const std::string& arg_path);
  void compile_all(const json& spec);  // argument defaults, features, validate rules

  // ---- compile (expr_parse.cpp) -------------------------------------------------------------
  struct Parser;
  static std::string signature(const Node& n);
  int arg_index(std::string_view name) const;
  int feature_index(std::string_view name) const;
  int compile_expr(std::string_view src, std::vector<int>& stack);
  void compile_feature(int fi, std::vector<int>& stack);

  // ---- evaluate (expr_eval.cpp) -------------------------------------------------------------
  std::string arg_path(const Bindings& b, int ai) const;
  std::string prop_path(const Bindings& b, int ai, TProp p) const;
  void run(Bindings& b) const;
  /// The nodes that read no argument: operators and functions of other nodes' values.
  static bool is_pure(NodeKind k) { return k >= NodeKind::neg; }
  /// Compute node i of the program (expr_eval.cpp only: inline there into run() and fold()).
  inline void step(const Node& n, int i, const Bindings* b, double* v, std::uint32_t* p) const;
  /// Constant folding: the value of pure node `n` (to be node `index`) whose operands are all
  /// constants; false if it has none (e.g. log of a negative constant is a value, dtype_bytes(99) is not).
  bool fold(const Node& n, int index, double& out) const;
  Error failure(const Bindings& b, std::uint32_t poison) const;
  std::string blame(const Bindings& b, int ni) const;

  // ---- arguments (bind.cpp) -----------------------------------------------------------------
  void read_device_limits();
  std::optional<Error> fits_device(const std::optional<TensorInfo>& t, const MemoryConfigInfo& m,
                                   std::string_view path) const;
  std::optional<Error> bind_tensor(const ArgSpec& as, const json& v, const std::string& path, TensorInfo& out) const;
  std::optional<Error> bind_list(const ArgSpec& as, const json& v, Bindings& b, Bindings::Arg& a) const;
  /// The query's arguments into b.args (types, ranks, ranges, device limits), before run().
  std::optional<Error> bind_args(const json& q, Bindings& b, std::string_view args_path) const;
  /// bind_args(), run(), then the expression defaults and validate rules hold.
  std::optional<Error> bind(const json& q, Bindings& b, std::string_view args_path) const;
};

}  // namespace torp
