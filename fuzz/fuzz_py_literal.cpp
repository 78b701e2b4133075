// SPDX-License-Identifier: Apache-2.0
// The sweep's Python-literal / expression reader: parse (literal and expression mode), evaluate
// with a few known names, decode as a sweep value. Syntax errors are nullopt, evaluation errors
// std::runtime_error; nothing else escapes and nothing overflows the stack.
#include <stdexcept>

#include "fuzz_common.hpp"
#include "sweep/py_expr.hpp"
#include "torp/train/sweep.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  static const nlohmann::json shape = {1, 1, 32, 64}, flag = true, n = 7;
  const torp::py::Lookup lookup = [](const std::string& name) -> const nlohmann::json* {
    if (name == "shape") return &shape;
    if (name == "flag") return &flag;
    if (name == "n") return &n;
    return nullptr;
  };
  for (bool literal : {true, false}) {
    std::string error;
    auto node = torp::py::parse(text, literal, &error);
    if (!node) continue;
    try {
      (void)torp::py::eval(*node, lookup).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } catch (const std::runtime_error&) {
    }
    std::vector<std::string> names;
    torp::py::names(*node, names);
  }
  try {
    (void)torp::decode_sweep_value(nlohmann::json(text));
  } catch (const torp::TorpError&) {
  } catch (const std::runtime_error&) {
  }
  return 0;
}
