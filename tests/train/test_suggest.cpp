// SPDX-License-Identifier: Apache-2.0
// torp suggest: probe vectors in the sweep framework's format that import back through
// from-sweep, and that drift then judges.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "support/fixtures.hpp"
#include "torp/train/drift.hpp"
#include "torp/train/suggest.hpp"
#include "torp/train/sweep.hpp"

namespace {

using json = nlohmann::json;

json first_args(const std::string& dataset) {
  return torp::load_dataset(torp::test::source(dataset)).rows.at(0).args;
}

TEST(SweepInverse, ExpVectorMapsBackToItsArguments) {
  const json spec = torp::test::read_json(torp::test::source("ops/exp.json"));
  const json args = first_args("tests/data/exp_slice.jsonl");
  const auto v = torp::sweep_parameters_of(spec, args);
  EXPECT_EQ(v["input_shape"], args["input_tensor"]["logical_shape"]);
  EXPECT_EQ(v["input_a_dtype"], "DataType." + args["input_tensor"]["dtype"].get<std::string>());
  EXPECT_EQ(v["input_a_layout"], "Layout.TILE");
  EXPECT_EQ(v["input_a_memory_config"]["data"]["buffer_type"], args["input_tensor"]["memory_config"]["buffer_type"]);
  EXPECT_TRUE(v["output_memory_config"].is_null());  // the exp data never recorded it
  EXPECT_EQ(v["use_safe_nums"], true);               // a constant of the inverse
  EXPECT_EQ(torp::sweep_vector_args(spec, json(v)), args);
}

TEST(SweepInverse, MatmulUsesTheExplicitInverse) {
  const json spec = torp::test::read_json(torp::test::source("ops/matmul.json"));
  const json args = first_args("data/matmul_height_sharded/matmul_height_sharded_wormhole.jsonl");
  const auto v = torp::sweep_parameters_of(spec, args);
  const auto& a = args["input_tensor_a"]["logical_shape"];
  const auto& b = args["input_tensor_b"]["logical_shape"];
  EXPECT_EQ(v["matmul_specs"], json::parse("[[], [" + a[0].dump() + ", " + a[1].dump() + ", " + b[1].dump() + "], false]"));
  EXPECT_EQ(v["input_a_dtype"], "DataType.BFLOAT16");  // not recorded by the data: the inverse's default
  const json forward = torp::sweep_vector_args(spec, json(v));
  EXPECT_EQ(forward["input_tensor_a"]["memory_config"], args["input_tensor_a"]["memory_config"]);
  EXPECT_EQ(forward["input_tensor_b"]["logical_shape"], b);
}

TEST(SweepInverse, ArgumentsTheVectorCannotReproduceAreAnError) {
  const json spec = torp::test::read_json(torp::test::source("ops/matmul.json"));
  json args = first_args("data/matmul_height_sharded/matmul_height_sharded_wormhole.jsonl");
  args["input_tensor_a"]["logical_shape"] = {2, 640, 32};  // a batch the inverse does not write
  try {
    (void)torp::sweep_parameters_of(spec, args);
    FAIL() << "expected an error";
  } catch (const torp::TorpError& e) {
    EXPECT_EQ(e.error().code, torp::ErrorCode::dataset);
    EXPECT_NE(std::string(e.what()).find("/input_tensor_a/logical_shape"), std::string::npos) << e.what();
  }
}

/// An R1 results_export record for a vector, PASS with the given kernel duration.
json result_record(const json& vector, double ns) {
  return {{"sweep_name", vector["sweep_name"]}, {"suite_name", vector["suite_name"]},
          {"vector_id", vector["input_hash"]},   {"input_hash", vector["input_hash"]},
          {"status", "TestStatus.PASS"},         {"start_time_ts", "2026-11-29 10:00:00.000000"},
          {"end_time_ts", "2026-11-29 10:00:01.000000"},
          {"device_perf", {{"DEVICE KERNEL DURATION [ns]", std::to_string(static_cast<long long>(ns))}}},
          {"git_hash", "abcdef12"}};
}

TEST(Suggest, FiftyVectorsImportBackAndRevealTheShift) {
  const auto dir = torp::test::temp_dir("suggest");
  torp::SuggestOptions o;
  o.op = "exp";
  o.models_dir = torp::test::source("models");
  o.pool = torp::test::source("data/exp/exp_wormhole.jsonl");
  o.out = dir / "eltwise.unary.exp.exp.json";
  const json r = torp::suggest(o);
  EXPECT_EQ(r["model"], "wormhole_n300/exp");
  EXPECT_EQ(r["count"], 50);
  EXPECT_EQ(r["groups"].size(), 10u);
  EXPECT_THROW(torp::suggest(o), torp::TorpError);  // exists: not overwritten without asking

  // "Measure" the vectors: each configuration's median from the pool, L1 ones 25% slower.
  const torp::Dataset pool = torp::load_dataset(*o.pool);
  std::map<std::string, double> label;
  for (const auto& c : torp::aggregate(pool, torp::kDefaultRejectFactor, nullptr)) label[c.key] = c.label_ns;
  const json spec = torp::test::read_json(torp::test::source("ops/exp.json"));
  const json device = torp::test::read_json(torp::test::source("devices/wormhole_n300.json"));
  const json vectors = torp::test::read_json(o.out);
  ASSERT_EQ(vectors.size(), 1u);
  json results = json::array();
  for (const auto& [hash, v] : vectors["torp_probe"].items()) {
    EXPECT_EQ(v["input_hash"], hash);
    EXPECT_EQ(v["validity"], "VALID");
    const json args = torp::sweep_vector_args(spec, v);
    const double slower = args["input_tensor"]["memory_config"]["buffer_type"] == "L1" ? 1.25 : 1.0;
    results.push_back(result_record(v, label.at(torp::configuration_key(args)) * slower));
  }
  std::ofstream(dir / "results.json") << results.dump();
  torp::SweepImportReport rep;
  const torp::Dataset imported =
      torp::import_sweep(o.out, {dir / "results.json"}, spec, device, {}, &rep).to_dataset();
  EXPECT_EQ(rep.rows, 50u);
  const auto configs = torp::aggregate(imported, torp::kDefaultRejectFactor, nullptr);
  EXPECT_EQ(configs.size(), 50u);
  const json d = torp::drift(imported, o.models_dir, {});
  for (const json& m : d["ops"])
    if (m["model"] == "wormhole_n300/exp") EXPECT_EQ(m["verdict"], "stale") << m.dump(1);
  std::filesystem::remove_all(dir);
}

}  // namespace
