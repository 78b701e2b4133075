// SPDX-License-Identifier: Apache-2.0
// torp train: train one op's model from a dataset (split, plausibility, search, provenance).
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

#include <memory>

#include "commands.hpp"
#include "torp/train/evaluate.hpp"
#include "torp/train/trainer.hpp"

namespace torp::cli {
namespace {

using json = nlohmann::json;

const char* const kTrainDescription =
    "Pipeline (deterministic: the same seed and inputs give a byte-identical model file):\n"
    "  1. Aggregate: rows with the same arguments are one configuration; its label is the median\n"
    "     of its repeats after rejecting repeats more than --reject-factor x from their median.\n"
    "  2. Split by configuration (never by row): a seeded permutation of the configurations,\n"
    "     sorted by key, gives --test-fraction test, --validation-fraction validation, rest train.\n"
    "  3. Plausibility rule (op spec \"plausibility\": {\"group\", \"x\", \"factor\"}): within each\n"
    "     group, runtime = a + sum b_j * x_j (a, b_j >= 0) is fitted by least absolute log\n"
    "     deviations on the training configurations; a label more than factor x above or below its\n"
    "     group's fit is implausible (a duration shifted from another configuration). Implausible\n"
    "     labels are kept out of training and validation; test metrics are reported for all test\n"
    "     configurations and for the plausible ones.\n"
    "  4. Recipe (op spec \"recipes\".<--recipe>): network input features, optional baseline\n"
    "     {\"group\", \"terms\"} (per group intercept + sum coef * term, coef >= 0, fitted robustly on\n"
    "     training labels; the network learns log(runtime / baseline)), applies_when, requires and\n"
    "     \"search\" {hidden, learning_rate, batch_size, max_epochs, patience, weight_decay, huber,\n"
    "     ensemble}. Configurations outside applies_when/requires are not used. Optional\n"
    "     \"memory\" {key, lookups}: mean residual log(label / baseline) of the training\n"
    "     configurations per key (e.g. shape, buffer, dtype class), stored in the model; each\n"
    "     lookup gives the inputs memory.<name>.mean / .found (leave-one-out in training).\n"
    "  5. Search: every candidate (hidden x learning_rate x batch_size) trains a dense ReLU MLP\n"
    "     (Adam, mini-batches, inputs standardized on training configurations, early stopping on\n"
    "     validation) in parallel on --threads cores; the winner has the most validation\n"
    "     configurations within ±10%, then the lowest median APE. Test data never influences a\n"
    "     choice. With \"ensemble\": N > 1, N-1 more networks of the winner's shape are trained and\n"
    "     kept only if the averaged ensemble puts at least 0.5 percentage points more validation\n"
    "     configurations within ±10% (every member costs time on every query).\n"
    "  6. Metrics of the chosen model on validation and test configurations go into the model's\n"
    "     provenance, with the dataset's sha256, seed, split, recipe, search and outlier counts;\n"
    "     with a memory also for plausible configurations no lookup finds (unseen shapes).\n"
    "Progress goes to stderr, the final metrics table to stdout.";

struct TrainCli {
  std::string dataset, op_spec, device, out;
  TrainOptions opt;
  bool force = false;
};

int train_command(TrainCli& c) {
  TrainOptions& opt = c.opt;
  const std::string out = c.out;
  if (!c.force && std::filesystem::exists(out)) {
    error("train", out + " exists; pass --force to replace it");
    return kExitFailure;
  }
  opt.dataset_file = c.dataset;
  opt.progress = [](const std::string& line) { std::cerr << "torp train: " << line << std::endl; };

  std::cerr << "torp train: reading " << opt.dataset_file << std::endl;
  const Dataset data = load_dataset(opt.dataset_file);
  const std::string sha = sha256_file(opt.dataset_file);
  const nlohmann::json spec = read_json_file(c.op_spec, "op spec");
  const nlohmann::json device = read_json_file(c.device, "device description");
  TrainReport r = with_op_spec_file(c.op_spec, [&] { return train(data, spec, device, opt, sha); });
  save_model(r.model, out, c.force);
  std::cerr << "torp train: wrote " << out << " (model " << r.model.id << ", " << r.model.ensemble.size()
            << " network(s), hidden " << r.model.provenance["hyperparameters"]["hidden"].dump() << ") in "
            << std::fixed << std::setprecision(1) << r.wall_seconds << " s" << std::endl;
  std::cout << "model " << r.model.id << " (" << r.model.op << "), seed " << opt.seed << ", dataset sha256 "
            << sha.substr(0, 12) << "\n"
            << metrics_table(r.metrics) << trust_table(r.metrics);
  return kExitOk;
}

}  // namespace

void add_train(CLI::App& root) {
  CLI::App* app =
      add_command(root, "train", "Train a runtime model for one op from a dataset and write a model file.", kTrainDescription);
  auto c = std::make_shared<TrainCli>();
  TrainOptions& opt = c->opt;
  app->add_option("--dataset", c->dataset, "dataset (.jsonl) of the op, e.g. data/exp/exp_wormhole.jsonl")
      ->type_name("FILE")
      ->required();
  app->add_option("--op-spec", c->op_spec, "op spec with the recipe, e.g. ops/exp.json")->type_name("FILE")->required();
  app->add_option("--device", c->device, "device description, e.g. devices/wormhole_n300.json")
      ->type_name("FILE")
      ->required();
  app->add_option("--out", c->out, "model file to write, e.g. models/wormhole/exp.json")->type_name("FILE")->required();
  app->add_option("--seed", opt.seed, "seed of the split, initialization and shuffling")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--recipe", opt.recipe, "recipe in the op spec's \"recipes\"")->type_name("NAME")->capture_default_str();
  app->add_option("--id", opt.id, "model id (default: <device name>/<short op name>)")->type_name("ID");
  app->add_option("--threads", opt.threads, "parallel candidates (0 = all cores); results do not depend on it")
      ->type_name("N")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app->add_option("--validation-fraction", opt.validation_fraction, "share of configurations for validation")
      ->type_name("F")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app->add_option("--test-fraction", opt.test_fraction, "share of configurations for test")
      ->type_name("F")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app->add_option("--reject-factor", opt.reject_factor, "repeat rejection factor of the aggregation")
      ->type_name("F")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--cv-folds", opt.cv_folds,
                  "grouped cross-validation folds (default: the recipe's \"cv\", else 5; 0 = none)")
      ->type_name("K")
      ->check(CLI::Range(0, 1000));
  app->add_option("--cv-group", opt.cv_group,
                  "comma-separated op-spec features forming the CV group key (default: the recipe's groupings)")
      ->type_name("FEATURES")
      ->delimiter(',');
  app->add_flag("--force", c->force, "replace --out if it exists");
  on_run(app, [c] { return train_command(*c); });
}

}  // namespace torp::cli
