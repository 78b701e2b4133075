// SPDX-License-Identifier: Apache-2.0
#include "torp/enums.hpp"

#include <cctype>
#include <iterator>

#include <nlohmann/json.hpp>

#include "torp/tensor.hpp"

namespace torp {
namespace {

using json = nlohmann::json;

constexpr EnumEntry kDataType[] = {{"BFLOAT16", dtype::BFLOAT16}, {"FLOAT32", dtype::FLOAT32},
                                   {"UINT32", dtype::UINT32},     {"BFLOAT8_B", dtype::BFLOAT8_B},
                                   {"BFLOAT4_B", dtype::BFLOAT4_B}, {"UINT8", dtype::UINT8},
                                   {"UINT16", dtype::UINT16},     {"INT32", dtype::INT32}};
constexpr EnumEntry kBufferType[] = {{"DRAM", buffer_type::DRAM},
                                     {"L1", buffer_type::L1},
                                     {"SYSTEM_MEMORY", buffer_type::SYSTEM_MEMORY},
                                     {"L1_SMALL", buffer_type::L1_SMALL},
                                     {"TRACE", buffer_type::TRACE}};
constexpr EnumEntry kMemoryLayout[] = {{"INTERLEAVED", memory_layout::INTERLEAVED},
                                       {"HEIGHT_SHARDED", memory_layout::HEIGHT_SHARDED},
                                       {"WIDTH_SHARDED", memory_layout::WIDTH_SHARDED},
                                       {"BLOCK_SHARDED", memory_layout::BLOCK_SHARDED},
                                       {"ND_SHARDED", memory_layout::ND_SHARDED}};
constexpr EnumEntry kLayout[] = {{"ROW_MAJOR", layout::ROW_MAJOR}, {"TILE", layout::TILE}};
constexpr EnumEntry kOrientation[] = {{"ROW_MAJOR", shard_orientation::ROW_MAJOR},
                                      {"COL_MAJOR", shard_orientation::COL_MAJOR}};
constexpr EnumEntry kMathFidelity[] = {{"LoFi", math_fidelity::LoFi},
                                       {"HiFi2", math_fidelity::HiFi2},
                                       {"HiFi3", math_fidelity::HiFi3},
                                       {"HiFi4", math_fidelity::HiFi4}};

struct Kind {
  EnumKind kind;
  const char* name;       ///< op-spec name
  const char* type_name;  ///< tt-metal's type, upper case, as a name prefix ("DATATYPE.BFLOAT16")
  std::span<const EnumEntry> entries;
};

constexpr Kind kKinds[] = {
    {EnumKind::data_type, "data_type", "DATATYPE", kDataType},
    {EnumKind::buffer_type, "buffer_type", "BUFFERTYPE", kBufferType},
    {EnumKind::memory_layout, "memory_layout", "TENSORMEMORYLAYOUT", kMemoryLayout},
    {EnumKind::layout, "layout", "LAYOUT", kLayout},
    {EnumKind::shard_orientation, "shard_orientation", "SHARDORIENTATION", kOrientation},
    {EnumKind::math_fidelity, "math_fidelity", "MATHFIDELITY", kMathFidelity},
};

const Kind& kind_of(EnumKind k) { return kKinds[static_cast<std::size_t>(k)]; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::span<const EnumEntry> enum_entries(EnumKind kind) { return kind_of(kind).entries; }

const char* enum_kind_name(EnumKind kind) { return kind_of(kind).name; }

std::optional<EnumKind> enum_kind_named(std::string_view name) {
  for (const Kind& k : kKinds)
    if (name == k.name) return k.kind;
  return std::nullopt;
}

std::optional<int> parse_enum(EnumKind kind, const json& value) {
  const Kind& k = kind_of(kind);
  if (auto i = json_integer(value)) {
    for (const EnumEntry& e : k.entries)
      if (e.value == *i) return e.value;
    return std::nullopt;
  }
  if (!value.is_string()) return std::nullopt;
  std::string name = upper(value.get_ref<const std::string&>());
  // Strip "TTNN." and "<TYPENAME>." prefixes as the Python layer writes them.
  for (std::string_view prefix : {std::string_view("TTNN."), std::string_view("TTNN::")})
    if (name.rfind(prefix, 0) == 0) name.erase(0, prefix.size());
  const std::string tn = std::string(k.type_name) + ".";
  if (name.rfind(tn, 0) == 0) name.erase(0, tn.size());
  for (const EnumEntry& e : k.entries)
    if (name == upper(e.name)) return e.value;
  return std::nullopt;
}

std::string enum_name(EnumKind kind, int value) {
  for (const EnumEntry& e : kind_of(kind).entries)
    if (e.value == value) return e.name;
  return "UNKNOWN_" + std::to_string(value);
}

}  // namespace torp
