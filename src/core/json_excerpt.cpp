// SPDX-License-Identifier: Apache-2.0
#include "core/json_excerpt.hpp"

#include <vector>

namespace torp {
namespace {

using json = nlohmann::json;

/// A string as JSON text, cut to `limit` bytes first (never more than needed is escaped).
void append_string(std::string& out, const std::string& s, std::size_t limit) {
  const bool cut = s.size() > limit;
  json t = cut ? s.substr(0, limit) : s;
  out += t.dump(-1, ' ', false, json::error_handler_t::replace);
  if (cut) out.insert(out.size() - 1, "...");
}

struct Frame {
  const json* node;
  json::const_iterator it;
  bool first;
};

}  // namespace

std::string json_excerpt(const json& value, std::size_t max_chars, std::size_t max_depth) noexcept {
  try {
    std::string out;
    std::vector<Frame> stack;
    auto open = [&](const json& n) {
      if (!n.is_structured()) {
        if (n.is_string()) append_string(out, n.get_ref<const std::string&>(), max_chars);
        else out += n.dump();  // number, boolean, null, binary-free scalars: no recursion
        return;
      }
      if (n.empty()) {
        out += n.is_array() ? "[]" : "{}";
      } else if (stack.size() >= max_depth) {
        out += n.is_array() ? "[...]" : "{...}";
      } else {
        out += n.is_array() ? '[' : '{';
        stack.push_back({&n, n.cbegin(), true});
      }
    };
    open(value);
    while (!stack.empty()) {
      if (out.size() > max_chars) {
        out += "...";
        break;
      }
      Frame& f = stack.back();
      if (f.it == f.node->cend()) {
        out += f.node->is_array() ? ']' : '}';
        stack.pop_back();
        continue;
      }
      if (!f.first) out += ',';
      f.first = false;
      const json::const_iterator at = f.it++;
      if (f.node->is_object()) {
        append_string(out, at.key(), max_chars);
        out += ':';
      }
      open(*at);  // may grow the stack: `f` is not used after this
    }
    return out;
  } catch (...) {
    return "(value)";
  }
}

}  // namespace torp
