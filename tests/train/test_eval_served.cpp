// SPDX-License-Identifier: Apache-2.0
// `torp eval` answers through the Predictor: its per-configuration predictions equal the
// Predictor's answers exactly (==), for the shipped exp and matmul models on a slice of their data.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "support/fixtures.hpp"
#include "torp/predictor.hpp"

using nlohmann::json;

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The header and every `stride`-th row of a dataset: a slice across its whole range.
void write_slice(const std::filesystem::path& from, const std::filesystem::path& to, int stride) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  for (int n = 0; std::getline(in, line); ++n)
    if (n == 0 || n % stride == 0) out << line << '\n';
}

void expect_eval_equals_predictor(const std::string& dataset, const std::string& model, int stride) {
  const auto src = torp::test::source_dir();
  const auto dir = torp::test::temp_dir("eval_served_" + std::filesystem::path(model).stem().string());
  write_slice(src / dataset, dir / "slice.jsonl", stride);
  const std::string cmd = std::string(TORP_CLI_PATH) + " eval --model '" + (src / model).string() + "' --dataset '" +
                          (dir / "slice.jsonl").string() + "' --predictions '" + (dir / "p.jsonl").string() +
                          "' > '" + (dir / "log.txt").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir / "log.txt");

  const json model_doc = torp::test::read_json(src / model);
  const std::string id = model_doc["id"].get<std::string>(), op = model_doc["op"].get<std::string>();
  const torp::Predictor predictor(src / "models");
  std::ifstream in(dir / "p.jsonl");
  std::size_t rows = 0, served = 0;
  for (std::string line; std::getline(in, line); ++rows) {
    const json r = json::parse(line);
    const torp::PredictResult p = predictor.predict(op, r["args"], id);
    ASSERT_EQ(p.ok(), !r["runtime_ns"].is_null()) << line;
    if (!p.ok()) continue;
    ++served;
    EXPECT_EQ(p.value().runtime_ns, r["runtime_ns"].get<double>()) << line;  // bit for bit, not to a tolerance
    EXPECT_EQ(p.value().memory_found, r["memory_found"].get<bool>()) << line;
  }
  EXPECT_GT(rows, 100u);
  EXPECT_GT(served, rows * 9 / 10);
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST(EvalServed, ExpPredictionsAreThePredictorsAnswers) {
  expect_eval_equals_predictor("data/exp/exp_wormhole.jsonl", "models/wormhole/exp.json", 7);
}

TEST(EvalServed, MatmulPredictionsAreThePredictorsAnswers) {
  expect_eval_equals_predictor("data/matmul_height_sharded/matmul_height_sharded_wormhole.jsonl",
                               "models/wormhole/matmul.json", 5);
}
