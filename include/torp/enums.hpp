// SPDX-License-Identifier: Apache-2.0
// tt-metal's enums (DataType, BufferType, TensorMemoryLayout, Layout, ShardOrientation,
// MathFidelity): their integers as tt-metal serializes them and their names, in one table that
// tensor JSON reading, op-spec expressions and sweep import all use (docs/query-format.md).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace torp {

/// tt-metal enum integers. -1 means "not given".
namespace dtype {
inline constexpr int BFLOAT16 = 0, FLOAT32 = 1, UINT32 = 2, BFLOAT8_B = 3, BFLOAT4_B = 4, UINT8 = 5,
                     UINT16 = 6, INT32 = 7;
}
namespace buffer_type {
inline constexpr int DRAM = 0, L1 = 1, SYSTEM_MEMORY = 2, L1_SMALL = 3, TRACE = 4;
}
namespace memory_layout {
inline constexpr int INTERLEAVED = 0, HEIGHT_SHARDED = 2, WIDTH_SHARDED = 3, BLOCK_SHARDED = 4,
                     ND_SHARDED = 5;
}
namespace layout {
inline constexpr int ROW_MAJOR = 0, TILE = 1;
}
namespace shard_orientation {
inline constexpr int ROW_MAJOR = 0, COL_MAJOR = 1;
}
namespace math_fidelity {
inline constexpr int LoFi = 0, HiFi2 = 2, HiFi3 = 3, HiFi4 = 4;
}

/// Which tt-metal enum a value belongs to.
enum class EnumKind { data_type, buffer_type, memory_layout, layout, shard_orientation, math_fidelity };

struct EnumEntry {
  const char* name;  ///< canonical spelling, as tt-metal's Python layer prints it ("BFLOAT16", "LoFi")
  int value;
};

/// The values of one enum.
[[nodiscard]] std::span<const EnumEntry> enum_entries(EnumKind kind);

/// The op-spec name of an enum kind ("data_type", "buffer_type", ...) and back.
[[nodiscard]] const char* enum_kind_name(EnumKind kind);
[[nodiscard]] std::optional<EnumKind> enum_kind_named(std::string_view name);

/// Parse an enum given as tt-metal's integer or as a name ("BFLOAT16", "DataType.BFLOAT16",
/// "ttnn.DataType.BFLOAT16", case-insensitive). Unknown integers/names give nullopt.
[[nodiscard]] std::optional<int> parse_enum(EnumKind kind, const nlohmann::json& value);

/// The canonical name of an enum value ("BFLOAT16"), or "UNKNOWN_<n>".
[[nodiscard]] std::string enum_name(EnumKind kind, int value);

}  // namespace torp
