// SPDX-License-Identifier: Apache-2.0
// Tensor and MemoryConfig arguments as tt-metal serializes them (ttsl::json::to_json), reduced to
// the fields the encoder can use. Accepts the full Tensor form {"storage","tensor_spec"}, the bare
// TensorSpec form {"logical_shape","tensor_layout"} and the reference predictor's reduced forms.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "torp/enums.hpp"
#include "torp/error.hpp"

namespace torp {

/// A JSON integer, also accepting integral doubles (32.0); nullopt otherwise.
std::optional<std::int64_t> json_integer(const nlohmann::json& value);

/// Bytes per element of a DataType (BFLOAT8_B = 1088/1024, BFLOAT4_B = 576/1024); nullopt if unknown.
std::optional<double> dtype_bytes(int data_type);

struct ShardInfo {
  static constexpr int kMaxCoordinate = 1024;  ///< core coordinates are below this (any device)
  static constexpr int kMaxCores = 65536;      ///< a shard grid never has more cores
  bool present = false;
  int cores = 0;        ///< sum over core ranges of (x1-x0+1)(y1-y0+1)
  int grid_x = 0;       ///< width of the bounding box of the core ranges
  int grid_y = 0;       ///< height of the bounding box of the core ranges
  int end_x = 0;        ///< one past the largest x of the core ranges (checked against the device grid)
  int end_y = 0;        ///< one past the largest y
  int shape_h = 0;      ///< shard shape (last two dims for ND shard specs)
  int shape_w = 0;
  int orientation = -1;
};

struct MemoryConfigInfo {
  bool present = false;
  int buffer_type = -1;
  int memory_layout = -1;
  ShardInfo shard;
};

struct TensorInfo {
  static constexpr int kMaxRank = 8;
  /// No device holds a tensor of more elements (2^40); larger shapes are invalid_argument.
  static constexpr std::int64_t kMaxVolume = std::int64_t{1} << 40;
  bool present = false;
  int rank = 0;
  std::array<std::int64_t, kMaxRank> shape{};
  int dtype = -1;
  int layout = -1;
  MemoryConfigInfo memory;
  /// JSON pointers, relative to the tensor's own node, of where dtype and memory_config were read
  /// (or would have been read), for error messages.
  const char* dtype_path = "/tensor_spec/tensor_layout/dtype";
  const char* layout_path = "/tensor_spec/tensor_layout/page_config";
  const char* memory_path = "/tensor_spec/tensor_layout/memory_config";
  const char* shape_path = "/tensor_spec/logical_shape";
};

/// Parse a MemoryConfig object. `path` is the JSON pointer of `j`, used in errors.
Result<MemoryConfigInfo> parse_memory_config(const nlohmann::json& j, std::string_view path);

/// Parse a tensor in any accepted form. In the reduced form (shape beside dtype, no tensor_layout)
/// trailing zeros of a shape are taken as the reference's rank padding and dropped; any other zero
/// (an empty tensor) is rejected, and so is a shape of more than kMaxVolume elements.
Result<TensorInfo> parse_tensor(const nlohmann::json& j, std::string_view path);

}  // namespace torp
