// SPDX-License-Identifier: Apache-2.0
// Training: configurations -> seeded split by configuration -> dense ReLU MLP (Armadillo, Adam,
// mini-batches, MSE or Huber loss on log runtime, early stopping) with an optional analytical
// baseline whose log-correction the network learns. Deterministic for a given seed.
//
// Everything op-specific comes from the op spec: its "plausibility" block (evaluate.hpp) and a
// recipe, op_spec.recipes.<name> (docs/op-spec.md):
//   "features":     [NAME, ...]          network inputs (op-spec feature names), required
//   "baseline":     {"group": NAME,      optional; per value of this feature (omit: one group)
//                    "terms": [NAME...]} baseline = intercept + sum coef_i * term_i, coefficients
//                                        >= 0, least absolute log deviations (robust)
//   "memory":       {"key": [NAME...],   optional residual memory (docs/op-spec.md): mean residual
//                    "lookups": [{"name",   log(label / baseline) of the plausible training
//                      "key": [NAME...]}]}  configurations per key; each lookup feeds the network
//                                        "memory.<name>.mean" and "memory.<name>.found" (features
//                                        list them); a training configuration's own-key lookup
//                                        leaves it out; a lookup's "seen": true makes a
//                                        hit an answer of domain "seen"; "unseen_copies": true
//                                        also presents every training configuration with all
//                                        lookups empty (as an unseen shape is served)
//   "applies_when": [EXPR, ...]          copied to the model's selection (else no_model)
//   "requires":     [{expr, message}]    copied to the model's selection (else invalid_argument)
//   "priority":     N                    optional, else TrainOptions::priority
//   "description":  TEXT                 optional; any other key is an error (typo guard)
//   "search":       {"hidden": [[32,32], ...], "learning_rate": [...], "batch_size": [...],
//                    "max_epochs": N, "patience": N, "weight_decay": X, "ensemble": N,
//                    "huber": X, "ensemble_keep": "if_better" | "always"}
//                   candidates = hidden x learning_rate x batch_size; scalars apply to all.
//                   Defaults: search_defaults() below (written once, in Hyperparameters and
//                   kDefaultSearchHidden; docs/op-spec.md shows them, a test compares).
//   "cv":           {"folds": 5, "ensemble": 0, "groupings": [{"name", "key": [NAME...]}]}
//                   grouped k-fold cross-validation after the final model: out-of-fold
//                   predictions (each fold model trained on the other folds with the chosen
//                   hyperparameters, "ensemble" networks, 0 = as many as the final model) give
//                   provenance.metrics.cv and, with the validation part, the per-domain
//                   calibration of the 90% intervals.
//   "calibration":  {"group": NAME}      optional: the intervals are also calibrated per value of
//                                        this op-spec feature (e.g. the dtype class), stored as
//                                        calibration groups of the model file
// Every trained model also records input_range (training min/max per network input) and
// correction_limit (training log(label / baseline) range widened by log 1.5).
// The split, aggregation and plausibility rule are those of evaluate.hpp, so `torp eval`
// re-creates the test set from the model's provenance.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/train/dataset.hpp"
#include "torp/model.hpp"

namespace torp {

/// One candidate of the search. The member defaults are the recipe's "search" defaults: the one
/// place they are written (search_defaults()).
struct Hyperparameters {
  std::vector<int> hidden{32, 32};
  double learning_rate = 0.01;
  int batch_size = 64;
  int max_epochs = 1000;
  int patience = 80;          ///< epochs without validation improvement before stopping (the
                              ///< learning rate halves after every patience/4 of them)
  double weight_decay = 0.0;  ///< decoupled (AdamW) decay per step, relative to the learning rate
  int ensemble = 3;           ///< networks trained with derived seeds, averaged in log space
  double huber = 0.02;        ///< 0: MSE on log runtime; > 0: Huber loss, threshold in log units
};
nlohmann::json to_json(const Hyperparameters& h);

/// The hidden-layer candidates of a recipe without "search.hidden".
inline const std::vector<std::vector<int>> kDefaultSearchHidden{{32, 32}, {64, 64}, {64, 64, 64}};

/// The defaults of a recipe's "search" block as JSON: Hyperparameters' members (learning_rate and
/// batch_size as one-element lists), hidden = kDefaultSearchHidden, ensemble_keep "if_better".
nlohmann::json search_defaults();

struct TrainOptions {
  std::uint64_t seed = 1;
  double validation_fraction = 0.15;
  double test_fraction = 0.15;
  double reject_factor = kDefaultRejectFactor;  ///< repeat rejection in aggregation (see aggregate())
  std::string recipe = "trained";   ///< op_spec.recipes.<recipe>
  std::string id;                   ///< model id; default "<device name>/<short op>"
  int priority = 10;                ///< used unless the recipe sets "priority"
  std::vector<Hyperparameters> candidates;  ///< searched in parallel, picked on validation;
                                            ///< empty: the recipe's "search", else defaults
  int threads = 0;                          ///< 0 = all cores; results do not depend on it
  std::string dataset_file;                 ///< recorded in provenance.source_data.file
  /// Grouped k-fold cross-validation (out-of-fold predictions calibrate the intervals and are
  /// reported in provenance.metrics.cv): -1 = the recipe's "cv" folds (5 if unset), 0 = none.
  int cv_folds = -1;
  /// Features forming the group key of one grouping (e.g. the logical shape); empty = the
  /// recipe's "cv" groupings.
  std::vector<std::string> cv_group;
  /// Progress lines (the CLI prints them). Called from worker threads, one call at a time.
  std::function<void(const std::string&)> progress;
};

/// Everything `torp train` reports.
struct TrainReport {
  ModelFile model;
  nlohmann::json metrics;   ///< same object as model.provenance.metrics
  nlohmann::json search;    ///< one entry per candidate: hyperparameters, validation metrics
  double wall_seconds = 0;  ///< not in the model file, which is byte-identical for a seed
};

/// Train a model of `data`'s op. Selection among candidates (and whether an ensemble is kept)
/// uses validation metrics only; test metrics are computed once, for the chosen model.
/// Throws TorpError(training) if the recipe is missing or malformed or too few configurations
/// remain, TorpError(op_spec) for a bad spec.
TrainReport train(const Dataset& data, const nlohmann::json& op_spec, const nlohmann::json& device,
                  const TrainOptions& options, const std::string& dataset_sha256);

}  // namespace torp
