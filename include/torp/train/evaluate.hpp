// SPDX-License-Identifier: Apache-2.0
// Evaluation on configurations a model never saw: the seeded split by configuration, the label
// plausibility rule, relative-error metrics and the HTML report.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <iosfwd>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/train/dataset.hpp"
#include "torp/encoder.hpp"
#include "torp/enums.hpp"
#include "torp/model.hpp"

namespace torp {

struct Metrics {
  std::size_t n = 0;
  double within_10 = 0, within_25 = 0;  ///< share of |pred/meas - 1| <= 0.10 / 0.25
  double median_ape = 0, mean_ape = 0, p90_ape = 0;  ///< absolute percentage errors, in %
  double r2 = 0;        ///< coefficient of determination on runtimes (ns)
  double spearman = 0;  ///< rank correlation of predicted vs measured (ties get their mean rank)
};
/// Metrics of predicted vs measured runtimes (equal sizes, measured > 0). Percentiles interpolate
/// linearly between order statistics. With fewer than 2 values r2 and spearman are 0.
Metrics compute_metrics(const std::vector<double>& predicted, const std::vector<double>& measured);
/// {"n", "within_10", "within_25", "median_ape", "mean_ape", "p90_ape", "r2", "spearman"};
/// n = 0 gives n and nulls.
nlohmann::json to_json(const Metrics& m);

/// Indices of configurations (sorted by key) assigned to each part; deterministic for a seed.
struct Split {
  std::vector<std::size_t> train, validation, test;
};
/// `configs` must be sorted by key (aggregate() returns them so). A seeded permutation of
/// 0..n_configs-1 (own RNG, identical on every platform) gives round(n * test_fraction) test
/// and round(n * validation_fraction) validation configurations, the rest trains; each part is
/// returned sorted. Throws TorpError(training) for fractions outside [0, 1) or summing to >= 1.
Split split_by_configuration(std::size_t n_configs, std::uint64_t seed, double validation_fraction,
                             double test_fraction);

/// The label plausibility rule of an op spec, its "plausibility" block:
///   {"group": EXPR (optional), "x": EXPR or [EXPR, ...], "factor": F (> 1)}
/// Within each value of `group` (one group if absent), the law runtime = a + sum_j b_j * x_j with
/// a, b_j >= 0 is fitted robustly (least absolute log deviations) on the configurations
/// `fit_on` (normally the training part). A label is plausible when it lies within a factor F of
/// its group's fit: fit / F <= label <= fit * F. Labels of a group with too few fitted
/// configurations (fewer than terms + 2) are not judged (plausible). Returns one flag per
/// configuration and the fits. Configurations the rule cannot encode (e.g. a sharded-only term
/// of an interleaved tensor) are not judged (plausible).
struct PlausibilityResult {
  std::vector<bool> plausible;
  nlohmann::json fits;   ///< per group: {group, intercept, coef, n}
  bool defined = false;  ///< false if the op spec declares no rule (all labels plausible)
  double factor = 0;
};
PlausibilityResult judge_plausibility(const std::vector<Configuration>& configs, const Encoder& encoder,
                                      const std::vector<std::size_t>& fit_on);

/// A configuration's answer from the Predictor serving `model` alone, pinned to it.
struct ServedAnswer {
  double runtime_ns = std::numeric_limits<double>::quiet_NaN();  ///< NaN where not served
  bool memory_found = false;  ///< Prediction::memory_found
  std::string domain;         ///< to_string(Prediction::domain); "" where not served
  std::optional<std::array<double, 2>> interval_ns;  ///< Prediction::interval_ns
};
/// Every configuration answered by a Predictor built from `model` (Predictor(std::vector<ModelFile>),
/// query {"op", "args", "model": model.id}, through predict_batch): the served answers bit for
/// bit. Not served (NaN) where the model does not apply, rejects the arguments, or its output is
/// invalid. A residual memory is looked up as served (a training configuration finds its own
/// residual).
std::vector<ServedAnswer> serve_configurations(const ModelFile& model, const std::vector<Configuration>& configs);

/// serve_configurations()'s runtimes; with `memory_hit`, per configuration whether any memory
/// lookup found an entry (false without a memory or without a prediction).
/// With `domain`, it receives per configuration the served answer's domain as a number (0 seen:
/// a lookup marked seen found an entry; 1 inside: every non-memory input within input_range, or
/// no input_range; 2 outside), -1 without a prediction.
std::vector<double> predict_configurations(const ModelFile& model, const std::vector<Configuration>& configs,
                                           std::vector<bool>* memory_hit = nullptr, std::vector<int>* domain = nullptr);

/// Per answer domain (seen, inside, outside) of the served answers with an interval: {"n",
/// "coverage" (share of plausible labels of `part` inside the served interval), "width" (median
/// (hi - lo) / runtime of the served intervals), "within_10", "median_ape"}; domains without such
/// answers are left out ({} for a model without calibration).
nlohmann::json coverage_by_domain(const std::vector<ServedAnswer>& served, const std::vector<Configuration>& configs,
                                  const std::vector<std::size_t>& part, const std::vector<bool>& plausible);

/// Metrics of the parts of a split: {"validation", "validation_plausible", "test", "test_plausible",
/// "not_served": {"validation", "test"}}. Configurations without a prediction (NaN) are counted in
/// not_served and left out of the metrics. With `memory_hit` (a model with a residual memory) also
/// "validation_plausible_no_memory_hit" and "test_plausible_no_memory_hit": the plausible
/// configurations no memory lookup finds anything for (e.g. shapes absent from the training data),
/// what to expect for an unseen shape.
nlohmann::json split_metrics(const std::vector<double>& predicted, const std::vector<Configuration>& configs,
                             const Split& split, const std::vector<bool>& plausible,
                             const std::vector<bool>* memory_hit = nullptr);

/// One key of a report group: an op-spec expression, shown by its enum name when it reads a
/// tensor's dtype / buffer_type / memory_layout / layout / shard_orientation directly (or when
/// `enum_kind` is given), else as a number, or as the bin [b_i, b_i+1) when `bins` (ascending
/// edges) are given.
struct ReportGroupKey {
  std::string expr;
  std::string label;                 ///< shown before the value ("" : the expression's text)
  std::vector<double> bins;          ///< ascending bin edges; empty: the value itself
  std::optional<EnumKind> enum_kind; ///< shown by enum name
  std::string where;                 ///< JSON path (or option) of the expression, for errors
};
/// A breakdown of the evaluation: configurations grouped by the values of `keys`.
struct ReportGroup {
  std::string name;
  std::vector<ReportGroupKey> keys;
};
/// Parse a group definition: {"name"?: TEXT, "keys": [KEY, ...]} or {"name"?, "expr": KEY}, where a
/// KEY is an expression or {"expr": EXPR, "label"?: TEXT, "bins"?: [edges], "enum"?: KIND}; a bare
/// expression string is a group of that one key. TorpError(op_spec) naming `path` when malformed.
ReportGroup parse_report_group(const nlohmann::json& j, const std::string& path);
/// The groups of an op spec's optional "report": {"groups": [...]} block; none without it. Paths
/// in errors start at `report_path` ("" for a file that is the report block itself).
std::vector<ReportGroup> report_groups_of_spec(const nlohmann::json& op_spec, const std::string& report_path = "/report");
/// Every group key's expression compiled in the model's op spec: TorpError(op_spec) at the key's
/// `where` for one that does not compile (an unknown name, a syntax error), before any work.
void check_report_groups(const ModelFile& model, const std::vector<ReportGroup>& groups);
/// The groups `torp eval` breaks a model's evaluation down by (errors at their path in the model
/// file, /op_spec/report/...): its op spec's "report" groups,
/// else the group expressions of its baseline law and of its plausibility rule (one each,
/// distinct), else none.
std::vector<ReportGroup> default_report_groups(const ModelFile& model);

/// Per configuration the model's own physical baseline alone (its law, without the network's
/// correction), computed from the same encoding as the served answer; NaN where the model has no
/// baseline or the law cannot be computed (or is not a positive finite runtime).
std::vector<double> baseline_predictions(const ModelFile& model, const std::vector<Configuration>& configs);

/// How `torp eval` re-creates a model's split; by default read from its provenance.
struct EvaluationOptions {
  std::uint64_t seed = 1;
  double validation_fraction = 0.15;
  double test_fraction = 0.15;
  double reject_factor = kDefaultRejectFactor;
  /// Evaluate every configuration of the dataset as test data (a dataset the model never saw,
  /// e.g. held-out shapes): no split, the plausibility rule fitted on all configurations.
  bool all = false;
  /// The per-group breakdown; nullopt: default_report_groups() of the model.
  std::optional<std::vector<ReportGroup>> groups;
};
/// The options a model was trained with (provenance seed, split, aggregation); defaults for any
/// missing entry (e.g. imported models).
EvaluationOptions evaluation_options(const ModelFile& model);

struct Evaluation {
  std::vector<Configuration> configs;  ///< aggregated, sorted by key
  AggregationReport aggregation;
  Split split;
  PlausibilityResult plausibility;     ///< the model's op-spec rule, fitted on the training part
  std::vector<ServedAnswer> served;    ///< per configuration, as the Predictor answers
  std::vector<double> predicted;       ///< per configuration, served[i].runtime_ns
  std::vector<int> domain;             ///< per configuration, served[i].domain: 0 seen, 1 inside, 2 outside, -1 not served
  nlohmann::json metrics;              ///< split_metrics()
  nlohmann::json intervals;            ///< interval_metrics() of the test part
  std::vector<double> baseline;        ///< per configuration, baseline_predictions()
  std::string previous_id;             ///< id of the previous model ("" without one)
  std::vector<ServedAnswer> previous;  ///< per configuration, the previous model's served answer (empty without)
  std::vector<ReportGroup> groups;     ///< the breakdown's groups
  /// comparison_report(): the model, its baseline alone and the previous model on the same test
  /// configurations, overall and per group.
  nlohmann::json comparison;
};

/// How the served intervals fare on the configurations `part` with plausible labels, per answer
/// domain: {"<domain>": {"n", "with_interval", "coverage" (share of labels inside [lo, hi] among
/// those with an interval, null without), "median_width" (median of (hi - lo) / runtime, null
/// without)}}.
nlohmann::json interval_metrics(const Evaluation& e, const std::vector<std::size_t>& part);
/// Aggregate `data`, split it as `options` say, judge plausibility and predict every configuration;
/// with `previous` (a model of the same op) also its served answers on the same configurations.
Evaluation evaluate_model(const ModelFile& model, const Dataset& data, const EvaluationOptions& options,
                          const ModelFile* previous = nullptr);

/// The comparison on the test part (plausible labels, and all labels), each column scored on the
/// configurations the model serves: {"part": "test", "model": id, "previous": id | null,
///  "overall": {"plausible" | "all": {"model" | "baseline" | "previous": SCORES}},
///  "groups": [{"name", "keys": [expr...], "rows": [{"label", "key": [values], "common": {pointer:
///  value} (argument fields all the row's configurations share, where the others differ),
///  "implausible" (test labels left out), "model" | "baseline" | "previous": SCORES}]}]}
/// SCORES = {"n", "within_10", "median_ape", "p90_ape"} plus, for served answers with intervals,
/// "coverage" and "median_width"; null where the column has no answer (no baseline, no previous).
/// A configuration a group's keys cannot be computed for is in the row labelled "(none)".
nlohmann::json comparison_report(const Evaluation& e, const ModelFile& model);

/// The whole evaluation as one JSON document (`torp eval --json`): model, dataset, split sizes,
/// plausibility, "metrics", "intervals", "comparison" and the worst test errors among plausible and
/// among implausible labels ("worst": {"plausible" | "implausible": [{"args", "label_ns",
/// "runtime_ns", "error" (predicted / measured - 1), "domain", "suites", "input_hashes"}]}, at most
/// `worst` each, largest |error| first).
nlohmann::json evaluation_json(const ModelFile& model, const Evaluation& e, const std::string& dataset_name,
                               std::size_t worst = 15);
/// The test configurations (indices) with a served answer, largest |error| first, plausible or
/// implausible labels, at most `limit`.
std::vector<std::size_t> worst_errors(const Evaluation& e, bool plausible, std::size_t limit);
/// Plain text of comparison_report(): the overall table and one table per group.
std::string comparison_table(const nlohmann::json& comparison);

/// "train", "validation" or "test": the part of `split` configuration i belongs to.
std::string part_of(const Split& split, std::size_t i);

/// One JSON line per configuration, in key order: {"part", "args", "label_ns", "plausible",
/// "runtime_ns" (the served answer, null where not served), "memory_found", "domain",
/// "interval_ns" (null without), "baseline_ns" (null without), "suites", "input_hashes"; with a
/// previous model also "previous_ns"}. Numbers are written
/// with 17 significant digits: read back, they equal the served doubles exactly.
void write_predictions(const Evaluation& e, std::ostream& out);

/// Plain-text table of split_metrics() (one row per part present, aligned columns).
std::string metrics_table(const nlohmann::json& metrics);
/// Plain text of the trust metrics: "cv" (per grouping: out-of-fold accuracy, and per domain
/// coverage of the 90% intervals) and "test_coverage" (per domain); empty without them.
std::string trust_table(const nlohmann::json& metrics);

/// Plain-text table of interval_metrics(): per domain n, coverage and median relative width.
std::string interval_table(const nlohmann::json& intervals);

/// A self-contained HTML page (inline CSS and SVG, no scripts): model summary, metrics table,
/// predicted-vs-measured log-log scatter of the test configurations (implausible labels drawn
/// as hollow red markers) and a histogram of their signed percentage errors.
std::string html_report(const ModelFile& model, const Evaluation& evaluation, const std::string& dataset_name);

}  // namespace torp
