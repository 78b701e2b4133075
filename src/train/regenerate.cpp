// SPDX-License-Identifier: Apache-2.0
// Train, compare with the current model, install if at least as good (include/torp/train/regenerate.hpp).
#include "torp/train/regenerate.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "torp/predictor.hpp"
#include "torp/train/drift.hpp"
#include "torp/train/evaluate.hpp"

namespace torp {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

void say(const RegenerateOptions& o, const std::string& line) {
  if (o.train.progress) o.train.progress(line);
}

/// The model file the new model replaces: the op's model with the new id, else its
/// highest-priority trained model; empty if the op has none.
fs::path current_model_file(const fs::path& dir, const std::string& op, const std::string& id) {
  if (!fs::exists(dir)) return {};
  const Predictor predictor(dir);
  const ModelInfo* best = nullptr;
  for (const ModelInfo& m : predictor.models()) {
    if (m.op != op) continue;
    if (m.id == id) return m.file;
    const bool trained = m.provenance.is_object() && m.provenance.contains("source_data");
    if (trained && (!best || m.priority > best->priority)) best = &m;
  }
  return best ? best->file : fs::path();
}

double metric(const json& m, const char* part, const char* key) {
  const json& p = m.at(part);
  return p.at("n").get<std::size_t>() > 0 ? p.at(key).get<double>() : std::nan("");
}

bool at_least_as_good(const json& fresh, const json& cur) {
  const double wn = metric(fresh, "test_plausible", "within_10"), wc = metric(cur, "test_plausible", "within_10");
  if (std::isnan(wc)) return true;
  if (std::isnan(wn)) return false;
  if (wn != wc) return wn > wc;
  return metric(fresh, "test_plausible", "median_ape") <= metric(cur, "test_plausible", "median_ape");
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

json group_shifts(const ModelFile& model, const Evaluation& ev, const std::vector<double>& cur) {
  std::vector<Configuration> test;
  std::vector<double> fresh, old;
  for (std::size_t i : ev.split.test) {
    test.push_back(ev.configs[i]);
    fresh.push_back(ev.predicted[i]);
    old.push_back(cur[i]);
  }
  std::string feature;
  const auto groups = drift_groups(model, test, fresh, &feature);
  struct Acc {
    std::vector<double> meas_cur, new_cur;
    std::size_t n = 0, w_new = 0, w_cur = 0;
  };
  std::map<std::string, Acc> acc;
  for (std::size_t i = 0; i < test.size(); ++i) {
    if (groups[i].empty() || std::isnan(old[i])) continue;
    Acc& a = acc[groups[i]];
    const double m = test[i].label_ns;
    a.meas_cur.push_back(m / old[i]);
    a.new_cur.push_back(fresh[i] / old[i]);
    ++a.n;
    a.w_new += std::abs(fresh[i] / m - 1) <= 0.10 ? 1 : 0;
    a.w_cur += std::abs(old[i] / m - 1) <= 0.10 ? 1 : 0;
  }
  json out = json::array();
  for (const auto& [g, a] : acc)
    out.push_back({{"group", g}, {"n", a.n}, {"measured_over_current", median(a.meas_cur)},
                   {"new_over_current", median(a.new_cur)},
                   {"within_10_new", static_cast<double>(a.w_new) / static_cast<double>(a.n)},
                   {"within_10_current", static_cast<double>(a.w_cur) / static_cast<double>(a.n)}});
  std::stable_sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return std::abs(std::log(a["new_over_current"].get<double>())) > std::abs(std::log(b["new_over_current"].get<double>()));
  });
  return out;
}

json largest_changes(const Evaluation& ev, const std::vector<double>& cur, std::size_t count) {
  std::vector<std::size_t> idx;
  for (std::size_t i : ev.split.test)
    if (!std::isnan(cur[i]) && !std::isnan(ev.predicted[i])) idx.push_back(i);
  auto change = [&](std::size_t i) { return std::abs(std::log(ev.predicted[i] / cur[i])); };
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return change(a) > change(b); });
  json out = json::array();
  for (std::size_t k = 0; k < idx.size() && k < count; ++k) {
    const std::size_t i = idx[k];
    out.push_back({{"args", ev.configs[i].args}, {"measured_ns", ev.configs[i].label_ns}, {"current_ns", cur[i]},
                   {"new_ns", ev.predicted[i]}, {"new_over_current", ev.predicted[i] / cur[i]}});
  }
  return out;
}

json compare(const ModelFile& fresh, const ModelFile* current, const Dataset& data, const RegenerateOptions& o) {
  const Evaluation ev = evaluate_model(fresh, data, evaluation_options(fresh));
  std::vector<double> cur(ev.configs.size(), std::nan(""));
  if (current) cur = predict_configurations(*current, ev.configs);
  const json m_new = split_metrics(ev.predicted, ev.configs, ev.split, ev.plausibility.plausible);
  const json m_cur = split_metrics(cur, ev.configs, ev.split, ev.plausibility.plausible);
  auto pick = [](const json& m) { return json{{"test", m.at("test")}, {"test_plausible", m.at("test_plausible")}}; };
  return {{"op", fresh.op},
          {"new_model", fresh.id},
          {"current_model", current ? json(current->id) : json()},
          {"test_configurations", ev.split.test.size()},
          {"metrics", {{"new", pick(m_new)}, {"current", pick(m_cur)}}},
          {"groups", current ? group_shifts(fresh, ev, cur) : json::array()},
          {"largest_changes", current ? largest_changes(ev, cur, o.largest_changes) : json::array()}};
}

}  // namespace

ReplacePolicy parse_replace_policy(const std::string& s) {
  if (s == "if-better") return ReplacePolicy::if_better;
  if (s == "always") return ReplacePolicy::always;
  if (s == "never") return ReplacePolicy::never;
  throw TorpError(ErrorCode::invalid_argument, "replace policy '" + s + "': expected if-better, always or never");
}

RegenerateResult regenerate(const Dataset& data, const std::string& dataset_sha256, const json& op_spec,
                            const json& device, const RegenerateOptions& o) {
  RegenerateResult r;
  const std::string id = o.train.id.empty() ? device.value("name", std::string()) + "/" +
                                                  data.op.substr(data.op.rfind('.') + 1)
                                            : o.train.id;
  const fs::path current_file = current_model_file(o.models_dir, data.op, id);
  if (current_file.empty() && !o.install_as)
    throw TorpError(ErrorCode::no_model, "no model of " + data.op + " in " + o.models_dir.string() +
                                             " to compare with: give a file to install the new model as");
  r.model_file = current_file.empty() ? *o.install_as : current_file;
  r.previous_file = r.model_file.string() + ".previous";
  if (!current_file.empty() && o.replace != ReplacePolicy::never && fs::exists(r.previous_file) && !o.overwrite_previous)
    throw TorpError(ErrorCode::io, r.previous_file.string() + " exists (an earlier replacement); allow overwriting it");
  std::optional<ModelFile> current;
  if (!current_file.empty()) {
    say(o, "current model: " + current_file.string());
    current = load_model(current_file);
  }
  say(o, "training on " + std::to_string(data.rows.size()) + " rows");
  TrainReport trained = train(data, op_spec, device, o.train, dataset_sha256);
  r.model = std::move(trained.model);
  say(o, "comparing on the new data's held-out configurations");
  r.comparison = compare(r.model, current ? &*current : nullptr, data, o);
  r.comparison["current_file"] = current_file.empty() ? json() : json(current_file.string());
  const bool better = at_least_as_good(r.comparison["metrics"]["new"], r.comparison["metrics"]["current"]);
  r.replaced = o.replace == ReplacePolicy::always || (o.replace == ReplacePolicy::if_better && better);
  const char* policy = o.replace == ReplacePolicy::always ? "always" : o.replace == ReplacePolicy::never ? "never" : "if-better";
  std::string reason = better ? "the new model is at least as good on the new data's held-out plausible labels"
                              : "the current model is better on the new data's held-out plausible labels";
  if (o.replace != ReplacePolicy::if_better) reason += " (policy " + std::string(policy) + ")";
  r.comparison["decision"] = {{"policy", policy}, {"new_at_least_as_good", better}, {"replaced", r.replaced}, {"reason", reason}};
  r.model.provenance["regeneration"] = {
      {"replaced_model", current ? json{{"id", current->id}, {"file", current_file.string()}, {"sha256", sha256_file(current_file)}}
                                 : json()},
      {"test_configurations", r.comparison["test_configurations"]},
      {"metrics", r.comparison["metrics"]},
      {"decision", r.comparison["decision"]}};
  if (!r.replaced) {
    say(o, "kept " + (current_file.empty() ? std::string("nothing") : current_file.string()) + ": " + reason);
    r.model_file = current_file;
    r.previous_file.clear();
    return r;
  }
  if (current) fs::copy_file(current_file, r.previous_file, fs::copy_options::overwrite_existing);
  else r.previous_file.clear();
  if (r.model_file.has_parent_path()) fs::create_directories(r.model_file.parent_path());
  save_model(r.model, r.model_file, /*overwrite=*/true);  // one rename: readers see old or new
  say(o, "installed " + r.model_file.string() + (current ? " (previous kept as " + r.previous_file.string() + ")" : ""));
  return r;
}

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}

std::string num(const json& v, int precision, double scale = 1) {
  if (!v.is_number()) return "&ndash;";
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(precision);
  s << v.get<double>() * scale;
  return s.str();
}

}  // namespace

std::string comparison_html(const json& c) {
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>torp regenerate: " << esc(c.value("op", ""))
    << "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
       "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}"
       "td.l{text-align:left;font-family:monospace;font-size:80%}</style></head><body>\n";
  h << "<h1>" << esc(c.value("op", "")) << ": new model vs current</h1>\n<p>new <b>" << esc(c.value("new_model", ""))
    << "</b>, current <b>" << esc(c["current_model"].is_string() ? c["current_model"].get<std::string>() : "none")
    << "</b>, " << c.value("test_configurations", 0) << " held-out configurations of the new data.</p>\n";
  const json& d = c["decision"];
  h << "<p>Decision: <b>" << (d.value("replaced", false) ? "replaced" : "kept the current model") << "</b> ("
    << esc(d.value("reason", "")) << ").</p>\n<table><tr><th>labels</th><th>model</th><th>n</th><th>within ±10%</th>"
    << "<th>within ±25%</th><th>median APE %</th><th>p90 APE %</th></tr>\n";
  for (const char* part : {"test", "test_plausible"})
    for (const char* who : {"new", "current"}) {
      const json& m = c["metrics"][who][part];
      h << "<tr><td class=l>" << part << "</td><td class=l>" << who << "</td><td>" << m.value("n", 0) << "</td><td>"
        << num(m["within_10"], 1, 100) << "%</td><td>" << num(m["within_25"], 1, 100) << "%</td><td>"
        << num(m["median_ape"], 2) << "</td><td>" << num(m["p90_ape"], 2) << "</td></tr>\n";
    }
  h << "</table>\n<h2>Groups</h2><table><tr><th>group</th><th>n</th><th>measured / current</th><th>new / current</th>"
       "<th>within ±10% new</th><th>current</th></tr>\n";
  for (const json& g : c["groups"])
    h << "<tr><td class=l>" << esc(g["group"].get<std::string>()) << "</td><td>" << g["n"] << "</td><td>"
      << num(g["measured_over_current"], 3) << "</td><td>" << num(g["new_over_current"], 3) << "</td><td>"
      << num(g["within_10_new"], 1, 100) << "%</td><td>" << num(g["within_10_current"], 1, 100) << "%</td></tr>\n";
  h << "</table>\n<h2>Largest changes</h2><table><tr><th>arguments</th><th>measured ns</th><th>current ns</th>"
       "<th>new ns</th><th>new / current</th></tr>\n";
  for (const json& x : c["largest_changes"])
    h << "<tr><td class=l>" << esc(x["args"].dump()) << "</td><td>" << num(x["measured_ns"], 0) << "</td><td>"
      << num(x["current_ns"], 0) << "</td><td>" << num(x["new_ns"], 0) << "</td><td>" << num(x["new_over_current"], 3)
      << "</td></tr>\n";
  h << "</table></body></html>\n";
  return h.str();
}

}  // namespace torp
