// SPDX-License-Identifier: Apache-2.0
// The shipped trained models far outside their measurements (issue 10): height-sharded matmul up
// to 512 tile rows per core and k, n up to 64 tiles, exp up to 100x the largest measured tensor.
// Every answer is finite, within the model's correction limit of its physical baseline, and says
// it is "outside" once a per-core size exceeds what was measured.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "support/fixtures.hpp"
#include "torp/encoder.hpp"
#include "torp/model.hpp"
#include "torp/predictor.hpp"

using nlohmann::json;
using namespace torp;

namespace {

/// The model's law for `args`: intercept + coefficients . terms, of the group the query falls in.
double baseline(const ModelFile& m, const json& args) {
  const Encoder enc(m.op_spec, m.device);
  auto terms = enc.encode(args, m.baseline->features);
  EXPECT_TRUE(terms.ok());
  const Baseline::Group* g = &m.baseline->groups.front();
  if (!m.baseline->group.empty()) {
    auto key = enc.encode(args, std::vector<std::string>{m.baseline->group});
    EXPECT_TRUE(key.ok());
    for (const auto& cand : m.baseline->groups)
      if (cand.key == key.value()[0]) g = &cand;
  }
  double base = g->intercept;
  for (std::size_t i = 0; i < g->coefficients.size(); ++i) base += g->coefficients[i] * terms.value()[i];
  return base;
}

/// The largest value of feature `name` over the model's training configurations.
double trained_max(const ModelFile& m, const std::string& name) {
  for (std::size_t i = 0; i < m.features.size(); ++i)
    if (m.features[i] == name) return (*m.input_range)[i][1];
  ADD_FAILURE() << "no feature " << name;
  return 0;
}

void expect_bounded(const ModelFile& m, const json& args, const Prediction& r, const std::string& what) {
  ASSERT_TRUE(std::isfinite(r.runtime_ns)) << what;
  const double base = baseline(m, args);
  ASSERT_GT(base, 0.0) << what;
  const auto [lo, hi] = *m.correction_limit;
  EXPECT_GE(r.runtime_ns / base, std::exp(lo) * (1 - 1e-9)) << what;
  EXPECT_LE(r.runtime_ns / base, std::exp(hi) * (1 + 1e-9)) << what;
  ASSERT_TRUE(r.interval_ns.has_value()) << what;
  EXPECT_LE((*r.interval_ns)[0], r.runtime_ns) << what;
  EXPECT_GE((*r.interval_ns)[1], r.runtime_ns) << what;
}

json sharded_a(int rows_per_core, int k_tiles, int cores) {
  json t = test::full_tensor({rows_per_core * 32 * cores, k_tiles * 32}, 0, 1, 2);  // BFLOAT16, L1, HEIGHT
  t["tensor_spec"]["tensor_layout"]["memory_config"]["shard_spec"] = {
      {"grid", {{{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", cores - 1}, {"y", 0}}}}}},
      {"shape", {rows_per_core * 32, k_tiles * 32}},
      {"orientation", 0}};
  return t;
}

}  // namespace

TEST(FarOutside, MatmulUpTo512TileRowsPerCoreAndK_N64TilesStaysBoundedAndSaysOutside) {
  const ModelFile m = load_model(test::source("models/wormhole/matmul.json"));
  ASSERT_TRUE(m.input_range && m.correction_limit && m.calibration);
  const Predictor p(std::vector<ModelFile>{m});
  const double max_rows = std::exp(trained_max(m, "log_Mt_per_core"));
  const double max_k = std::exp(trained_max(m, "log_Kt")), max_n = std::exp(trained_max(m, "log_Nt"));
  int outside = 0, answered = 0;
  for (int rows = 1; rows <= 512; rows *= 2)
    for (int kt = 1; kt <= 64; kt *= 2)
      for (int nt = 1; nt <= 64; nt *= 2) {
        // Shards that fit L1: the a shard, b and the output block at 2 KiB per bfloat16 tile.
        if (2048.0 * (rows * kt + kt * nt + rows * nt) > 1.4e6) continue;
        const json args = {{"input_tensor_a", sharded_a(rows, kt, 8)},
                           {"input_tensor_b", test::full_tensor({kt * 32, nt * 32}, 0, 0)}};
        const std::string what = "rows/core " + std::to_string(rows) + " Kt " + std::to_string(kt) + " Nt " +
                                 std::to_string(nt);
        const auto r = p.predict("ttnn.matmul", args);
        ASSERT_TRUE(r.ok()) << what << ": " << r.error().describe();
        ++answered;
        expect_bounded(m, args, r.value(), what);
        if (rows > max_rows * 1.0001 || kt > max_k * 1.0001 || nt > max_n * 1.0001) {
          EXPECT_EQ(r.value().domain, Domain::outside) << what;
          EXPECT_FALSE(r.value().outside.empty()) << what;
          ++outside;
        }
      }
  EXPECT_GT(answered, 100);
  EXPECT_GT(outside, 50);  // the sweep does reach beyond the measurements
}

TEST(FarOutside, ExpUpTo100TimesTheLargestMeasuredTensorStaysBoundedAndSaysOutside) {
  const ModelFile m = load_model(test::source("models/wormhole/exp.json"));
  ASSERT_TRUE(m.input_range && m.correction_limit && m.calibration);
  const Predictor p(std::vector<ModelFile>{m});
  constexpr double kLargestMeasuredTiles = 94743;  // [121, 864, 928] in data/exp/exp_wormhole.jsonl
  for (double factor : {2.0, 10.0, 30.0, 100.0})
    for (int buffer : {0, 1}) {
      if (buffer == 1 && factor > 2.0) continue;  // an L1 tensor must fit the cores' L1
      const int side = static_cast<int>(std::ceil(std::sqrt(factor * kLargestMeasuredTiles)));
      // bfloat8_b keeps 100x (10.3 GB) within the device's DRAM
      const json args = {{"input_tensor", test::full_tensor({1, 1, side * 32, side * 32}, 3, buffer)}};
      const std::string what = "x" + std::to_string(factor) + " buffer " + std::to_string(buffer);
      const auto r = p.predict("ttnn.exp", args);
      if (buffer == 1 && !r.ok()) continue;  // rejected as too large for L1: not an answer to bound
      ASSERT_TRUE(r.ok()) << what << ": " << r.error().describe();
      expect_bounded(m, args, r.value(), what);
      EXPECT_EQ(r.value().domain, Domain::outside) << what;
    }
}
