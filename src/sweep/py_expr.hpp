// SPDX-License-Identifier: Apache-2.0
// A small subset of Python expressions evaluated to JSON values. Sweep parameters are Python
// values serialized with str() ("[1, 1, 32, 32]", "(8, None, False, 0.5)", "True"), and an op
// spec's "sweep" block computes op arguments from them the way a sweep's run() does
// ("(*batch_sizes, m_size, k_size)", "valid_combination[3] // block_size", "a if t else b").
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace torp::py {

/// A parsed expression. Literals: int, float, str, True/False/None (also JSON's true/false/null),
/// list [..], tuple (..), dict {..}. Operators, lowest first: `x if c else y`, or, and, not,
/// == != < <= > >=, + -, * / // %, unary - +, subscript x[i], `*x` inside a list or tuple.
struct Node {
  enum class Kind : std::uint8_t { constant, name, list, dict, unary, binary, compare, and_, or_, ifelse, subscript };
  Kind kind = Kind::constant;
  std::string op;            ///< unary / binary / compare operator, or the name
  nlohmann::json value;      ///< constant
  std::vector<Node> kids;    ///< operands; list items; dict keys and values alternating
  std::vector<bool> splat;   ///< list: item i is `*item`
};

/// Parse the whole of `text`. With `literal_only`, only literals (and a sign on numbers) are
/// accepted. Returns nullopt on a syntax error, described in `*error` if given; input nested
/// deeper than about 100 brackets (300 grammar levels) is a syntax error.
std::optional<Node> parse(std::string_view text, bool literal_only, std::string* error = nullptr);

/// Value of a name, or nullptr if unknown.
using Lookup = std::function<const nlohmann::json*(const std::string&)>;

/// Evaluate `n`. Python semantics on JSON values: ints stay ints (`/` gives a float, `//` and
/// `%` floor), `+` also joins lists and strings, and/or/if are lazy. Throws std::runtime_error
/// with a message naming the problem (unknown name, wrong types, index out of range).
nlohmann::json eval(const Node& n, const Lookup& lookup);

/// Python truthiness of a JSON value (null, false, 0, "", [], {} are false).
bool truthy(const nlohmann::json& v);

/// The names `n` reads, appended to `out` without repeats.
void names(const Node& n, std::vector<std::string>& out);

}  // namespace torp::py
