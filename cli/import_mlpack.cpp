// SPDX-License-Identifier: Apache-2.0
// torp import-mlpack: convert a reference mlpack model + scaler into a TORP model file.
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "args.hpp"
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
    auto v = parse_as<int>(s.substr(start, comma - start));
    if (!v || *v <= 0) return std::nullopt;
    out.push_back(*v);
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

}  // namespace

int cmd_import_mlpack(int argc, char** argv) {
  Args a("import-mlpack", "Convert a reference mlpack model + scaler into a TORP model file.",
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
         "    --id reference/exp --reported-r2 0.95");
  a.option("model", "BIN", "mlpack FFN archive (cereal binary), e.g. exp_mlp_model.bin")
      .option("scaler", "BIN", "mlpack StandardScaler archive (cereal binary), e.g. exp_scaler.bin")
      .option("op-spec", "FILE", "op spec (ops/<op>.json) whose recipe names the input features")
      .option("device", "FILE", "device description (devices/<device>.json) the model was measured on")
      .option("config", "FILE", "the reference's mlp_config.json (architecture, board, commit, optimizer)")
      .option("config-name", "NAME", "entry of --config's \"models\" to use, e.g. exp")
      .option("hidden", "W,W,...", "hidden layer widths, e.g. 100,50 (overrides --config)")
      .option("id", "ID", "model id, e.g. reference/exp")
      .option("recipe", "NAME", "op spec recipe naming the features and requirements", "reference")
      .option("applies-when", "EXPR", "selection expression: the model serves a query only if it is non-zero", std::nullopt,
              true)
      .option("priority", "N", "selection priority among the op's models that apply", "0")
      .option("board", "NAME", "board the measurements come from (overrides --config)")
      .option("tt-metal-commit", "SHA", "tt-metal commit of the measurements (overrides --config)")
      .option("reported-r2", "VALUE", "validation R^2 the source reported (a number, or text such as 0.89-0.98)")
      .option("source-repo", "REPO", "repository the mlpack files come from", "tenstorrent/ttnn-op-runtime-predictor")
      .option("source-commit", "SHA", "commit of --source-repo", "d9150e5")
      .option("source-dir", "DIR", "folder of the files within --source-repo", "train/mlpack")
      .option("out", "FILE", "output model file (default: models/<id>.json)")
      .flag("force", "replace an existing output file");
  if (int rc = a.parse(argc, argv); rc >= 0) return rc;
  for (const char* required : {"model", "scaler", "op-spec", "device", "id"})
    if (!a.has(required)) {
      error("import-mlpack", std::string("missing --") + required + " (see torp import-mlpack --help)");
      return kExitUsage;
    }
  if (a.has("config") != a.has("config-name")) {
    error("import-mlpack", "--config and --config-name go together");
    return kExitUsage;
  }
  auto priority = parse_as<int>(a.get("priority"));
  if (!priority) {
    error("import-mlpack", "--priority must be an integer, got '" + a.get("priority") + "'");
    return kExitUsage;
  }

  MlpackImportOptions o;
  o.id = a.get("id");
  o.recipe = a.get("recipe");
  o.op_spec = read_json_file(a.get("op-spec"), "op spec");
  o.device = read_json_file(a.get("device"), "device description");
  o.applies_when = a.all("applies-when");
  o.priority = *priority;

  json entry = json::object();
  if (a.has("config")) {
    json config = read_json_file(a.get("config"), "mlp config");
    const std::string name = a.get("config-name");
    if (!config.contains("models") || !config["models"].is_object() || !config["models"].contains(name)) {
      std::string names;
      if (config.contains("models") && config["models"].is_object())
        for (const auto& [k, v] : config["models"].items()) names += (names.empty() ? "" : ", ") + k;
      throw TorpError(ErrorCode::io, a.get("config") + " has no model \"" + name + "\" (it has: " + names + ")");
    }
    entry = config["models"][name];
  }
  const json arch = value_or_null(entry, "architecture_config");
  if (a.has("hidden")) {
    auto widths = parse_widths(a.get("hidden"));
    if (!widths) {
      error("import-mlpack", "--hidden must be positive integers separated by commas, got '" + a.get("hidden") + "'");
      return kExitUsage;
    }
    o.hidden = *widths;
  } else if (const json layers = value_or_null(arch, "hidden_layers"); !layers.is_null()) {
    const auto malformed = [&] {
      return TorpError(ErrorCode::io, a.get("config") + ": architecture_config.hidden_layers of " + a.get("config-name") +
                                          " must be an array of integers");
    };
    if (!layers.is_array()) throw malformed();
    for (const auto& w : layers) {
      if (!w.is_number_integer()) throw malformed();
      o.hidden.push_back(w.get<int>());
    }
  } else {
    error("import-mlpack", "no hidden layer widths: give --hidden or --config with architecture_config");
    return kExitUsage;
  }
  const auto inputs = recipe_feature_count(o.op_spec, o.recipe);
  if (const json size = value_or_null(arch, "input_size"); inputs && !size.is_null() && size != json(*inputs))
    throw TorpError(ErrorCode::op_spec, a.get("config") + " gives " + a.get("config-name") + " " + size.dump() +
                                            " inputs, but recipe \"" + o.recipe + "\" of " + a.get("op-spec") +
                                            " lists " + std::to_string(*inputs) + " features");

  const json track = value_or_null(entry, "metal_tracking_info");
  const std::string dir = a.get("source-dir");
  const auto source_path = [&](const std::string& file) {
    return (dir.empty() ? "" : dir + "/") + fs::path(file).filename().string();
  };
  json source = {{"repository", a.get("source-repo")},
                 {"commit", a.get("source-commit")},
                 {"files", {source_path(a.get("model")), source_path(a.get("scaler"))}}};
  if (track.contains("timestamp")) source["measured"] = track["timestamp"];
  if (track.contains("driver")) source["driver"] = track["driver"];
  json training = {{"framework", "mlpack"},
                   {"architecture", {{"inputs", inputs ? json(*inputs) : json(nullptr)}, {"hidden", o.hidden}, {"outputs", 1},
                                     {"activation", "relu"}}},
                   {"optimizer", value_or_null(entry, "optimizer_config")}};
  if (a.has("config")) training["config"] = {{"file", fs::path(a.get("config")).filename().string()}, {"name", a.get("config-name")}};
  const json name = value_or_null(o.device, "name");
  const std::string device = name.is_string() ? name.get<std::string>() : fs::path(a.get("device")).stem().string();
  o.provenance = {
      {"device", device},
      {"board", a.has("board") ? json(a.get("board")) : value_or_null(track, "board_type")},
      {"tt_metal_commit", a.has("tt-metal-commit") ? json(a.get("tt-metal-commit")) : value_or_null(track, "tt-metal_commit")},
      {"source_data", source},
      {"training", training},
      {"metrics", {{"test", nullptr}, {"reported_validation_r2", a.has("reported-r2") ? number_or_text(a.get("reported-r2")) : json(nullptr)}}},
      {"imported_by", "torp import-mlpack"}};

  fs::path out = a.has("out") ? fs::path(a.get("out")) : fs::path("models") / (o.id + ".json");
  if (fs::exists(out) && !a.flag_set("force")) {
    error("import-mlpack", out.string() + " exists; pass --force to replace it");
    return kExitFailure;
  }
  ModelFile m = import_mlpack(a.get("model"), a.get("scaler"), o);
  save_model(m, out, a.flag_set("force"));
  std::string shape = std::to_string(m.features.size());
  for (int h : o.hidden) shape += " -> " + std::to_string(h);
  std::cout << "imported " << m.id << " (" << m.op << ", " << shape << " -> 1, "
            << mlpack_parameter_count(m.features.size(), o.hidden) << " parameters, device " << device
            << ") -> " << out.string() << "\n";
  return kExitOk;
}

}  // namespace torp::cli
