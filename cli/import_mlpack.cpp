// SPDX-License-Identifier: Apache-2.0
// torp import-mlpack: convert a reference mlpack model + scaler into a TORP model file.
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <memory>

#include "commands.hpp"
#include "torp/train/mlpack_import.hpp"

namespace torp::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::optional<std::vector<int>> parse_widths(const std::string& s) {
  std::vector<int> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    int v = 0;
    const char* b = s.data() + start;
    const char* e = s.data() + comma;
    auto [end, ec] = std::from_chars(b, e, v);
    if (b == e || ec != std::errc() || end != e || v <= 0) return std::nullopt;
    out.push_back(v);
    start = comma + 1;
  }
  return out;
}

/// A number if the text is one ("0.95"), else the text itself ("0.89-0.98").
json number_or_text(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_discarded() && j.is_number()) return j;
  return s;
}

json value_or_null(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? json(nullptr) : *it;
}

/// Number of features recipe `name` lists, if the op spec has such a recipe (else the import
/// itself reports the malformed spec).
std::optional<std::size_t> recipe_feature_count(const json& spec, const std::string& name) {
  const json features = value_or_null(value_or_null(value_or_null(spec, "recipes"), name.c_str()), "features");
  if (!features.is_array()) return std::nullopt;
  return features.size();
}

const char* const kDescription =
    "Reads the flat parameter matrix of an mlpack FFN archive (cereal binary) and the mean and\n"
    "standard deviation of its StandardScaler, and writes a v1 model: the op spec and device\n"
    "description are frozen into it, the input features are op_spec.recipes.<recipe>.features (in\n"
    "the order the mlpack model was trained on), its requirements op_spec.recipes.<recipe>.requires.\n"
    "The network is inputs -> hidden... -> 1 with ReLU, predicting nanoseconds directly.\n"
    "Hidden widths come from --config (architecture_config.hidden_layers of --config-name), or\n"
    "from --hidden, which wins. Board, tt-metal commit and optimizer settings are taken from the\n"
    "same config entry (metal_tracking_info, optimizer_config) into the model's provenance.\n"
    "An existing output file is kept unless --force is given.\n\n"
    "example:\n"
    "  torp import-mlpack --model exp_mlp_model.bin --scaler exp_scaler.bin --op-spec ops/exp.json \\\n"
    "    --device devices/wormhole_n300.json --config mlp_config.json --config-name exp \\\n"
    "    --id reference/exp --reported-r2 0.95";

struct ImportCli {
  std::string model, scaler, op_spec, device, id, recipe = "reference";
  std::optional<std::string> config, config_name, hidden, board, tt_metal_commit, reported_r2, out;
  std::vector<std::string> applies_when;
  int priority = 0;
  std::string source_repo = "tenstorrent/ttnn-op-runtime-predictor", source_commit = "d9150e5",
              source_dir = "train/mlpack";
  bool force = false;
};

/// The --config file's entry for --config-name (an empty object without --config).
json config_entry(const ImportCli& c) {
  if (!c.config) return json::object();
  json config = read_json_file(*c.config, "mlp config");
  const std::string name = *c.config_name;
  if (!config.contains("models") || !config["models"].is_object() || !config["models"].contains(name)) {
    std::string names;
    if (config.contains("models") && config["models"].is_object())
      for (const auto& [k, v] : config["models"].items()) names += (names.empty() ? "" : ", ") + k;
    throw TorpError(ErrorCode::io, *c.config + " has no model \"" + name + "\" (it has: " + names + ")");
  }
  return config["models"][name];
}

/// The hidden layer widths: --hidden, else the config entry's architecture_config.hidden_layers.
std::vector<int> hidden_widths(const ImportCli& c, const json& arch) {
  if (c.hidden) {
    auto widths = parse_widths(*c.hidden);
    if (!widths) throw UsageError("--hidden must be positive integers separated by commas, got '" + *c.hidden + "'");
    return *widths;
  }
  const json layers = value_or_null(arch, "hidden_layers");
  if (layers.is_null()) throw UsageError("no hidden layer widths: give --hidden or --config with architecture_config");
  const auto malformed = [&] {
    return TorpError(ErrorCode::io, *c.config + ": architecture_config.hidden_layers of " + *c.config_name +
                                        " must be an array of integers");
  };
  if (!layers.is_array()) throw malformed();
  std::vector<int> hidden;
  for (const auto& w : layers) {
    if (!w.is_number_integer()) throw malformed();
    hidden.push_back(w.get<int>());
  }
  return hidden;
}

/// The imported model's provenance: device, board, tt-metal commit, the published files and how
/// they were trained (from the config entry and the command line).
json import_provenance(const ImportCli& c, const MlpackImportOptions& o, const json& entry,
                       std::optional<std::size_t> inputs, const std::string& device) {
  const json track = value_or_null(entry, "metal_tracking_info");
  const std::string dir = c.source_dir;
  const auto source_path = [&](const std::string& file) {
    return (dir.empty() ? "" : dir + "/") + fs::path(file).filename().string();
  };
  json source = {{"repository", c.source_repo},
                 {"commit", c.source_commit},
                 {"files", {source_path(c.model), source_path(c.scaler)}}};
  if (track.contains("timestamp")) source["measured"] = track["timestamp"];
  if (track.contains("driver")) source["driver"] = track["driver"];
  json training = {{"framework", "mlpack"},
                   {"architecture", {{"inputs", inputs ? json(*inputs) : json(nullptr)}, {"hidden", o.hidden}, {"outputs", 1},
                                     {"activation", "relu"}}},
                   {"optimizer", value_or_null(entry, "optimizer_config")}};
  if (c.config) training["config"] = {{"file", fs::path(*c.config).filename().string()}, {"name", *c.config_name}};
  return {
      {"device", device},
      {"board", c.board ? json(*c.board) : value_or_null(track, "board_type")},
      {"tt_metal_commit", c.tt_metal_commit ? json(*c.tt_metal_commit) : value_or_null(track, "tt-metal_commit")},
      {"source_data", source},
      {"training", training},
      {"metrics", {{"test", nullptr}, {"reported_validation_r2", c.reported_r2 ? number_or_text(*c.reported_r2) : json(nullptr)}}},
      {"imported_by", "torp import-mlpack"}};
}

int import_command(const ImportCli& c) {
  if (c.config.has_value() != c.config_name.has_value()) throw UsageError("--config and --config-name go together");
  MlpackImportOptions o;
  o.id = c.id;
  o.recipe = c.recipe;
  o.op_spec = read_json_file(c.op_spec, "op spec");
  o.device = read_json_file(c.device, "device description");
  o.applies_when = c.applies_when;
  o.priority = c.priority;

  const json entry = config_entry(c);
  const json arch = value_or_null(entry, "architecture_config");
  o.hidden = hidden_widths(c, arch);
  const auto inputs = with_op_spec_file(c.op_spec, [&] { return recipe_feature_count(o.op_spec, o.recipe); });
  if (const json size = value_or_null(arch, "input_size"); inputs && !size.is_null() && size != json(*inputs))
    throw TorpError(ErrorCode::op_spec, *c.config + " gives " + *c.config_name + " " + size.dump() +
                                            " inputs, but recipe \"" + o.recipe + "\" of " + c.op_spec +
                                            " lists " + std::to_string(*inputs) + " features");
  const json name = value_or_null(o.device, "name");
  const std::string device = name.is_string() ? name.get<std::string>() : fs::path(c.device).stem().string();
  o.provenance = import_provenance(c, o, entry, inputs, device);

  fs::path out = c.out ? fs::path(*c.out) : fs::path("models") / (o.id + ".json");
  if (fs::exists(out) && !c.force) {
    error("import-mlpack", out.string() + " exists; pass --force to replace it");
    return kExitFailure;
  }
  ModelFile m = with_op_spec_file(c.op_spec, [&] { return import_mlpack(c.model, c.scaler, o); });
  save_model(m, out, c.force);
  std::string shape = std::to_string(m.features.size());
  for (int h : o.hidden) shape += " -> " + std::to_string(h);
  std::cout << "imported " << m.id << " (" << m.op << ", " << shape << " -> 1, "
            << mlpack_parameter_count(m.features.size(), o.hidden) << " parameters, device " << device
            << ") -> " << out.string() << "\n";
  return kExitOk;
}

}  // namespace

void add_import_mlpack(CLI::App& root) {
  CLI::App* app =
      add_command(root, "import-mlpack", "Convert a reference mlpack model + scaler into a TORP model file.", kDescription);
  auto c = std::make_shared<ImportCli>();
  app->add_option("--model", c->model, "mlpack FFN archive (cereal binary), e.g. exp_mlp_model.bin")
      ->type_name("BIN")
      ->required();
  app->add_option("--scaler", c->scaler, "mlpack StandardScaler archive (cereal binary), e.g. exp_scaler.bin")
      ->type_name("BIN")
      ->required();
  app->add_option("--op-spec", c->op_spec, "op spec (ops/<op>.json) whose recipe names the input features")
      ->type_name("FILE")
      ->required();
  app->add_option("--device", c->device, "device description (devices/<device>.json) the model was measured on")
      ->type_name("FILE")
      ->required();
  app->add_option("--config", c->config, "the reference's mlp_config.json (architecture, board, commit, optimizer)")
      ->type_name("FILE");
  app->add_option("--config-name", c->config_name, "entry of --config's \"models\" to use, e.g. exp")->type_name("NAME");
  app->add_option("--hidden", c->hidden, "hidden layer widths, e.g. 100,50 (overrides --config)")->type_name("W,W,...");
  app->add_option("--id", c->id, "model id, e.g. reference/exp")->type_name("ID")->required();
  app->add_option("--recipe", c->recipe, "op spec recipe naming the features and requirements")
      ->type_name("NAME")
      ->capture_default_str();
  app->add_option("--applies-when", c->applies_when,
                  "selection expression: the model serves a query only if it is non-zero (repeatable)")
      ->type_name("EXPR")
      ->allow_extra_args(false);
  app->add_option("--priority", c->priority, "selection priority among the op's models that apply")
      ->type_name("N")
      ->check(CLI::Range(-1000000, 1000000))
      ->capture_default_str();
  app->add_option("--board", c->board, "board the measurements come from (overrides --config)")->type_name("NAME");
  app->add_option("--tt-metal-commit", c->tt_metal_commit, "tt-metal commit of the measurements (overrides --config)")
      ->type_name("SHA");
  app->add_option("--reported-r2", c->reported_r2,
                  "validation R^2 the source reported (a number, or text such as 0.89-0.98)")
      ->type_name("VALUE");
  app->add_option("--source-repo", c->source_repo, "repository the mlpack files come from")
      ->type_name("REPO")
      ->capture_default_str();
  app->add_option("--source-commit", c->source_commit, "commit of --source-repo")->type_name("SHA")->capture_default_str();
  app->add_option("--source-dir", c->source_dir, "folder of the files within --source-repo")
      ->type_name("DIR")
      ->capture_default_str();
  app->add_option("--out", c->out, "output model file (default: models/<id>.json)")->type_name("FILE");
  app->add_flag("--force", c->force, "replace an existing output file");
  on_run(app, [c] { return import_command(*c); });
}

}  // namespace torp::cli
