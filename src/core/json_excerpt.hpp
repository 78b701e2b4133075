// SPDX-License-Identifier: Apache-2.0
// Quoting user input in error messages: a bounded excerpt of a JSON value.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace torp {

/// Compact JSON text of `value` for an error message: at most about `max_chars` characters
/// ("..." marks a cut), containers nested deeper than `max_depth` shown as [...] / {...},
/// invalid UTF-8 replaced by U+FFFD. Never recurses and never throws (a 50,000-deep value or a
/// gigabyte string costs O(max_chars)).
std::string json_excerpt(const nlohmann::json& value, std::size_t max_chars = 80, std::size_t max_depth = 3) noexcept;

}  // namespace torp
