// SPDX-License-Identifier: Apache-2.0
// Issue 13: every failure is a TorpError with code, message, file and JSON path. The serving
// readers (model files, the op spec inside a model, the models directory) put the file in the
// error's own `file` field, not only inside its message.
#include <gtest/gtest.h>

#include <fstream>

#include "support/fixtures.hpp"
#include "torp/model.hpp"
#include "torp/predictor.hpp"

using nlohmann::json;
using namespace torp;
namespace fs = std::filesystem;

namespace {

Error load_error(const std::vector<fs::path>& dirs) {
  try {
    Predictor p(dirs);
  } catch (const TorpError& e) {
    return e.error();
  }
  ADD_FAILURE() << "the models loaded";
  return {};
}

class ErrorFile : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name()); }
  void TearDown() override { fs::remove_all(dir_); }
  /// The tiny exp model with `pointer` set to `value`, as the directory's only file m.json.
  fs::path write_model(const std::string& pointer, const json& value) {
    json d = to_json(test::tiny_exp_model());
    d[json::json_pointer(pointer)] = value;
    std::ofstream(dir_ / "m.json", std::ios::trunc) << d.dump();
    return dir_ / "m.json";
  }
  fs::path dir_;
};

}  // namespace

TEST(ErrorDescribe, FileLineColumnAndPathEachInTheirPlace) {
  EXPECT_EQ(Error(ErrorCode::dataset, "bad row", "/args", "d.jsonl", 3, 7).describe(),
            "dataset: d.jsonl:3:7: bad row (at /args)");
  EXPECT_EQ(Error(ErrorCode::dataset, "bad", "", "d.jsonl", 3).describe(), "dataset: d.jsonl:3: bad");
  EXPECT_EQ(Error(ErrorCode::io, "missing", "", "m.json").describe(), "io: m.json: missing");
  EXPECT_EQ(Error(ErrorCode::invalid_argument, "too big", "/args/x").describe(), "invalid_argument: too big (at /args/x)");
  EXPECT_EQ(TorpError(ErrorCode::op_spec, "bad", "/f", "ops/exp.json").what(), std::string("op_spec: ops/exp.json: bad (at /f)"));
  // in_file() locates an error only once: the innermost reader knows best.
  const Error inner = in_file(Error(ErrorCode::op_spec, "bad", "/f"), "a.json", 2, 3);
  EXPECT_EQ((std::tuple{inner.file, inner.line, inner.column}), (std::tuple{std::string("a.json"), 2u, 3u}));
  const Error outer = in_file(inner, "b.json");
  EXPECT_EQ((std::tuple{outer.file, outer.line, outer.column}), (std::tuple{std::string("a.json"), 2u, 3u}));
}

TEST_F(ErrorFile, ModelFileErrorsNameTheFileInTheirOwnField) {
  const fs::path f = write_model("/normalization/std/0", "x");
  const Error e = load_error({dir_});
  EXPECT_EQ(e.code, ErrorCode::model_format);
  EXPECT_EQ(e.file, f.string());
  EXPECT_EQ(e.path, "/normalization/std/0");
  EXPECT_EQ(e.message, "expected a number");
  EXPECT_EQ(TorpError(e).what(), "model_format: " + f.string() + ": expected a number (at /normalization/std/0)");

  write_model("/format_version", 99);
  const Error v = load_error({dir_});
  EXPECT_EQ((std::tuple{v.code, v.file, v.path}), (std::tuple{ErrorCode::model_version, f.string(), std::string("/format_version")}));

  std::ofstream(f, std::ios::trunc) << R"({"format": "torp-model", "id": )";  // not JSON
  const Error t = load_error({dir_});
  EXPECT_EQ((std::tuple{t.code, t.file}), (std::tuple{ErrorCode::model_format, f.string()}));
  EXPECT_EQ(t.message.rfind("not valid JSON", 0), 0u) << t.message;

  try {
    load_model(dir_ / "missing.json");
    ADD_FAILURE() << "a missing model file loaded";
  } catch (const TorpError& e2) {
    EXPECT_EQ((std::tuple{e2.error().code, e2.error().file}), (std::tuple{ErrorCode::io, (dir_ / "missing.json").string()}));
  }
  try {
    parse_model(json::array(), "given.json");
    ADD_FAILURE() << "an array parsed as a model";
  } catch (const TorpError& e2) {
    EXPECT_EQ(e2.error().file, "given.json");
  }
}

TEST_F(ErrorFile, OpSpecErrorsInAModelNameTheFileAndTheirPathInIt) {
  const fs::path f = write_model("/op_spec/features/dim_0", "no_such_function(1)");
  const Error e = load_error({dir_});
  EXPECT_EQ(e.code, ErrorCode::op_spec) << e.describe();
  EXPECT_EQ(e.file, f.string());
  EXPECT_EQ(e.path, "/op_spec/features/dim_0") << e.describe();  // a pointer into the model file

  write_model("/op_spec/args", json::array());  // a wrongly typed member (was nlohmann's type_error)
  const Error w = load_error({dir_});
  EXPECT_EQ(w.file, f.string()) << w.describe();
  EXPECT_EQ(w.path.rfind("/op_spec", 0), 0u) << w.describe();
}

TEST_F(ErrorFile, ModelsDirectoryErrorsNameTheDirectory) {
  const Error missing = load_error({dir_ / "nowhere"});
  EXPECT_EQ((std::tuple{missing.code, missing.file}), (std::tuple{ErrorCode::io, (dir_ / "nowhere").string()}));
  EXPECT_NE(missing.message.find("does not exist"), std::string::npos) << missing.message;

  const fs::path other = dir_ / "other";
  fs::create_directories(other);
  const Error empty = load_error({dir_, other});  // several directories: as TORP_MODELS lists them
  EXPECT_EQ((std::tuple{empty.code, empty.file}), (std::tuple{ErrorCode::io, dir_.string() + ":" + other.string()}));

  fs::create_symlink(dir_ / "loop.json", dir_ / "loop.json");
  const Error loop = load_error({dir_});
  EXPECT_EQ((std::tuple{loop.code, loop.file}), (std::tuple{ErrorCode::io, (dir_ / "loop.json").string()}));
}

TEST_F(ErrorFile, DuplicateModelIdNamesTheSecondFile) {
  save_model(test::tiny_exp_model(), dir_ / "a.json", false);
  save_model(test::tiny_exp_model(), dir_ / "b.json", false);
  const Error e = load_error({dir_});
  EXPECT_EQ((std::tuple{e.code, e.file, e.path}),
            (std::tuple{ErrorCode::model_format, (dir_ / "b.json").string(), std::string("/id")}));
}
