// SPDX-License-Identifier: Apache-2.0
// Differential: torp::parse_json equals nlohmann::json::parse(text, nullptr, false), the same
// values and number types, except that documents nested deeper than kMaxJsonDepth are refused.
#include <cmath>

#include "fuzz_common.hpp"
#include "torp/json_text.hpp"

namespace {

/// Same value and same number types (nlohmann's == compares 1 and 1.0 equal), without recursion.
bool same(const nlohmann::json& a, const nlohmann::json& b) {
  std::vector<std::pair<const nlohmann::json*, const nlohmann::json*>> todo{{&a, &b}};
  while (!todo.empty()) {
    auto [x, y] = todo.back();
    todo.pop_back();
    if (x->type() != y->type()) return false;
    if (x->is_array()) {
      if (x->size() != y->size()) return false;
      for (std::size_t i = 0; i < x->size(); ++i) todo.emplace_back(&(*x)[i], &(*y)[i]);
    } else if (x->is_object()) {
      if (x->size() != y->size()) return false;
      for (auto i = x->begin(), j = y->begin(); i != x->end(); ++i, ++j) {
        if (i.key() != j.key()) return false;
        todo.emplace_back(&i.value(), &j.value());
      }
    } else if (x->is_number_float()) {
      const double u = x->get<double>(), v = y->get<double>();
      if (!(u == v || (u != u && v != v)) || std::signbit(u) != std::signbit(v)) return false;
    } else if (*x != *y) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json ours = torp::parse_json(text);
  if (torp::json_nesting_depth(text) > torp::kMaxJsonDepth) {
    if (!ours.is_discarded()) torp::fuzz::finding("a document beyond the depth limit was accepted");
    return 0;
  }
  const nlohmann::json theirs = nlohmann::json::parse(text, nullptr, false);
  if (ours.is_discarded() != theirs.is_discarded()) torp::fuzz::finding("valid/invalid verdicts differ");
  if (!ours.is_discarded() && !same(ours, theirs)) torp::fuzz::finding("parsed documents differ");
  return 0;
}
