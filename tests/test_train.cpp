// SPDX-License-Identifier: Apache-2.0
// Trainer: backward pass vs finite differences, accuracy on held-out configurations of the exp
// slice, byte-identical model files for a seed, and predictor == trainer predictions.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>

#include "support/fixtures.hpp"
#include "torp/evaluate.hpp"
#include "torp/predictor.hpp"
#include "torp/train.hpp"
#include "train_detail.hpp"

using nlohmann::json;
using namespace torp;

namespace {

/// Largest relative difference between backprop and central finite differences over every
/// parameter of a small random net, for the given loss (huber = 0: MSE).
double max_gradient_error(double huber) {
  detail::Rng rng(42);
  detail::Mlp net = detail::init_mlp(5, {7, 6}, rng);
  for (auto& b : net.b)
    for (double& v : b) v = 0.1 * rng.normal();
  arma::mat X(5, 9);
  for (double& v : X) v = rng.normal();
  arma::rowvec y(9);
  for (double& v : y) v = rng.normal();
  detail::Mlp grad;
  detail::mlp_loss_grad(net, X, y, grad, huber);
  const double h = 1e-6;
  double worst = 0.0;
  auto check = [&](double& param, double analytic) {
    const double keep = param;
    detail::Mlp scratch;
    param = keep + h;
    const double up = detail::mlp_loss_grad(net, X, y, scratch, huber);
    param = keep - h;
    const double down = detail::mlp_loss_grad(net, X, y, scratch, huber);
    param = keep;
    const double numeric = (up - down) / (2 * h);
    worst = std::max(worst, std::fabs(numeric - analytic) / std::max(std::fabs(numeric) + std::fabs(analytic), 1e-4));
  };
  for (std::size_t l = 0; l < net.W.size(); ++l) {
    for (arma::uword i = 0; i < net.W[l].n_elem; ++i) check(net.W[l][i], grad.W[l][i]);
    for (arma::uword i = 0; i < net.b[l].n_elem; ++i) check(net.b[l][i], grad.b[l][i]);
  }
  return worst;
}

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

/// A small, fast search for the slice (the recipe's own search is sized for full datasets).
TrainOptions slice_options(int threads) {
  TrainOptions o;
  o.seed = 7;
  o.threads = threads;
  Hyperparameters a;
  a.hidden = {32, 32};
  a.learning_rate = 0.003;
  a.batch_size = 32;
  a.max_epochs = 300;
  a.patience = 80;
  a.huber = 0.02;
  Hyperparameters b = a;
  b.hidden = {16, 16};
  o.candidates = {a, b};
  o.dataset_file = "tests/data/exp_slice.jsonl";
  return o;
}

class TrainSlice : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new Dataset(load_dataset(test::source_dir() / "tests/data/exp_slice.jsonl"));
    spec_ = new json(test::read_json(test::source_dir() / "ops/exp.json"));
    device_ = new json(test::read_json(test::source_dir() / "devices/wormhole_n300.json"));
    report_ = new TrainReport(train(*data_, *spec_, *device_, slice_options(0), "slice"));
  }
  static void TearDownTestSuite() {
    delete report_;
    delete device_;
    delete spec_;
    delete data_;
  }
  static Dataset* data_;
  static json* spec_;
  static json* device_;
  static TrainReport* report_;
};
Dataset* TrainSlice::data_ = nullptr;
json* TrainSlice::spec_ = nullptr;
json* TrainSlice::device_ = nullptr;
TrainReport* TrainSlice::report_ = nullptr;

}  // namespace

TEST(TrainGradient, BackwardMatchesFiniteDifferencesMse) { EXPECT_LT(max_gradient_error(0.0), 1e-6); }

TEST(TrainGradient, BackwardMatchesFiniteDifferencesHuber) {
  // A threshold inside the residuals' range exercises both the quadratic and the linear part.
  EXPECT_LT(max_gradient_error(0.5), 1e-6);
}

TEST(TrainRng, StreamIsFixedByTheCode) {
  detail::Rng a(123), b(123), c(124);
  const std::uint64_t first = a.next();
  EXPECT_EQ(first, b.next());
  EXPECT_NE(first, c.next());
  for (int i = 0; i < 1000; ++i) {
    const double u = a.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_LT(a.below(7), 7u);
  }
}

TEST_F(TrainSlice, ReachesAccuracyOnHeldOutConfigurations) {
  const json& m = report_->metrics;
  ASSERT_TRUE(m.contains("test_plausible"));
  const json& t = m["test_plausible"];
  ASSERT_GE(t["n"].get<int>(), 30);
  // Measured with seed 7: 78.0% within ±10%, median APE 1.38%, Spearman 0.994 on 41 plausible test
  // configurations (only ~180 training configurations over 10 dtype x buffer groups; seeds 8 and 9
  // give 82% / 1.2% and 73% / 2.3%). The full dataset reaches ~90% / 0.6%.
  EXPECT_GE(t["within_10"].get<double>(), 0.70);
  EXPECT_LE(t["median_ape"].get<double>(), 2.5);
  EXPECT_GE(t["spearman"].get<double>(), 0.98);
  EXPECT_EQ(m["not_served"]["test"].get<int>(), 0);
}

TEST_F(TrainSlice, ProvenanceRecordsDataSplitSearchAndOutliers) {
  const json& p = report_->model.provenance;
  EXPECT_EQ(p["device"], "wormhole_n300");
  EXPECT_EQ(p["source_data"]["sha256"], "slice");
  EXPECT_EQ(p["source_data"]["rows"].get<std::size_t>(), data_->rows.size());
  EXPECT_EQ(p["seed"].get<std::uint64_t>(), 7u);
  EXPECT_EQ(p["search"]["candidates"].size(), 2u);
  EXPECT_TRUE(p["outliers"]["plausibility"].contains("train_excluded"));
  EXPECT_EQ(p["trained_by"], "torp train");
  EXPECT_EQ(report_->model.op_spec, *spec_);
  EXPECT_EQ(report_->model.device, *device_);
  EXPECT_TRUE(report_->model.baseline.has_value());
  EXPECT_EQ(report_->model.priority, 10);
}

TEST_F(TrainSlice, SameSeedGivesByteIdenticalModelFilesWhateverTheThreads) {
  const auto dir = test::temp_dir("train_determinism");
  save_model(report_->model, dir / "a.json", false);
  TrainReport again = train(*data_, *spec_, *device_, slice_options(1), "slice");
  save_model(again.model, dir / "b.json", false);
  EXPECT_EQ(read_bytes(dir / "a.json"), read_bytes(dir / "b.json"));
  TrainOptions other = slice_options(0);
  other.seed = 8;
  TrainReport different = train(*data_, *spec_, *device_, other, "slice");
  save_model(different.model, dir / "c.json", false);
  EXPECT_NE(read_bytes(dir / "a.json"), read_bytes(dir / "c.json"));
}

TEST_F(TrainSlice, PredictorServesTheModelAsTheTrainerPredicts) {
  const auto dir = test::temp_dir("train_predictor");
  save_model(report_->model, dir / "exp.json", false);
  const ModelFile loaded = load_model(dir / "exp.json");
  Predictor p(dir);
  const auto configs = aggregate(*data_, kDefaultRejectFactor, nullptr);
  const std::vector<double> own = predict_configurations(report_->model, configs);
  const std::vector<double> reloaded = predict_configurations(loaded, configs);
  ASSERT_EQ(own.size(), configs.size());
  for (std::size_t i = 0; i < configs.size(); ++i) {
    ASSERT_FALSE(std::isnan(own[i])) << configs[i].key;
    const json query = {{"op", "ttnn.exp"}, {"args", configs[i].args}};
    const auto r = p.predict(json::parse(query.dump()));  // through JSON text, as a client sends it
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_NEAR(r.value().runtime_ns / own[i], 1.0, 1e-9) << configs[i].key;
    EXPECT_NEAR(reloaded[i] / own[i], 1.0, 1e-12) << configs[i].key;
    EXPECT_EQ(r.value().model_id, report_->model.id);
  }
}

TEST_F(TrainSlice, RejectsAMissingRecipe) {
  TrainOptions o = slice_options(1);
  o.recipe = "no_such_recipe";
  try {
    train(*data_, *spec_, *device_, o, "slice");
    FAIL() << "expected TorpError";
  } catch (const TorpError& e) {
    EXPECT_EQ(e.error().code, ErrorCode::training);
    EXPECT_NE(std::string(e.what()).find("no_such_recipe"), std::string::npos);
  }
}
