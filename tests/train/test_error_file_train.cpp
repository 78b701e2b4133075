// SPDX-License-Identifier: Apache-2.0
// Issue 13: every failure is a TorpError with code, message, file and JSON path. The training-side
// readers (datasets, CSV imports, sweep files, op specs given to the commands) put the file, and
// the line and column where they know them, in the error's own fields; the CLI prints them as
// "torp CMD: error: code: file:line:column: message (at path)".
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include "support/fixtures.hpp"
#include "torp/train/dataset.hpp"
#include "torp/train/sweep.hpp"

using nlohmann::json;
using torp::Error;
using torp::ErrorCode;
namespace fs = std::filesystem;

namespace {

Error error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const torp::TorpError& e) {
    return e.error();
  }
  ADD_FAILURE() << "expected a TorpError";
  return {};
}

struct Cli {
  int code = -1;
  std::string err;
};

Cli torp_cli(const std::string& args, const fs::path& dir) {
  const fs::path err = dir / "stderr.txt";
  const std::string cmd = std::string(TORP_CLI_PATH) + " " + args + " >/dev/null 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  std::ifstream in(err);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::string(std::istreambuf_iterator<char>(in), {})};
}

const std::string kHeader =
    R"({"format": "torp-dataset", "format_version": 1, "op": "ttnn.exp", "device": "wormhole_n300"})";

class ErrorFileTrain : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = torp::test::temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name()); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }
  fs::path dir_;
};

}  // namespace

TEST_F(ErrorFileTrain, DatasetErrorsCarryFileLineColumnAndPath) {
  const fs::path f = write("d.jsonl", kHeader + "\n" + R"({"args": {}, "runtime_ns": -5})" + "\n");
  const Error e = error_of([&] { torp::load_dataset(f); });
  EXPECT_EQ(e.code, ErrorCode::dataset);
  EXPECT_EQ((std::tuple{e.file, e.line, e.column, e.path}), (std::tuple{f.string(), 2u, 14u, std::string("/runtime_ns")}));
  EXPECT_EQ(e.message, "runtime_ns must be positive and finite, got -5");

  const Error missing = error_of([&] { torp::load_dataset(dir_ / "missing.jsonl"); });
  EXPECT_EQ((std::tuple{missing.code, missing.file}), (std::tuple{ErrorCode::io, (dir_ / "missing.jsonl").string()}));

  torp::Dataset d;
  d.op = "ttnn.exp";
  torp::Measurement m;
  m.args = json::object();
  m.runtime_ns = -1.0;
  d.rows.push_back(m);
  const Error save = error_of([&] { torp::save_dataset(d, dir_ / "out.jsonl", false); });
  EXPECT_EQ((std::tuple{save.code, save.file}), (std::tuple{ErrorCode::dataset, (dir_ / "out.jsonl").string()}));
}

TEST_F(ErrorFileTrain, CsvImportErrorsCarryFileLineAndColumn) {
  const fs::path csv = torp::test::source("tests/data/csv/exp_non_numeric.csv");
  const Error e = error_of([&] {
    torp::import_reference_csv(csv, torp::CsvLayout::exp, torp::test::read_json(torp::test::source("devices/wormhole_n300.json")),
                               {{"op", "ttnn.exp"}});
  });
  EXPECT_EQ((std::tuple{e.code, e.file, e.line, e.column}), (std::tuple{ErrorCode::dataset, csv.string(), 3u, 29u}));
}

TEST_F(ErrorFileTrain, SweepFileErrorsCarryTheFileAndTheJsonPathInIt) {
  const json spec = torp::test::read_json(torp::test::source("ops/exp.json"));
  const json device = torp::test::read_json(torp::test::source("devices/wormhole_n300.json"));
  const fs::path vectors = torp::test::source("tests/data/sweep/vectors_era_a.json");
  const fs::path results = write("r.json", R"([{"status": "pass"}])");
  const Error e = error_of([&] { torp::import_sweep(vectors, {results}, spec, device, {}, nullptr); });
  EXPECT_EQ((std::tuple{e.code, e.file, e.path}), (std::tuple{ErrorCode::dataset, results.string(), std::string("/0/input_hash")}));

  const fs::path truncated = write("t.json", "[\n  {\"input_hash\": \"x\",\n   \"status\": ");
  const Error t = error_of([&] { torp::import_sweep(vectors, {truncated}, spec, device, {}, nullptr); });
  EXPECT_EQ((std::tuple{t.file, t.line, t.column, t.path}), (std::tuple{truncated.string(), 3u, 14u, std::string("/0/status")}));

  const Error missing = error_of([&] { torp::import_sweep(dir_ / "none.json", {results}, spec, device, {}, nullptr); });
  EXPECT_EQ((std::tuple{missing.code, missing.file}), (std::tuple{ErrorCode::io, (dir_ / "none.json").string()}));
}

TEST_F(ErrorFileTrain, CliPrintsTheFileOfAnOpSpecADatasetAndAModelTheSameWay) {
  json spec = torp::test::read_json(torp::test::source("ops/exp.json"));
  spec["features"]["dim_0"] = "no_such_function(1)";
  const fs::path bad_spec = write("spec.json", spec.dump());
  const std::string device = torp::test::source("devices/wormhole_n300.json").string();
  const std::string slice = torp::test::source("tests/data/exp_slice.jsonl").string();
  Cli r = torp_cli("train --dataset '" + slice + "' --op-spec '" + bad_spec.string() + "' --device '" + device +
                       "' --out '" + (dir_ / "m.json").string() + "'",
                   dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("torp train: error: op_spec: " + bad_spec.string() + ": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(at /features/dim_0)"), std::string::npos) << r.err;

  const fs::path bad_data = write("d.jsonl", kHeader + "\n[1]\n");
  r = torp_cli("dataset info '" + bad_data.string() + "'", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("torp dataset info: error: dataset: " + bad_data.string() + ":2:1: a row must be a JSON object"),
            std::string::npos)
      << r.err;

  const fs::path models = dir_ / "models";
  fs::create_directories(models);
  std::ofstream(models / "m.json") << R"({"format": "torp-model", "format_version": 99})";
  r = torp_cli("list --models '" + models.string() + "'", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("torp list: error: model_version: " + (models / "m.json").string() + ": "), std::string::npos)
      << r.err;
}

// torp eval checks every report group's expression before any work: an error names the --groups
// file and the key's path in it, the --group-by option, or the model file and the path of its op
// spec's report block.
TEST_F(ErrorFileTrain, EvalGroupErrorsNameTheirFileAndPath) {
  const std::string model = torp::test::source("models/wormhole/exp.json").string();
  const std::string slice = torp::test::source("tests/data/exp_slice.jsonl").string();
  const std::string eval = "eval --dataset '" + slice + "' ";

  const fs::path groups = write("groups.json", R"({"groups": [{"name": "ok", "keys": ["dtype_buffer"]},
                                                         {"keys": [{"expr": "no_such_feature", "label": "x"}]}]})");
  Cli r = torp_cli(eval + "--model '" + model + "' --groups '" + groups.string() + "'", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("torp eval: error: op_spec: " + groups.string() + ": in expression 'no_such_feature'"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("(at /groups/1/keys/0/expr)"), std::string::npos) << r.err;

  const fs::path named = write("named.json", R"({"groups": [{"name": 5, "keys": ["dtype_buffer"]}]})");
  r = torp_cli(eval + "--model '" + model + "' --groups '" + named.string() + "'", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(named.string() + ": report group: name must be text (at /groups/0/name)"), std::string::npos)
      << r.err;

  r = torp_cli(eval + "--model '" + model + "' --group-by dtype_buffer --group-by 'no_such_function(1)'", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("unknown function 'no_such_function' (at --group-by #2)"), std::string::npos) << r.err;

  json m = torp::test::read_json(torp::test::source("models/wormhole/exp.json"));
  m["op_spec"]["report"]["groups"][0]["keys"][0] = "input_tensor.no_such_property";
  const fs::path bad_model = write("model.json", m.dump());
  r = torp_cli(eval + "--model '" + bad_model.string() + "'", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("torp eval: error: op_spec: " + bad_model.string() + ": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(at /op_spec/report/groups/0/keys/0)"), std::string::npos) << r.err;
}
