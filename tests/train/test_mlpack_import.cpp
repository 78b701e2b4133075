// SPDX-License-Identifier: Apache-2.0
// torp import-mlpack: the reference predictor's mlpack files become TORP model files; bad files
// fail naming the file and what is wrong; the shipped reference models equal a fresh import.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "support/bytes.hpp"
#include "torp/error.hpp"
#include "torp/train/mlpack_import.hpp"

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path kRepo = TORP_SOURCE_DIR;
const fs::path kBins = kRepo / "data" / "reference_models";

using torp::test::file_bytes;
using torp::test::le_f64;
using torp::test::le_u64;

}  // namespace

// ---- the importer on good and bad files ---------------------------------------------------

namespace {

fs::path scratch_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("torp_reference_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

torp::MlpackImportOptions exp_options() {
  torp::MlpackImportOptions o;
  o.id = "test/exp";
  std::ifstream spec(kRepo / "ops/exp.json"), device(kRepo / "devices/wormhole_n300.json");
  o.op_spec = json::parse(spec);
  o.device = json::parse(device);
  o.hidden = {128, 128, 128};
  o.provenance = {{"device", "wormhole_n300"}, {"tt_metal_commit", nullptr}, {"source_data", nullptr}, {"metrics", nullptr}};
  return o;
}

void write_prefix(const fs::path& from, const fs::path& to, std::size_t bytes) {
  std::string b = file_bytes(from);
  std::ofstream(to, std::ios::binary).write(b.data(), static_cast<std::streamsize>(std::min(bytes, b.size())));
}

std::string import_error(const fs::path& model, const fs::path& scaler, const torp::MlpackImportOptions& o) {
  try {
    (void)torp::import_mlpack(model, scaler, o);
  } catch (const torp::TorpError& e) {
    EXPECT_EQ(e.error().code, torp::ErrorCode::model_format) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "import of " << model << " succeeded";
  return {};
}

}  // namespace

TEST(ReferenceImport, TruncatedModelFailsNamingFileAndExpectedSize) {
  const fs::path dir = scratch_dir("truncated_model");
  const fs::path model = dir / "exp_mlp_model.bin";
  write_prefix(kBins / "exp_mlp_model.bin", model, 100000);
  const std::string msg = import_error(model, kBins / "exp_scaler.bin", exp_options());
  EXPECT_NE(msg.find(model.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("34689"), std::string::npos) << msg;
  write_prefix(kBins / "exp_mlp_model.bin", model, 300);  // cut inside the layer list
  EXPECT_NE(import_error(model, kBins / "exp_scaler.bin", exp_options()).find("no parameter matrix of 34689"), std::string::npos);
  fs::remove_all(dir);
}

TEST(ReferenceImport, TruncatedScalerFailsNamingFile) {
  const fs::path dir = scratch_dir("truncated_scaler");
  const fs::path scaler = dir / "exp_scaler.bin";
  write_prefix(kBins / "exp_scaler.bin", scaler, 150);
  const std::string msg = import_error(kBins / "exp_mlp_model.bin", scaler, exp_options());
  EXPECT_NE(msg.find(scaler.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(ReferenceImport, WrongArchitectureOrFeatureCountIsNamed) {
  auto o = exp_options();
  o.hidden = {128, 128};
  EXPECT_NE(import_error(kBins / "exp_mlp_model.bin", kBins / "exp_scaler.bin", o).find("the file holds 34689"), std::string::npos);
  o = exp_options();
  EXPECT_NE(import_error(kBins / "exp_mlp_model.bin", kBins / "concatenate_heads_scaler.bin", o).find("has 10 features"),
            std::string::npos);
  EXPECT_NE(import_error(kBins / "exp_scaler.bin", kBins / "exp_scaler.bin", o).find("not an mlpack FFN"), std::string::npos);
}

TEST(ReferenceImport, ZeroStandardDeviationIsReadAsOneLikeMlpack) {
  const fs::path dir = scratch_dir("zero_std");
  std::string b = file_bytes(kBins / "exp_scaler.bin");
  const std::size_t first_std = 4 + 2 * 24 + 8 * 11;
  std::memset(b.data() + first_std, 0, 8);
  std::ofstream(dir / "scaler.bin", std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
  const torp::MlpackScaler s = torp::read_mlpack_scaler(dir / "scaler.bin", 11);
  EXPECT_EQ(s.stddev[0], 1.0);
  EXPECT_EQ(s.mean[0], le_f64(b, 4 + 24));
  fs::remove_all(dir);
}

TEST(ReferenceImport, ShippedModelsEqualAFreshImport) {
  const fs::path dir = scratch_dir("fresh");
  const std::string cmd = "TORP='" + std::string(TORP_CLI_PATH) + "' OUT_DIR='" + dir.string() + "' bash '" +
                          (kRepo / "scripts/import_reference_models.sh").string() + "' > '" + (dir / "log").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << file_bytes(dir / "log");
  int compared = 0;
  for (const auto& e : fs::recursive_directory_iterator(kRepo / "models" / "reference")) {
    if (!e.is_regular_file()) continue;
    const fs::path fresh = dir / fs::relative(e.path(), kRepo / "models" / "reference");
    ASSERT_TRUE(fs::exists(fresh)) << fresh;
    // Compared as loaded models, so fields a newer writer adds with their defaults do not matter.
    EXPECT_TRUE(torp::to_json(torp::load_model(e.path())) == torp::to_json(torp::load_model(fresh)))
        << e.path() << " differs from a fresh import: re-run scripts/import_reference_models.sh";
    ++compared;
  }
  EXPECT_EQ(compared, 9);
  fs::remove_all(dir);
}

TEST(ReferenceImport, CliRefusesToOverwriteWithoutForce) {
  const fs::path dir = scratch_dir("cli");
  const std::string import = "'" + std::string(TORP_CLI_PATH) + "' import-mlpack --model '" +
                             (kBins / "exp_mlp_model.bin").string() + "' --scaler '" + (kBins / "exp_scaler.bin").string() +
                             "' --op-spec '" + (kRepo / "ops/exp.json").string() + "' --device '" +
                             (kRepo / "devices/wormhole_n300.json").string() + "' --hidden 128,128,128 --id test/exp --out '" +
                             (dir / "exp.json").string() + "'";
  const std::string log = " >> '" + (dir / "log").string() + "' 2>&1";
  ASSERT_EQ(std::system((import + log).c_str()), 0) << file_bytes(dir / "log");
  const int again = std::system((import + log).c_str());
  EXPECT_TRUE(WIFEXITED(again) && WEXITSTATUS(again) == 1);
  EXPECT_NE(file_bytes(dir / "log").find("exists; pass --force to replace it"), std::string::npos);
  EXPECT_EQ(std::system((import + " --force" + log).c_str()), 0) << file_bytes(dir / "log");
  fs::remove_all(dir);
}
