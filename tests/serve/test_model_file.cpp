// SPDX-License-Identifier: Apache-2.0
// Model file format v1: round trip, and every kind of bad file rejected with its own error.
#include <gtest/gtest.h>

#include <fstream>

#include "support/fixtures.hpp"
#include "torp/model.hpp"
#include "torp/predictor.hpp"

using nlohmann::json;
using namespace torp;

namespace {

json good() { return to_json(test::tiny_exp_model()); }

Error parse_error(const json& doc) {
  try {
    parse_model(doc, "m.json");
  } catch (const TorpError& e) {
    return e.error();
  }
  ADD_FAILURE() << "model was accepted";
  return {};
}

}  // namespace

TEST(ModelFile, RoundTripIsExact) {
  ModelFile m = test::tiny_exp_model();
  json a = to_json(m);
  ModelFile back = parse_model(a, "m.json");
  EXPECT_EQ(to_json(back), a);
  EXPECT_EQ(back.ensemble[0].layers[0].weights, m.ensemble[0].layers[0].weights);
}

TEST(ModelFile, FutureVersionRejected) {
  json d = good();
  d["format_version"] = 2;
  Error e = parse_error(d);
  EXPECT_EQ(e.code, ErrorCode::model_version);
  EXPECT_NE(e.message.find("newer than this TORP reads"), std::string::npos);
}

TEST(ModelFile, UnknownOrMissingVersionRejected) {
  json d = good();
  d["format_version"] = 0;
  EXPECT_EQ(parse_error(d).code, ErrorCode::model_version);
  d.erase("format_version");
  EXPECT_EQ(parse_error(d).code, ErrorCode::model_version);
  d = good();
  d["format_version"] = "1";
  EXPECT_EQ(parse_error(d).code, ErrorCode::model_version);
}

TEST(ModelFile, WrongFormatRejected) {
  json d = good();
  d["format"] = "mlpack";
  Error e = parse_error(d);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  EXPECT_EQ(e.path, "/format");
}

TEST(ModelFile, MissingKeysEachNamed) {
  for (const char* key : {"id", "op", "op_spec", "device", "selection", "features", "normalization", "target", "network",
                          "provenance"}) {
    json d = good();
    d.erase(key);
    Error e = parse_error(d);
    EXPECT_EQ(e.code, ErrorCode::model_format) << key;
    EXPECT_EQ(e.path, std::string("/") + key);
    EXPECT_NE(e.message.find(std::string("missing key \"") + key + "\""), std::string::npos) << e.message;
  }
  json d = good();
  d["provenance"].erase("tt_metal_commit");
  EXPECT_EQ(parse_error(d).path, "/provenance/tt_metal_commit");
}

TEST(ModelFile, ShapeMismatchesRejected) {
  json d = good();
  d["network"]["ensemble"][0]["layers"][0]["weights"][2].push_back(0.5);
  Error e = parse_error(d);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  EXPECT_EQ(e.path, "/network/ensemble/0/layers/0/weights/2");
  EXPECT_NE(e.message.find("shape mismatch"), std::string::npos);

  d = good();
  d["network"]["ensemble"][0]["layers"][1]["bias"] = {0.1, 0.2};
  EXPECT_EQ(parse_error(d).path, "/network/ensemble/0/layers/1/bias");

  d = good();
  d["normalization"]["mean"].push_back(1.0);
  EXPECT_EQ(parse_error(d).path, "/normalization");

  d = good();
  d["network"]["architecture"]["hidden"] = {8, 8};
  EXPECT_EQ(parse_error(d).path, "/network/ensemble/0/layers");
}

TEST(ModelFile, NonFiniteWeightsRejected) {
  json d = good();
  d["network"]["ensemble"][0]["layers"][0]["weights"][1][2] = std::nan("");
  Error e = parse_error(d);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  EXPECT_EQ(e.path, "/network/ensemble/0/layers/0/weights/1/2");
  EXPECT_NE(e.message.find("non-finite"), std::string::npos) << e.message;
}

TEST(ModelFile, NonFiniteLiteralInFileNamedAsSuch) {
  // Python's json.dump writes NaN / Infinity, which are not JSON.
  auto dir = test::temp_dir("nan");
  std::string text = good().dump();
  auto pos = text.find("\"bias\":[");
  ASSERT_NE(pos, std::string::npos);
  text.insert(pos + 8, "NaN,");
  {
    std::ofstream out(dir / "m.json");
    out << text;
  }
  try {
    load_model(dir / "m.json");
    FAIL();
  } catch (const TorpError& e) {
    EXPECT_EQ(e.error().code, ErrorCode::model_format);
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(ModelFile, ZeroStdRejected) {
  json d = good();
  d["normalization"]["std"][1] = 0.0;
  EXPECT_EQ(parse_error(d).path, "/normalization/std/1");
}

TEST(ModelFile, CorruptFileRejectedByThePredictorWithTheFileName) {
  auto dir = test::temp_dir("corrupt");
  {
    std::ofstream out(dir / "broken.json");
    out << good().dump().substr(0, 500);  // truncated
  }
  try {
    Predictor p(dir);
    FAIL() << "a truncated model must not load";
  } catch (const TorpError& e) {
    EXPECT_EQ(e.error().code, ErrorCode::model_format);
    EXPECT_NE(std::string(e.what()).find("broken.json: not valid JSON"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(ModelFile, UnknownFeatureInSchemaRejectedAtLoad) {
  auto dir = test::temp_dir("badfeature");
  json d = good();
  d["features"][0] = "no_such_feature";
  {
    std::ofstream out(dir / "m.json");
    out << d.dump();
  }
  try {
    Predictor p(dir);
    FAIL();
  } catch (const TorpError& e) {
    EXPECT_EQ(e.error().code, ErrorCode::op_spec);
    EXPECT_NE(std::string(e.what()).find("no_such_feature"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(ModelFile, SaveRefusesToOverwrite) {
  auto dir = test::temp_dir("overwrite");
  ModelFile m = test::tiny_exp_model();
  save_model(m, dir / "m.json", false);
  EXPECT_THROW(save_model(m, dir / "m.json", false), TorpError);
  EXPECT_NO_THROW(save_model(m, dir / "m.json", true));
  std::filesystem::remove_all(dir);
}
