// SPDX-License-Identifier: Apache-2.0
// Evaluation on configurations a model never saw: the seeded split by configuration, the label
// plausibility rule, relative-error metrics and the HTML report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/dataset.hpp"
#include "torp/encoder.hpp"

namespace torp {

struct Metrics {
  std::size_t n = 0;
  double within_10 = 0, within_25 = 0;  ///< share of |pred/meas - 1| <= 0.10 / 0.25
  double median_ape = 0, mean_ape = 0, p90_ape = 0;  ///< absolute percentage errors, in %
  double r2 = 0;        ///< coefficient of determination on runtimes (ns)
  double spearman = 0;  ///< rank correlation of predicted vs measured
};
Metrics compute_metrics(const std::vector<double>& predicted, const std::vector<double>& measured);
nlohmann::json to_json(const Metrics& m);

/// Indices of configurations (sorted by key) assigned to each part; deterministic for a seed.
struct Split {
  std::vector<std::size_t> train, validation, test;
};
/// `configs` must be sorted by key (aggregate() returns them so).
Split split_by_configuration(std::size_t n_configs, std::uint64_t seed, double validation_fraction,
                             double test_fraction);

/// The label plausibility rule of an op spec ("plausibility": {"group", "x", "factor"}): within
/// each group, fit runtime = a + b*x robustly (least absolute deviations), and call a label
/// plausible when it lies within `factor` x of the fit. Configurations are fitted on `fit_on`
/// (normally the training part) and judged all. Returns one flag per configuration and the fits.
struct PlausibilityResult {
  std::vector<bool> plausible;
  nlohmann::json fits;  ///< per group: {group, a, b, n}
  bool defined = false;  ///< false if the op spec declares no rule (all labels plausible)
};
PlausibilityResult judge_plausibility(const std::vector<Configuration>& configs, const Encoder& encoder,
                                      const std::vector<std::size_t>& fit_on);

}  // namespace torp
