// SPDX-License-Identifier: Apache-2.0
// Evaluation: metrics on hand-computed cases, the split by configuration, the plausibility rule,
// the robust fits and the HTML report.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "support/fixtures.hpp"
#include "torp/train/evaluate.hpp"
#include "train/train_detail.hpp"

using nlohmann::json;
using namespace torp;

namespace {

std::vector<Configuration> slice_configs() {
  return aggregate(load_dataset(test::source_dir() / "tests/data/exp_slice.jsonl"), kDefaultRejectFactor, nullptr);
}

Encoder exp_encoder() {
  return Encoder(test::read_json(test::source_dir() / "ops/exp.json"),
                 test::read_json(test::source_dir() / "devices/wormhole_n300.json"));
}

}  // namespace

TEST(EvaluateMetrics, HandComputedCase) {
  // APEs 10, 10, 0, 50 (%); measured mean 250.
  const Metrics m = compute_metrics({110, 180, 300, 600}, {100, 200, 300, 400});
  EXPECT_EQ(m.n, 4u);
  EXPECT_DOUBLE_EQ(m.within_10, 0.75);  // exactly 10% off counts as within
  EXPECT_DOUBLE_EQ(m.within_25, 0.75);
  EXPECT_NEAR(m.median_ape, 10.0, 1e-9);
  EXPECT_NEAR(m.mean_ape, 17.5, 1e-9);
  EXPECT_NEAR(m.p90_ape, 38.0, 1e-9);  // 10 + 0.7 * (50 - 10)
  EXPECT_NEAR(m.r2, 1.0 - 40500.0 / 50000.0, 1e-12);
  EXPECT_NEAR(m.spearman, 1.0, 1e-12);
}

TEST(EvaluateMetrics, SpearmanAveragesTiedRanks) {
  // Ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
  EXPECT_NEAR(compute_metrics({1, 2, 2, 3}, {1, 2, 3, 4}).spearman, std::sqrt(0.9), 1e-12);
  EXPECT_NEAR(compute_metrics({4, 3, 2, 1}, {1, 2, 3, 4}).spearman, -1.0, 1e-12);
}

TEST(EvaluateMetrics, EmptyAndJson) {
  const Metrics m = compute_metrics({}, {});
  EXPECT_EQ(m.n, 0u);
  const json j = to_json(m);
  EXPECT_EQ(j["n"], 0);
  EXPECT_TRUE(j["within_10"].is_null());
  EXPECT_THROW(compute_metrics({1.0}, {}), TorpError);
  EXPECT_DOUBLE_EQ(to_json(compute_metrics({1, 2}, {1, 2}))["median_ape"].get<double>(), 0.0);
}

TEST(EvaluateSplit, DeterministicSizedSortedAndComplete) {
  const Split a = split_by_configuration(1000, 5, 0.15, 0.2);
  const Split b = split_by_configuration(1000, 5, 0.15, 0.2);
  const Split c = split_by_configuration(1000, 6, 0.15, 0.2);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(a.test, c.test);
  EXPECT_EQ(a.test.size(), 200u);
  EXPECT_EQ(a.validation.size(), 150u);
  EXPECT_EQ(a.train.size(), 650u);
  std::vector<std::size_t> all;
  for (const auto* part : {&a.train, &a.validation, &a.test}) {
    EXPECT_TRUE(std::is_sorted(part->begin(), part->end()));
    all.insert(all.end(), part->begin(), part->end());
  }
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i);  // disjoint and complete
  EXPECT_THROW(split_by_configuration(10, 1, 0.5, 0.5), TorpError);
  EXPECT_THROW(split_by_configuration(10, 1, -0.1, 0.2), TorpError);
}

TEST(EvaluateSplit, RepeatsOfAConfigurationNeverCrossParts) {
  const auto configs = slice_configs();
  ASSERT_GT(configs.size(), 100u);
  const Split s = split_by_configuration(configs.size(), 1, 0.15, 0.15);
  std::set<std::string> train, val, test;
  for (std::size_t i : s.train) train.insert(configs[i].key);
  for (std::size_t i : s.validation) val.insert(configs[i].key);
  for (std::size_t i : s.test) test.insert(configs[i].key);
  EXPECT_EQ(train.size() + val.size() + test.size(), configs.size());  // keys unique, parts disjoint
  for (const auto& k : test) {
    EXPECT_EQ(train.count(k), 0u);
    EXPECT_EQ(val.count(k), 0u);
  }
}

TEST(EvaluatePlausibility, FlagsAnInjected10xLabel) {
  auto configs = slice_configs();
  const Encoder enc = exp_encoder();
  const Split s = split_by_configuration(configs.size(), 3, 0.15, 0.15);
  const PlausibilityResult before = judge_plausibility(configs, enc, s.train);
  ASSERT_TRUE(before.defined);
  EXPECT_DOUBLE_EQ(before.factor, 2.0);
  // Pick a plausible uint16 configuration (clean data) in training and one in test.
  auto pick = [&](const std::vector<std::size_t>& part) {
    for (std::size_t i : part)
      if (before.plausible[i] && configs[i].args["input_tensor"]["dtype"] == "UINT16") return i;
    return part.front();
  };
  const std::size_t tr = pick(s.train), te = pick(s.test);
  ASSERT_TRUE(before.plausible[tr] && before.plausible[te]);
  configs[tr].label_ns *= 10;
  configs[te].label_ns *= 10;
  const PlausibilityResult after = judge_plausibility(configs, enc, s.train);
  EXPECT_FALSE(after.plausible[tr]);
  EXPECT_FALSE(after.plausible[te]);
  std::size_t changed = 0;
  for (std::size_t i = 0; i < configs.size(); ++i) changed += before.plausible[i] != after.plausible[i] ? 1 : 0;
  EXPECT_EQ(changed, 2u);  // the robust fit does not move for one bad label
  EXPECT_FALSE(after.fits.empty());
}

TEST(EvaluatePlausibility, NoRuleMeansAllPlausible) {
  json spec = test::read_json(test::source_dir() / "ops/exp.json");
  spec.erase("plausibility");
  const Encoder enc(spec, test::read_json(test::source_dir() / "devices/wormhole_n300.json"));
  const auto configs = slice_configs();
  const PlausibilityResult r = judge_plausibility(configs, enc, {0, 1, 2});
  EXPECT_FALSE(r.defined);
  EXPECT_EQ(std::count(r.plausible.begin(), r.plausible.end(), true), static_cast<long>(configs.size()));
}

TEST(EvaluateFit, NnlsKeepsCoefficientsNonNegative) {
  // Unconstrained least squares would give y = 4 - 1 * x2; with c >= 0 the x2 column drops out.
  arma::mat A = {{1, 0}, {1, 1}, {1, 2}, {1, 3}};
  arma::vec y = {4, 3, 2, 1};
  const arma::vec c = detail::nnls(A, y);
  EXPECT_NEAR(c[0], 2.5, 1e-12);
  EXPECT_DOUBLE_EQ(c[1], 0.0);
}

TEST(EvaluateFit, LogLadRecoversTheLawDespiteShiftedLabels) {
  // y = 1500 + 120 x, with every fifth label shifted 3x up or down.
  arma::mat A(50, 2, arma::fill::ones);
  arma::vec y(50);
  for (arma::uword i = 0; i < 50; ++i) {
    A(i, 1) = 1.0 + static_cast<double>(i);
    y[i] = 1500 + 120 * A(i, 1);
    if (i % 5 == 0) y[i] *= (i % 10 == 0) ? 3.0 : 1.0 / 3.0;
  }
  const arma::vec c = detail::fit_log_lad(A, y);
  EXPECT_NEAR(c[0], 1500, 1.5);
  EXPECT_NEAR(c[1], 120, 0.12);
}

TEST(EvaluateReport, HtmlIsSelfContainedAndPlotsEveryTestConfiguration) {
  ModelFile m = test::tiny_exp_model();
  const Dataset d = load_dataset(test::source_dir() / "tests/data/exp_slice.jsonl");
  const Evaluation ev = evaluate_model(m, d, EvaluationOptions{});
  std::size_t served = 0;
  for (std::size_t i : ev.split.test) served += std::isnan(ev.predicted[i]) ? 0 : 1;
  ASSERT_GT(served, 0u);
  const std::string html = html_report(m, ev, "exp_slice.jsonl");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://", 0), html.find("http://www.w3.org/2000/svg"));  // no external resources
  std::size_t circles = 0;
  for (std::size_t p = html.find("<circle"); p != std::string::npos; p = html.find("<circle", p + 1)) ++circles;
  EXPECT_EQ(circles, served);
  EXPECT_NE(html.find("test, plausible labels"), std::string::npos);
  const std::string table = metrics_table(ev.metrics);
  EXPECT_NE(table.find("median APE"), std::string::npos);
  EXPECT_NE(table.find("test, all labels"), std::string::npos);
}

TEST(EvaluateModel, OptionsComeFromProvenance) {
  ModelFile m = test::tiny_exp_model();
  m.provenance["seed"] = 99;
  m.provenance["split"] = {{"validation_fraction", 0.1}, {"test_fraction", 0.3}};
  m.provenance["outliers"] = {{"reject_factor", 2.0}};
  const EvaluationOptions o = evaluation_options(m);
  EXPECT_EQ(o.seed, 99u);
  EXPECT_DOUBLE_EQ(o.validation_fraction, 0.1);
  EXPECT_DOUBLE_EQ(o.test_fraction, 0.3);
  EXPECT_DOUBLE_EQ(o.reject_factor, 2.0);
  const EvaluationOptions d = evaluation_options(test::tiny_exp_model());
  EXPECT_EQ(d.seed, 1u);
}

TEST(EvaluateIntervals, CoverageAndWidthPerDomainAreTheServedIntervals) {
  ModelFile m = test::tiny_exp_model();
  m.input_range = std::vector<std::array<double, 2>>{{0.0, 1.0}, {0.0, 1.0}, {0.0, 1.0}, {0.0, 1.0}};
  Calibration c;
  c.domains["inside"] = {-0.2, 0.3, 10};
  c.domains["outside"] = {-0.5, 0.6, 10};
  m.calibration = c;
  const Dataset d = load_dataset(test::source_dir() / "tests/data/exp_slice.jsonl");
  const Evaluation ev = evaluate_model(m, d, EvaluationOptions{});
  std::map<std::string, std::pair<std::size_t, std::size_t>> by_hand;  // domain -> (n, covered)
  for (std::size_t i : ev.split.test) {
    const ServedAnswer& a = ev.served[i];
    if (std::isnan(a.runtime_ns) || !ev.plausibility.plausible[i]) continue;
    ASSERT_TRUE(a.interval_ns.has_value());
    EXPECT_LE((*a.interval_ns)[0], a.runtime_ns);
    EXPECT_GE((*a.interval_ns)[1], a.runtime_ns);
    auto& t = by_hand[a.domain];
    ++t.first;
    t.second += (*a.interval_ns)[0] <= ev.configs[i].label_ns && ev.configs[i].label_ns <= (*a.interval_ns)[1];
  }
  ASSERT_FALSE(by_hand.empty());
  ASSERT_EQ(ev.intervals.size(), by_hand.size());
  for (const auto& [domain, t] : by_hand) {
    const json& j = ev.intervals.at(domain);
    EXPECT_EQ(j["n"].get<std::size_t>(), t.first);
    EXPECT_DOUBLE_EQ(j["coverage"].get<double>(), static_cast<double>(t.second) / static_cast<double>(t.first));
    const double width = domain == "inside" ? std::exp(0.3) - std::exp(-0.2) : std::exp(0.6) - std::exp(-0.5);
    EXPECT_NEAR(j["median_width"].get<double>(), width, 1e-12);
  }
  EXPECT_NE(interval_table(ev.intervals).find("coverage"), std::string::npos);
  const std::string html = html_report(m, ev, "exp_slice.jsonl");
  EXPECT_NE(html.find("Largest test errors among plausible labels"), std::string::npos);
  EXPECT_NE(html.find("Prediction intervals"), std::string::npos);
}
