// SPDX-License-Identifier: Apache-2.0
// Tensor / MemoryConfig JSON in every form tt-metal and the reference write.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "spec/memory_config.hpp"
#include "support/fixtures.hpp"
#include "torp/tensor.hpp"

using nlohmann::json;
using namespace torp;

TEST(TensorJson, FullTensorForm) {
  auto t = parse_tensor(test::full_tensor({1, 2, 256, 256}, 3, 1), "/args/x");
  ASSERT_TRUE(t.ok()) << t.error().describe();
  EXPECT_EQ(t.value().rank, 4);
  EXPECT_EQ(t.value().shape[3], 256);
  EXPECT_EQ(t.value().dtype, dtype::BFLOAT8_B);
  EXPECT_EQ(t.value().layout, 1);
  EXPECT_EQ(t.value().memory.buffer_type, buffer_type::L1);
  EXPECT_EQ(t.value().memory.memory_layout, memory_layout::INTERLEAVED);
}

TEST(TensorJson, BareSpecFormEqualsFullForm) {
  auto a = parse_tensor(test::full_tensor({1, 1, 64, 128}, 0, 0), "");
  auto b = parse_tensor(test::spec_tensor({1, 1, 64, 128}, 0, 0), "");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.value().shape, b.value().shape);
  EXPECT_EQ(a.value().dtype, b.value().dtype);
  EXPECT_EQ(a.value().memory.buffer_type, b.value().memory.buffer_type);
  EXPECT_EQ(a.value().layout, b.value().layout);
}

TEST(TensorJson, ReducedFormDropsTrailingZeroPadding) {
  auto t = parse_tensor(json{{"logical_shape", {2048, 2048, 0, 0}}, {"dtype", 0}}, "");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value().rank, 2);
  EXPECT_EQ(t.value().dtype, 0);
  EXPECT_EQ(t.value().memory.buffer_type, -1) << "missing subtree means unknown, not a default";
}

TEST(TensorJson, EmptyDimensionRejectedWithPath) {
  auto t = parse_tensor(json{{"logical_shape", {4, 0, 32}}, {"dtype", 0}}, "/args/input_tensor");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(t.error().path, "/args/input_tensor/logical_shape/1");
}

TEST(TensorJson, AnyZeroDimensionOfTtMetalsFormIsAnEmptyTensor) {
  for (const auto& shape : std::vector<std::vector<int>>{{1, 1, 32, 0}, {1, 1, 0, 32}, {0, 1, 32, 32}}) {
    auto t = parse_tensor(test::full_tensor(shape, 0, 0), "/args/input_tensor");
    ASSERT_FALSE(t.ok()) << json(shape).dump();
    EXPECT_EQ(t.error().code, ErrorCode::invalid_argument);
    const auto zero = static_cast<std::size_t>(std::find(shape.begin(), shape.end(), 0) - shape.begin());
    EXPECT_EQ(t.error().path, "/args/input_tensor/tensor_spec/logical_shape/" + std::to_string(zero));
  }
}

TEST(TensorJson, EnumNamesEqualIntegers) {
  for (auto [name, value] : std::vector<std::pair<std::string, int>>{{"BFLOAT16", 0},
                                                                      {"DataType.FLOAT32", 1},
                                                                      {"ttnn.DataType.UINT32", 2},
                                                                      {"bfloat8_b", 3},
                                                                      {"UINT16", 6}})
    EXPECT_EQ(parse_enum(EnumKind::data_type, json(name)), value) << name;
  EXPECT_EQ(parse_enum(EnumKind::buffer_type, json("L1")), 1);
  EXPECT_EQ(parse_enum(EnumKind::memory_layout, json("HEIGHT_SHARDED")), 2);
  EXPECT_EQ(parse_enum(EnumKind::math_fidelity, json("HiFi2")), 2);
  EXPECT_EQ(parse_enum(EnumKind::math_fidelity, json("MathFidelity.LoFi")), 0);
  EXPECT_EQ(parse_enum(EnumKind::memory_layout, json(1)), std::nullopt) << "SINGLE_BANK was removed";
  EXPECT_EQ(parse_enum(EnumKind::data_type, json(42)), std::nullopt) << "unknown ints are unsupported, not defaulted";
}

TEST(TensorJson, MemoryConfigSweepWrapperWithStringData) {
  json mc = {{"type", "ttnn._ttnn.tensor.MemoryConfig"},
             {"data", "{\"buffer_type\":1,\"created_with_nd_shard_spec\":false,\"memory_layout\":0}"}};
  auto m = parse_memory_config(mc, "/m");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value().buffer_type, 1);
  json named = {{"type", "x"}, {"data", {{"buffer_type", "DRAM"}, {"memory_layout", "INTERLEAVED"}}}};
  auto n = parse_memory_config(named, "/m");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value().buffer_type, 0);
}

TEST(TensorJson, MemoryConfigFieldsReaderSharedWithTheSweepImport) {
  // Wrapper data that is text but not JSON: an error at <path>/data, unless a decoder reads it (the
  // sweep import decodes Python literals).
  json py = {{"type", "ttnn.MemoryConfig"}, {"data", "{'buffer_type': 'L1', 'memory_layout': 'HEIGHT_SHARDED'}"}};
  MemoryConfigFields f;
  auto e = read_memory_config_fields(py, "/m", f);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, ErrorCode::invalid_argument);
  EXPECT_EQ(e->path, "/m/data");
  EXPECT_EQ(e->message, "memory config data is not valid JSON");
  const DecodeText decode = [](const json&) {
    return json{{"buffer_type", "L1"},
                {"memory_layout", "HEIGHT_SHARDED"},
                {"shard_spec", nullptr},
                {"nd_shard_spec", {{"grid", json::array()}, {"shard_shape", {32, 64}}}}};
  };
  MemoryConfigFields g;
  EXPECT_FALSE(read_memory_config_fields(py, "/m", g, decode).has_value());
  EXPECT_EQ(g.buffer_type, 1);
  EXPECT_EQ(g.memory_layout, 2);
  EXPECT_TRUE(g.wrapped);
  ASSERT_NE(g.shard_spec, nullptr);  // a null shard_spec is absent: the nd_shard_spec is the one given
  EXPECT_TRUE(g.nd);
  EXPECT_EQ((*g.shard_spec)["shard_shape"], json({32, 64}));
  EXPECT_EQ(g.fields_path("/m"), "/m/data");
  // An unknown enum names its field below the wrapper's data, the same error parse_memory_config gives.
  json unknown = {{"type", "x"}, {"data", {{"buffer_type", "L7"}, {"memory_layout", "INTERLEAVED"}}}};
  MemoryConfigFields h;
  auto u = read_memory_config_fields(unknown, "/m", h);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->path, "/m/data/buffer_type");
  EXPECT_EQ(u->message, "unknown buffer type \"L7\"");
  auto p = parse_memory_config(unknown, "/m");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().path, u->path);
  EXPECT_EQ(p.error().message, u->message);
  // Absent enums stay -1: queries may leave them out, the sweep import requires them.
  MemoryConfigFields k;
  EXPECT_FALSE(read_memory_config_fields(json::object(), "/m", k).has_value());
  EXPECT_EQ(k.buffer_type, -1);
  EXPECT_EQ(k.memory_layout, -1);
  EXPECT_EQ(k.shard_spec, nullptr);
  EXPECT_FALSE(k.wrapped);
}

TEST(TensorJson, ShardGridCountsCoresOverSeveralRanges) {
  json mc = {{"buffer_type", 1},
             {"memory_layout", 2},
             {"shard_spec",
              {{"grid", {{{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", 7}, {"y", 0}}}},
                         {{"start", {{"x", 0}, {"y", 1}}}, {"end", {{"x", 1}, {"y", 1}}}}}},
               {"shape", {128, 64}},
               {"orientation", 0},
               {"mode", 0},
               {"physical_shard_shape", nullptr}}}};
  auto m = parse_memory_config(mc, "");
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m.value().shard.cores, 10);
  EXPECT_EQ(m.value().shard.grid_x, 8);
  EXPECT_EQ(m.value().shard.grid_y, 2);
  EXPECT_EQ(m.value().shard.shape_h, 128);
}

TEST(TensorJson, NdShardSpec) {
  json mc = {{"buffer_type", 1},
             {"memory_layout", 5},
             {"created_with_nd_shard_spec", true},
             {"nd_shard_spec",
              {{"grid", {{{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", 3}, {"y", 3}}}}}},
               {"shard_shape", {1, 64, 32}},
               {"orientation", 0},
               {"shard_distribution_strategy", 0}}}};
  auto m = parse_memory_config(mc, "");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.value().shard.cores, 16);
  EXPECT_EQ(m.value().shard.shape_w, 32);
}

TEST(TensorJson, BadFieldsNameTheirPath) {
  json t = test::full_tensor({1, 1, 32, 32}, 0, 0);
  t["tensor_spec"]["tensor_layout"]["dtype"] = 99;
  auto r = parse_tensor(t, "/args/input_tensor");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().path, "/args/input_tensor/tensor_spec/tensor_layout/dtype");
  json u = test::full_tensor({1, 1, 32, 32}, 0, 0);
  u["tensor_spec"]["tensor_layout"]["memory_config"]["memory_layout"] = "SINGLE_BANK";
  auto s = parse_tensor(u, "/args/input_tensor");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().path, "/args/input_tensor/tensor_spec/tensor_layout/memory_config/memory_layout");
  auto v = parse_tensor(json{{"logical_shape", "[1, 2]"}}, "/a");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().path, "/a/logical_shape");
}

TEST(TensorJson, RowMajorPageConfig) {
  json t = test::full_tensor({1, 1, 32, 32}, 0, 0);
  t["tensor_spec"]["tensor_layout"]["page_config"]["config"] = {{"index", 0}, {"value", json::object()}};
  auto r = parse_tensor(t, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().layout, 0);
}
