// SPDX-License-Identifier: Apache-2.0
// torp eval: a model's metrics on a dataset's test configurations, as a table and an HTML report.
#include <fstream>
#include <iostream>

#include <memory>
#include <optional>

#include "commands.hpp"
#include "torp/train/evaluate.hpp"

namespace torp::cli {

namespace {

const char* const kEvalDescription =
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
    "percentage error, R² on runtimes, Spearman rank correlation.\n"
    "Comparison (test configurations the model serves): the model beside its physical baseline\n"
    "alone (its law without the network's correction) and, with --previous, another model on the\n"
    "same rows: n, ±10%, median APE, interval coverage and median width, overall and per group.\n"
    "Groups: --group-by (repeatable; an expression in the op's vocabulary, or a JSON group\n"
    "{\"name\", \"keys\": [EXPR | {\"expr\", \"label\", \"bins\", \"enum\"}]}), else --groups FILE (an op\n"
    "spec's \"report\": {\"groups\"} block, or {\"groups\": [...]}), else the model's op spec's\n"
    "\"report\" groups, else its baseline and plausibility group expressions (docs/op-spec.md).";

struct EvalCli {
  std::string model, dataset;
  std::optional<std::string> html, predictions, json, previous, groups_file;
  std::vector<std::string> group_by;
  std::optional<std::uint64_t> seed;
  std::optional<double> validation_fraction, test_fraction, reject_factor;
  bool all = false;
};

/// The groups of the breakdown the command line asks for; nullopt: the model's defaults.
std::optional<std::vector<ReportGroup>> requested_groups(const EvalCli& c) {
  if (!c.group_by.empty()) {
    std::vector<ReportGroup> out;
    for (std::size_t i = 0; i < c.group_by.size(); ++i) {
      const std::string& g = c.group_by[i];
      const bool is_json = g.find_first_not_of(" \t") != std::string::npos && g[g.find_first_not_of(" \t")] == '{';
      const std::string where = "--group-by #" + std::to_string(i + 1);
      const nlohmann::json j = is_json ? nlohmann::json::parse(g, nullptr, false) : nlohmann::json(g);
      if (j.is_discarded()) throw TorpError(ErrorCode::op_spec, "report group: not valid JSON", where);
      out.push_back(parse_report_group(j, where));
    }
    return out;
  }
  if (!c.groups_file) return std::nullopt;
  const nlohmann::json doc = read_json_file(*c.groups_file, "groups file");
  return with_op_spec_file(*c.groups_file, [&] {
    if (!doc.is_object()) throw TorpError(ErrorCode::op_spec, "a groups file is an object: {\"groups\": [...]} or an op spec", "/");
    return doc.contains("report") ? report_groups_of_spec(doc) : report_groups_of_spec(nlohmann::json{{"report", doc}}, "");
  });
}

void write_file(const std::string& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw TorpError(ErrorCode::io, "cannot write " + file);
  out << text;
  if (!out) throw TorpError(ErrorCode::io, "write failed for " + file);
  std::cerr << "torp eval: wrote " << file << "\n";
}

int eval_command(const EvalCli& c) {
  const ModelFile model = load_model(c.model);
  const std::optional<ModelFile> previous = c.previous ? std::optional<ModelFile>(load_model(*c.previous)) : std::nullopt;
  EvaluationOptions opt = evaluation_options(model);
  opt.groups = requested_groups(c);
  if (c.seed) opt.seed = *c.seed;
  if (c.validation_fraction) opt.validation_fraction = *c.validation_fraction;
  if (c.test_fraction) opt.test_fraction = *c.test_fraction;
  if (c.reject_factor) opt.reject_factor = *c.reject_factor;
  opt.all = c.all;
  const std::string dataset = c.dataset;
  const Dataset data = load_dataset(dataset);
  const std::string sha = sha256_file(dataset);
  const auto src = model.provenance.value("source_data", nlohmann::json());
  if (!opt.all && src.is_object() && src.contains("sha256") && src["sha256"].is_string() && src["sha256"].get<std::string>() != sha)
    std::cerr << "torp eval: warning: " << dataset << " is not the dataset the model was trained on (sha256 differs); "
              << "its test configurations may include training data\n";
  // The loaded models' op specs are valid: an op_spec error here is about a report group, whose
  // file is the --groups file or, for the default groups, the model file (--group-by: none).
  auto evaluate = [&] { return evaluate_model(model, data, opt, previous ? &*previous : nullptr); };
  const Evaluation ev = !c.group_by.empty() ? evaluate() : with_op_spec_file(c.groups_file.value_or(c.model), evaluate);
  std::cout << "model " << model.id << " (" << model.op << ") on " << dataset << ": " << ev.configs.size()
            << " configurations, seed " << opt.seed << ", split " << ev.split.train.size() << " train / "
            << ev.split.validation.size() << " validation / " << ev.split.test.size() << " test\n";
  if (ev.plausibility.defined) {
    std::size_t bad = 0;
    for (std::size_t i : ev.split.test) bad += ev.plausibility.plausible[i] ? 0 : 1;
    std::cout << "plausibility: " << bad << " test labels lie more than " << ev.plausibility.factor
              << "x from their group's robust fit (implausible)\n";
  }
  std::cout << metrics_table(ev.metrics) << trust_table(ev.metrics);
  std::cout << interval_table(ev.intervals) << comparison_table(ev.comparison);
  const auto& ns = ev.metrics.at("not_served");
  if (ns.at("validation").get<std::size_t>() + ns.at("test").get<std::size_t>() > 0)
    std::cout << "not served by the model (left out above): " << ns.dump() << "\n";
  if (const auto& file = c.predictions) {
    std::ofstream out(*file, std::ios::binary | std::ios::trunc);
    if (!out) throw TorpError(ErrorCode::io, "cannot write " + *file);
    write_predictions(ev, out);
    if (!out) throw TorpError(ErrorCode::io, "write failed for " + *file);
    std::cerr << "torp eval: wrote " << *file << "\n";
  }
  if (c.html) write_file(*c.html, html_report(model, ev, dataset));
  if (c.json) write_file(*c.json, evaluation_json(model, ev, dataset).dump(2) + "\n");
  return kExitOk;
}

}  // namespace

void add_eval(CLI::App& root) {
  CLI::App* app = add_command(root, "eval", "Evaluate a model on a dataset's held-out configurations: metrics table and HTML report.", kEvalDescription);
  auto c = std::make_shared<EvalCli>();
  app->add_option("--model", c->model, "model file, e.g. models/wormhole/exp.json")->type_name("FILE")->required();
  app->add_option("--dataset", c->dataset, "dataset (.jsonl) of the model's op")->type_name("FILE")->required();
  app->add_option("--html", c->html, "write a self-contained HTML report (scatter, error histogram, worst cases)")
      ->type_name("FILE");
  app->add_option("--predictions", c->predictions,
                  "write every configuration's served answer as JSON Lines (part, args, label, runtime)")
      ->type_name("FILE");
  app->add_option("--json", c->json, "write the whole report as JSON (metrics, comparison per group, worst errors)")
      ->type_name("FILE");
  app->add_option("--previous", c->previous, "score this model too, on the same configurations, beside the new one")
      ->type_name("MODEL_FILE");
  app->add_option("--group-by", c->group_by,
                  "break the comparison down by this expression (or JSON group); repeatable; replaces the default groups")
      ->type_name("EXPR");
  app->add_option("--groups", c->groups_file, "the report groups of this op spec (or {\"groups\": [...]} file)")
      ->type_name("FILE");
  app->add_option("--seed", c->seed, "split seed (default: the model's provenance seed)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--validation-fraction", c->validation_fraction, "validation share (default: from the model's provenance)")
      ->type_name("F")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--test-fraction", c->test_fraction, "test share (default: from the model's provenance)")
      ->type_name("F")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--reject-factor", c->reject_factor, "repeat rejection factor (default: from the model's provenance)")
      ->type_name("F")
      ->check(CLI::PositiveNumber);
  app->add_flag("--all", c->all,
                "every configuration of the dataset is test data (a dataset the model never saw, e.g. held-out "
                "shapes); the plausibility rule is fitted on all of them");
  on_run(app, [c] { return eval_command(*c); });
}

}  // namespace torp::cli
