// SPDX-License-Identifier: Apache-2.0
// torp make-analytical: the analytical (roofline) models of op specs on devices.
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "torp/train/analytical.hpp"

namespace torp::cli {
namespace {

const char* const kDescription =
    "For every --op-spec (a plain spec or an op family with \"members\") and every --device, writes\n"
    "<out-dir>/<device>/analytical/<op>.json: a model of kind analytical whose answer is the spec's\n"
    "roofline feature (the terms of its \"analytical\" recipe, coefficient 1), priority --priority\n"
    "(default -100: a trained or imported model that applies answers first). See docs/analytical.md.\n"
    "--band-from MODEL=DATASET (repeatable) calibrates the \"analytical\" interval band: quantiles of\n"
    "log(measured / predicted) over the held-out test configurations of each dataset (split as\n"
    "torp train splits it: seed 1, 15% validation, 15% test), pooled, and written into every model\n"
    "made (a transfer from the ops with measurements to all). The band report goes to stdout.";

struct MakeAnalyticalCli {
  std::vector<std::string> specs, devices, band_from;
  std::string out_dir;
  double coverage = 0.9;
  int priority = kAnalyticalPriority;
  bool overwrite = false;
};

std::pair<std::string, std::string> split_pair(const std::string& s) {
  const auto at = s.find('=');
  if (at == std::string::npos || at == 0 || at + 1 == s.size())
    throw UsageError("--band-from takes MODEL=DATASET, got '" + s + "'");
  return {s.substr(0, at), s.substr(at + 1)};
}

int make_analytical_command(const MakeAnalyticalCli& c) {
  std::optional<Calibration> band;
  if (!c.band_from.empty()) {
    std::vector<std::pair<ModelFile, Dataset>> measured;
    for (const auto& s : c.band_from) {
      auto [model, dataset] = split_pair(s);
      measured.emplace_back(load_model(model), load_dataset(dataset));
    }
    nlohmann::json report;
    band = analytical_band(measured, c.coverage, EvaluationOptions{}, &report);
    std::cout << report.dump(2) << "\n";
  }
  const std::filesystem::path out_dir = c.out_dir;
  std::size_t written = 0;
  for (const auto& device_file : c.devices) {
    const nlohmann::json device = read_json_file(device_file, "device description");
    for (const auto& spec_file : c.specs) {
      const nlohmann::json spec = read_json_file(spec_file, "op spec");
      for (ModelFile& m : with_op_spec_file(spec_file, [&] { return make_analytical_models(spec, device, spec_file, band); })) {
        m.priority = c.priority;
        const auto file = out_dir / (m.id + ".json");
        std::filesystem::create_directories(file.parent_path());
        save_model(m, file, c.overwrite);
        ++written;
      }
    }
  }
  std::cerr << "torp make-analytical: wrote " << written << " models under " << out_dir.string() << "\n";
  return kExitOk;
}

}  // namespace

void add_make_analytical(CLI::App& root) {
  CLI::App* app = add_command(root, "make-analytical", "Write the analytical (roofline) models of op specs on devices.",
                              kDescription);
  auto c = std::make_shared<MakeAnalyticalCli>();
  app->add_option("--op-spec", c->specs, "op spec or family with an \"analytical\" recipe (repeatable)")
      ->type_name("FILE")
      ->required()
      ->check(kNotDirectory);
  app->add_option("--device", c->devices, "device description (repeatable)")->type_name("FILE")->required()->check(kNotDirectory);
  app->add_option("--out-dir", c->out_dir, "models directory, e.g. models")->type_name("DIR")->required();
  app->add_option("--band-from", c->band_from, "held-out measurements for the interval band (repeatable)")
      ->type_name("MODEL=DATASET");
  app->add_option("--coverage", c->coverage, "nominal coverage of the band")
      ->type_name("P")
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
  app->add_option("--priority", c->priority, "model priority (below every trained or imported model)")
      ->type_name("N")
      ->check(CLI::Range(-1000000, 1000000))
      ->capture_default_str();
  app->add_flag("--overwrite", c->overwrite, "replace existing model files");
  on_run(app, [c] { return make_analytical_command(*c); });
}

}  // namespace torp::cli
