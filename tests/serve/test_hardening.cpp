// SPDX-License-Identifier: Apache-2.0
// Regression tests of issue 13 (hardening): inputs that crashed TORP or escaped its error
// contract, each answered with a TorpError / error Result now.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <thread>

#include "core/json_excerpt.hpp"
#include "support/fixtures.hpp"
#include "torp/json_lines.hpp"
#include "torp/model.hpp"
#include "torp/predictor.hpp"
#include "torp/tensor.hpp"

using nlohmann::json;
using namespace torp;

namespace {

json exp_query(const json& tensor) { return {{"op", "ttnn.exp"}, {"args", {{"input_tensor", tensor}}}}; }

/// A JSON value nested `depth` arrays deep, built without recursion.
json deep_array(std::size_t depth) {
  json v = 1;
  for (std::size_t i = 0; i < depth; ++i) {
    json outer = json::array();
    outer.push_back(std::move(v));
    v = std::move(outer);
  }
  return v;
}

class Hardening : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    save_model(test::tiny_exp_model(), dir_ / "exp.json", false);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

Error load_error(const std::vector<std::filesystem::path>& dirs) {
  try {
    Predictor p(dirs);
  } catch (const TorpError& e) {
    return e.error();
  }
  ADD_FAILURE() << "the directories loaded";
  return {};
}

}  // namespace

TEST(JsonExcerpt, BoundedNonRecursiveAndNeverThrows) {
  const json deep = deep_array(50000);  // dump() of this recurses 50,000 frames deep
  const std::string e = json_excerpt(deep);
  EXPECT_EQ(e, "[[[[...]]]]");
  EXPECT_EQ(json_excerpt(json(std::string(1 << 20, 'x'))).size(), 80u + 5u);  // quotes and "..."
  EXPECT_EQ(json_excerpt(json("ab\xff")), "\"ab\xEF\xBF\xBD\"");  // invalid UTF-8 replaced
  EXPECT_EQ(json_excerpt(json{{"a", 1}, {"b", {true, nullptr}}}), "{\"a\":1,\"b\":[true,null]}");
  json wide = json::array();
  for (int i = 0; i < 100000; ++i) wide.push_back(i);
  EXPECT_LE(json_excerpt(wide).size(), 90u);
  EXPECT_EQ(json_excerpt(json::array()), "[]");
  EXPECT_EQ(json_excerpt(json(2.5)), "2.5");
}

TEST_F(Hardening, DeepDtypeIsAnErrorAnswerNotAStackOverflow) {
  Predictor p(dir_);
  json q = exp_query(test::spec_tensor({1, 1, 64, 128}, 0, 0));
  // Moved in, not copied: nlohmann's copy constructor recurses (50,000 frames overflowed the
  // stack of this test under AddressSanitizer, in exp_query's copy, before the predictor ran).
  q["args"]["input_tensor"]["tensor_layout"]["dtype"] = deep_array(50000);
  auto r = p.predict(q);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().path, "/args/input_tensor/tensor_layout/dtype");
  EXPECT_LT(r.error().message.size(), 200u);
}

TEST_F(Hardening, InvalidUtf8InAFieldIsAnErrorAnswerNotAnException) {
  Predictor p(dir_);
  json t = test::spec_tensor({1, 1, 64, 128}, 0, 0);
  t["tensor_layout"]["dtype"] = "BFLOAT\xff\xfe";
  t["tensor_layout"]["memory_config"]["buffer_type"] = "\xc3\x28";
  std::vector<json> batch = {exp_query(t), exp_query(test::spec_tensor({1, 1, 64, 128}, 0, 0))};
  std::vector<PredictResult> rs;
  ASSERT_NO_THROW(rs = p.predict_batch(batch));
  ASSERT_FALSE(rs[0].ok());
  EXPECT_EQ(rs[0].error().code, ErrorCode::invalid_argument);
  EXPECT_NO_THROW((void)json(rs[0].error().message).dump());  // the message is valid UTF-8
  EXPECT_TRUE(rs[1].ok());
  ASSERT_NO_THROW((void)p.predict(exp_query(t)));
}

TEST(TensorLimits, ZeroDimensionInTensorSpecFormsIsInvalid) {
  // [1,1,64,0] is an empty tensor in tt-metal's forms; only the reduced form pads with zeros.
  auto t = parse_tensor(test::spec_tensor({1, 1, 64, 0}, 0, 0), "/args/input_tensor");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(t.error().path, "/args/input_tensor/logical_shape/3");
  auto f = parse_tensor(test::full_tensor({1, 1, 64, 0}, 0, 0), "");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().path, "/tensor_spec/logical_shape/3");
}

TEST(TensorLimits, HugeDimensionsAreInvalidWithoutOverflow) {
  const std::int64_t big = std::numeric_limits<std::int64_t>::max();
  for (const json& shape : {json{1, 1, 64, big}, json{big, big}, json{1 << 20, 1 << 20, 2}}) {
    json t = test::spec_tensor({1, 1, 64, 64}, 0, 0);
    t["logical_shape"] = shape;
    auto r = parse_tensor(t, "");
    ASSERT_FALSE(r.ok()) << shape;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_EQ(r.error().path, "/logical_shape");
  }
}

TEST_F(Hardening, TensorLargerThanTheDeviceMemoryIsInvalid) {
  Predictor p(dir_);
  // 2 x 32768 x 65536 BFLOAT16 = 8 GiB fits a Wormhole chip's 12 GiB; 4 x ... = 16 GiB does not.
  EXPECT_TRUE(p.predict(exp_query(test::spec_tensor({1, 2, 32768, 65536}, 0, 0))).ok());
  auto r = p.predict(exp_query(test::spec_tensor({1, 4, 32768, 65536}, 0, 0)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().path, "/args/input_tensor/logical_shape");
  EXPECT_NE(r.error().message.find("DRAM"), std::string::npos) << r.error().message;
}

TEST(TensorLimits, ShardGridOfManyLargeRangesDoesNotOverflow) {
  // 128 ranges up to coordinate 4096 overflowed the int core count (UB).
  json grid = json::array();
  for (int i = 0; i < 128; ++i) grid.push_back({{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", 4096}, {"y", 4096}}}});
  json mem = {{"buffer_type", 1}, {"memory_layout", 2}, {"shard_spec", {{"grid", grid}, {"shape", {32, 32}}}}};
  auto m = parse_memory_config(mem, "/m");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::invalid_argument);
  grid = json::array();
  for (int i = 0; i < 128; ++i) grid.push_back({{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", 1000}, {"y", 1000}}}});
  mem["shard_spec"]["grid"] = grid;
  m = parse_memory_config(mem, "/m");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().path, "/m/shard_spec/grid");
}

TEST_F(Hardening, ShardGridBeyondTheDeviceGridIsInvalid) {
  Predictor p(dir_);
  auto query = [&](int end_x, int end_y) {
    json t = test::spec_tensor({1, 1, 256, 64}, 0, 1);
    t["tensor_layout"]["memory_config"] = {
        {"buffer_type", 1},
        {"memory_layout", 2},
        {"shard_spec", {{"grid", {{{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", end_x}, {"y", end_y}}}}}},
                        {"shape", {32, 64}}, {"orientation", 0}}}};
    return p.predict(exp_query(t));
  };
  auto inside = query(7, 0);  // 8 cores of the 8 x 7 grid
  EXPECT_TRUE(inside.ok() || inside.error().path.find("shard_spec/grid") == std::string::npos) << inside.error().describe();
  auto r = query(8, 0);  // x = 8 does not exist on an 8 x 7 grid
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().path, "/args/input_tensor/tensor_layout/memory_config/shard_spec/grid");
}

TEST_F(Hardening, ModelsDirectorySkipsJsonThatIsNotAModel) {
  std::ofstream(dir_ / "exp.report.json") << R"({"dataset": "exp.jsonl", "rows": 3})";
  std::ofstream(dir_ / "notes.json") << "[1, 2, 3]";
  Predictor p(dir_);
  ASSERT_EQ(p.models().size(), 1u);
  EXPECT_EQ(p.models()[0].id, "test/exp");
}

TEST_F(Hardening, SeveralModelsDirectories) {
  auto other = test::temp_dir("SeveralModelsDirectories_other");
  save_model(test::tiny_exp_model("test/exp2"), other / "exp2.json", false);
  Predictor p(std::vector<std::filesystem::path>{dir_, other});
  ASSERT_EQ(p.models().size(), 2u);
  EXPECT_EQ(p.directories().size(), 2u);
  EXPECT_TRUE(p.predict(exp_query(test::spec_tensor({1, 1, 64, 128}, 0, 0))).ok());
  std::filesystem::remove_all(other);
}

TEST_F(Hardening, ModelsFromTorpModelsListSeparatedByColons) {
  ::setenv("TORP_MODELS", "/a/b::/c", 1);
  EXPECT_EQ(resolve_models_dirs(), (std::vector<std::filesystem::path>{"/a/b", "/c"}));
  EXPECT_EQ(resolve_models_dir(), std::filesystem::path("/a/b"));
  EXPECT_EQ(resolve_models_dirs({"/x"}), std::vector<std::filesystem::path>{"/x"});
  ::unsetenv("TORP_MODELS");
}

TEST_F(Hardening, EmptyModelsDirectoryIsAnError) {
  auto empty = test::temp_dir("EmptyModelsDirectory");
  std::ofstream(empty / "exp.report.json") << "{}";
  Error e = load_error({empty});
  EXPECT_EQ(e.code, ErrorCode::io);
  EXPECT_NE(e.message.find("no TORP model"), std::string::npos) << e.message;
  std::filesystem::remove_all(empty);
}

TEST_F(Hardening, SymlinkLoopInModelsDirectoryIsATorpError) {
  std::filesystem::create_symlink(dir_ / "loop.json", dir_ / "loop.json");
  Error e = load_error({dir_});
  EXPECT_EQ(e.code, ErrorCode::io);
  EXPECT_EQ(e.file, (dir_ / "loop.json").string()) << e.describe();
}

TEST(ConcurrentPredictions, SixteenThreadsSharingOnePredictorAnswerAsSerial) {
  // scripts/sanitize.sh runs this under ThreadSanitizer: every shipped model, single and batch calls.
  const Predictor p(test::source("models"));
  std::vector<json> qs;
  std::ifstream in(test::source("examples/queries.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) qs.push_back(json::parse(line));
  ASSERT_GE(qs.size(), 10u);
  auto key = [](const PredictResult& r) { return r.ok() ? r.value().runtime_ns : -1.0 - static_cast<int>(r.error().code); };
  std::vector<double> serial;
  for (const auto& q : qs) serial.push_back(key(p.predict(q)));
  constexpr int kThreads = 16;
  std::vector<std::vector<double>> single(kThreads, std::vector<double>(qs.size())), batch(kThreads);
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t)
    pool.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep)
        for (std::size_t i = 0; i < qs.size(); ++i) {
          const std::size_t k = (i + static_cast<std::size_t>(t) * 3) % qs.size();  // each thread its own order
          single[t][k] = key(p.predict(qs[k]));
        }
      for (const auto& r : p.predict_batch(qs)) batch[t].push_back(key(r));
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(single[t], serial) << "thread " << t;
    EXPECT_EQ(batch[t], serial) << "thread " << t;
  }
}

TEST(ConcurrentPredictions, JsonLinesFileOnFourThreadsAnswersAsOnOne) {
  // scripts/sanitize.sh runs this under ThreadSanitizer too: `torp predict FILE` answers a
  // regular file on worker threads sharing one Predictor (from 2048 lines on).
  const Predictor p(test::source("models"));
  std::vector<std::string> sample;
  std::ifstream in(test::source("examples/queries.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) sample.push_back(line);
  sample.push_back("{not json");
  const auto dir = test::temp_dir("json_lines_threads");
  const auto file = dir / "queries.jsonl";
  {
    std::ofstream out(file);
    for (std::size_t i = 0; i < 3000; ++i) out << sample[i % sample.size()] << '\n';
  }
  auto answers = [&](unsigned threads) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    std::FILE* out = std::tmpfile();
    answer_json_lines(p, fd, out, JsonLinesOptions{threads});
    ::close(fd);
    std::string text(static_cast<std::size_t>(std::ftell(out)), '\0');
    std::rewind(out);
    EXPECT_EQ(std::fread(text.data(), 1, text.size(), out), text.size());
    std::fclose(out);
    return text;
  };
  const std::string one = answers(1);
  EXPECT_EQ(std::count(one.begin(), one.end(), '\n'), 3000);
  EXPECT_EQ(answers(4), one);
  std::filesystem::remove_all(dir);
}

TEST_F(Hardening, WronglyTypedOpSpecInAModelFileIsATorpError) {
  // `torp list` printed [json.exception.type_error.302] for these.
  for (const auto& [pointer, value] : std::vector<std::pair<std::string, json>>{
           {"/op_spec/features/dim_0", 5}, {"/op_spec/args/input_tensor/rank", "two"}, {"/op_spec/args", json::array()}}) {
    json d = to_json(test::tiny_exp_model());
    d[json::json_pointer(pointer)] = value;
    std::ofstream(dir_ / "exp.json", std::ios::trunc) << d.dump();
    try {
      Predictor p(dir_);
      ADD_FAILURE() << pointer << " loaded";
    } catch (const TorpError& e) {
      EXPECT_TRUE(e.error().code == ErrorCode::op_spec || e.error().code == ErrorCode::model_format) << e.what();
      EXPECT_NE(std::string(e.what()).find("exp.json"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << pointer << ": " << e.what();
    }
  }
}
