// SPDX-License-Identifier: Apache-2.0
// torp drift: the shipped exp model is "current" on its own held-out measurements, "stale" when
// every L1 configuration runs 25% slower; 50 suggested probes are enough to see that shift;
// measurement noise alone flags nothing. Each label is judged by the interval served for it
// (16-bit and 32-bit dtypes get their own bands); without calibration the fallback band judges.
#include <gtest/gtest.h>

#include <algorithm>
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

// Measurements that name their device judge that device's models (and models naming none): a
// Blackhole or n150 model is not "stale" for not matching n300 measurements; it is listed.
TEST(Drift, MeasurementsOfADeviceJudgeThatDevicesModels) {
  const auto& f = fixture();
  torp::Dataset held;
  held.op = f.data.op;
  held.header = {{"device", "wormhole_n300"}};
  for (const auto& c : f.held_out()) held.rows.push_back({c.args, c.label_ns, 0, "", ""});
  json r = torp::drift(held, torp::test::source("models"), {});
  std::set<std::string> judged, other;
  for (const json& m : r["ops"]) judged.insert(m["model"].get<std::string>());
  for (const json& m : r["other_devices"]) other.insert(m["model"].get<std::string>());
  EXPECT_EQ(judged, (std::set<std::string>{"wormhole_n300/exp", "wormhole_n300/analytical/exp", "reference/exp"}));
  EXPECT_EQ(other, (std::set<std::string>{"wormhole_n150/analytical/exp", "blackhole_p150/analytical/exp"}));
  EXPECT_EQ(r["device"], "wormhole_n300");
  EXPECT_NE(torp::drift_summary(r).find("not judged (models of other devices than the measurements' wormhole_n300): "),
            std::string::npos)
      << torp::drift_summary(r);

  held.header["device"] = "blackhole_p150";
  r = torp::drift(held, torp::test::source("models"), {});
  ASSERT_EQ(r["ops"].size(), 1u) << r.dump(1);
  EXPECT_EQ(r["ops"][0]["model"], "blackhole_p150/analytical/exp");

  held.header["device"] = "no_such_device";
  try {
    (void)torp::drift(held, torp::test::source("models"), {});
    FAIL() << "no model of that device";
  } catch (const torp::TorpError& e) {
    EXPECT_EQ(e.error().code, torp::ErrorCode::no_model);
    EXPECT_NE(e.error().message.find("serves ttnn.exp on no_such_device (5 for other devices)"), std::string::npos)
        << e.what();
  }
}

bool is_32bit(const Configuration& c) {
  const json& dtype = c.args["input_tensor"]["dtype"];
  return dtype == "FLOAT32" || dtype == "UINT32";
}

/// The labels of one dtype class (32-bit or 16-bit) multiplied by `factor`.
std::vector<Configuration> class_scaled(std::vector<Configuration> configs, bool thirty_two_bit, double factor) {
  for (auto& c : configs)
    if (is_32bit(c) == thirty_two_bit) c.label_ns *= factor;
  return configs;
}

/// The band of a calibration group (is_32bit_class 0 or 1) for a domain.
const torp::Calibration::Band& group_band(const torp::ModelFile& m, double key, const std::string& domain) {
  for (const auto& g : m.calibration->groups)
    if (g.key == key) return g.domains.at(domain);
  throw std::runtime_error("no calibration group " + std::to_string(key));
}

std::size_t count_within(const std::vector<Configuration>& configs, const std::vector<torp::ServedAnswer>& served) {
  std::size_t k = 0;
  for (std::size_t i = 0; i < configs.size(); ++i)
    k += served[i].interval_ns && (*served[i].interval_ns)[0] <= configs[i].label_ns &&
         configs[i].label_ns <= (*served[i].interval_ns)[1];
  return k;
}

TEST(Drift, HeldOutLabelsAreJudgedByTheirServedIntervals) {
  const auto& f = fixture();
  const std::vector<Configuration> probes = f.held_out();
  const auto served = torp::serve_configurations(f.model, probes);
  const json r = torp::drift_model(f.model, probes, {});
  EXPECT_EQ(r["verdict"], "current") << r.dump(1);
  EXPECT_EQ(r["interval_source"], "served");
  EXPECT_EQ(r["intervals"]["served"].get<std::size_t>(), probes.size());
  EXPECT_EQ(r["tested"].get<std::size_t>(), probes.size());
  EXPECT_DOUBLE_EQ(r["nominal_coverage"].get<double>(), f.model.calibration->coverage);
  EXPECT_NEAR(r["within_interval"].get<double>() * static_cast<double>(probes.size()),
              static_cast<double>(count_within(probes, served)), 1e-6);
  // Per domain: the counts add up, each judged by its served intervals.
  std::size_t n = 0;
  for (const auto& [d, v] : r["domains"].items()) {
    std::vector<Configuration> in_domain;
    std::vector<torp::ServedAnswer> answers;
    for (std::size_t i = 0; i < probes.size(); ++i)
      if (served[i].domain == d) {
        in_domain.push_back(probes[i]);
        answers.push_back(served[i]);
      }
    EXPECT_EQ(v["configurations"].get<std::size_t>(), in_domain.size()) << d;
    EXPECT_EQ(v["interval_source"], "served") << d;
    EXPECT_NEAR(v["within_interval"].get<double>() * static_cast<double>(in_domain.size()),
                static_cast<double>(count_within(in_domain, answers)), 1e-6) << d;
    n += in_domain.size();
  }
  EXPECT_EQ(n, probes.size());
  for (const json& g : r["groups"]) EXPECT_EQ(g["interval_source"], "served") << g.dump();

  // The plausible held-out labels (the kind the calibration was made on) land inside their
  // served intervals about as often as promised: 90% +- 5 points (n = 449: 3.5 standard errors).
  const auto e = torp::evaluate_model(f.model, f.data, torp::evaluation_options(f.model));
  std::vector<Configuration> plausible;
  for (std::size_t i : e.split.test)
    if (e.plausibility.plausible[i]) plausible.push_back(e.configs[i]);
  ASSERT_GT(plausible.size(), 400u);
  const json p = torp::drift_model(f.model, plausible, {});
  EXPECT_EQ(p["verdict"], "current");
  EXPECT_NEAR(p["within_interval"].get<double>(), f.model.calibration->coverage, 0.05) << p.dump(1);
}

TEST(Drift, SixteenBitShiftIsSeenWhereTheThirtyTwoBitBandAbsorbsIt) {
  const auto& f = fixture();
  const torp::ModelFile& m = f.model;
  const std::vector<Configuration> probes = f.held_out();
  const json before = torp::drift_model(m, probes, {});
  for (const auto& [d, v] : before["domains"].items()) EXPECT_TRUE(d == "seen" || d == "inside") << d;
  // The factor: half the upper edge of the 32-bit "seen" band (where most held-out answers are).
  const double hi32 = group_band(m, 1, "seen").hi;
  const double shift = hi32 / 2;
  const double factor = std::exp(shift);
  // It pushes a 16-bit label from the middle of its bands well past their upper edge, it is a
  // median shift the rule counts, and the one band of the whole model (domain "inside", all
  // dtypes) would have held it: a single band could not tell.
  EXPECT_GT(shift, 2 * std::max(group_band(m, 0, "seen").hi, group_band(m, 0, "inside").hi));
  EXPECT_GT(shift, std::log1p(torp::DriftOptions{}.min_shift) + 0.005);
  EXPECT_LT(shift, m.calibration->domains.at("inside").hi);

  const json slow16 = torp::drift_model(m, class_scaled(probes, false, factor), {});
  EXPECT_EQ(slow16["verdict"], "stale") << slow16.dump(1);
  std::set<std::string> sixteen;
  for (const json& g : slow16["groups"]) {
    const std::string name = g["group"].get<std::string>();
    const bool wide = name.find("FLOAT32") == 0 || name.find("UINT32") == 0;
    EXPECT_EQ(g["moved"].get<bool>(), !wide) << g.dump();
    if (!wide) {
      sixteen.insert(name);
      EXPECT_LT(g["within_interval"].get<double>(), 0.1) << g.dump();
    }
  }
  EXPECT_EQ(sixteen.size(), 6u);  // BFLOAT16, BFLOAT8_B, UINT16 x L1, DRAM

  const json slow32 = torp::drift_model(m, class_scaled(probes, true, factor), {});
  EXPECT_EQ(slow32["verdict"], "current") << slow32.dump(1);
  std::map<std::string, double> median_before;
  for (const json& g : before["groups"]) median_before[g["group"].get<std::string>()] = g["median_ratio"].get<double>();
  std::size_t wide = 0;
  for (const json& g : slow32["groups"]) {
    EXPECT_FALSE(g["moved"].get<bool>()) << g.dump();
    const std::string name = g["group"].get<std::string>();
    if (sixteen.count(name)) continue;
    ++wide;
    EXPECT_NEAR(g["median_ratio"].get<double>(), factor * median_before.at(name), 1e-9) << g.dump();
  }
  EXPECT_EQ(wide, 4u);  // FLOAT32, UINT32 x L1, DRAM
}

TEST(Drift, WithoutCalibrationTheFallbackBandJudgesAndSaysSo) {
  const auto& f = fixture();
  torp::ModelFile m = f.model;
  m.calibration.reset();
  const std::vector<Configuration> probes = f.held_out();
  const auto served = torp::serve_configurations(m, probes);
  const double half = std::log1p(m.provenance["metrics"]["test_plausible"]["p90_ape"].get<double>() / 100);
  std::size_t k = 0;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    ASSERT_FALSE(served[i].interval_ns);
    k += std::abs(std::log(probes[i].label_ns / served[i].runtime_ns)) <= half;
  }
  const json r = torp::drift_model(m, probes, {});
  EXPECT_EQ(r["interval_source"], "fallback") << r.dump(1);
  EXPECT_EQ(r["intervals"]["fallback"].get<std::size_t>(), probes.size());
  EXPECT_EQ(r["intervals"]["served"].get<std::size_t>(), 0u);
  EXPECT_DOUBLE_EQ(r["nominal_coverage"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(r["fallback"]["hi"].get<double>(), half);
  EXPECT_NEAR(r["within_interval"].get<double>() * static_cast<double>(probes.size()), static_cast<double>(k), 1e-6);
  for (const json& g : r["groups"]) EXPECT_EQ(g["interval_source"], "fallback") << g.dump();
  for (const auto& [d, v] : r["domains"].items()) EXPECT_EQ(v["interval_source"], "fallback") << d;
  const std::string text = torp::drift_summary({{"ops", json::array({r})}});
  EXPECT_NE(text.find(std::to_string(probes.size()) + " fallback band +-"), std::string::npos) << text;
  EXPECT_NE(text.find("(fallback intervals)"), std::string::npos) << text;
}

TEST(Drift, ADomainWithoutABandFallsBackAndTheScopeSaysMixed) {
  const auto& f = fixture();
  torp::ModelFile m = f.model;
  // Only the "seen" band: answers in "inside" (which never borrows) carry no interval.
  m.calibration->domains = {{"seen", m.calibration->domains.at("seen")}};
  m.calibration->group.clear();
  m.calibration->groups.clear();
  const json r = torp::drift_model(m, f.held_out(), {});
  const json& seen = r["domains"]["seen"];
  const json& inside = r["domains"]["inside"];
  ASSERT_GT(inside["configurations"].get<std::size_t>(), 0u) << r.dump(1);
  EXPECT_EQ(r["interval_source"], "mixed");
  EXPECT_EQ(r["intervals"]["served"], seen["configurations"]);
  EXPECT_EQ(r["intervals"]["fallback"], inside["configurations"]);
  EXPECT_EQ(seen["interval_source"], "served");
  EXPECT_EQ(inside["interval_source"], "fallback");
  std::size_t mixed = 0;
  for (const json& g : r["groups"]) mixed += g["interval_source"] == "mixed";
  EXPECT_GT(mixed, 0u);
}

}  // namespace
