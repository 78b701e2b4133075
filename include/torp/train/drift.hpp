// SPDX-License-Identifier: Apache-2.0
// Drift: are a directory's models still right for new measurements of their op? New labels are
// held against the served answers and their prediction intervals, per model and per group
// (the model's baseline group, e.g. dtype x buffer; a model without one: decades of predicted
// runtime), and a documented rule turns the counts into a verdict "current" or "stale".
//
// The rule (docs/regenerate.md, "When is a model stale?"), per model:
//   scopes: all configurations the model serves, and each of its groups;
//   per scope with n configurations tested against an interval, k of them with the measured
//   label inside their interval:
//     p = P(X <= k), X ~ Binomial(n, coverage)  (one-sided: fewer inside than nominal);
//   p-values of the model's tested scopes are Holm-adjusted (family-wise level alpha);
//   a scope moved when its adjusted p < alpha AND |median log(measured / predicted)| >=
//   log(1 + min_shift): significantly fewer labels inside than promised, and by a shift that
//   matters. The model is "stale" when any of its scopes moved, else "current".
// Intervals, per configuration: the prediction interval the Predictor serves for it
// (serve_configurations(): the model's calibration band of the answer's domain and calibration
// group, e.g. exp's 16-bit or 32-bit dtypes), nominal coverage calibration.coverage; a label is
// inside when lo <= label <= hi. An answer without an interval (a domain without a band, a model
// without calibration) falls back to a symmetric band in log space from the model's provenance
// test metrics: +-log(1 + p90 APE) of the plausible test labels, nominal coverage 0.9. A scope's
// nominal coverage is the mean of its configurations' (the binomial test with the mean coverage
// is conservative when the coverages differ, Hoeffding 1956). A configuration with neither is
// served but not tested; a model whose configurations are all untested (imported reference
// models) gets the verdict "unknown".
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/model.hpp"
#include "torp/train/dataset.hpp"

namespace torp {

struct DriftOptions {
  double alpha = 0.01;        ///< family-wise significance level per model (Holm over its scopes)
  double min_shift = 0.05;    ///< minimum |median measured / predicted - 1| of a moved scope
  double reject_factor = kDefaultRejectFactor;  ///< repeat rejection when aggregating the dataset
  std::size_t top_groups = 5; ///< groups listed under "moved_most"
};

/// Where a configuration's interval came from.
enum class DriftInterval { served, fallback, none };

/// One scope's statistics (a model's whole data or one group).
struct DriftScope {
  std::string name;        ///< "all" or the group's label, e.g. "BFLOAT16 L1"
  std::size_t n = 0;       ///< configurations with a prediction
  std::size_t tested = 0;  ///< of them with an interval (served or fallback)
  std::size_t served = 0, fallback = 0;  ///< tested configurations by the source of their interval
  std::size_t within = 0;  ///< labels inside their interval
  double coverage = 0;     ///< mean nominal coverage of the tested configurations' intervals
  double median_log_ratio = 0, p25_log_ratio = 0, p75_log_ratio = 0;  ///< log(measured / predicted), all n
  double p_value = 1, p_adjusted = 1;  ///< one-sided binomial test; Holm-adjusted over the model's tested scopes
  bool moved = false;
  /// "served", "fallback", "mixed" (both), or "none" (nothing tested).
  std::string interval_source() const;
};

/// The fallback band of a model, in log(measured / predicted) units.
struct DriftBand {
  double lo = 0, hi = 0, coverage = 0.9;
  std::string source;  ///< "provenance p90 APE"
};
/// The fallback band of `model` (+-log(1 + p90 APE) of its provenance test metrics, the plausible
/// test labels when recorded), or nullopt when its provenance has no such metric.
std::optional<DriftBand> drift_fallback_band(const ModelFile& model);

/// The group of each configuration (as drift reports it; "" where `predicted` is NaN): the
/// model's baseline group feature, labelled by the tensors' dtype and buffer ("BFLOAT16 L1"),
/// else the decade of the predicted runtime ("1e3-1e4 ns"). `feature` receives which.
std::vector<std::string> drift_groups(const ModelFile& model, const std::vector<Configuration>& configs,
                                      const std::vector<double>& predicted, std::string* feature);

/// P(X <= k) for X ~ Binomial(n, p).
double binomial_cdf(std::size_t k, std::size_t n, double p);
/// Holm step-down adjustment of p-values (same order as given).
std::vector<double> holm_adjust(const std::vector<double>& p);

/// The drift report of one model on aggregated configurations of its op:
/// {"op", "model", "file", "configurations" (served), "not_served", "tested" (with an interval),
///  "within_interval" (share of the tested, or null), "nominal_coverage", "interval_source"
///  ("served" | "fallback" | "mixed" | null), "intervals": {"served", "fallback", "none"} (counts),
///  "fallback": {"source", "lo", "hi", "coverage"} | null, "median_ratio", "ratio_p25", "ratio_p75",
///  "p_value", "verdict", "reason", "group_feature", "domains": {DOMAIN: {"configurations",
///  "tested", "within_interval", "interval_source", "median_ratio"}}, "groups": [per group the
///  scope's "group", "configurations", "tested", "within_interval", "nominal_coverage",
///  "interval_source", "median_ratio", "ratio_p25", "ratio_p75", "p_value", "moved"],
///  "moved_most": [...]}.
nlohmann::json drift_model(const ModelFile& model, const std::vector<Configuration>& configs,
                           const DriftOptions& options);

/// Drift of every model in `models_dir` serving the dataset's op: {"dataset", "op", "rule",
/// "configurations", "ops": [drift_model() per model]}. TorpError(no_model) if none serves it.
nlohmann::json drift(const Dataset& data, const std::filesystem::path& models_dir, const DriftOptions& options);

/// Readable multi-line summary of a drift() report (what the CLI writes to stderr).
std::string drift_summary(const nlohmann::json& report);

}  // namespace torp
