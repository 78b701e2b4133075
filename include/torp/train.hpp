// SPDX-License-Identifier: Apache-2.0
// Training: configurations -> seeded split by configuration -> dense ReLU MLP (Armadillo, Adam,
// mini-batches, MSE on log runtime, early stopping) with an optional analytical baseline whose
// log-correction the network learns. Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/dataset.hpp"
#include "torp/model.hpp"

namespace torp {

struct Hyperparameters {
  std::vector<int> hidden{64, 64};
  double learning_rate = 1e-3;
  int batch_size = 64;
  int max_epochs = 2000;
  int patience = 200;         ///< epochs without validation improvement before stopping
  double weight_decay = 0.0;
  int ensemble = 1;           ///< networks trained with derived seeds, averaged in log space
};

struct TrainOptions {
  std::uint64_t seed = 1;
  double validation_fraction = 0.15;
  double test_fraction = 0.15;
  double reject_factor = 1.5;       ///< repeat rejection in aggregation (see aggregate())
  std::string recipe = "trained";   ///< op_spec.recipes.<recipe>
  std::string id;                   ///< model id; default "<device>/<short op>"
  int priority = 10;
  std::vector<Hyperparameters> candidates;  ///< searched in parallel, picked on validation
  int threads = 0;                          ///< 0 = all cores
  std::function<void(const std::string&)> progress;  ///< progress lines (CLI prints them)
};

/// Everything `torp train` reports.
struct TrainReport {
  ModelFile model;
  nlohmann::json metrics;   ///< same object as model.provenance.metrics
  nlohmann::json search;    ///< one entry per candidate: hyperparameters, validation metrics
};

TrainReport train(const Dataset& data, const nlohmann::json& op_spec, const nlohmann::json& device,
                  const TrainOptions& options, const std::string& dataset_sha256);

}  // namespace torp
