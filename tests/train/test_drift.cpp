// SPDX-License-Identifier: Apache-2.0
// torp drift: the shipped exp model is "current" on its own held-out measurements, "stale" when
// every L1 configuration runs 25% slower; 50 suggested probes are enough to see that shift;
// measurement noise alone flags nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "support/fixtures.hpp"
#include "torp/train/drift.hpp"
#include "torp/train/evaluate.hpp"
#include "torp/train/suggest.hpp"

namespace {

using json = nlohmann::json;
using torp::Configuration;

struct ExpFixture {
  torp::ModelFile model = torp::load_model(torp::test::source("models/wormhole/exp.json"));
  torp::Dataset data = torp::load_dataset(torp::test::source("data/exp/exp_wormhole.jsonl"));
  std::vector<Configuration> configs = torp::aggregate(data, torp::kDefaultRejectFactor, nullptr);
  /// The configurations the model never saw (its provenance split).
  std::vector<Configuration> held_out() const {
    const auto o = torp::evaluation_options(model);
    const auto split = torp::split_by_configuration(configs.size(), o.seed, o.validation_fraction, o.test_fraction);
    std::vector<Configuration> out;
    for (std::size_t i : split.test) out.push_back(configs[i]);
    return out;
  }
};

const ExpFixture& fixture() {
  static const ExpFixture f;
  return f;
}

bool in_l1(const Configuration& c) { return c.args["input_tensor"]["memory_config"]["buffer_type"] == "L1"; }

std::vector<Configuration> l1_slower(std::vector<Configuration> configs, double factor) {
  for (auto& c : configs)
    if (in_l1(c)) c.label_ns *= factor;
  return configs;
}

std::set<std::string> moved_groups(const json& r) {
  std::set<std::string> out;
  for (const json& g : r["groups"])
    if (g["moved"].get<bool>()) out.insert(g["group"].get<std::string>());
  return out;
}

TEST(Drift, BinomialTailAndHolm) {
  EXPECT_NEAR(torp::binomial_cdf(0, 5, 0.9), 1e-5, 1e-12);
  EXPECT_NEAR(torp::binomial_cdf(4, 5, 0.9), 1 - std::pow(0.9, 5), 1e-12);
  EXPECT_DOUBLE_EQ(torp::binomial_cdf(5, 5, 0.9), 1.0);
  const auto adj = torp::holm_adjust({0.01, 0.04, 0.03});
  EXPECT_DOUBLE_EQ(adj[0], 0.03);
  EXPECT_DOUBLE_EQ(adj[2], 0.06);
  EXPECT_DOUBLE_EQ(adj[1], 0.06);  // monotone: never below an earlier step
}

TEST(Drift, HeldOutMeasurementsAsTheyAreAreCurrent) {
  const auto& f = fixture();
  const json r = torp::drift_model(f.model, f.held_out(), {});
  EXPECT_EQ(r["verdict"], "current") << r.dump(1);
  EXPECT_EQ(r["configurations"].get<std::size_t>(), 491u);
  EXPECT_EQ(r["groups"].size(), 10u);  // 5 dtypes x 2 buffers
  EXPECT_TRUE(moved_groups(r).empty());
  EXPECT_NEAR(r["median_ratio"].get<double>(), 1.0, 0.01);
  // About a tenth of exp's labels are another configuration's duration (README): the share
  // inside the 90% interval is below nominal, but the median does not move, so no verdict flips.
  EXPECT_GT(r["within_interval"].get<double>(), 0.7);
}

TEST(Drift, EveryL1Configuration25PercentSlowerIsStale) {
  const auto& f = fixture();
  const json r = torp::drift_model(f.model, l1_slower(f.held_out(), 1.25), {});
  EXPECT_EQ(r["verdict"], "stale") << r.dump(1);
  const auto moved = moved_groups(r);
  EXPECT_EQ(moved.size(), 5u) << r.dump(1);
  for (const std::string& g : moved) EXPECT_NE(g.find("L1"), std::string::npos) << g;
  // Each group's reported median moves by exactly the shift (L1) or not at all (DRAM).
  std::map<std::string, double> before;
  const json unshifted = torp::drift_model(f.model, f.held_out(), {});
  for (const json& g : unshifted["groups"])
    before[g["group"].get<std::string>()] = g["median_ratio"].get<double>();
  for (const json& g : r["groups"]) {
    const std::string name = g["group"].get<std::string>();
    const double shift = name.find("L1") != std::string::npos ? 1.25 : 1.0;
    EXPECT_NEAR(g["median_ratio"].get<double>(), shift * before.at(name), 1e-9) << g.dump();
  }
  EXPECT_NE(r["moved_most"][0].get<std::string>().find("L1"), std::string::npos);
}

TEST(Drift, NoiseAloneIsCurrent) {
  const auto& f = fixture();
  std::vector<Configuration> noisy = f.held_out();
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0.0, 0.03);  // 3% measurement noise
  for (auto& c : noisy) c.label_ns *= std::exp(noise(rng));
  EXPECT_EQ(torp::drift_model(f.model, noisy, {})["verdict"], "current");
}

TEST(Drift, FiftySuggestedProbesDetectTheL1Shift) {
  const auto& f = fixture();
  const auto picked = torp::choose_probes(f.model, f.configs, 50, 1);
  ASSERT_EQ(picked.size(), 50u);
  std::vector<Configuration> probes;
  std::set<std::size_t> distinct(picked.begin(), picked.end());
  EXPECT_EQ(distinct.size(), 50u);
  for (std::size_t i : picked) probes.push_back(f.configs[i]);
  const json before = torp::drift_model(f.model, probes, {});
  EXPECT_EQ(before["verdict"], "current") << before.dump(1);
  for (const json& g : before["groups"]) EXPECT_GE(g["configurations"].get<std::size_t>(), 4u) << g.dump();
  const json after = torp::drift_model(f.model, l1_slower(probes, 1.25), {});
  EXPECT_EQ(after["verdict"], "stale") << after.dump(1);
  for (const std::string& g : moved_groups(after)) EXPECT_NE(g.find("L1"), std::string::npos) << g;
}

TEST(Drift, DirectoryReportCoversEveryModelOfTheOp) {
  const auto& f = fixture();
  torp::Dataset held;
  held.op = f.data.op;
  for (const auto& c : l1_slower(f.held_out(), 1.25)) held.rows.push_back({c.args, c.label_ns, 0, "", ""});
  const json r = torp::drift(held, torp::test::source("models"), {});
  std::map<std::string, std::string> verdict;
  for (const json& m : r["ops"]) verdict[m["model"].get<std::string>()] = m["verdict"].get<std::string>();
  EXPECT_EQ(verdict["wormhole_n300/exp"], "stale");
  EXPECT_EQ(verdict["reference/exp"], "unknown");  // imported: no interval to hold labels against
  EXPECT_NE(torp::drift_summary(r).find("wormhole_n300/exp (ttnn.exp): stale"), std::string::npos);
}

}  // namespace
