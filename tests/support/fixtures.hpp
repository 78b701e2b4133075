// SPDX-License-Identifier: Apache-2.0
// Shared test fixtures: a small deterministic exp model built from the repo's op spec, and the
// tt-metal tensor JSON forms a query can use.
#pragma once

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "torp/model.hpp"

namespace torp::test {

inline std::filesystem::path source_dir() { return std::filesystem::path(TORP_SOURCE_DIR); }
/// A path inside the repository, e.g. source("ops/exp.json").
inline std::filesystem::path source(const std::string& relative) { return source_dir() / relative; }

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

/// A fresh empty directory under the system temp dir, unique per test.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("torp_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

/// A small exp model whose output is a smooth function of its inputs: 4 features -> 8 -> 1,
/// log target with a per-(dtype, buffer)-free single-group baseline a + b * tiles_per_core.
inline ModelFile tiny_exp_model(const std::string& id = "test/exp") {
  ModelFile m;
  m.id = id;
  m.op = "ttnn.exp";
  m.producer = "torp tests";
  m.op_spec = read_json(source_dir() / "ops/exp.json");
  m.device = read_json(source_dir() / "devices/wormhole_n300.json");
  m.features = {"log_tiles_per_core", "is_bfloat16", "is_float32", "in_dram"};
  m.mean = {2.0, 0.5, 0.2, 0.5};
  m.stddev = {1.5, 0.5, 0.4, 0.5};
  m.transform = TargetTransform::log;
  m.requires_ = {{"in(input_tensor.dtype, BFLOAT8_B, BFLOAT16, FLOAT32, UINT16, UINT32)", "dtype not supported"}};
  Baseline b;
  b.features = {"tiles_per_core"};
  b.groups = {Baseline::Group{0, 1500.0, {120.0}}};
  m.baseline = b;
  Network n;
  DenseLayer l1{4, 8, {}, {}};
  for (int o = 0; o < 8; ++o) {
    for (int i = 0; i < 4; ++i) l1.weights.push_back(std::sin(1.0 + o * 4 + i) * 0.3);
    l1.bias.push_back(0.05 * o);
  }
  DenseLayer l2{8, 1, {}, {0.01}};
  for (int i = 0; i < 8; ++i) l2.weights.push_back(std::cos(2.0 + i) * 0.1);
  n.layers = {l1, l2};
  m.ensemble = {n};
  m.provenance = {{"device", "wormhole_n300"}, {"tt_metal_commit", nullptr}, {"source_data", nullptr}, {"metrics", nullptr}};
  return m;
}

/// tt-metal's full Tensor JSON of a device tensor (TILE layout, interleaved unless sharded).
inline nlohmann::json full_tensor(const std::vector<int>& shape, int dtype, int buffer, int memory_layout = 0) {
  using nlohmann::json;
  json tile = {{"face_shape", {16, 16}}, {"num_faces", 4}, {"tile_shape", {32, 32}}};
  return {{"storage", {{"index", 1}, {"value", json::object()}}},
          {"tensor_spec",
           {{"logical_shape", shape},
            {"tensor_layout",
             {{"alignment", {{"value", {32, 32}}}},
              {"dtype", dtype},
              {"memory_config", {{"buffer_type", buffer}, {"created_with_nd_shard_spec", false}, {"memory_layout", memory_layout}}},
              {"page_config", {{"config", {{"index", 1}, {"value", {{"tile", tile}}}}}}}}}}}};
}

/// The bare TensorSpec form of the same tensor.
inline nlohmann::json spec_tensor(const std::vector<int>& shape, int dtype, int buffer) {
  return full_tensor(shape, dtype, buffer)["tensor_spec"];
}

}  // namespace torp::test
