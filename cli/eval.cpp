// SPDX-License-Identifier: Apache-2.0
// torp eval: a model's metrics on a dataset's test configurations, as a table and an HTML report.
#include <charconv>
#include <fstream>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "torp/train/evaluate.hpp"

namespace torp::cli {
int cmd_eval(int argc, char** argv) {
  Args a("eval", "Evaluate a model on a dataset's held-out configurations: metrics table and HTML report.",
         "The dataset is aggregated (median of repeats) and split by configuration exactly as `torp train`\n"
         "did: seed, split fractions and repeat rejection factor default to the model's provenance, so\n"
         "the test configurations are the ones the model never saw (pass the dataset it was trained on).\n"
         "Predictions are the Predictor's answers (the model alone, pinned), bit for bit.\n"
         "Plausibility rule (op spec \"plausibility\": {\"group\", \"x\", \"factor\"}): within each group the\n"
         "law runtime = a + sum b_j * x_j (a, b_j >= 0) is fitted by least absolute log deviations on the\n"
         "training configurations; a label more than factor x away from its group's fit is implausible\n"
         "(a duration shifted from another configuration). Metrics are printed for all test\n"
         "configurations and for those with plausible labels (and the same for validation); for a\n"
         "model with a residual memory also for the plausible ones no memory lookup finds (shapes\n"
         "absent from its training data).\n"
         "Metrics: share within ±10% / ±25% of the measured runtime, median / mean / p90 absolute\n"
         "percentage error, R² on runtimes, Spearman rank correlation.");
  a.option("model", "FILE", "model file, e.g. models/wormhole/exp.json (required)")
      .option("dataset", "FILE", "dataset (.jsonl) of the model's op (required)")
      .option("html", "FILE", "write a self-contained HTML report (scatter, error histogram, worst cases)")
      .option("predictions", "FILE", "write every configuration's served answer as JSON Lines (part, args, label, runtime)")
      .option("seed", "N", "split seed (default: the model's provenance seed)")
      .option("validation-fraction", "F", "validation share (default: from the model's provenance)")
      .option("test-fraction", "F", "test share (default: from the model's provenance)")
      .option("reject-factor", "F", "repeat rejection factor (default: from the model's provenance)");
  if (int rc = a.parse(argc, argv); rc >= 0) return rc;
  for (const char* n : {"model", "dataset"})
    if (!a.has(n)) {
      error("eval", std::string("option --") + n + " is required (see torp eval --help)");
      return kExitUsage;
    }
  const ModelFile model = load_model(a.get("model"));
  EvaluationOptions opt = evaluation_options(model);
  bool ok = true;
  if (a.has("seed")) ok = ok && parse_value(a.get("seed"), opt.seed);
  if (a.has("validation-fraction")) ok = ok && parse_value(a.get("validation-fraction"), opt.validation_fraction);
  if (a.has("test-fraction")) ok = ok && parse_value(a.get("test-fraction"), opt.test_fraction);
  if (a.has("reject-factor")) ok = ok && parse_value(a.get("reject-factor"), opt.reject_factor);
  if (!ok) {
    error("eval", "--seed must be a non-negative integer, the fractions and factor numbers");
    return kExitUsage;
  }
  const std::string dataset = a.get("dataset");
  const Dataset data = load_dataset(dataset);
  const std::string sha = sha256_file(dataset);
  const auto src = model.provenance.value("source_data", nlohmann::json());
  if (src.is_object() && src.contains("sha256") && src["sha256"].is_string() && src["sha256"].get<std::string>() != sha)
    std::cerr << "torp eval: warning: " << dataset << " is not the dataset the model was trained on (sha256 differs); "
              << "its test configurations may include training data\n";
  const Evaluation ev = evaluate_model(model, data, opt);
  std::cout << "model " << model.id << " (" << model.op << ") on " << dataset << ": " << ev.configs.size()
            << " configurations, seed " << opt.seed << ", split " << ev.split.train.size() << " train / "
            << ev.split.validation.size() << " validation / " << ev.split.test.size() << " test\n";
  if (ev.plausibility.defined) {
    std::size_t bad = 0;
    for (std::size_t i : ev.split.test) bad += ev.plausibility.plausible[i] ? 0 : 1;
    std::cout << "plausibility: " << bad << " test labels lie more than " << ev.plausibility.factor
              << "x from their group's robust fit (implausible)\n";
  }
  std::cout << metrics_table(ev.metrics);
  const auto& ns = ev.metrics.at("not_served");
  if (ns.at("validation").get<std::size_t>() + ns.at("test").get<std::size_t>() > 0)
    std::cout << "not served by the model (left out above): " << ns.dump() << "\n";
  if (auto file = a.maybe("predictions")) {
    std::ofstream out(*file, std::ios::binary | std::ios::trunc);
    if (!out) throw TorpError(ErrorCode::io, "cannot write " + *file);
    write_predictions(ev, out);
    if (!out) throw TorpError(ErrorCode::io, "write failed for " + *file);
    std::cerr << "torp eval: wrote " << *file << "\n";
  }
  if (auto html = a.maybe("html")) {
    std::ofstream out(*html, std::ios::binary | std::ios::trunc);
    if (!out) throw TorpError(ErrorCode::io, "cannot write " + *html);
    out << html_report(model, ev, dataset);
    if (!out) throw TorpError(ErrorCode::io, "write failed for " + *html);
    std::cerr << "torp eval: wrote " << *html << "\n";
  }
  return kExitOk;
}

}  // namespace torp::cli
