// SPDX-License-Identifier: Apache-2.0
// The op_perf drop-in (include/op_perf/interface.hpp): the reference's positional calls answer
// what the predictor answers on the equivalent query, truncated; null is absent, math fidelity 1
// is LoFi, zero-padded shapes are rank-padding; no answer is 0.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "interface.hpp"
#include "support/fixtures.hpp"
#include "torp/predictor.hpp"

namespace {

using nlohmann::json;

/// The process-wide predictor of op_perf reads $TORP_MODELS: the repository's models.
const torp::Predictor& predictor() {
  static const bool env = (::setenv("TORP_MODELS", (torp::test::source_dir() / "models").c_str(), 1), true);
  (void)env;
  static const torp::Predictor p(torp::test::source_dir() / "models");
  return p;
}

std::uint64_t expected(const std::string& op, const json& args) {
  auto r = predictor().predict(op, args);
  EXPECT_TRUE(r.ok()) << op << ": " << r.error().describe();
  return r.ok() ? static_cast<std::uint64_t>(r.value().runtime_ns) : 0;
}

json sample(const std::string& op) {
  std::ifstream in(torp::test::source_dir() / "examples/queries.jsonl");
  for (std::string line; std::getline(in, line);) {
    json q = json::parse(line);
    if (q["op"] == op) return q["args"];
  }
  return nullptr;
}

json dram() { return {{"buffer_type", 0}, {"memory_layout", 0}}; }

/// Points op_perf at the repository's models before its first call.
class OpPerf : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { (void)predictor(); }
};

}  // namespace

TEST_F(OpPerf, ExpInEveryNameFormAndPerOpEntryPoint) {
  const json t = torp::test::full_tensor({1, 1, 64, 128}, op_perf::BFLOAT16, op_perf::DRAM);
  const std::uint64_t want = expected("ttnn.exp", json{{"input_tensor", t}});
  ASSERT_GT(want, 0u);
  for (const char* name : {"ttnn::exp", "ttnn.exp", "exp"}) {
    EXPECT_EQ(op_perf::get_runtime_from_model(name, t, json::object()), want) << name;
    EXPECT_EQ(op_perf::get_runtime_from_model(name, t, json(nullptr)), want) << name;
    EXPECT_EQ(op_perf::get_runtime_from_model(name, t), want) << name;
  }
  EXPECT_EQ(op_perf::predict_eltwise_unary_runtime(t, json::object()), want);
  EXPECT_EQ(op_perf::predict_eltwise_unary_runtime("ttnn::exp", t, json::object()), want);
  EXPECT_EQ(op_perf::predict_eltwise_unary_runtime("ttnn::matmul", t, json::object()), 0u);
}

TEST_F(OpPerf, ZeroPaddedShapesAreRankTwoHereOnly) {
  const json padded = {{"logical_shape", {64, 128, 0, 0}}, {"dtype", op_perf::BFLOAT16}, {"memory_config", dram()}};
  json rank2 = padded;
  rank2["logical_shape"] = {64, 128};
  EXPECT_EQ(op_perf::get_runtime_from_model("exp", padded, json::object()), expected("ttnn.exp", json{{"input_tensor", rank2}}));
  // A zero inside the shape is an empty tensor: no answer.
  json empty = padded;
  empty["logical_shape"] = {64, 0, 128, 0};
  EXPECT_EQ(op_perf::get_runtime_from_model("exp", empty, json::object()), 0u);
}

TEST_F(OpPerf, ConcatenateHeadsAndCreateQkvHeads) {
  const json heads = sample("ttnn.transformer.concatenate_heads");
  ASSERT_TRUE(heads.is_object());
  EXPECT_EQ(op_perf::predict_concatenate_heads_runtime(heads["input_tensor"], json::object()),
            expected("ttnn.transformer.concatenate_heads", json{{"input_tensor", heads["input_tensor"]}}));
  const json qkv = sample("ttnn.experimental.create_qkv_heads");
  ASSERT_TRUE(qkv.is_object());
  const std::uint64_t want = expected("ttnn.experimental.create_qkv_heads", qkv);
  EXPECT_EQ(op_perf::get_runtime_from_model("create_qkv_heads", qkv["input_tensor"], 16, std::optional<int>(8), false), want);
  EXPECT_EQ(op_perf::predict_create_qkv_heads_runtime(qkv["input_tensor"], 16, 8, false), want);
  // A last dimension that does not split into (16 + 2 x 7) heads: tt-metal rejects it, so 0.
  EXPECT_EQ(op_perf::predict_create_qkv_heads_runtime(qkv["input_tensor"], 16, 7, false), 0u);
}

TEST_F(OpPerf, PagedSdpaDecodeTakesEighteenPositionalArguments) {
  json a = sample("ttnn.transformer.paged_scaled_dot_product_attention_decode");
  ASSERT_TRUE(a.is_object());
  a["scale"] = 1.0;  // the positional call always passes a scale
  const std::uint64_t want = expected("ttnn.transformer.paged_scaled_dot_product_attention_decode", a);
  const auto& pc = a["program_config"];
  // The sample's HiFi2, as tt-metal's integer.
  EXPECT_EQ(op_perf::predict_paged_sdpa_decode_runtime(
                a["input_tensor_q"], a["input_tensor_k"], a["input_tensor_v"], a["page_table_tensor"],
                a["cur_pos_tensor"], std::nullopt, true, 1.0f, pc["k_chunk_size"].get<int>(),
                pc["q_chunk_size"].get<int>(), a["memory_config"], op_perf::HiFi2, 0, 0, 0, 0, true, true),
            want);
  // LoFi as the reference's callers pass it (1) and as tt-metal does (0) answer alike.
  json lofi = a;
  lofi["compute_kernel_config"]["math_fidelity"] = 0;
  const std::uint64_t want_lofi = expected("ttnn.transformer.paged_scaled_dot_product_attention_decode", lofi);
  for (int fidelity : {0, 1})
    EXPECT_EQ(op_perf::get_runtime_from_model("ttnn::transformer::paged_scaled_dot_product_attention_decode",
                                              a["input_tensor_q"], a["input_tensor_k"], a["input_tensor_v"],
                                              a["page_table_tensor"], std::optional<json>(a["cur_pos_tensor"]),
                                              std::optional<json>(), true, 1.0f, 128, 32, a["memory_config"],
                                              fidelity, 0, 0, 0, 0, true, true),
              want_lofi)
        << fidelity;
}

TEST_F(OpPerf, OtherOpsInTtnnOrderAndNoAnswerIsZero) {
  const json a = torp::test::full_tensor({1, 1, 512, 256}, op_perf::BFLOAT16, op_perf::DRAM);
  const json b = torp::test::full_tensor({1, 1, 256, 384}, op_perf::BFLOAT16, op_perf::DRAM);
  EXPECT_EQ(op_perf::get_runtime_from_model("ttnn::matmul", a, b, false, false, json::object()),
            expected("ttnn.matmul", json{{"input_tensor_a", a}, {"input_tensor_b", b}}));
  EXPECT_EQ(op_perf::get_runtime_from_model("ttnn::add", a, 2.0), expected("ttnn.add", json{{"input_tensor_a", a}, {"input_tensor_b", 2.0}}));
  EXPECT_EQ(op_perf::get_runtime_from_model("ttnn::no_such_op", a), 0u);
  EXPECT_EQ(op_perf::get_runtime_from_model("ttnn::exp", json("not a tensor")), 0u);
  EXPECT_EQ(op_perf::get_runtime_from_model("ttnn::exp", a, json::object(), 1, 2, 3), 0u);
  EXPECT_EQ(op_perf::get_runtime_from_model("ttnn::exp"), 0u);
  EXPECT_EQ(op_perf::get_runtime_from_model("ttnn::matmul", a, torp::test::full_tensor({1, 1, 128, 384}, 0, 0)), 0u);
}
