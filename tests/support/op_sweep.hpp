// SPDX-License-Identifier: Apache-2.0
// A doubling sweep of sizes for every op the analytical models cover: the arguments of one
// query per size (1 tile .. 32M elements), in the query contract's names (docs/query-format.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace torp::test {

/// The ops with an analytical model (canonical names).
inline const std::vector<std::string>& analytical_ops() {
  static const std::vector<std::string> ops = {
      "ttnn.relu", "ttnn.gelu", "ttnn.silu", "ttnn.sigmoid", "ttnn.tanh", "ttnn.exp", "ttnn.log", "ttnn.sqrt",
      "ttnn.reciprocal", "ttnn.neg", "ttnn.abs", "ttnn.add", "ttnn.subtract", "ttnn.multiply", "ttnn.typecast",
      "ttnn.matmul", "ttnn.linear", "ttnn.softmax", "ttnn.layer_norm", "ttnn.rms_norm", "ttnn.sum", "ttnn.mean",
      "ttnn.transpose", "ttnn.concat", "ttnn.to_memory_config", "ttnn.reshard", "ttnn.to_layout", "ttnn.embedding"};
  return ops;
}

inline nlohmann::json dram() { return {{"buffer_type", "DRAM"}, {"memory_layout", "INTERLEAVED"}}; }

/// A shard spec over `cores` cores of row 0.. (8 per row), shard shape h x w.
inline nlohmann::json sharded(const char* layout, int cores, std::int64_t h, std::int64_t w) {
  const int rows = (cores + 7) / 8;
  return {{"buffer_type", "L1"},
          {"memory_layout", layout},
          {"shard_spec",
           {{"grid", {{{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", std::min(cores, 8) - 1}, {"y", rows - 1}}}}}},
            {"shape", {h, w}},
            {"orientation", "ROW_MAJOR"}}}};
}

inline nlohmann::json tensor(std::vector<std::int64_t> shape, const char* dtype = "BFLOAT16",
                             const char* layout = "TILE", nlohmann::json memory = dram()) {
  return {{"logical_shape", shape}, {"dtype", dtype}, {"layout", layout}, {"memory_config", memory}};
}

/// The width of the swept tensors: they grow in width up to kSweepWidth, then in rows.
inline constexpr std::int64_t kSweepWidth = 256;

/// The rows x width of a 2-D tensor of `elements` elements.
inline std::vector<std::int64_t> sweep_shape(std::int64_t elements) {
  const std::int64_t w = std::min<std::int64_t>(elements / 32, kSweepWidth);
  return {elements / w, w};
}

/// Tile rows of the swept tensor: once there are at least two per core, every op's work split
/// (tiles, tile rows or tile columns over the grid) fills the grid.
inline std::int64_t sweep_tile_rows(std::int64_t elements) { return sweep_shape(elements)[0] / 32; }

/// One query's arguments for `op` at `elements` elements (a power of two times 1024).
inline nlohmann::json sweep_args(const std::string& op, std::int64_t elements) {
  using nlohmann::json;
  const auto s = sweep_shape(elements);
  const json t = tensor(s);
  const std::string name = op.substr(5);
  if (name == "add" || name == "subtract" || name == "multiply") return {{"input_tensor_a", t}, {"input_tensor_b", t}};
  if (name == "typecast") return {{"input_tensor", t}, {"dtype", "FLOAT32"}};
  if (name == "matmul" || name == "linear") {
    // The output grows square (rows and columns double in turn; m/n stays within 2, so tt-metal
    // keeps one program config), k = 256.
    std::int64_t h = 32, w = 32;
    for (std::int64_t e = 1024; e < elements; e *= 2) (h <= w ? h : w) *= 2;
    return {{"input_tensor_a", tensor({h, 256})}, {"input_tensor_b", tensor({256, w})}};
  }
  if (name == "softmax" || name == "layer_norm" || name == "rms_norm") return {{"input_tensor", t}};
  if (name == "sum" || name == "mean") return {{"input_tensor", t}, {"dim", -1}};
  if (name == "transpose") return {{"input_tensor", t}, {"dim1", -2}, {"dim2", -1}};
  if (name == "concat") return {{"tensors", {t, t}}, {"dim", 0}};
  if (name == "to_memory_config")
    return {{"tensor", t}, {"memory_config", {{"buffer_type", "L1"}, {"memory_layout", "INTERLEAVED"}}}};
  if (name == "reshard") {
    const std::int64_t rows = s[0] >= 8 ? s[0] / 8 : s[0];
    const int cores = s[0] >= 8 ? 8 : 1;
    return {{"input_tensor", tensor(s, "BFLOAT16", "ROW_MAJOR", sharded("HEIGHT_SHARDED", cores, rows, s[1]))},
            {"output_memory_config", sharded("HEIGHT_SHARDED", cores == 8 ? 4 : 1, s[0] / (cores == 8 ? 4 : 1), s[1])}};
  }
  if (name == "to_layout") return {{"tensor", tensor(s, "BFLOAT16", "ROW_MAJOR")}, {"layout", "TILE"}};
  if (name == "embedding")
    return {{"input_tensor", tensor({1, elements / 1024}, "UINT32", "ROW_MAJOR")},
            {"weight", tensor({32000, 1024}, "BFLOAT16", "ROW_MAJOR")}};
  return {{"input_tensor", t}};
}

}  // namespace torp::test
