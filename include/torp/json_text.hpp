// SPDX-License-Identifier: Apache-2.0
// Reading query text: JSON parsing for the serving path (torp predict, the Python module).
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace torp {

/// Arrays and objects nested deeper than this are refused by parse_json (no query needs 20).
inline constexpr std::size_t kMaxJsonDepth = 256;

/// Parse JSON text. Equals nlohmann::json::parse(text, nullptr, false): the same document with
/// the same number types (unsigned / signed integer / float), or a discarded value (is_discarded())
/// when the text is not valid JSON or nests arrays/objects deeper than kMaxJsonDepth. About 4x faster for query-sized documents: a direct reader
/// handles the common forms (no \u escapes, integers within 64 bits) and hands anything else to
/// nlohmann's parser.
nlohmann::json parse_json(std::string_view text);

/// The deepest nesting of arrays and objects in `text` (brackets inside strings do not count).
/// One pass; the text need not be valid JSON.
std::size_t json_nesting_depth(std::string_view text);

}  // namespace torp
