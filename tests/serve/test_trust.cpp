// SPDX-License-Identifier: Apache-2.0
// What an answer says about its trust: domain (seen / inside / outside / unknown), the outside
// list, the calibrated interval, bounded extrapolation, ignored arguments; and model choice by
// device, fall-through when a model cannot bind the arguments, and the JSON-text overload.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "support/fixtures.hpp"
#include "torp/encoder.hpp"
#include "torp/json_lines.hpp"
#include "torp/predictor.hpp"

using nlohmann::json;
using namespace torp;

namespace {

json exp_args(const std::vector<int>& shape, int dtype = 0, int buffer = 0) {
  return {{"input_tensor", test::full_tensor(shape, dtype, buffer)}};
}

double feature(const ModelFile& m, const json& args, const std::string& name) {
  const Encoder enc(m.op_spec, m.device);
  auto v = enc.encode(args, std::vector<std::string>{name});
  EXPECT_TRUE(v.ok());
  return v.value()[0];
}

/// The tiny model with trust data: log_tiles_per_core trained on [0, 3], the flags on [0, 1].
ModelFile trusted_model(const std::string& id = "test/exp") {
  ModelFile m = test::tiny_exp_model(id);
  m.input_range = std::vector<std::array<double, 2>>{{0.0, 3.0}, {0.0, 1.0}, {0.0, 1.0}, {0.0, 1.0}};
  m.correction_limit = std::array<double, 2>{-0.5, 0.5};
  Calibration c;
  c.method = "test bands";
  c.domains["inside"] = {-0.1, 0.2, 100};
  c.domains["outside"] = {-0.3, 0.4, 60};
  m.calibration = c;
  return m;
}

Prediction ok(const PredictResult& r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.value();
}

}  // namespace

TEST(Trust, InsideAnswersCarryTheInsideBandAndStayBitIdentical) {
  const Predictor plain(std::vector<ModelFile>{test::tiny_exp_model()});
  const Predictor trusted(std::vector<ModelFile>{trusted_model()});
  const json args = exp_args({1, 1, 64, 128});
  ASSERT_LT(feature(trusted_model(), args, "log_tiles_per_core"), 3.0);
  const PredictResult a = plain.predict("ttnn.exp", args), b = trusted.predict("ttnn.exp", args);
  const Prediction p = ok(b);
  EXPECT_EQ(ok(a).runtime_ns, p.runtime_ns);  // inside the range: clamping changes nothing
  EXPECT_EQ(p.domain, Domain::inside);
  EXPECT_TRUE(p.outside.empty());
  ASSERT_TRUE(p.interval_ns.has_value());
  EXPECT_EQ((*p.interval_ns)[0], p.runtime_ns * std::exp(-0.1));
  EXPECT_EQ((*p.interval_ns)[1], p.runtime_ns * std::exp(0.2));
  EXPECT_LE((*p.interval_ns)[0], p.runtime_ns);
  EXPECT_GE((*p.interval_ns)[1], p.runtime_ns);
  EXPECT_TRUE(p.interval_note.empty());
  EXPECT_EQ(ok(a).domain, Domain::unknown);  // no input ranges in the file
  EXPECT_FALSE(ok(a).interval_ns.has_value());
  EXPECT_EQ(ok(a).interval_note, "the model file has no input ranges: domain unknown");
}

TEST(Trust, HugeInputsAreOutsideListedClampedAndBoundedByTheBaseline) {
  const ModelFile m = trusted_model();
  const Predictor p(std::vector<ModelFile>{m});
  for (int side : {2048, 8192, 32768}) {  // up to 2 GB of bfloat16: within the device DRAM
    const json args = exp_args({1, 1, side, side});
    const double x = feature(m, args, "log_tiles_per_core");
    ASSERT_GT(x, 3.0);
    const Prediction r = ok(p.predict("ttnn.exp", args));
    EXPECT_EQ(r.domain, Domain::outside);
    ASSERT_EQ(r.outside.size(), 1u);
    EXPECT_EQ(r.outside[0].feature, "log_tiles_per_core");
    EXPECT_EQ(r.outside[0].value, x);
    EXPECT_EQ(r.outside[0].trained, (std::array<double, 2>{0.0, 3.0}));
    const double baseline = 1500.0 + 120.0 * feature(m, args, "tiles_per_core");
    EXPECT_TRUE(std::isfinite(r.runtime_ns));
    EXPECT_GE(r.runtime_ns, baseline * std::exp(-0.5) * (1 - 1e-12));
    EXPECT_LE(r.runtime_ns, baseline * std::exp(0.5) * (1 + 1e-12));
    ASSERT_TRUE(r.interval_ns.has_value());
    EXPECT_EQ((*r.interval_ns)[0], r.runtime_ns * std::exp(-0.3));  // the outside band
    EXPECT_EQ((*r.interval_ns)[1], r.runtime_ns * std::exp(0.4));
  }
}

TEST(Trust, OutsideWithoutItsOwnBandBorrowsTheInsideBandWidened) {
  ModelFile m = trusted_model();
  m.calibration->domains.erase("outside");
  const Prediction r = ok(Predictor(std::vector<ModelFile>{m}).predict("ttnn.exp", exp_args({1, 1, 8192, 8192})));
  ASSERT_EQ(r.domain, Domain::outside);
  ASSERT_TRUE(r.interval_ns.has_value());
  EXPECT_EQ((*r.interval_ns)[0], r.runtime_ns * std::exp(2 * -0.1));
  EXPECT_EQ((*r.interval_ns)[1], r.runtime_ns * std::exp(2 * 0.2));
}

TEST(Trust, ASeenLookupHitMakesTheAnswerSeen) {
  ModelFile m = trusted_model();
  const json measured = exp_args({1, 1, 64, 128}), other = exp_args({1, 1, 64, 256});
  ResidualMemory mem;
  mem.key = {"dim_2", "dim_3"};
  mem.lookups = {{"same", {"dim_2", "dim_3"}, true}};
  mem.entries = {{{64.0, 128.0}, 0.05, 3}};
  m.memory = mem;
  m.calibration->domains["seen"] = {-0.02, 0.03, 200};
  const Predictor p(std::vector<ModelFile>{m});
  const Prediction r = ok(p.predict("ttnn.exp", measured));
  EXPECT_EQ(r.domain, Domain::seen);
  EXPECT_TRUE(r.memory_found);
  EXPECT_EQ((*r.interval_ns)[1], r.runtime_ns * std::exp(0.03));
  const Prediction q = ok(p.predict("ttnn.exp", other));
  EXPECT_EQ(q.domain, Domain::inside);
  EXPECT_FALSE(q.memory_found);
  // A lookup not marked seen finds the entry but does not make the answer seen.
  m.memory->lookups[0].seen = false;
  const Prediction n = ok(Predictor(std::vector<ModelFile>{m}).predict("ttnn.exp", measured));
  EXPECT_TRUE(n.memory_found);
  EXPECT_EQ(n.domain, Domain::inside);
}

TEST(Trust, CalibrationGroupsPickTheBandByDomainAndGroupElseTheDomainWideBand) {
  ModelFile m = trusted_model();
  m.calibration->group = "is_32bit_class";
  Calibration::Group wide32{1.0, {}}, narrow16{0.0, {}};
  wide32.domains["inside"] = {-0.4, 0.5, 80};  // no outside band: the domain-wide one
  narrow16.domains["outside"] = {-0.05, 0.06, 40};
  m.calibration->groups = {narrow16, wide32};
  const Predictor p(std::vector<ModelFile>{m});
  constexpr int kBfloat16 = 0, kFloat32 = 1, kUint32 = 2;
  auto band = [&](const json& args, Domain d) {
    const Prediction r = ok(p.predict("ttnn.exp", args));
    EXPECT_EQ(r.domain, d);
    EXPECT_TRUE(r.interval_ns.has_value());
    return std::array<double, 2>{(*r.interval_ns)[0] / r.runtime_ns, (*r.interval_ns)[1] / r.runtime_ns};
  };
  auto near = [](std::array<double, 2> got, double lo, double hi) {
    EXPECT_NEAR(got[0], std::exp(lo), 1e-12);
    EXPECT_NEAR(got[1], std::exp(hi), 1e-12);
  };
  const std::vector<int> small{1, 1, 64, 128}, huge{1, 1, 8192, 8192};
  near(band(exp_args(small, kFloat32), Domain::inside), -0.4, 0.5);   // the 32-bit group's own
  near(band(exp_args(small, kUint32), Domain::inside), -0.4, 0.5);
  near(band(exp_args(small, kBfloat16), Domain::inside), -0.1, 0.2);  // 16-bit: no inside band of its own
  near(band(exp_args(huge, kBfloat16), Domain::outside), -0.05, 0.06);
  near(band(exp_args(huge, kFloat32), Domain::outside), -0.3, 0.4);
  // A key without a group entry answers with the domain-wide bands.
  m.calibration->groups = {wide32};
  near([&] {
    const Prediction r = ok(Predictor(std::vector<ModelFile>{m}).predict("ttnn.exp", exp_args(huge, kBfloat16)));
    return std::array<double, 2>{(*r.interval_ns)[0] / r.runtime_ns, (*r.interval_ns)[1] / r.runtime_ns};
  }(), -0.3, 0.4);
  // The group feature must exist in the model's op spec.
  m.calibration->group = "no_such_feature";
  EXPECT_THROW(Predictor(std::vector<ModelFile>{m}), TorpError);
}

TEST(Trust, ImportedModelsAreUnknownWithoutInterval) {
  const Predictor p(test::source("models"));
  const Prediction r = ok(p.predict("ttnn.exp", exp_args({1, 1, 1024, 1024}), "reference/exp"));
  EXPECT_EQ(r.domain, Domain::unknown);
  EXPECT_FALSE(r.interval_ns.has_value());
  EXPECT_EQ(r.interval_note, "imported model: no held-out data");
}

TEST(Trust, Version1FilesAnswerWithoutIntervalSayingWhy) {
  const auto dir = test::temp_dir("trust_v1");
  std::filesystem::copy_file(test::source("tests/data/models_v1/exp.json"), dir / "exp.json");
  const Predictor p(dir);
  const Prediction r = ok(p.predict("ttnn.exp", exp_args({1, 1, 64, 128})));
  EXPECT_FALSE(r.interval_ns.has_value());
  EXPECT_EQ(r.interval_note, "model file format 1 has no calibration");
  std::filesystem::remove_all(dir);
}

TEST(Trust, ExpIgnoresTheOutputMemoryConfigAndSaysSo) {
  const Predictor p(test::source("models"));
  json args = exp_args({1, 1, 64, 128});
  const Prediction without = ok(p.predict("ttnn.exp", args));
  EXPECT_TRUE(without.ignored.empty());
  args["memory_config"] = {{"buffer_type", "L1"}, {"memory_layout", "HEIGHT_SHARDED"}};
  const Prediction with = ok(p.predict("ttnn.exp", args));
  ASSERT_EQ(with.ignored.size(), 1u);
  EXPECT_EQ(with.ignored[0], "/args/memory_config");
  EXPECT_EQ(with.runtime_ns, without.runtime_ns);
  args["memory_config"] = nullptr;  // null is not given
  EXPECT_TRUE(ok(p.predict("ttnn.exp", args)).ignored.empty());
}

TEST(Trust, JsonLinesAnswersCarryTheTrustFields) {
  const Predictor p(std::vector<ModelFile>{trusted_model()});
  json args = exp_args({1, 1, 8192, 8192});
  args["memory_config"] = {{"buffer_type", "DRAM"}, {"memory_layout", "INTERLEAVED"}};
  std::string line;
  append_json_answer(line, p.predict("ttnn.exp", args));
  const json a = json::parse(line);
  EXPECT_EQ(a["domain"], "outside");
  EXPECT_EQ(a["outside"][0]["feature"], "log_tiles_per_core");
  EXPECT_EQ(a["outside"][0]["trained"], json({0.0, 3.0}));
  EXPECT_EQ(a["ignored"], json({"/args/memory_config"}));
  EXPECT_LE(a["interval_ns"][0].get<double>(), a["runtime_ns"].get<double>());
  EXPECT_GE(a["interval_ns"][1].get<double>(), a["runtime_ns"].get<double>());
  EXPECT_FALSE(a.contains("interval_note"));
  line.clear();
  append_json_answer(line, Predictor(std::vector<ModelFile>{test::tiny_exp_model()}).predict("ttnn.exp", exp_args({1, 1, 64, 64})));
  const json b = json::parse(line);
  EXPECT_FALSE(b.contains("interval_ns") || b.contains("outside") || b.contains("ignored"));
  EXPECT_EQ(b["interval_note"], "the model file has no input ranges: domain unknown");
}

namespace {

ModelFile on_device(const std::string& id, const std::string& device, int priority = 0) {
  ModelFile m = test::tiny_exp_model(id);
  m.device["name"] = device;
  m.priority = priority;
  Baseline b = *m.baseline;
  b.groups[0].intercept = device == "wormhole_n300" ? 1500.0 : 900.0;  // distinct answers
  m.baseline = b;
  return m;
}

}  // namespace

TEST(Trust, TheQueryDeviceChoosesAmongModelsAndTheDefaultDeviceComesFirst) {
  // "a/..." sorts before "z/...": without the default-device rule the other device would answer.
  const Predictor p(std::vector<ModelFile>{on_device("z/exp", "wormhole_n300"), on_device("a/exp", "blackhole_p150")});
  const json args = exp_args({1, 1, 64, 128});
  EXPECT_EQ(ok(p.predict("ttnn.exp", args)).model_id, "z/exp");
  EXPECT_EQ(ok(p.predict("ttnn.exp", args, PredictOptions{"blackhole_p150", {}})).model_id, "a/exp");
  EXPECT_EQ(ok(p.predict(json{{"op", "exp"}, {"args", args}, {"device", "blackhole_p150"}})).model_id, "a/exp");
  EXPECT_EQ(ok(p.predict(json{{"op", "exp"}, {"args", args}, {"device", "wormhole_n300"}})).model_id, "z/exp");
  const PredictResult none = p.predict("ttnn.exp", args, PredictOptions{"grayskull", {}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::no_model);
  EXPECT_EQ(none.error().path, "/device");
  const PredictResult bad = p.predict(json{{"op", "exp"}, {"args", args}, {"device", 3}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_query);
  EXPECT_EQ(bad.error().path, "/device");
  // Higher priority still wins over the default device.
  const Predictor q(std::vector<ModelFile>{on_device("z/exp", "wormhole_n300"), on_device("a/exp", "blackhole_p150", 5)});
  EXPECT_EQ(ok(q.predict("ttnn.exp", args)).model_id, "a/exp");
  // The batch path chooses alike.
  const std::vector<json> batch = {json{{"op", "exp"}, {"args", args}, {"device", "wormhole_n300"}}};
  EXPECT_EQ(ok(q.predict_batch(batch)[0]).model_id, "z/exp");
}

TEST(Trust, AModelThatCannotBindTheArgumentsPassesToTheNext) {
  ModelFile strict = on_device("a/strict", "wormhole_n300", 5);
  strict.op_spec["args"]["num_iterations"] = {{"type", "int"}};  // required: absent from the query
  const ModelFile loose = on_device("b/loose", "wormhole_n300");
  const Predictor p(std::vector<ModelFile>{strict, loose});
  const json args = exp_args({1, 1, 64, 128});
  EXPECT_EQ(ok(p.predict("ttnn.exp", args)).model_id, "b/loose");
  json with = args;
  with["num_iterations"] = 3;
  EXPECT_EQ(ok(p.predict("ttnn.exp", with)).model_id, "a/strict");
  // No candidate binds: the first candidate's error.
  const PredictResult r = Predictor(std::vector<ModelFile>{strict}).predict("ttnn.exp", args);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().path, "/args/num_iterations");
  const PredictResult both = p.predict("ttnn.exp", json{{"input_tensor", {{"logical_shape", "x"}}}});
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().code, ErrorCode::invalid_argument);
}

TEST(Trust, ArgumentsAsJsonTextAnswerAsParsedJson) {
  const Predictor p(test::source("models"));
  const json args = exp_args({1, 1, 64, 128});
  const std::string text = args.dump();
  const double parsed = ok(p.predict("ttnn.exp", args)).runtime_ns;
  EXPECT_EQ(ok(p.predict("ttnn.exp", text)).runtime_ns, parsed);
  EXPECT_EQ(ok(p.predict("ttnn.exp", std::string_view(text))).runtime_ns, parsed);
  EXPECT_EQ(ok(p.predict_text("ttnn.exp", text, PredictOptions{"wormhole_n300", {}})).runtime_ns, parsed);
  const PredictResult bad = p.predict("ttnn.exp", "{not json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_query);
}

TEST(Trust, TensorsWithAZeroDimensionAreInvalid) {
  const Predictor p(test::source("models"));
  for (const auto& shape : std::vector<std::vector<int>>{{1, 1, 32, 0}, {1, 1, 0, 32}}) {
    const PredictResult r = p.predict("ttnn.exp", exp_args(shape));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  }
}
