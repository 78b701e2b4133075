// SPDX-License-Identifier: Apache-2.0
// torp regenerate: shifted measurements replace the model (its answers move by the shift, the
// previous file stays beside it); fewer, unshifted measurements keep the current model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "support/fixtures.hpp"
#include "torp/predictor.hpp"
#include "torp/train/evaluate.hpp"
#include "torp/train/regenerate.hpp"

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

/// A models directory holding a copy of the shipped exp model.
fs::path models_copy(const std::string& name) {
  const auto dir = torp::test::temp_dir(name);
  fs::create_directories(dir / "models/wormhole");
  fs::copy_file(torp::test::source("models/wormhole/exp.json"), dir / "models/wormhole/exp.json");
  return dir;
}

torp::RegenerateOptions quick_options(const fs::path& models) {
  torp::RegenerateOptions o;
  o.models_dir = models;
  torp::Hyperparameters h;  // one small candidate: the test is about the workflow, not the search
  h.hidden = {32, 32};
  h.max_epochs = 300;
  h.patience = 40;
  h.ensemble = 1;
  o.train.candidates = {h};
  o.train.threads = 1;
  return o;
}

bool in_l1(const json& args) { return args["input_tensor"]["memory_config"]["buffer_type"] == "L1"; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(Regenerate, ShiftedMeasurementsReplaceTheModel) {
  const auto dir = models_copy("regen_shift");
  torp::Dataset data = torp::load_dataset(torp::test::source("tests/data/exp_slice.jsonl"));
  for (auto& r : data.rows)
    if (in_l1(r.args)) r.runtime_ns *= 1.25;
  const auto configs = torp::aggregate(data, torp::kDefaultRejectFactor, nullptr);
  const torp::Predictor old_predictor(dir / "models");
  std::vector<double> old_answer;
  for (const auto& c : configs) old_answer.push_back(old_predictor.predict("ttnn.exp", c.args).value().runtime_ns);

  const json device = torp::test::read_json(torp::test::source("devices/wormhole_n300.json"));
  const auto r = torp::regenerate(data, "test", torp::test::read_json(torp::test::source("ops/exp.json")), device,
                                  quick_options(dir / "models"));
  EXPECT_TRUE(r.replaced) << r.comparison.dump(1);
  EXPECT_EQ(r.model_file, dir / "models/wormhole/exp.json");
  EXPECT_TRUE(fs::exists(dir / "models/wormhole/exp.json.previous"));
  EXPECT_EQ(r.comparison["current_model"], "wormhole_n300/exp");
  const json& m = r.comparison["metrics"];
  EXPECT_GT(m["new"]["test_plausible"]["within_10"].get<double>(), m["current"]["test_plausible"]["within_10"].get<double>());
  EXPECT_EQ(torp::load_model(dir / "models/wormhole/exp.json").provenance["regeneration"]["decision"]["replaced"], true);
  std::vector<double> group_l1, group_dram;  // the per-group shifts are the measured ones
  for (const json& g : r.comparison["groups"])
    (g["group"].get<std::string>().find("L1") != std::string::npos ? group_l1 : group_dram)
        .push_back(g["measured_over_current"].get<double>());
  ASSERT_EQ(group_l1.size(), 5u);
  ASSERT_EQ(group_dram.size(), 5u);
  EXPECT_NEAR(median(group_l1), 1.25, 0.03);
  EXPECT_NEAR(median(group_dram), 1.0, 0.03);

  // The directory now answers with the new model (the .previous file is not loaded).
  const torp::Predictor fresh(dir / "models");
  EXPECT_EQ(fresh.models().size(), 1u);
  std::vector<double> l1, dram;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const double ratio = fresh.predict("ttnn.exp", configs[i].args).value().runtime_ns / old_answer[i];
    (in_l1(configs[i].args) ? l1 : dram).push_back(ratio);
  }
  EXPECT_NEAR(median(l1), 1.25, 0.04);
  EXPECT_NEAR(median(dram), 1.0, 0.04);

  // A second replacement would overwrite the .previous file: refused unless allowed.
  EXPECT_THROW(torp::regenerate(data, "test", torp::test::read_json(torp::test::source("ops/exp.json")), device,
                                quick_options(dir / "models")),
               torp::TorpError);
  fs::remove_all(dir);
}

TEST(Regenerate, WorseDataKeepsTheCurrentModel) {
  const auto dir = models_copy("regen_worse");
  const std::string before = torp::test::read_json(dir / "models/wormhole/exp.json").dump();
  // A tenth of the measurements the current model was trained on, unshifted: the new model
  // learns less and the current one stays.
  const torp::Dataset data = torp::load_dataset(torp::test::source("tests/data/exp_slice.jsonl"));
  const json device = torp::test::read_json(torp::test::source("devices/wormhole_n300.json"));
  const auto r = torp::regenerate(data, "test", torp::test::read_json(torp::test::source("ops/exp.json")), device,
                                  quick_options(dir / "models"));
  EXPECT_FALSE(r.replaced) << r.comparison.dump(1);
  EXPECT_FALSE(r.comparison["decision"]["new_at_least_as_good"].get<bool>());
  EXPECT_EQ(torp::test::read_json(dir / "models/wormhole/exp.json").dump(), before);
  EXPECT_FALSE(fs::exists(dir / "models/wormhole/exp.json.previous"));
  EXPECT_FALSE(r.comparison["largest_changes"].empty());
  EXPECT_NE(torp::comparison_html(r.comparison).find("kept the current model"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
