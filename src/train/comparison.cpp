// SPDX-License-Identifier: Apache-2.0
// What the evaluation report compares: the model, its physical baseline alone and a previous
// model on the same test configurations, overall and per group (groups from the op spec's
// "report" block or the model's baseline / plausibility groups), and the worst errors with the
// sweep vectors they came from.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <regex>
#include <set>

#include "spec/bindings.hpp"
#include "torp/train/evaluate.hpp"

namespace torp {

using json = nlohmann::json;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void bad_group(const std::string& message, const std::string& path) {
  throw TorpError(ErrorCode::op_spec, "report group: " + message, path);
}

/// The enum a bare tensor-field expression reads (`input_tensor.dtype` -> data_type).
std::optional<EnumKind> enum_read_by(const std::string& expr) {
  static const std::regex field(R"(^\s*[A-Za-z_][A-Za-z0-9_]*\.(dtype|buffer_type|memory_layout|layout|shard_orientation)\s*$)");
  std::smatch m;
  if (!std::regex_match(expr, m, field)) return std::nullopt;
  return enum_kind_named(m[1] == "dtype" ? std::string("data_type") : m[1].str());
}

ReportGroupKey parse_key(const json& j, const std::string& path) {
  ReportGroupKey k;
  if (j.is_string()) {
    k.expr = j.get<std::string>();
  } else if (j.is_object() && j.contains("expr") && j["expr"].is_string()) {
    k.expr = j["expr"].get<std::string>();
    if (auto l = j.find("label"); l != j.end()) {
      if (!l->is_string()) bad_group("label must be text", path + "/label");
      k.label = l->get<std::string>();
    }
    if (auto b = j.find("bins"); b != j.end()) {
      if (!b->is_array() || b->empty()) bad_group("bins must be a non-empty array of ascending numbers", path + "/bins");
      for (std::size_t i = 0; i < b->size(); ++i) {
        if (!(*b)[i].is_number() || (i > 0 && !((*b)[i].get<double>() > k.bins.back())))
          bad_group("bins must be ascending numbers", path + "/bins/" + std::to_string(i));
        k.bins.push_back((*b)[i].get<double>());
      }
    }
    if (auto e = j.find("enum"); e != j.end()) {
      k.enum_kind = e->is_string() ? enum_kind_named(e->get<std::string>()) : std::nullopt;
      if (!k.enum_kind) bad_group("enum must name an enum kind (data_type, buffer_type, ...)", path + "/enum");
    }
  } else {
    bad_group("a key is an expression or {\"expr\", \"label\"?, \"bins\"?, \"enum\"?}", path);
  }
  if (k.expr.empty()) bad_group("empty expression", path);
  if (!k.enum_kind && k.bins.empty()) k.enum_kind = enum_read_by(k.expr);
  k.where = j.is_string() ? path : path + "/expr";
  return k;
}

ReportGroup group_of_expression(const std::string& expr) {
  ReportGroup g;
  g.name = expr;
  g.keys.push_back(parse_key(json(expr), ""));
  return g;
}

std::string fmt(double v, const char* format = "%g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

/// Where `v` falls among ascending edges: 0 below the first, i for [b_{i-1}, b_i), n at or above the last.
std::size_t bin_of(const std::vector<double>& bins, double v) {
  return static_cast<std::size_t>(std::upper_bound(bins.begin(), bins.end(), v) - bins.begin());
}

std::string value_label(const ReportGroupKey& k, double v) {
  if (!k.bins.empty()) {
    const std::size_t b = bin_of(k.bins, v);
    const std::string name = k.label.empty() ? k.expr : k.label;
    if (b == 0) return name + " < " + fmt(k.bins.front());
    if (b == k.bins.size()) return name + " >= " + fmt(k.bins.back());
    return name + " [" + fmt(k.bins[b - 1]) + ", " + fmt(k.bins[b]) + ")";
  }
  if (k.enum_kind && v == std::floor(v)) return enum_name(*k.enum_kind, static_cast<int>(v));
  return (k.label.empty() ? k.expr : k.label) + " = " + fmt(v);
}

/// Per configuration its row of `g`: the sort key (bin index or value per key) and label;
/// nullopt where a key cannot be computed.
struct RowKey {
  std::vector<double> sort;
  std::vector<double> values;
  std::string label;
};
std::vector<std::optional<RowKey>> row_keys(const ModelFile& model, const ReportGroup& g,
                                            const std::vector<Configuration>& configs) {
  Encoder enc(model.op_spec, model.device);
  std::vector<ExprId> ids;
  for (const auto& k : g.keys) ids.push_back(enc.compile(k.expr));
  std::vector<std::optional<RowKey>> out(configs.size());
  Bindings b;
  std::vector<double> v(ids.size());
  for (std::size_t i = 0; i < configs.size(); ++i) {
    if (enc.bind(configs[i].args, b) || enc.eval_all(ids, b, v)) continue;
    RowKey r;
    for (std::size_t k = 0; k < ids.size(); ++k) {
      const ReportGroupKey& key = g.keys[k];
      r.sort.push_back(key.bins.empty() ? v[k] : static_cast<double>(bin_of(key.bins, v[k])));
      r.values.push_back(v[k]);
      r.label += (k ? " × " : "") + value_label(key, v[k]);
    }
    out[i] = std::move(r);
  }
  return out;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : v[h - 1] + 0.5 * (v[h] - v[h - 1]);
}

/// {"n", "within_10", "median_ape", "p90_ape"} of `pred` on `rows` (NaN predictions left out);
/// with `served` also the interval coverage and median width among the answers with an interval.
json scores(const Evaluation& e, const std::vector<std::size_t>& rows, const std::vector<double>& pred,
            const std::vector<ServedAnswer>* served) {
  std::vector<double> p, m, widths;
  std::size_t covered = 0;
  for (std::size_t i : rows) {
    if (std::isnan(pred[i])) continue;
    p.push_back(pred[i]);
    m.push_back(e.configs[i].label_ns);
    if (!served || !(*served)[i].interval_ns) continue;
    const auto [lo, hi] = *(*served)[i].interval_ns;
    covered += lo <= e.configs[i].label_ns && e.configs[i].label_ns <= hi ? 1 : 0;
    widths.push_back((hi - lo) / (*served)[i].runtime_ns);
  }
  const json mj = to_json(compute_metrics(p, m));
  json out = {{"n", mj["n"]}, {"within_10", mj["within_10"]}, {"median_ape", mj["median_ape"]}, {"p90_ape", mj["p90_ape"]}};
  if (served) {
    const bool any = !widths.empty();
    out["coverage"] = any ? json(static_cast<double>(covered) / static_cast<double>(widths.size())) : json();
    out["median_width"] = any ? json(median_of(widths)) : json();
  }
  return out;
}

/// The three columns' scores on `rows`.
json columns(const Evaluation& e, const std::vector<std::size_t>& rows, bool has_baseline,
             const std::vector<double>& previous) {
  return {{"model", scores(e, rows, e.predicted, &e.served)},
          {"baseline", has_baseline ? scores(e, rows, e.baseline, nullptr) : json()},
          {"previous", e.previous.empty() ? json() : scores(e, rows, previous, &e.previous)}};
}

/// Argument fields (JSON pointers) that differ among `rows`.
std::set<std::string> varying_fields(const std::vector<json>& flat, const std::vector<std::size_t>& rows) {
  std::set<std::string> varying;
  if (rows.empty()) return varying;
  const json& first = flat[rows.front()];
  for (std::size_t i : rows)
    for (const auto& [k, v] : flat[i].items())
      if (!first.contains(k) || first[k] != v) varying.insert(k);
  for (const auto& [k, v] : first.items())
    for (std::size_t i : rows)
      if (!flat[i].contains(k)) varying.insert(k);
  return varying;
}

/// The fields of `varying` that all `members` share (groups of 2 or more), at most 4.
json common_fields(const std::vector<json>& flat, const std::vector<std::size_t>& members,
                   const std::set<std::string>& varying) {
  json out = json::object();
  if (members.size() < 2) return out;
  const json& first = flat[members.front()];
  for (const auto& [k, v] : first.items()) {
    if (!varying.count(k) || out.size() >= 4) continue;
    bool shared = true;
    for (std::size_t i : members) shared = shared && flat[i].contains(k) && flat[i][k] == v;
    if (shared) out[k] = v;
  }
  return out;
}

json group_rows(const Evaluation& e, const ModelFile& model, const ReportGroup& g, const std::vector<std::size_t>& part,
                const std::vector<double>& previous) {
  const auto keys = row_keys(model, g, e.configs);
  struct Members {
    const RowKey* key = nullptr;
    std::vector<std::size_t> plausible;
    std::size_t implausible = 0;
  };
  std::map<std::pair<bool, std::vector<double>>, Members> rows;  // "(none)" sorts last
  std::vector<std::size_t> all_plausible;
  for (std::size_t i : part) {
    if (std::isnan(e.predicted[i])) continue;
    Members& m = rows[{!keys[i].has_value(), keys[i] ? keys[i]->sort : std::vector<double>{}}];
    if (keys[i]) m.key = &*keys[i];
    if (!e.plausibility.plausible[i]) {
      ++m.implausible;
      continue;
    }
    m.plausible.push_back(i);
    all_plausible.push_back(i);
  }
  // A key shown as a bare number (not an enum name, not a bin) says little: such rows also name the
  // argument fields their configurations share.
  const bool opaque = std::any_of(g.keys.begin(), g.keys.end(), [](const ReportGroupKey& k) { return !k.enum_kind && k.bins.empty(); });
  std::vector<json> flat(e.configs.size());
  for (std::size_t i : all_plausible) flat[i] = e.configs[i].args.flatten();
  const std::set<std::string> varying = varying_fields(flat, all_plausible);
  json out = json::array();
  for (const auto& [sort, m] : rows) {
    json row = columns(e, m.plausible, !e.baseline.empty() && model.baseline.has_value(), previous);
    row["label"] = m.key ? m.key->label : "(none)";
    row["key"] = m.key ? json(m.key->values) : json();
    row["common"] = opaque ? common_fields(flat, m.plausible, varying) : json::object();
    row["implausible"] = m.implausible;
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace

ReportGroup parse_report_group(const json& j, const std::string& path) {
  if (j.is_string()) {
    ReportGroup g = group_of_expression(j.get<std::string>());
    g.keys.front().where = path;
    return g;
  }
  if (!j.is_object()) bad_group("a group is an expression or {\"name\"?, \"keys\": [...]}", path);
  ReportGroup g;
  if (auto n = j.find("name"); n != j.end()) {
    if (!n->is_string()) bad_group("name must be text", path + "/name");
    g.name = n->get<std::string>();
  }
  if (auto k = j.find("keys"); k != j.end()) {
    if (!k->is_array() || k->empty()) bad_group("keys must be a non-empty array", path + "/keys");
    for (std::size_t i = 0; i < k->size(); ++i) g.keys.push_back(parse_key((*k)[i], path + "/keys/" + std::to_string(i)));
  } else if (auto x = j.find("expr"); x != j.end()) {
    g.keys.push_back(parse_key(*x, path + "/expr"));
  } else {
    bad_group("a group needs \"keys\" or \"expr\"", path);
  }
  if (g.name.empty())
    for (const auto& key : g.keys) g.name += (g.name.empty() ? "" : " × ") + (key.label.empty() ? key.expr : key.label);
  return g;
}

std::vector<ReportGroup> report_groups_of_spec(const json& op_spec, const std::string& report_path) {
  std::vector<ReportGroup> out;
  auto r = op_spec.find("report");
  if (r == op_spec.end()) return out;
  if (!r->is_object()) bad_group("\"report\" must be an object", report_path.empty() ? "/" : report_path);
  auto g = r->find("groups");
  if (g == r->end()) return out;
  if (!g->is_array()) bad_group("\"groups\" must be an array", report_path + "/groups");
  for (std::size_t i = 0; i < g->size(); ++i)
    out.push_back(parse_report_group((*g)[i], report_path + "/groups/" + std::to_string(i)));
  return out;
}

void check_report_groups(const ModelFile& model, const std::vector<ReportGroup>& groups) {
  Encoder enc(model.op_spec, model.device);
  for (const ReportGroup& g : groups)
    for (const ReportGroupKey& k : g.keys) {
      try {
        (void)enc.compile(k.expr);
      } catch (const TorpError& e) {
        Error err = e.error();
        if (err.path.empty()) err.path = k.where;
        throw TorpError(std::move(err));
      }
    }
}

std::vector<ReportGroup> default_report_groups(const ModelFile& model) {
  std::vector<ReportGroup> out = report_groups_of_spec(model.op_spec, "/op_spec/report");  // paths in the model file
  if (!out.empty()) return out;
  std::vector<std::string> exprs;
  if (model.baseline && !model.baseline->group.empty()) exprs.push_back(model.baseline->group);
  if (auto p = model.op_spec.find("plausibility"); p != model.op_spec.end() && p->is_object())
    if (auto g = p->find("group"); g != p->end() && g->is_string()) exprs.push_back(g->get<std::string>());
  for (const auto& x : exprs)
    if (std::none_of(out.begin(), out.end(), [&](const ReportGroup& g) { return g.keys.front().expr == x; }))
      out.push_back(group_of_expression(x));
  return out;
}

std::vector<double> baseline_predictions(const ModelFile& model, const std::vector<Configuration>& configs) {
  std::vector<double> out(configs.size(), kNaN);
  if (!model.baseline || model.baseline->groups.empty()) return out;
  Encoder enc(model.op_spec, model.device);
  std::vector<ExprId> terms;
  for (const auto& f : model.baseline->features) terms.push_back(enc.feature(f));
  const ExprId group = model.baseline->group.empty() ? ExprId{-1} : enc.feature(model.baseline->group);
  Bindings b;
  std::vector<double> t(terms.size());
  for (std::size_t i = 0; i < configs.size(); ++i) {
    if (enc.bind(configs[i].args, b) || enc.eval_all(terms, b, t)) continue;
    const Baseline::Group* g = &model.baseline->groups.front();
    if (group >= 0) {
      const auto key = enc.eval(group, b);
      if (!key) continue;
      g = nullptr;
      for (const auto& cand : model.baseline->groups)
        if (cand.key == key.value()) g = &cand;
      if (g == nullptr) continue;
    }
    double base = g->intercept;  // the served law's order of operations (runner.cpp compute_baseline)
    for (std::size_t j = 0; j < t.size(); ++j) base += g->coefficients[j] * t[j];
    if (base > 0.0 && std::isfinite(base)) out[i] = base;
  }
  return out;
}

json comparison_report(const Evaluation& e, const ModelFile& model) {
  std::vector<double> previous;
  for (const auto& a : e.previous) previous.push_back(a.runtime_ns);
  const bool has_baseline = model.baseline.has_value() && !e.baseline.empty();
  std::vector<std::size_t> all, plausible;
  for (std::size_t i : e.split.test) {
    if (std::isnan(e.predicted[i])) continue;
    all.push_back(i);
    if (e.plausibility.plausible[i]) plausible.push_back(i);
  }
  json out = {{"part", "test"},
              {"model", model.id},
              {"previous", e.previous.empty() ? json() : json(e.previous_id)},
              {"overall", {{"plausible", columns(e, plausible, has_baseline, previous)},
                           {"all", columns(e, all, has_baseline, previous)}}},
              {"groups", json::array()}};
  for (const auto& g : e.groups) {
    json keys = json::array();
    for (const auto& k : g.keys) keys.push_back(k.expr);
    out["groups"].push_back({{"name", g.name}, {"keys", keys}, {"rows", group_rows(e, model, g, e.split.test, previous)}});
  }
  return out;
}

std::vector<std::size_t> worst_errors(const Evaluation& e, bool plausible, std::size_t limit) {
  std::vector<std::size_t> order;
  for (std::size_t i : e.split.test)
    if (!std::isnan(e.predicted[i]) && e.plausibility.plausible[i] == plausible) order.push_back(i);
  auto err = [&](std::size_t i) { return std::fabs(e.predicted[i] / e.configs[i].label_ns - 1.0); };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return err(a) > err(b); });
  if (order.size() > limit) order.resize(limit);
  return order;
}

json evaluation_json(const ModelFile& model, const Evaluation& e, const std::string& dataset_name, std::size_t worst) {
  auto number = [](double v) { return std::isnan(v) ? json() : json(v); };
  json worst_lists = json::object();
  for (const bool plausible : {true, false}) {
    json list = json::array();
    for (std::size_t i : worst_errors(e, plausible, worst))
      list.push_back({{"args", e.configs[i].args},
                      {"label_ns", e.configs[i].label_ns},
                      {"runtime_ns", e.predicted[i]},
                      {"error", e.predicted[i] / e.configs[i].label_ns - 1.0},
                      {"baseline_ns", e.baseline.empty() ? json() : number(e.baseline[i])},
                      {"previous_ns", e.previous.empty() ? json() : number(e.previous[i].runtime_ns)},
                      {"domain", e.served[i].domain},
                      {"suites", e.configs[i].suites},
                      {"input_hashes", e.configs[i].input_hashes}});
    worst_lists[plausible ? "plausible" : "implausible"] = std::move(list);
  }
  std::size_t implausible = 0;
  for (std::size_t i : e.split.test) implausible += e.plausibility.plausible[i] ? 0 : 1;
  return {{"model", model.id},
          {"op", model.op},
          {"dataset", dataset_name},
          {"rows", e.aggregation.rows},
          {"configurations", e.configs.size()},
          {"split", {{"train", e.split.train.size()}, {"validation", e.split.validation.size()}, {"test", e.split.test.size()}}},
          {"plausibility", {{"defined", e.plausibility.defined},
                            {"factor", e.plausibility.defined ? json(e.plausibility.factor) : json()},
                            {"implausible_test_labels", implausible}}},
          {"metrics", e.metrics},
          {"intervals", e.intervals},
          {"comparison", e.comparison},
          {"worst", worst_lists}};
}

}  // namespace torp
