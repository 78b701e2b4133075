// SPDX-License-Identifier: Apache-2.0
// torp suggest: a small probe set of sweep vectors that reveals drift of an op's model.
#include <iostream>
#include <memory>
#include <optional>

#include "commands.hpp"
#include "torp/log.hpp"
#include "torp/predictor.hpp"
#include "torp/train/suggest.hpp"

namespace torp::cli {
namespace {

const char* const kSuggestDescription =
    "Candidates: the configurations of --dataset, else of the model's training dataset (its\n"
    "provenance names it; looked up from the working directory and beside the models directory),\n"
    "that the model serves. They are grouped as torp drift groups them (e.g. dtype x buffer) and\n"
    "split into thirds by predicted runtime; probes go round-robin over groups and their thirds\n"
    "(seeded picks), so every group gets about COUNT / groups probes over its range of runtimes.\n"
    "The vectors are written in the tt-metal sweep framework's vectors_export format (newest\n"
    "generator: native JSON values, MemoryConfig as {\"type\", \"data\"}), one suite; each is checked\n"
    "to map back to its configuration through the op spec's \"sweep\" block. Measure them with\n"
    "the sweep runner (--device-perf), then: torp dataset from-sweep, torp drift.\n"
    "A JSON summary (groups, probes with input_hash and predicted runtime) goes to stdout.";

struct SuggestCli {
  SuggestOptions options;
  std::string out;
  std::optional<std::string> models, pool;
};

int suggest_command(SuggestCli c) {
  c.options.out = c.out;
  c.options.models_dir = resolve_models_dir(c.models ? std::optional<std::filesystem::path>(*c.models) : std::nullopt);
  if (c.pool) c.options.pool = *c.pool;
  set_log_callback([](LogLevel level, std::string_view m) {
    if (level >= LogLevel::warning) std::cerr << "torp suggest: " << m << "\n";
  });
  const nlohmann::json r = suggest(c.options);
  set_log_callback(nullptr);
  std::cout << r.dump(2) << "\n";
  std::cerr << "torp suggest: wrote " << r["count"].get<std::size_t>() << " vectors of " << r["model"].get<std::string>()
            << " (" << r["groups"].size() << " groups) to " << c.out << "\n";
  return kExitOk;
}

}  // namespace

void add_suggest(CLI::App& root) {
  CLI::App* app = add_command(root, "suggest", "Write a few sweep vectors that reveal whether an op's model drifted.",
                              kSuggestDescription);
  auto c = std::make_shared<SuggestCli>();
  SuggestOptions& o = c->options;
  app->add_option("--op", o.op, "op of the model, e.g. exp or ttnn.matmul")->type_name("OP")->required();
  app->add_option("--count", o.count, "probes to write")->type_name("N")->check(CLI::Range(1, 1000000))->capture_default_str();
  app->add_option("--out", c->out, "vectors_export file to write, e.g. /tmp/probes/eltwise.unary.exp.exp.json")
      ->type_name("FILE")
      ->required()
      ->check(kNotDirectory);
  app->add_option("--models", c->models, "models directory (default: $TORP_MODELS, installed models, ./models)")
      ->type_name("DIR");
  app->add_option("--model", o.model_id, "model id (default: the op's highest-priority trained model)")->type_name("ID");
  app->add_option("--dataset", c->pool, "candidate pool (.jsonl of the op; default: the model's training dataset)")
      ->type_name("FILE");
  app->add_option("--seed", o.seed, "seed of the picks")->type_name("N")->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_option("--suite", o.suite, "suite name of the vectors")->type_name("NAME")->capture_default_str();
  app->add_option("--tag", o.tag, "tag of the vectors")->type_name("TAG")->capture_default_str();
  app->add_flag("--force", o.overwrite, "replace --out if it exists");
  on_run(app, [c] { return suggest_command(*c); });
}

}  // namespace torp::cli
