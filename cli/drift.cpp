// SPDX-License-Identifier: Apache-2.0
// torp drift: hold new measurements against the loaded models; a verdict per model.
#include <iostream>
#include <memory>
#include <optional>

#include "commands.hpp"
#include "torp/log.hpp"
#include "torp/predictor.hpp"
#include "torp/train/drift.hpp"

namespace torp::cli {
namespace {

const char* const kDriftDescription =
    "Per model serving the dataset's op on the dataset's device (header \"device\"; models of other\n"
    "devices are listed, not judged; a model or dataset naming no device always matches):\n"
    "configurations (repeats aggregated to their median), share\n"
    "of measured labels inside their prediction intervals, median and quartiles of measured /\n"
    "predicted, per answer domain (seen / inside / outside), per group (the model's baseline group,\n"
    "e.g. dtype x buffer; else decades of predicted runtime) and the groups that moved most.\n"
    "Intervals: each label against the interval the predictor serves for its configuration (the\n"
    "calibration band of the answer's domain and calibration group; nominal coverage\n"
    "calibration.coverage), inside when lo <= label <= hi; an answer without one against the\n"
    "fallback band +-log(1 + p90 APE) of the model's plausible test labels (provenance), nominal\n"
    "90%. The report says per model, domain and group which was used (served, fallback, mixed).\n"
    "Verdict rule: for the model's configurations and for each group, p = P(X <= inside) with\n"
    "X ~ Binomial(tested, nominal coverage); p-values are Holm-adjusted over the model's scopes; a\n"
    "scope moved when adjusted p < --alpha and |median log(measured / predicted)| >=\n"
    "log(1 + --min-shift). Any moved scope: \"stale\", else \"current\"; a model with no interval\n"
    "at all: \"unknown\". JSON report on stdout ({\"ops\": [...]}), readable summary on stderr.\n"
    "Exit code 0 either way.";

struct DriftCli {
  std::string dataset;
  std::optional<std::string> models;
  DriftOptions options;
};

int drift_command(const DriftCli& c) {
  const auto dir = resolve_models_dir(c.models ? std::optional<std::filesystem::path>(*c.models) : std::nullopt);
  const Dataset data = load_dataset(c.dataset);
  nlohmann::json report = drift(data, dir, c.options);
  report["dataset"] = c.dataset;
  std::cout << report.dump(2) << "\n";
  std::cerr << drift_summary(report);
  return kExitOk;
}

}  // namespace

void add_drift(CLI::App& root) {
  CLI::App* app = add_command(root, "drift",
                              "Are the models still right? Hold new measurements against the models of their op.",
                              kDriftDescription);
  auto c = std::make_shared<DriftCli>();
  app->add_option("--dataset", c->dataset, "new measurements (.jsonl), e.g. from torp dataset from-sweep")
      ->type_name("FILE")
      ->required()
      ->check(kNotDirectory);
  app->add_option("--models", c->models, "models directory (default: $TORP_MODELS, installed models, ./models)")
      ->type_name("DIR");
  app->add_option("--alpha", c->options.alpha, "family-wise significance level per model")
      ->type_name("P")
      ->check(CLI::Range(1e-12, 0.5))
      ->capture_default_str();
  app->add_option("--min-shift", c->options.min_shift, "smallest median shift that makes a model stale (0.05 = 5%)")
      ->type_name("F")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  app->add_option("--reject-factor", c->options.reject_factor, "repeat rejection factor of the aggregation")
      ->type_name("F")
      ->check(CLI::Range(1.0, 1e300))
      ->capture_default_str();
  on_run(app, [c] { return drift_command(*c); });
}

}  // namespace torp::cli
