// SPDX-License-Identifier: Apache-2.0
// torp regenerate: sweep output (or a dataset) -> trained model -> comparison -> installed if better.
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "commands.hpp"
#include "torp/log.hpp"
#include "torp/predictor.hpp"
#include "torp/train/regenerate.hpp"

namespace torp::cli {
namespace {

namespace fs = std::filesystem;

const char* const kRegenerateDescription =
    "1. Import: --vectors + --results (as torp dataset from-sweep; the dataset is written to\n"
    "   WORK/dataset.jsonl with its report) or --dataset.\n"
    "2. Train with the op spec's recipe (as torp train: seeded split by configuration, search).\n"
    "3. Compare the new model and the current one (the op's model in --models with the new id,\n"
    "   else its highest-priority trained model) on the same held-out configurations of the new\n"
    "   data (the new model's test split): metrics side by side, per-group shifts, the largest\n"
    "   changes; written to WORK/comparison.json and WORK/comparison.html, JSON also on stdout.\n"
    "4. Replace (--replace if-better, the default): the new model is installed when it puts at\n"
    "   least as many held-out plausible labels within +-10% (a tie: median APE not larger);\n"
    "   'always' installs it anyway, 'never' only compares. The previous file is kept beside it\n"
    "   as <file>.previous (the predictor loads only *.json); the new file arrives by one rename.\n"
    "   Its provenance records the comparison (\"regeneration\").\n"
    "Nothing is overwritten without --force: WORK's files and an existing <file>.previous.";

struct RegenerateCli {
  std::optional<std::string> dataset, vectors, models, install_as;
  std::vector<std::string> results;
  std::string op_spec, device, work, replace = "if-better";
  TrainOptions train;
  bool force = false;
};

int regenerate_command(const RegenerateCli& c) {
  if (c.dataset.has_value() == c.vectors.has_value() || c.vectors.has_value() == c.results.empty())
    throw UsageError("give either --dataset or --vectors with --results");
  RegenerateOptions o;
  o.replace = parse_replace_policy(c.replace);
  o.train = c.train;
  o.train.progress = [](const std::string& line) { std::cerr << "torp regenerate: " << line << std::endl; };
  o.models_dir = resolve_models_dir(c.models ? std::optional<fs::path>(*c.models) : std::nullopt);
  if (c.install_as) o.install_as = *c.install_as;
  RegenerateInputs in;
  if (c.dataset) in.dataset = *c.dataset;
  if (c.vectors) in.vectors = *c.vectors;
  in.results.assign(c.results.begin(), c.results.end());
  in.work = c.work;
  in.force = c.force;
  const nlohmann::json spec = read_json_file(c.op_spec, "op spec");
  const nlohmann::json device = read_json_file(c.device, "device description");
  set_log_callback([](LogLevel level, std::string_view m) {
    if (level >= LogLevel::warning) std::cerr << "torp regenerate: " << m << "\n";
  });
  const RegenerateResult r = with_op_spec_file(c.op_spec, [&] { return regenerate_files(in, spec, device, o); });
  set_log_callback(nullptr);
  std::cout << r.comparison.dump(2) << "\n";
  std::cerr << "torp regenerate: " << (r.replaced ? "replaced " : "kept ") << r.model_file.string() << "; report "
            << (in.work / "comparison.html").string() << "\n";
  return kExitOk;
}

}  // namespace

void add_regenerate(CLI::App& root) {
  CLI::App* app = add_command(root, "regenerate",
                              "From sweep output or a dataset to a trained, compared and (if better) installed model.",
                              kRegenerateDescription);
  auto c = std::make_shared<RegenerateCli>();
  app->add_option("--vectors", c->vectors, "sweep vectors_export file (with --results)")->type_name("FILE");
  app->add_option("--results", c->results, "sweep results_export file(s) (with --vectors; repeatable)")->type_name("FILE");
  app->add_option("--dataset", c->dataset, "dataset (.jsonl) instead of sweep output")->type_name("FILE");
  app->add_option("--op-spec", c->op_spec, "op spec with the recipe, e.g. ops/exp.json")->type_name("FILE")->required();
  app->add_option("--device", c->device, "device description, e.g. devices/wormhole_n300.json")
      ->type_name("FILE")
      ->required();
  app->add_option("--models", c->models, "models directory (default: $TORP_MODELS, installed models, ./models)")
      ->type_name("DIR");
  app->add_option("--work", c->work, "directory for the imported dataset and the comparison report")
      ->type_name("DIR")
      ->required();
  app->add_option("--replace", c->replace, "when to install the new model")
      ->type_name("WHEN")
      ->check(CLI::IsMember({"if-better", "always", "never"}))
      ->capture_default_str();
  app->add_option("--install-as", c->install_as, "model file to write when the op has no model in --models")
      ->type_name("FILE");
  app->add_option("--seed", c->train.seed, "seed of the split and training")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--recipe", c->train.recipe, "recipe in the op spec's \"recipes\"")->type_name("NAME")->capture_default_str();
  app->add_option("--id", c->train.id, "model id (default: <device name>/<short op name>)")->type_name("ID");
  app->add_option("--threads", c->train.threads, "parallel candidates (0 = all cores)")
      ->type_name("N")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app->add_flag("--force", c->force, "replace existing files in --work and an existing <file>.previous");
  on_run(app, [c] { return regenerate_command(*c); });
}

}  // namespace torp::cli
