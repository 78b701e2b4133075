// SPDX-License-Identifier: Apache-2.0
// Import of the reference predictor's mlpack models (cereal binary FFN + StandardScaler).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/model.hpp"

namespace torp {

/// Number of parameters of a dense network inputs -> hidden... -> 1 (weights and biases).
std::size_t mlpack_parameter_count(std::size_t inputs, const std::vector<int>& hidden);

/// Raw content of an mlpack FFN binary: the flat parameter vector, in mlpack's order (per layer
/// the out x in weight matrix column-major, then the out biases). The matrix is found by its
/// header (uint64 n_rows == expected_count, uint64 n_cols == 1, uint64 reserved). Throws
/// TorpError (io, model_format) naming the file and what was expected.
std::vector<double> read_mlpack_parameters(const std::filesystem::path& model_bin, std::size_t expected_count);

/// StandardScaler binary: per-feature mean and standard deviation.
struct MlpackScaler {
  std::vector<double> mean, stddev;
};
/// Read a StandardScaler with `features` entries. A standard deviation of 0 is read as 1, the
/// rule of mlpack's StandardScaler::Fit (which stores 1 for constant features), so the feature
/// is centred but not scaled; it is reported through the log callback. Throws TorpError (io,
/// model_format) on a missing, truncated or non-finite scaler.
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
  std::string producer = "torp import-mlpack";
};

/// Convert model + scaler into a v1 model (identity target transform: the reference predicts ns).
/// Features and requirements come from op_spec.recipes.<recipe> ({features, requires,
/// applies_when?}); every expression is compiled against the op spec and device before anything
/// is read, so a bad spec fails here, not when the model is loaded. Throws TorpError (op_spec,
/// io, model_format).
ModelFile import_mlpack(const std::filesystem::path& model_bin, const std::filesystem::path& scaler_bin,
                        const MlpackImportOptions& options);

}  // namespace torp
