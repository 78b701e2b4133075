// SPDX-License-Identifier: Apache-2.0
// The one generic encoder: an op spec (ops/<op>.json) compiled against a device description.
// It parses a query's arguments (tt-metal JSON) and evaluates the spec's named feature
// expressions. Queries and dataset rows go through the same code, so they encode identically.
// The expression language is documented in docs/op-spec.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/error.hpp"
#include "torp/tensor.hpp"

namespace torp {

/// Per-query state (the parsed arguments and every expression's value): internal to the library
/// (src/spec/bindings.hpp). Callers outside it use Encoder::encode().
struct Bindings;

using ExprId = int;

class Encoder {
 public:
  /// Compile `spec` (an op spec JSON document) for `device` (a device description JSON).
  /// Throws TorpError(op_spec) naming the offending key on a malformed spec.
  Encoder(const nlohmann::json& spec, const nlohmann::json& device);
  ~Encoder();
  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  /// The op's canonical name, e.g. "ttnn.exp".
  [[nodiscard]] const std::string& op() const;
  /// Every name the op answers to: canonical, C++ form ("ttnn::exp"), short ("exp"), aliases.
  [[nodiscard]] const std::vector<std::string>& names() const;
  [[nodiscard]] const nlohmann::json& spec() const;
  [[nodiscard]] const nlohmann::json& device() const;
  /// Names of the spec's features, in declaration order.
  [[nodiscard]] std::vector<std::string> feature_names() const;

  /// Handle of a named feature; throws TorpError(op_spec) if the spec has no such feature.
  [[nodiscard]] ExprId feature(std::string_view name) const;
  /// Compile an extra expression in the op's vocabulary (done at load time, not per query).
  ExprId compile(std::string_view expression);

  /// Parse `args` (the query's "args" object) into `b` and compute every expression of the op
  /// (all features and compiled expressions, each once). Checks argument types, ranks and the
  /// spec's "validate" rules; errors carry JSON pointers under `args_path`. An expression that
  /// cannot be computed for these arguments (e.g. it reads an absent argument) is no error here:
  /// eval() reports it when its value is asked for. if(), select(), &&, || and dim_or() only
  /// depend on the operands they choose.
  [[nodiscard]] std::optional<Error> bind(const nlohmann::json& args, Bindings& b,
                                          std::string_view args_path = "/args") const;
  /// The value of an expression for the bound arguments, or why it has none.
  [[nodiscard]] Result<double> eval(ExprId id, const Bindings& b) const;
  /// Evaluate several expressions into `out` (out.size() == ids.size()); the first error.
  [[nodiscard]] std::optional<Error> eval_all(std::span<const ExprId> ids, const Bindings& b,
                                              std::span<double> out) const;
  /// JSON pointer of the first argument field an expression reads (for error messages).
  [[nodiscard]] std::string blame_path(ExprId id, const Bindings& b) const;

  /// Convenience for tools and tests: bind + evaluate named features. Throws nothing.
  [[nodiscard]] Result<std::vector<double>> encode(const nlohmann::json& args,
                                                   std::span<const std::string> features) const;

 private:
  friend struct EncoderAccess;  // the library's internals (src/spec/bindings.hpp)
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// An op-spec family: one file whose "members" object maps op names to what differs per op
/// ({"features": {name: expression}, "args": {...}, "aliases": [...], "description": "..."}).
/// Returns one plain spec per member (the file without "members", "op" set to the member, its
/// features and args added to or replacing the family's), in the file's member order. A spec without "members" is returned
/// as the only element. Throws TorpError(op_spec) on a malformed "members".
std::vector<nlohmann::json> expand_op_family(const nlohmann::json& spec);

/// The canonical op name for any accepted spelling: "ttnn::transformer::x" -> "ttnn.transformer.x".
std::string canonical_op_name(std::string_view name);

}  // namespace torp
