// SPDX-License-Identifier: Apache-2.0
// Drift of a directory's models against new measurements (include/torp/train/drift.hpp).
#include "torp/train/drift.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

#include "torp/encoder.hpp"
#include "torp/log.hpp"
#include "torp/predictor.hpp"
#include "torp/train/evaluate.hpp"

namespace torp {
namespace {

using json = nlohmann::json;

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<std::size_t>(pos);
  const double f = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

/// "BFLOAT16 L1" for exp; one "<dtype> <buffer>" per tensor argument, joined by " x ".
std::string describe_tensors(const json& args) {
  std::string out;
  for (auto it = args.begin(); it != args.end(); ++it) {
    const json& t = it.value();
    if (!t.is_object() || !t.contains("logical_shape")) continue;
    std::string part = t.value("dtype", std::string("?"));
    const json mc = t.value("memory_config", json::object());
    part += " " + (mc.is_object() ? mc.value("buffer_type", std::string("?")) : std::string("?"));
    out += (out.empty() ? "" : " x ") + part;
  }
  return out.empty() ? "all" : out;
}

struct Point {
  double log_ratio = 0;
  bool within = false;
  std::string group;
};

DriftScope make_scope(const std::string& name, const std::vector<const Point*>& pts, double coverage) {
  DriftScope s;
  s.name = name;
  s.n = pts.size();
  std::vector<double> r;
  for (const Point* p : pts) {
    r.push_back(p->log_ratio);
    s.within += p->within ? 1 : 0;
  }
  s.median_log_ratio = quantile(r, 0.5);
  s.p25_log_ratio = quantile(r, 0.25);
  s.p75_log_ratio = quantile(r, 0.75);
  s.p_value = s.n ? binomial_cdf(s.within, s.n, coverage) : 1.0;
  return s;
}

json scope_json(const DriftScope& s) {
  return {{"group", s.name},
          {"configurations", s.n},
          {"within_interval", s.n ? json(static_cast<double>(s.within) / static_cast<double>(s.n)) : json()},
          {"median_ratio", std::exp(s.median_log_ratio)},
          {"ratio_p25", std::exp(s.p25_log_ratio)},
          {"ratio_p75", std::exp(s.p75_log_ratio)},
          {"p_value", s.p_adjusted},
          {"moved", s.moved}};
}

}  // namespace

std::vector<std::string> drift_groups(const ModelFile& model, const std::vector<Configuration>& configs,
                                      const std::vector<double>& predicted, std::string* feature) {
  std::vector<std::string> out(configs.size());
  const bool by_feature = model.baseline && !model.baseline->group.empty();
  *feature = by_feature ? model.baseline->group : "decade of predicted runtime";
  std::optional<Encoder> enc;
  std::vector<std::string> names;
  if (by_feature) {
    enc.emplace(model.op_spec, model.device);
    names.push_back(model.baseline->group);
  }
  std::map<double, std::string> label_of;  // group value -> label of its first configuration
  for (std::size_t i = 0; i < configs.size(); ++i) {
    if (std::isnan(predicted[i])) continue;
    if (!by_feature) {
      const int d = static_cast<int>(std::floor(std::log10(predicted[i])));
      out[i] = "1e" + std::to_string(d) + "-1e" + std::to_string(d + 1) + " ns";
      continue;
    }
    auto v = enc->encode(configs[i].args, names);
    if (!v) continue;
    auto [it, fresh] = label_of.emplace(v.value()[0], std::string());
    if (fresh) it->second = describe_tensors(configs[i].args);
    out[i] = it->second;
  }
  return out;
}

namespace {

void apply_rule(std::vector<DriftScope>& scopes, const DriftOptions& o) {
  std::vector<double> p;
  for (const auto& s : scopes) p.push_back(s.p_value);
  const auto adj = holm_adjust(p);
  for (std::size_t i = 0; i < scopes.size(); ++i) {
    scopes[i].p_adjusted = adj[i];
    scopes[i].moved = scopes[i].n > 0 && adj[i] < o.alpha &&
                      std::abs(scopes[i].median_log_ratio) >= std::log1p(o.min_shift);
  }
}

}  // namespace

double binomial_cdf(std::size_t k, std::size_t n, double p) {
  if (k >= n) return 1.0;
  double sum = 0;
  const double lp = std::log(p), lq = std::log1p(-p);
  for (std::size_t i = 0; i <= k; ++i) {
    const double lc = std::lgamma(static_cast<double>(n) + 1) - std::lgamma(static_cast<double>(i) + 1) -
                      std::lgamma(static_cast<double>(n - i) + 1);
    sum += std::exp(lc + static_cast<double>(i) * lp + static_cast<double>(n - i) * lq);
  }
  return std::min(1.0, sum);
}

std::vector<double> holm_adjust(const std::vector<double>& p) {
  std::vector<std::size_t> order(p.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  std::vector<double> out(p.size());
  double running = 0;
  for (std::size_t r = 0; r < order.size(); ++r) {
    running = std::max(running, std::min(1.0, static_cast<double>(p.size() - r) * p[order[r]]));
    out[order[r]] = running;
  }
  return out;
}

std::optional<DriftBand> drift_band(const ModelFile& model) {
  if (model.calibration && !model.calibration->domains.empty()) {
    const auto& d = model.calibration->domains;
    auto it = d.find("inside");
    if (it == d.end())  // the widest band
      it = std::max_element(d.begin(), d.end(), [](const auto& a, const auto& b) {
        return a.second.hi - a.second.lo < b.second.hi - b.second.lo;
      });
    return DriftBand{it->second.lo, it->second.hi, model.calibration->coverage, "calibration (" + it->first + ")"};
  }
  const json* m = nullptr;
  if (model.provenance.is_object() && model.provenance.contains("metrics")) {
    const json& metrics = model.provenance["metrics"];
    for (const char* part : {"test_plausible", "test"})
      if (metrics.contains(part) && metrics[part].is_object() && metrics[part].value("p90_ape", json()).is_number()) {
        m = &metrics[part];
        break;
      }
  }
  if (!m) return std::nullopt;
  const double half = std::log1p(m->at("p90_ape").get<double>() / 100.0);
  return DriftBand{-half, half, 0.9, "provenance p90 APE (fallback)"};
}

json drift_model(const ModelFile& model, const std::vector<Configuration>& configs, const DriftOptions& o) {
  const std::vector<double> predicted = predict_configurations(model, configs);
  const auto band = drift_band(model);
  std::string feature;
  const std::vector<std::string> groups = drift_groups(model, configs, predicted, &feature);
  std::vector<Point> pts;
  std::size_t not_served = 0;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    if (std::isnan(predicted[i])) {
      ++not_served;
      continue;
    }
    const double r = std::log(configs[i].label_ns / predicted[i]);
    pts.push_back({r, band && r >= band->lo && r <= band->hi, groups[i]});
  }
  std::map<std::string, std::vector<const Point*>> by_group;
  std::vector<const Point*> all;
  for (const Point& p : pts) {
    all.push_back(&p);
    by_group[p.group].push_back(&p);
  }
  const double coverage = band ? band->coverage : 0.9;
  std::vector<DriftScope> scopes{make_scope("all", all, coverage)};
  if (by_group.size() > 1)
    for (const auto& [g, v] : by_group) scopes.push_back(make_scope(g, v, coverage));
  if (band) apply_rule(scopes, o);  // without an interval nothing can be tested

  const DriftScope& whole = scopes[0];
  json r = {{"op", model.op}, {"model", model.id}, {"configurations", whole.n}, {"not_served", not_served},
            {"nominal_coverage", band ? json(band->coverage) : json()},
            {"interval_source", band ? json(band->source) : json()},
            {"within_interval", band && whole.n ? json(static_cast<double>(whole.within) / static_cast<double>(whole.n)) : json()},
            {"median_ratio", whole.n ? json(std::exp(whole.median_log_ratio)) : json()},
            {"ratio_p25", whole.n ? json(std::exp(whole.p25_log_ratio)) : json()},
            {"ratio_p75", whole.n ? json(std::exp(whole.p75_log_ratio)) : json()},
            {"p_value", band ? json(whole.p_adjusted) : json()},
            {"group_feature", feature}};
  std::vector<const DriftScope*> moved;
  json gj = json::array();
  std::vector<const DriftScope*> ranked;
  for (std::size_t i = 1; i < scopes.size(); ++i) ranked.push_back(&scopes[i]);
  std::stable_sort(ranked.begin(), ranked.end(), [](const DriftScope* a, const DriftScope* b) {
    return std::abs(a->median_log_ratio) > std::abs(b->median_log_ratio);
  });
  for (const DriftScope* s : ranked) {
    gj.push_back(scope_json(*s));
    if (!band) gj.back()["within_interval"] = gj.back()["p_value"] = nullptr;
  }
  for (const DriftScope& s : scopes)
    if (s.moved) moved.push_back(&s);
  r["groups"] = gj;
  json most = json::array();
  for (std::size_t i = 0; i < ranked.size() && i < o.top_groups; ++i) most.push_back(ranked[i]->name);
  r["moved_most"] = most;
  if (!band) {
    r["verdict"] = "unknown";
    r["reason"] = "the model carries no prediction interval (no calibration, no test metrics in its provenance)";
  } else if (whole.n == 0) {
    r["verdict"] = "unknown";
    r["reason"] = "the model serves none of the dataset's configurations";
  } else if (moved.empty()) {
    r["verdict"] = "current";
    r["reason"] = "no scope has significantly fewer labels inside the interval with a median shift of at least " +
                  std::to_string(static_cast<int>(std::lround(o.min_shift * 100))) + "%";
  } else {
    r["verdict"] = "stale";
    std::string names;
    for (const DriftScope* s : moved) names += (names.empty() ? "" : ", ") + s->name;
    r["reason"] = "moved: " + names;
  }
  return r;
}

json drift(const Dataset& data, const std::filesystem::path& models_dir, const DriftOptions& o) {
  const Predictor predictor(models_dir);  // validates the directory exactly as serving does
  const std::vector<Configuration> configs = aggregate(data, o.reject_factor, nullptr);
  json ops = json::array();
  for (const ModelInfo& info : predictor.models()) {
    if (info.op != data.op) continue;
    log(LogLevel::info, "drift: " + info.id + " on " + std::to_string(configs.size()) + " configurations");
    json r = drift_model(load_model(info.file), configs, o);
    r["file"] = info.file.string();
    ops.push_back(std::move(r));
  }
  if (ops.empty())
    throw TorpError(ErrorCode::no_model, "no model in " + models_dir.string() + " serves " + data.op);
  return {{"op", data.op},
          {"configurations", configs.size()},
          {"rule",
           {{"test", "one-sided binomial: P(X <= inside), X ~ Binomial(n, nominal coverage), per model and group"},
            {"correction", "Holm over each model's scopes"},
            {"alpha", o.alpha},
            {"min_shift", o.min_shift}}},
          {"ops", ops}};
}

std::string drift_summary(const json& report) {
  std::ostringstream s;
  s << std::fixed;
  for (const json& m : report.at("ops")) {
    s << m.at("model").get<std::string>() << " (" << m.at("op").get<std::string>() << "): "
      << m.at("verdict").get<std::string>() << ", " << m.at("configurations").get<std::size_t>() << " configurations";
    if (m["within_interval"].is_number())
      s << ", " << std::setprecision(1) << 100 * m["within_interval"].get<double>() << "% inside the interval (nominal "
        << 100 * m["nominal_coverage"].get<double>() << "%)";
    if (m["median_ratio"].is_number())
      s << ", measured/predicted median " << std::setprecision(3) << m["median_ratio"].get<double>() << " [p25 "
        << m["ratio_p25"].get<double>() << ", p75 " << m["ratio_p75"].get<double>() << "]";
    s << "\n  " << m.at("reason").get<std::string>() << "\n";
    for (const json& g : m.at("groups")) {
      if (!g["within_interval"].is_number()) continue;
      s << "  " << std::left << std::setw(28) << g.at("group").get<std::string>() << std::right << std::setw(5)
        << g.at("configurations").get<std::size_t>() << " configs  inside " << std::setprecision(1) << std::setw(5)
        << 100 * g["within_interval"].get<double>() << "%  median ratio " << std::setprecision(3)
        << g.at("median_ratio").get<double>() << (g.at("moved").get<bool>() ? "  MOVED" : "") << "\n";
    }
  }
  return s.str();
}

}  // namespace torp
