// SPDX-License-Identifier: Apache-2.0
// Regeneration in one call: new measurements -> a model trained with the op spec's recipe ->
// the new and the current model evaluated on the same held-out configurations of the new data ->
// a comparison -> the model file replaced atomically when the new one is at least as good.
//
// "At least as good": on the plausible labels of the new model's test configurations (the new
// data split as `torp train` splits it; the current model may have seen some of them in its own
// training), the new model puts at least as large a share within +-10% of the measured runtime,
// and on a tie its median APE is not larger. Replacement keeps the previous file beside the
// model as "<file>.previous" (the predictor loads only *.json), then moves the new file into
// place with one rename. The new model's provenance records the comparison ("regeneration").
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/model.hpp"
#include "torp/train/dataset.hpp"
#include "torp/train/trainer.hpp"

namespace torp {

enum class ReplacePolicy { if_better, always, never };
/// "if-better", "always", "never"; TorpError(invalid_argument) otherwise.
ReplacePolicy parse_replace_policy(const std::string& s);

struct RegenerateOptions {
  std::filesystem::path models_dir;  ///< where the current model is found and the new one installed
  ReplacePolicy replace = ReplacePolicy::if_better;
  TrainOptions train;                ///< seed, recipe, id, candidates (empty: the recipe's search)
  /// File to install the new model as when no model of the op is in models_dir.
  std::optional<std::filesystem::path> install_as;
  bool overwrite_previous = false;   ///< replace an existing "<file>.previous"
  std::size_t largest_changes = 10;  ///< configurations listed under "largest_changes"
};

struct RegenerateResult {
  nlohmann::json comparison;  ///< see regenerate()
  ModelFile model;            ///< the new model (with the comparison in its provenance)
  bool replaced = false;
  std::filesystem::path model_file;     ///< the installed (or, if kept, the current) model file
  std::filesystem::path previous_file;  ///< "<model_file>.previous" when replaced over a model
};

/// Train on `data` (its sha256 `dataset_sha256` goes to provenance) and compare and install as
/// the header comment says. comparison = {"op", "new_model", "current_model", "current_file",
/// "test_configurations", "metrics": {"new": {test, test_plausible}, "current": {...}},
/// "decision": {"policy", "new_at_least_as_good", "replaced", "reason"}, "groups": [{group, n,
/// measured_over_current, new_over_current, within_10_new, within_10_current}], "largest_changes":
/// [{args, measured_ns, current_ns, new_ns, new_over_current}]}. Progress goes to
/// options.train.progress. Throws TorpError(no_model) when the op has no model and no
/// install_as, TorpError(io) if "<file>.previous" exists and !overwrite_previous.
RegenerateResult regenerate(const Dataset& data, const std::string& dataset_sha256, const nlohmann::json& op_spec,
                            const nlohmann::json& device, const RegenerateOptions& options);

/// What `torp regenerate` (and the Python module's regenerate()) runs: the new data from a
/// dataset file or from sweep output (imported as from-sweep does into work/dataset.jsonl, with
/// work/dataset.report.json), regenerate(), then work/comparison.json and work/comparison.html.
/// Nothing in `work` is replaced unless `force` (TorpError(io)); `force` also allows replacing an
/// existing "<file>.previous". Implemented in the sweep layer (torp_sweep).
struct RegenerateInputs {
  std::optional<std::filesystem::path> dataset;  ///< a dataset file, or:
  std::optional<std::filesystem::path> vectors;  ///< sweep vectors_export file with
  std::vector<std::filesystem::path> results;    ///< its results_export files
  std::filesystem::path work;                    ///< directory for the imported dataset and reports
  bool force = false;
};
RegenerateResult regenerate_files(const RegenerateInputs& inputs, const nlohmann::json& op_spec,
                                  const nlohmann::json& device, RegenerateOptions options);

/// A self-contained HTML page of a comparison (metrics side by side, groups, largest changes).
std::string comparison_html(const nlohmann::json& comparison);

}  // namespace torp
