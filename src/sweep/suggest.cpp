// SPDX-License-Identifier: Apache-2.0
// Probe sets written as sweep vectors (include/torp/train/suggest.hpp).
#include "torp/train/suggest.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <random>
#include <regex>

#include "py_expr.hpp"
#include "torp/atomic_file.hpp"
#include "torp/encoder.hpp"
#include "torp/log.hpp"
#include "torp/predictor.hpp"
#include "torp/train/drift.hpp"
#include "torp/train/evaluate.hpp"
#include "torp/train/sweep.hpp"

namespace torp {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

/// The Python spelling of an enum value as sweep vectors write it: "DataType.BFLOAT16".
json python_enum(const char* type, const json& name) {
  if (!name.is_string()) return name;
  return std::string(type) + "." + name.get<std::string>();
}

const char* enum_type(const std::string& kind) {
  static const std::map<std::string, const char*> types = {
      {"data_type", "DataType"},         {"layout", "Layout"},
      {"math_fidelity", "MathFidelity"}, {"buffer_type", "BufferType"},
      {"memory_layout", "TensorMemoryLayout"}, {"shard_orientation", "ShardOrientation"}};
  auto it = types.find(kind);
  return it == types.end() ? nullptr : it->second;
}

/// A MemoryConfig as the newest sweep generator writes it (enums by name).
json memory_wrapper(const json& mc) {
  if (!mc.is_object()) return nullptr;
  json data = mc;
  if (!data.contains("created_with_nd_shard_spec")) data["created_with_nd_shard_spec"] = false;
  return {{"type", "ttnn._ttnn.tensor.MemoryConfig"}, {"data", data}};
}

/// Names the inverse expressions read: per tensor argument X: X_shape, X_dtype, X_layout,
/// X_memory_config; per other argument its value (or declared default, else None).
std::map<std::string, json> inverse_scope(const json& op_spec, const json& args) {
  std::map<std::string, json> scope;
  const json declared = op_spec.value("args", json::object());
  for (auto it = declared.begin(); it != declared.end(); ++it) {
    const std::string& name = it.key();
    const std::string type = it.value().value("type", std::string());
    const json* v = args.contains(name) ? &args[name] : nullptr;
    if (type == "tensor") {
      const json t = v && v->is_object() ? *v : json::object();
      scope[name + "_shape"] = t.value("logical_shape", json());
      scope[name + "_dtype"] = python_enum("DataType", t.value("dtype", json()));
      scope[name + "_layout"] = python_enum("Layout", t.value("layout", json()));
      scope[name + "_memory_config"] = memory_wrapper(t.value("memory_config", json()));
    } else if (type == "memory_config") {
      scope[name] = v ? memory_wrapper(*v) : json();
    } else {
      json value = v ? *v : it.value().value("default", json());
      if (type == "enum")
        if (const char* e = enum_type(it.value().value("enum", std::string()))) value = python_enum(e, value);
      scope[name] = value;
    }
  }
  return scope;
}

bool is_identifier(const std::string& s) {
  static const std::regex id("[A-Za-z_][A-Za-z0-9_]*");
  return std::regex_match(s, id) && s != "True" && s != "False" && s != "None";
}

/// Parameter -> inverse expression, in the order the sweep block first names the parameters.
std::vector<std::pair<std::string, std::string>> inverse_expressions(const json& op_spec) {
  const json sw = op_spec.value("sweep", json::object());
  const json lets = sw.value("let", json::object());
  std::vector<std::pair<std::string, std::string>> out;
  auto set = [&](const std::string& param, const std::string& expr) {
    for (auto& [p, e] : out)
      if (p == param) return void(e = expr);
    out.emplace_back(param, expr);
  };
  const json args = sw.value("args", json::object());
  for (auto it = args.begin(); it != args.end(); ++it) {
    const json& body = it.value();
    auto direct = [&](const json& e, const std::string& name) {
      if (e.is_string() && is_identifier(e.get<std::string>()) && !lets.contains(e.get<std::string>()))
        set(e.get<std::string>(), name);
    };
    if (body.contains("tensor"))
      for (const char* f : {"shape", "dtype", "layout", "memory_config"})
        if (body["tensor"].contains(f)) direct(body["tensor"][f], it.key() + "_" + f);
    for (const char* k : {"value", "memory_config"})
      if (body.contains(k)) direct(body[k], it.key());
  }
  const json inv = sw.value("inverse", json::object());
  if (!inv.is_object()) throw TorpError(ErrorCode::op_spec, "\"inverse\" maps sweep parameters to expressions", "/sweep/inverse");
  for (auto it = inv.begin(); it != inv.end(); ++it) {
    if (!it.value().is_string())
      throw TorpError(ErrorCode::op_spec, "expected a Python expression (a string)", "/sweep/inverse/" + it.key());
    set(it.key(), it.value().get<std::string>());
  }
  return out;
}

/// Whether every field of `want` is in `got` with the same value.
bool reproduces(const json& want, const json& got, std::string& where) {
  if (want.is_object()) {
    if (!got.is_object()) return false;
    for (auto it = want.begin(); it != want.end(); ++it) {
      if (!got.contains(it.key())) return where += "/" + it.key(), false;
      if (!reproduces(it.value(), got[it.key()], where)) return where.insert(0, "/" + it.key()), false;
    }
    return true;
  }
  if (want.is_number() && got.is_number()) return want.get<double>() == got.get<double>();
  return want == got;
}

}  // namespace

ojson sweep_parameters_of(const json& op_spec, const json& args) {
  const auto scope = inverse_scope(op_spec, args);
  ojson vec;
  for (const auto& [param, text] : inverse_expressions(op_spec)) {
    std::string err;
    auto node = py::parse(text, false, &err);
    if (!node) throw TorpError(ErrorCode::op_spec, "cannot parse '" + text + "': " + err, "/sweep/inverse/" + param);
    try {
      vec[param] = py::eval(*node, [&](const std::string& n) -> const json* {
        auto it = scope.find(n);
        return it == scope.end() ? nullptr : &it->second;
      });
    } catch (const std::runtime_error& e) {
      throw TorpError(ErrorCode::dataset, "sweep parameter '" + param + "' ('" + text + "'): " + e.what());
    }
  }
  const json forward = sweep_vector_args(op_spec, json(vec));
  std::string where;
  if (!reproduces(args, forward, where))
    throw TorpError(ErrorCode::dataset, "the sweep vector " + json(vec).dump() + " does not reproduce the arguments at " +
                                            where + " (add the parameter to \"sweep\".\"inverse\" in the op spec)",
                    "/args" + where);
  return vec;
}

std::vector<std::size_t> choose_probes(const ModelFile& model, const std::vector<Configuration>& pool,
                                       std::size_t count, std::uint64_t seed) {
  const std::vector<double> predicted = predict_configurations(model, pool);
  std::string feature;
  const std::vector<std::string> group = drift_groups(model, pool, predicted, &feature);
  std::map<std::string, std::vector<std::size_t>> by_group;
  for (std::size_t i = 0; i < pool.size(); ++i)
    if (!std::isnan(predicted[i]) && !group[i].empty()) by_group[group[i]].push_back(i);
  // cells[g][r]: the configurations of group g in regime r (thirds by predicted runtime)
  std::vector<std::vector<std::vector<std::size_t>>> cells;
  for (auto& [g, idx] : by_group) {
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return predicted[a] < predicted[b]; });
    auto& c = cells.emplace_back(3);
    for (std::size_t k = 0; k < idx.size(); ++k) c[k * 3 / idx.size()].push_back(idx[k]);
  }
  std::mt19937_64 rng(seed);
  std::vector<std::size_t> out, next_regime(cells.size(), 0);
  for (bool any = true; any && out.size() < count;) {
    any = false;
    for (std::size_t g = 0; g < cells.size() && out.size() < count; ++g)
      for (std::size_t tries = 0; tries < 3; ++tries) {
        auto& cell = cells[g][next_regime[g]++ % 3];
        if (cell.empty()) continue;
        const std::size_t k = static_cast<std::size_t>(rng() % cell.size());
        out.push_back(cell[k]);
        cell.erase(cell.begin() + static_cast<std::ptrdiff_t>(k));
        any = true;
        break;
      }
  }
  return out;
}

namespace {

const ModelInfo* pick_model(const Predictor& predictor, const std::string& op, const std::string& id) {
  const ModelInfo* best = nullptr;
  for (const ModelInfo& m : predictor.models()) {
    if (m.op != op) continue;
    if (!id.empty()) {
      if (m.id == id) return &m;
      continue;
    }
    const bool trained = m.provenance.is_object() && m.provenance.contains("source_data");
    if (trained && (!best || m.priority > best->priority)) best = &m;
  }
  return best;
}

fs::path pool_file(const SuggestOptions& o, const ModelFile& model) {
  if (o.pool) return *o.pool;
  const json src = model.provenance.value("source_data", json::object());
  const std::string file = src.is_object() ? src.value("file", std::string()) : std::string();
  if (file.empty())
    throw TorpError(ErrorCode::io, "model " + model.id + " names no training dataset: pass a pool (--dataset)");
  for (const fs::path& p : {fs::path(file), o.models_dir.parent_path() / file, o.models_dir / ".." / file})
    if (fs::exists(p)) return p;
  throw TorpError(ErrorCode::io, "the training dataset of " + model.id + " (" + file +
                                     ") is not found here or beside the models directory: pass a pool (--dataset)");
}

std::string utc_timestamp() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d_%H-%M-%S", &tm);
  return buf;
}

}  // namespace

json suggest(const SuggestOptions& o) {
  if (!o.overwrite && fs::exists(o.out))
    throw TorpError(ErrorCode::io, o.out.string() + " exists; pass --force (overwrite) to replace it");
  const Predictor predictor(o.models_dir);
  const std::string op = canonical_op_name(o.op);
  const ModelInfo* info = nullptr;
  for (const ModelInfo& m : predictor.models())  // accept short names ("exp") too
    if (m.op == op || m.op == "ttnn." + o.op || m.op.ends_with("." + o.op)) {
      info = pick_model(predictor, m.op, o.model_id);
      break;
    }
  if (!info)
    throw TorpError(ErrorCode::no_model, "no " + std::string(o.model_id.empty() ? "trained model" : "model " + o.model_id) +
                                             " of " + o.op + " in " + o.models_dir.string());
  const ModelFile model = load_model(info->file);
  const fs::path pool_path = pool_file(o, model);
  const Dataset pool_data = load_dataset(pool_path);
  if (pool_data.op != model.op)
    throw TorpError(ErrorCode::dataset, pool_path.string() + " holds " + pool_data.op + ", not " + model.op);
  const std::vector<Configuration> pool = aggregate(pool_data, kDefaultRejectFactor, nullptr);
  const std::vector<std::size_t> picked = choose_probes(model, pool, o.count, o.seed);
  if (picked.size() < o.count)
    log(LogLevel::warning, "suggest: the pool has only " + std::to_string(picked.size()) + " configurations the model serves");

  std::vector<Configuration> chosen;
  for (std::size_t i : picked) chosen.push_back(pool[i]);
  const std::vector<double> predicted = predict_configurations(model, chosen);
  std::string feature;
  const std::vector<std::string> group = drift_groups(model, chosen, predicted, &feature);
  const json sw = model.op_spec.value("sweep", json::object());
  const std::string module = sw.value("module", model.op);
  const std::string stamp = utc_timestamp();
  ojson suite = ojson::object();
  json probes = json::array(), groups = json::object();
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    ojson v = sweep_parameters_of(model.op_spec, chosen[i].args);
    const std::string hash = sha256_hex(v.dump()).substr(0, 56);  // opaque id, 56 hex like sha224
    for (auto [k, val] : {std::pair<const char*, ojson>{"suite_name", o.suite}, {"validity", "VALID"},
                          {"invalid_reason", ""}, {"status", "VectorStatus.CURRENT"}, {"sweep_name", module},
                          {"timestamp", stamp}, {"input_hash", hash}, {"tag", o.tag}, {"traced_source", ojson::array()}})
      v[k] = val;
    suite[hash] = std::move(v);
    probes.push_back({{"input_hash", hash}, {"group", group[i]}, {"predicted_ns", predicted[i]}});
    groups[group[i]] = groups.value(group[i], 0) + 1;
  }
  if (o.out.has_parent_path()) fs::create_directories(o.out.parent_path());
  AtomicFile file(o.out, o.overwrite);
  file.stream() << ojson{{o.suite, suite}}.dump(2) << "\n";
  file.commit();
  return {{"op", model.op}, {"model", model.id}, {"pool", pool_path.string()}, {"pool_configurations", pool.size()},
          {"count", chosen.size()}, {"file", o.out.string()}, {"suite", o.suite}, {"module", module},
          {"group_feature", feature}, {"groups", groups}, {"probes", probes}};
}

}  // namespace torp
