// SPDX-License-Identifier: Apache-2.0
// The shipped trained models are exactly what docs/regenerate.md's commands produce.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "support/fixtures.hpp"

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expect_reproduced(const std::string& dataset, const std::string& op_spec, const std::string& shipped) {
  const auto src = torp::test::source_dir();
  const auto dir = torp::test::temp_dir("reproduce_" + std::filesystem::path(shipped).stem().string());
  const auto out = dir / "model.json";
  // Exactly the documented command, run from the repository root (the provenance records the
  // dataset path as given).
  const std::string cmd = "cd '" + src.string() + "' && " + std::string(TORP_CLI_PATH) + " train --dataset " +
                          dataset + " --op-spec " + op_spec + " --device devices/wormhole_n300.json --seed 1 --out '" +
                          out.string() + "' > '" + (dir / "log.txt").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir / "log.txt");
  EXPECT_TRUE(read_file(out) == read_file(src / shipped))
      << shipped << " is not what `torp train` produces from the repository's data: retrain it (docs/regenerate.md)";
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST(ShippedModels, ExpIsReproducedByteForByte) {
  expect_reproduced("data/exp/exp_wormhole.jsonl", "ops/exp.json", "models/wormhole/exp.json");
}

TEST(ShippedModels, MatmulIsReproducedByteForByte) {
  expect_reproduced("data/matmul_height_sharded/matmul_height_sharded_wormhole.jsonl", "ops/matmul.json",
                    "models/wormhole/matmul.json");
}

