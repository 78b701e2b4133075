// SPDX-License-Identifier: Apache-2.0
// Analytical models: an op spec's roofline feature (`analytical_ns`, the terms of its "analytical"
// recipe) written as a model of kind "analytical" (no network: the answer is the law), and the
// "analytical" interval band calibrated on held-out measurements. docs/analytical.md.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/model.hpp"
#include "torp/train/dataset.hpp"
#include "torp/train/evaluate.hpp"

namespace torp {

/// Priority of analytical models: below every trained or imported model of the op.
inline constexpr int kAnalyticalPriority = -100;

/// One analytical model per op of `spec` (an op family gives one per member; see
/// expand_op_family) on `device`: id "<device name>/analytical/<op short name>", kind analytical,
/// baseline = the terms of the spec's "analytical" recipe with coefficient 1 and intercept 0,
/// applies_when / requires from that recipe, `calibration` if given. `spec_source` is recorded
/// in the provenance. Throws TorpError(op_spec) if the spec has no analytical recipe.
std::vector<ModelFile> make_analytical_models(const nlohmann::json& spec, const nlohmann::json& device,
                                              const std::string& spec_source,
                                              const std::optional<Calibration>& calibration);

/// The "analytical" band: quantiles (1 - coverage) / 2 and (1 + coverage) / 2 of
/// log(measured / predicted) over the held-out test configurations of each (model, dataset) pair,
/// split as `options` say (the split `torp train` uses by default), pooled. lo <= 0 <= hi.
/// Throws TorpError(training) if no test configuration is served.
Calibration analytical_band(const std::vector<std::pair<ModelFile, Dataset>>& measured, double coverage,
                            const EvaluationOptions& options, nlohmann::json* report = nullptr);

}  // namespace torp
