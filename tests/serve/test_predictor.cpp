// SPDX-License-Identifier: Apache-2.0
// Predictor behaviour: typed answers, every error code, op-name forms, model selection,
// batch == singles, and concurrent queries.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "support/fixtures.hpp"
#include "torp/model.hpp"
#include "torp/predictor.hpp"

using nlohmann::json;
using namespace torp;

namespace {

json exp_query(const json& tensor, const std::string& op = "ttnn.exp") {
  return {{"op", op}, {"args", {{"input_tensor", tensor}}}};
}

/// Expected answer of tiny_exp_model, computed from the model's definition: baseline a + b*tpc
/// times exp(forward(normalized features)), with features written out by hand.
double expected_tiny(const ModelFile& m, const std::vector<int>& shape, int dtype, int buffer) {
  double outer = 1;
  for (std::size_t i = 0; i + 2 < shape.size(); ++i) outer *= shape[i];
  double tiles = outer * std::ceil(shape[shape.size() - 2] / 32.0) * std::ceil(shape.back() / 32.0);
  double tpc = std::ceil(tiles / 56.0);
  std::vector<double> x = {std::log(tpc), dtype == 0 ? 1.0 : 0.0, dtype == 1 ? 1.0 : 0.0, buffer == 0 ? 1.0 : 0.0};
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = (x[i] - m.mean[i]) / m.stddev[i];
  return (1500.0 + 120.0 * tpc) * std::exp(forward(m.ensemble[0], x));
}

class PredictorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    model_ = test::tiny_exp_model();
    save_model(model_, dir_ / "exp.json", false);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  ModelFile model_;
};

}  // namespace

TEST_F(PredictorTest, AnswersEqualTheModelDefinitionInEveryTensorForm) {
  Predictor p(dir_);
  const std::vector<std::vector<int>> shapes = {{1, 1, 64, 128}, {4, 53, 32, 160}, {2048, 1024}, {3, 100, 70}};
  for (const auto& shape : shapes)
    for (int dtype : {0, 1, 3})
      for (int buffer : {0, 1}) {
        double want = expected_tiny(model_, shape, dtype, buffer);
        json reduced = {{"logical_shape", shape}, {"dtype", dtype}, {"memory_config", {{"buffer_type", buffer}}}};
        for (const json& t : {test::full_tensor(shape, dtype, buffer), test::spec_tensor(shape, dtype, buffer), reduced}) {
          auto r = p.predict(exp_query(t));
          ASSERT_TRUE(r.ok()) << r.error().describe();
          EXPECT_NEAR(r.value().runtime_ns / want, 1.0, 1e-12);
          EXPECT_EQ(r.value().model_id, "test/exp");
        }
      }
}

TEST_F(PredictorTest, EnumNamesAndIntegersGiveTheSameAnswer) {
  Predictor p(dir_);
  json by_int = {{"logical_shape", {1, 8, 256, 256}}, {"dtype", 1}, {"memory_config", {{"buffer_type", 1}, {"memory_layout", 0}}}};
  json by_name = {{"logical_shape", {1, 8, 256, 256}},
                  {"dtype", "DataType.FLOAT32"},
                  {"memory_config", {{"buffer_type", "L1"}, {"memory_layout", "INTERLEAVED"}}}};
  auto a = p.predict(exp_query(by_int)), b = p.predict(exp_query(by_name));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.value().runtime_ns, b.value().runtime_ns);
}

TEST_F(PredictorTest, OpNameForms) {
  Predictor p(dir_);
  json t = test::full_tensor({1, 1, 32, 32}, 0, 0);
  auto a = p.predict(exp_query(t, "ttnn.exp")), b = p.predict(exp_query(t, "ttnn::exp")), c = p.predict(exp_query(t, "exp"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a.value().runtime_ns, b.value().runtime_ns);
  EXPECT_EQ(a.value().runtime_ns, c.value().runtime_ns);
}

TEST_F(PredictorTest, UnknownOp) {
  Predictor p(dir_);
  auto r = p.predict(exp_query(test::full_tensor({32, 32}, 0, 0), "ttnn.not_an_op"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unknown_op);
  EXPECT_EQ(r.error().path, "/op");
}

TEST_F(PredictorTest, InvalidArgumentCarriesThePathOfTheBadField) {
  Predictor p(dir_);
  auto missing = p.predict(json{{"op", "exp"}, {"args", json::object()}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(missing.error().path, "/args/input_tensor");

  auto rank = p.predict(exp_query(test::full_tensor({2, 2, 2, 32, 32}, 0, 0)));
  ASSERT_FALSE(rank.ok());
  EXPECT_EQ(rank.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(rank.error().path, "/args/input_tensor/tensor_spec/logical_shape");

  auto dtype = p.predict(exp_query(test::full_tensor({32, 32}, 4 /*BFLOAT4_B*/, 0)));
  ASSERT_FALSE(dtype.ok());
  EXPECT_EQ(dtype.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(dtype.error().path, "/args/input_tensor/tensor_spec/tensor_layout/dtype");

  auto typed = p.predict(exp_query(json("not a tensor")));
  ASSERT_FALSE(typed.ok());
  EXPECT_EQ(typed.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(typed.error().path, "/args/input_tensor");

  auto no_buffer = p.predict(exp_query(json{{"logical_shape", {64, 64}}, {"dtype", "BFLOAT16"}}));
  ASSERT_FALSE(no_buffer.ok());
  EXPECT_EQ(no_buffer.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(no_buffer.error().path, "/args/input_tensor/memory_config/buffer_type");
}

TEST_F(PredictorTest, InvalidQuery) {
  Predictor p(dir_);
  auto no_op = p.predict(json{{"args", json::object()}});
  ASSERT_FALSE(no_op.ok());
  EXPECT_EQ(no_op.error().code, ErrorCode::invalid_query);
  auto not_object = p.predict(json::array());
  ASSERT_FALSE(not_object.ok());
  EXPECT_EQ(not_object.error().code, ErrorCode::invalid_query);
}

TEST_F(PredictorTest, NoModelForPinnedIdOrUncoveredQuery) {
  // A second op whose only model applies to DRAM inputs.
  ModelFile other = test::tiny_exp_model("test/other");
  other.op = "ttnn.other_unary";
  other.op_spec["op"] = "ttnn.other_unary";
  other.applies_when = {"input_tensor.buffer_type == DRAM"};
  save_model(other, dir_ / "other.json", false);
  Predictor p(dir_);
  json t = test::full_tensor({64, 64}, 0, 0);
  auto missing = p.predict("ttnn.exp", json{{"input_tensor", t}}, "test/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::no_model);
  auto wrong_op = p.predict("ttnn.exp", json{{"input_tensor", t}}, "test/other");
  ASSERT_FALSE(wrong_op.ok());
  EXPECT_EQ(wrong_op.error().code, ErrorCode::no_model);
  auto dram = p.predict("other_unary", json{{"input_tensor", t}});
  ASSERT_TRUE(dram.ok()) << dram.error().describe();
  auto l1 = p.predict("other_unary", json{{"input_tensor", test::full_tensor({64, 64}, 0, 1)}});
  ASSERT_FALSE(l1.ok());
  EXPECT_EQ(l1.error().code, ErrorCode::no_model);
}

TEST_F(PredictorTest, HigherPriorityServesAndPinnedIdReachesTheOther) {
  ModelFile better = test::tiny_exp_model("test/exp-better");
  better.priority = 5;
  better.baseline->groups[0].intercept = 3000.0;
  save_model(better, dir_ / "better.json", false);
  Predictor p(dir_);
  json args = {{"input_tensor", test::full_tensor({256, 256}, 0, 0)}};
  auto def = p.predict("ttnn.exp", args);
  auto pinned = p.predict("ttnn.exp", args, "test/exp");
  ASSERT_TRUE(def.ok() && pinned.ok());
  EXPECT_EQ(def.value().model_id, "test/exp-better");
  EXPECT_EQ(pinned.value().model_id, "test/exp");
  EXPECT_GT(def.value().runtime_ns, pinned.value().runtime_ns);
}

TEST_F(PredictorTest, NonPositiveOutputIsAnErrorNeverZero) {
  ModelFile neg = test::tiny_exp_model("test/negative");
  neg.op = "ttnn.neg_model";
  neg.op_spec["op"] = "ttnn.neg_model";
  neg.transform = TargetTransform::none;
  neg.baseline.reset();
  for (auto& w : neg.ensemble[0].layers[1].weights) w = 0.0;
  neg.ensemble[0].layers[1].bias = {-5.0};
  save_model(neg, dir_ / "neg.json", false);
  Predictor p(dir_);
  auto r = p.predict("ttnn.neg_model", json{{"input_tensor", test::full_tensor({64, 64}, 0, 0)}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::model_output_invalid);
}

TEST_F(PredictorTest, BatchEqualsSingles) {
  Predictor p(dir_);
  std::vector<json> qs;
  for (int i = 0; i < 200; ++i) {
    if (i % 17 == 3) {
      qs.push_back(json{{"op", "ttnn.nope"}, {"args", json::object()}});
      continue;
    }
    qs.push_back(exp_query(test::full_tensor({1 + i % 3, 32 * (1 + i % 7), 32 + i}, i % 2, (i / 2) % 2)));
  }
  auto batch = p.predict_batch(qs);
  ASSERT_EQ(batch.size(), qs.size());
  for (std::size_t i = 0; i < qs.size(); ++i) {
    auto single = p.predict(qs[i]);
    ASSERT_EQ(single.ok(), batch[i].ok()) << i;
    if (single.ok()) {
      EXPECT_EQ(single.value().runtime_ns, batch[i].value().runtime_ns);
      EXPECT_EQ(single.value().model_id, batch[i].value().model_id);
    } else {
      EXPECT_EQ(single.error().code, batch[i].error().code);
    }
  }
}

TEST(ShippedModels, BatchEqualsSinglesExactly) {
  // The batch path runs networks as matrix products over many rows; answers must not change.
  Predictor p(test::source_dir() / "models");
  std::vector<json> qs;
  for (int i = 0; i < 301; ++i)
    qs.push_back(exp_query(test::full_tensor({1 + i % 4, 8 + i % 13, 32 * (1 + i % 9), 32 * (1 + i % 7) + i % 5},
                                             std::vector<int>{0, 1, 2, 3, 6}[static_cast<std::size_t>(i) % 5], i % 2)));
  auto batch = p.predict_batch(qs);
  int ok = 0;
  for (std::size_t i = 0; i < qs.size(); ++i) {
    auto single = p.predict(qs[i]);
    ASSERT_EQ(single.ok(), batch[i].ok()) << i;
    if (!single.ok()) continue;
    ++ok;
    EXPECT_EQ(single.value().runtime_ns, batch[i].value().runtime_ns) << i;
  }
  EXPECT_GT(ok, 250);
}

TEST_F(PredictorTest, EightThreadsAgreeWithSerialAnswers) {
  Predictor p(dir_);
  std::vector<json> qs;
  for (int i = 0; i < 400; ++i)
    qs.push_back(exp_query(test::full_tensor({1 + i % 5, 64 + 32 * (i % 11), 32 + 3 * i}, (i % 3 == 2) ? 3 : i % 2, i % 2)));
  std::vector<double> serial;
  for (const auto& q : qs) serial.push_back(p.predict(q).value().runtime_ns);
  std::vector<std::vector<double>> got(8, std::vector<double>(qs.size()));
  std::vector<std::thread> pool;
  for (int t = 0; t < 8; ++t)
    pool.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep)
        for (std::size_t i = 0; i < qs.size(); ++i) {
          std::size_t k = (i * 7 + static_cast<std::size_t>(t) * 13) % qs.size();  // different orders per thread
          auto r = p.predict(qs[k]);
          got[t][k] = r.ok() ? r.value().runtime_ns : -1.0;
        }
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(got[t], serial) << "thread " << t;
}

TEST_F(PredictorTest, DuplicateModelIdsAreRejected) {
  save_model(model_, dir_ / "copy.json", false);
  try {
    Predictor p(dir_);
    FAIL() << "duplicate ids must not load";
  } catch (const TorpError& e) {
    EXPECT_EQ(e.error().code, ErrorCode::model_format);
    EXPECT_NE(std::string(e.what()).find("duplicate model id"), std::string::npos);
  }
}

TEST(PredictorDirectory, MissingDirectoryIsAnIoError) {
  try {
    Predictor p("/nonexistent/torp/models");
    FAIL();
  } catch (const TorpError& e) {
    EXPECT_EQ(e.error().code, ErrorCode::io);
  }
}

TEST(PredictorDirectory, ResolutionOrder) {
  EXPECT_EQ(resolve_models_dir(std::filesystem::path("/x/y")), std::filesystem::path("/x/y"));
  ::setenv("TORP_MODELS", "/from/env", 1);
  EXPECT_EQ(resolve_models_dir(), std::filesystem::path("/from/env"));
  ::unsetenv("TORP_MODELS");
  // Not installed (tests run from the build tree): falls back to ./models.
  EXPECT_EQ(resolve_models_dir(), std::filesystem::path("models"));
}
