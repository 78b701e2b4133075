// SPDX-License-Identifier: Apache-2.0
// Every shipped model answers the sample queries as documented.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "support/fixtures.hpp"
#include "torp/predictor.hpp"

TEST(ShippedModels, SampleQueriesGetTheDocumentedAnswers) {
  torp::Predictor p(torp::test::source_dir() / "models");
  std::ifstream in(torp::test::source_dir() / "examples/queries.jsonl");
  std::vector<std::string> codes;
  for (std::string line; std::getline(in, line);) {
    auto r = p.predict(nlohmann::json::parse(line));
    codes.push_back(r.ok() ? std::string(r.value().model_id) : "error:" + std::string(torp::to_string(r.error().code)));
  }
  const std::vector<std::string> want = {
      "wormhole_n300/exp", "wormhole_n300/exp", "wormhole_n300/exp", "wormhole_n300/exp", "wormhole_n300/exp",
      "reference/exp", "wormhole_n300/matmul", "reference/concatenate_heads", "reference/create_qkv_heads",
      "reference/paged_scaled_dot_product_attention_decode", "reference/reshard/HEIGHT_ROW_MAJOR_WIDTH_ROW_MAJOR",
      "wormhole_n300/analytical/reshard", "error:invalid_argument", "error:unknown_op"};
  EXPECT_EQ(codes, want);
}

TEST(ShippedModels, TrainedMatmulAnswersForHeightShardedAAndTheAnalyticalOneElsewhere) {
  using nlohmann::json;
  torp::Predictor p(torp::test::source_dir() / "models");
  json grid = json::array({{{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", 7}, {"y", 0}}}}});
  json sharded = {{"buffer_type", "L1"}, {"memory_layout", "HEIGHT_SHARDED"},
                  {"shard_spec", {{"grid", grid}, {"shape", {320, 384}}, {"orientation", "ROW_MAJOR"}}}};
  json b = torp::test::full_tensor({1, 1, 384, 288}, 0, 0);
  json a = {{"logical_shape", {2560, 384}}, {"layout", "TILE"}, {"memory_config", sharded}};
  auto ok = p.predict("ttnn.matmul", json{{"input_tensor_a", a}, {"input_tensor_b", b}});
  ASSERT_TRUE(ok.ok()) << ok.error().describe();
  EXPECT_EQ(ok.value().model_id, "wormhole_n300/matmul");
  // The same product with a of rank 4 ([1, 1, m, k]) is the same configuration.
  json a4 = a;
  a4["logical_shape"] = {1, 1, 2560, 384};
  auto rank4 = p.predict("ttnn.matmul", json{{"input_tensor_a", a4}, {"input_tensor_b", b}});
  ASSERT_TRUE(rank4.ok());
  EXPECT_EQ(rank4.value().runtime_ns, ok.value().runtime_ns);
  for (const json& mc : {json{{"buffer_type", "DRAM"}, {"memory_layout", "INTERLEAVED"}},
                         json{{"buffer_type", "L1"}, {"memory_layout", "WIDTH_SHARDED"}, {"shard_spec", sharded["shard_spec"]}}}) {
    json other = a;
    other["memory_config"] = mc;
    auto r = p.predict("ttnn.matmul", json{{"input_tensor_a", other}, {"input_tensor_b", b}});
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r.value().model_id, "wormhole_n300/analytical/matmul") << mc.dump();
  }
  // A batched b is another op shape: the trained model does not cover it, the analytical one does.
  auto batched = p.predict("ttnn.matmul", json{{"input_tensor_a", a}, {"input_tensor_b", torp::test::full_tensor({4, 1, 384, 288}, 0, 0)}});
  ASSERT_TRUE(batched.ok());
  EXPECT_EQ(batched.value().model_id, "wormhole_n300/analytical/matmul");
  // Inner dimensions must agree.
  auto mismatch = p.predict("ttnn.matmul", json{{"input_tensor_a", a}, {"input_tensor_b", torp::test::full_tensor({1, 1, 320, 288}, 0, 0)}});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, torp::ErrorCode::invalid_argument);
}
