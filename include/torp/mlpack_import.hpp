// SPDX-License-Identifier: Apache-2.0
// Import of the reference predictor's mlpack models (cereal binary FFN + StandardScaler).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/model.hpp"

namespace torp {

/// Raw content of an mlpack FFN binary: the flat parameter vector.
std::vector<double> read_mlpack_parameters(const std::filesystem::path& model_bin, std::size_t expected_count);

/// StandardScaler binary: per-feature mean and standard deviation.
struct MlpackScaler {
  std::vector<double> mean, stddev;
};
MlpackScaler read_mlpack_scaler(const std::filesystem::path& scaler_bin, std::size_t features);

struct MlpackImportOptions {
  std::string id;                          ///< model id, e.g. "reference/exp"
  nlohmann::json op_spec;                  ///< the op spec (ops/<op>.json)
  std::string recipe = "reference";        ///< op_spec.recipes.<recipe> names the features
  nlohmann::json device;                   ///< device description
  std::vector<int> hidden;                 ///< hidden layer widths (from mlp_config.json)
  std::vector<std::string> applies_when;   ///< extra selection expressions (e.g. reshard pair)
  int priority = 0;
  nlohmann::json provenance;               ///< device, tt_metal_commit, source_data, metrics...
};

/// Convert model + scaler into a v1 model (identity target transform: the reference predicts ns).
ModelFile import_mlpack(const std::filesystem::path& model_bin, const std::filesystem::path& scaler_bin,
                        const MlpackImportOptions& options);

}  // namespace torp
