// SPDX-License-Identifier: Apache-2.0
// torp list: the loaded models with op, device, tt-metal commit and test metrics.
#include <algorithm>
#include <iomanip>
#include <sstream>
#include <iostream>

#include <memory>
#include <vector>

#include "commands.hpp"
#include "torp/predictor.hpp"

namespace torp::cli {
namespace {

std::string field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string metric(const nlohmann::json& prov, const char* key, double scale, const char* unit) {
  auto m = prov.find("metrics");
  if (m == prov.end() || !m->is_object()) return "-";
  auto t = m->find("test");
  if (t == m->end() || !t->is_object()) return "-";
  auto v = t->find(key);
  if (v == t->end() || !v->is_number()) return "-";
  std::ostringstream o;
  o << std::fixed << std::setprecision(scale == 100 ? 1 : 2) << v->get<double>() * scale << unit;
  return o.str();
}

struct ListOptions {
  std::vector<std::string> models;
  bool json = false;
};

int list(const ListOptions& o) {
  Predictor p(resolve_models_dirs(std::vector<std::filesystem::path>(o.models.begin(), o.models.end())));
  if (o.json) {
    for (const auto& m : p.models())
      std::cout << nlohmann::json{{"id", m.id}, {"op", m.op}, {"file", m.file.string()}, {"priority", m.priority},
                                  {"features", m.features}, {"provenance", m.provenance}}
                       .dump()
                << "\n";
    return kExitOk;
  }
  std::size_t id_w = 6, op_w = 3;
  for (const auto& m : p.models()) {
    id_w = std::max(id_w, m.id.size() + 2);
    op_w = std::max(op_w, m.op.size() + 2);
  }
  const int iw = static_cast<int>(id_w), ow = static_cast<int>(op_w);
  std::cout << std::left << std::setw(iw) << "MODEL" << std::setw(ow) << "OP" << std::setw(16) << "DEVICE"
            << std::setw(12) << "TT-METAL" << std::setw(11) << "WITHIN10%" << "MEDIAN_APE\n";
  for (const auto& m : p.models()) {
    std::string commit = field(m.provenance, "tt_metal_commit");
    if (commit.size() > 10) commit = commit.substr(0, 10);
    std::cout << std::left << std::setw(iw) << m.id << std::setw(ow) << m.op << std::setw(16)
              << field(m.provenance, "device") << std::setw(12) << commit << std::setw(10)
              << metric(m.provenance, "within_10", 100, "%") << " " << metric(m.provenance, "median_ape", 1, "%")
              << "\n";
  }
  std::string dirs;
  for (const auto& d : p.directories()) dirs += (dirs.empty() ? "" : ", ") + d.string();
  std::cout << p.models().size() << " models from " << dirs << "\n";
  return kExitOk;
}

}  // namespace

void add_list(CLI::App& root) {
  CLI::App* app = add_command(
      root, "list", "List the loaded models: id, op, device, tt-metal commit and test metrics.",
      "Metrics are those recorded in each model's provenance (test configurations of its own split);\n"
      "'-' means unknown (imported reference models were published without them).");
  auto o = std::make_shared<ListOptions>();
  app->add_option("--models", o->models, "model directory, repeatable (else $TORP_MODELS: DIR:DIR..., installed models, ./models)")
      ->type_name("DIR")
      ->allow_extra_args(false);
  app->add_flag("--json", o->json, "print one JSON object per model instead of a table");
  on_run(app, [o] { return list(*o); });
}

}  // namespace torp::cli
