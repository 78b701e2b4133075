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

/// One served configuration: its ratio, its group and domain, and the interval it is judged by.
struct Point {
  double log_ratio = 0;  ///< log(measured / predicted)
  bool within = false;   ///< the label inside its interval
  DriftInterval source = DriftInterval::none;
  double coverage = 0;   ///< nominal coverage of its interval
  std::string group, domain;
};

DriftScope make_scope(const std::string& name, const std::vector<const Point*>& pts) {
  DriftScope s;
  s.name = name;
  s.n = pts.size();
  std::vector<double> r;
  std::map<double, std::size_t> coverages;  // nominal coverage -> tested configurations
  for (const Point* p : pts) {
    r.push_back(p->log_ratio);
    if (p->source == DriftInterval::none) continue;
    ++s.tested;
    ++(p->source == DriftInterval::served ? s.served : s.fallback);
    s.within += p->within ? 1 : 0;
    ++coverages[p->coverage];
  }
  if (coverages.size() == 1) s.coverage = coverages.begin()->first;
  else if (s.tested) {  // the mean: conservative for the lower tail (Hoeffding 1956)
    for (const auto& [c, k] : coverages) s.coverage += c * static_cast<double>(k);
    s.coverage /= static_cast<double>(s.tested);
  }
  s.median_log_ratio = quantile(r, 0.5);
  s.p25_log_ratio = quantile(r, 0.25);
  s.p75_log_ratio = quantile(r, 0.75);
  s.p_value = s.tested ? binomial_cdf(s.within, s.tested, s.coverage) : 1.0;
  return s;
}

json share_within(const DriftScope& s) {
  return s.tested ? json(static_cast<double>(s.within) / static_cast<double>(s.tested)) : json();
}

json source_json(const DriftScope& s) { return s.tested ? json(s.interval_source()) : json(); }

json scope_json(const DriftScope& s) {
  return {{"group", s.name},
          {"configurations", s.n},
          {"tested", s.tested},
          {"within_interval", share_within(s)},
          {"nominal_coverage", s.tested ? json(s.coverage) : json()},
          {"interval_source", source_json(s)},
          {"median_ratio", std::exp(s.median_log_ratio)},
          {"ratio_p25", std::exp(s.p25_log_ratio)},
          {"ratio_p75", std::exp(s.p75_log_ratio)},
          {"p_value", s.tested ? json(s.p_adjusted) : json()},
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

std::string DriftScope::interval_source() const {
  if (tested == 0) return "none";
  if (fallback == 0) return "served";
  return served == 0 ? "fallback" : "mixed";
}

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

std::optional<DriftBand> drift_fallback_band(const ModelFile& model) {
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
  return DriftBand{-half, half, 0.9, "provenance p90 APE"};
}

namespace {

/// Every served configuration, judged by its served interval, else by the fallback band.
std::vector<Point> drift_points(const ModelFile& model, const std::vector<Configuration>& configs,
                                const std::vector<ServedAnswer>& served, const std::vector<std::string>& groups,
                                const std::optional<DriftBand>& fallback) {
  std::vector<Point> pts;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const ServedAnswer& a = served[i];
    if (std::isnan(a.runtime_ns)) continue;
    const double label = configs[i].label_ns;
    Point p;
    p.log_ratio = std::log(label / a.runtime_ns);
    p.group = groups[i];
    p.domain = a.domain;
    if (a.interval_ns && model.calibration) {  // served intervals come from the calibration
      p.source = DriftInterval::served;
      p.coverage = model.calibration->coverage;
      p.within = (*a.interval_ns)[0] <= label && label <= (*a.interval_ns)[1];
    } else if (fallback) {
      p.source = DriftInterval::fallback;
      p.coverage = fallback->coverage;
      p.within = p.log_ratio >= fallback->lo && p.log_ratio <= fallback->hi;
    }
    pts.push_back(std::move(p));
  }
  return pts;
}

/// The scopes "all" and, with more than one group, one per group (ranked later).
std::vector<DriftScope> drift_scopes(const std::vector<Point>& pts) {
  std::map<std::string, std::vector<const Point*>> by_group;
  std::vector<const Point*> all;
  for (const Point& p : pts) {
    all.push_back(&p);
    by_group[p.group].push_back(&p);
  }
  std::vector<DriftScope> scopes{make_scope("all", all)};
  if (by_group.size() > 1)
    for (const auto& [g, v] : by_group) scopes.push_back(make_scope(g, v));
  return scopes;
}

/// The rule on the scopes with tested configurations: Holm over them, then alpha and min_shift.
void apply_rule(std::vector<DriftScope>& scopes, const DriftOptions& o) {
  std::vector<DriftScope*> tested;
  std::vector<double> p;
  for (auto& s : scopes)
    if (s.tested > 0) {
      tested.push_back(&s);
      p.push_back(s.p_value);
    }
  const auto adj = holm_adjust(p);
  for (std::size_t i = 0; i < tested.size(); ++i) {
    tested[i]->p_adjusted = adj[i];
    tested[i]->moved = adj[i] < o.alpha && std::abs(tested[i]->median_log_ratio) >= std::log1p(o.min_shift);
  }
}

/// Per answer domain (seen, inside, outside, ...): how many configurations and how many inside.
json domains_json(const std::vector<Point>& pts) {
  std::map<std::string, std::vector<const Point*>> by_domain;
  for (const Point& p : pts) by_domain[p.domain].push_back(&p);
  json out = json::object();
  for (const auto& [d, v] : by_domain) {
    const DriftScope s = make_scope(d, v);
    out[d] = {{"configurations", s.n},
              {"tested", s.tested},
              {"within_interval", share_within(s)},
              {"interval_source", source_json(s)},
              {"median_ratio", std::exp(s.median_log_ratio)}};
  }
  return out;
}

/// The model's figures over all its served configurations (scope "all").
json whole_json(const ModelFile& model, const DriftScope& whole, std::size_t not_served,
                const std::optional<DriftBand>& fallback) {
  const bool any = whole.n > 0;
  json fb;
  if (fallback)
    fb = {{"source", fallback->source}, {"lo", fallback->lo}, {"hi", fallback->hi}, {"coverage", fallback->coverage}};
  return {{"op", model.op}, {"model", model.id}, {"configurations", whole.n}, {"not_served", not_served},
          {"tested", whole.tested},
          {"intervals", {{"served", whole.served}, {"fallback", whole.fallback}, {"none", whole.n - whole.tested}}},
          {"nominal_coverage", whole.tested ? json(whole.coverage) : json()},
          {"interval_source", source_json(whole)},
          {"fallback", fb},
          {"within_interval", share_within(whole)},
          {"median_ratio", any ? json(std::exp(whole.median_log_ratio)) : json()},
          {"ratio_p25", any ? json(std::exp(whole.p25_log_ratio)) : json()},
          {"ratio_p75", any ? json(std::exp(whole.p75_log_ratio)) : json()},
          {"p_value", whole.tested ? json(whole.p_adjusted) : json()}};
}

void set_verdict(json& r, const std::vector<DriftScope>& scopes, const DriftOptions& o) {
  const DriftScope& whole = scopes[0];
  std::string names;
  for (const DriftScope& s : scopes)
    if (s.moved) names += (names.empty() ? "" : ", ") + s.name;
  if (whole.n == 0) {
    r["verdict"] = "unknown";
    r["reason"] = "the model serves none of the dataset's configurations";
  } else if (whole.tested == 0) {
    r["verdict"] = "unknown";
    r["reason"] = "no served answer carries a prediction interval and the model has no fallback band (no test "
                  "metrics in its provenance)";
  } else if (names.empty()) {
    r["verdict"] = "current";
    r["reason"] = "no scope has significantly fewer labels inside the interval with a median shift of at least " +
                  std::to_string(static_cast<int>(std::lround(o.min_shift * 100))) + "%";
  } else {
    r["verdict"] = "stale";
    r["reason"] = "moved: " + names;
  }
}

}  // namespace

json drift_model(const ModelFile& model, const std::vector<Configuration>& configs, const DriftOptions& o) {
  const std::vector<ServedAnswer> served = serve_configurations(model, configs);
  std::vector<double> predicted;
  for (const ServedAnswer& a : served) predicted.push_back(a.runtime_ns);
  std::string feature;
  const std::vector<std::string> groups = drift_groups(model, configs, predicted, &feature);
  const auto fallback = drift_fallback_band(model);
  const std::vector<Point> pts = drift_points(model, configs, served, groups, fallback);
  std::vector<DriftScope> scopes = drift_scopes(pts);
  apply_rule(scopes, o);

  json r = whole_json(model, scopes[0], configs.size() - pts.size(), fallback);
  r["group_feature"] = feature;
  r["domains"] = domains_json(pts);
  std::vector<const DriftScope*> ranked;
  for (std::size_t i = 1; i < scopes.size(); ++i) ranked.push_back(&scopes[i]);
  std::stable_sort(ranked.begin(), ranked.end(), [](const DriftScope* a, const DriftScope* b) {
    return std::abs(a->median_log_ratio) > std::abs(b->median_log_ratio);
  });
  json gj = json::array();
  for (const DriftScope* s : ranked) gj.push_back(scope_json(*s));
  r["groups"] = gj;
  json most = json::array();
  for (std::size_t i = 0; i < ranked.size() && i < o.top_groups; ++i) most.push_back(ranked[i]->name);
  r["moved_most"] = most;
  set_verdict(r, scopes, o);
  return r;
}

json drift(const Dataset& data, const std::filesystem::path& models_dir, const DriftOptions& o) {
  const Predictor predictor(models_dir);  // validates the directory exactly as serving does
  const std::vector<Configuration> configs = aggregate(data, o.reject_factor, nullptr);
  // Measurements of one device judge the models of that device (and models that name none).
  const std::string device = data.header.is_object() ? data.header.value("device", std::string()) : std::string();
  json ops = json::array(), other_devices = json::array();
  for (const ModelInfo& info : predictor.models()) {
    if (info.op != data.op) continue;
    if (!device.empty() && !info.device.empty() && info.device != device) {
      other_devices.push_back({{"model", info.id}, {"device", info.device}});
      continue;
    }
    log(LogLevel::info, "drift: " + info.id + " on " + std::to_string(configs.size()) + " configurations");
    json r = drift_model(load_model(info.file), configs, o);
    r["file"] = info.file.string();
    ops.push_back(std::move(r));
  }
  if (ops.empty())
    throw TorpError(ErrorCode::no_model, "no model in " + models_dir.string() + " serves " + data.op +
                                             (device.empty() ? std::string() : " on " + device) +
                                             (other_devices.empty() ? "" : " (" + std::to_string(other_devices.size()) +
                                                                               " for other devices)"));
  return {{"op", data.op},
          {"device", device.empty() ? json() : json(device)},
          {"other_devices", other_devices},
          {"configurations", configs.size()},
          {"rule",
           {{"test", "one-sided binomial: P(X <= inside), X ~ Binomial(tested, nominal coverage), per model and group"},
            {"intervals", "each configuration's label against the prediction interval served for it (calibration by "
                          "domain and group), else the fallback band +-log(1 + p90 APE) of the model's provenance"},
            {"correction", "Holm over each model's tested scopes"},
            {"alpha", o.alpha},
            {"min_shift", o.min_shift}}},
          {"ops", ops}};
}

namespace {

std::string percent(double share) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << 100 * share << "%";
  return s.str();
}

/// "491 served intervals (calibration by domain and group), 3 fallback +-5.2% (provenance p90 APE)".
std::string intervals_text(const json& m) {
  const json& k = m.at("intervals");
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (k.at("served").get<std::size_t>())
    add(std::to_string(k.at("served").get<std::size_t>()) + " served intervals (calibration by domain and group)");
  if (k.at("fallback").get<std::size_t>()) {
    const json& fb = m.at("fallback");
    add(std::to_string(k.at("fallback").get<std::size_t>()) + " fallback band +-" +
        percent(std::expm1(fb.at("hi").get<double>())) + " (" + fb.at("source").get<std::string>() + ")");
  }
  if (k.at("none").get<std::size_t>()) add(std::to_string(k.at("none").get<std::size_t>()) + " without an interval");
  return out;
}

std::string domains_text(const json& domains) {
  std::string out;
  for (const auto& [d, v] : domains.items()) {
    out += (out.empty() ? "" : ", ") + d + " " + std::to_string(v.at("configurations").get<std::size_t>());
    if (v.at("within_interval").is_number()) out += " (" + percent(v["within_interval"].get<double>()) + " inside)";
  }
  return out;
}

void summarize_model(std::ostream& s, const json& m) {
  s << m.at("model").get<std::string>() << " (" << m.at("op").get<std::string>() << "): "
    << m.at("verdict").get<std::string>() << ", " << m.at("configurations").get<std::size_t>() << " configurations";
  if (m["within_interval"].is_number())
    s << ", " << percent(m["within_interval"].get<double>()) << " inside their interval (nominal "
      << percent(m["nominal_coverage"].get<double>()) << ")";
  if (m["median_ratio"].is_number())
    s << ", measured/predicted median " << std::setprecision(3) << m["median_ratio"].get<double>() << " [p25 "
      << m["ratio_p25"].get<double>() << ", p75 " << m["ratio_p75"].get<double>() << "]";
  if (m.at("configurations").get<std::size_t>())
    s << "\n  intervals: " << intervals_text(m) << "\n  domains: " << domains_text(m.at("domains"));
  s << "\n  " << m.at("reason").get<std::string>() << "\n";
  for (const json& g : m.at("groups")) {
    if (!g["within_interval"].is_number()) continue;
    const std::string source = g.at("interval_source").get<std::string>();
    s << "  " << std::left << std::setw(28) << g.at("group").get<std::string>() << std::right << std::setw(5)
      << g.at("configurations").get<std::size_t>() << " configs  inside " << std::setw(6)
      << percent(g["within_interval"].get<double>()) << "  median ratio " << std::setprecision(3)
      << g.at("median_ratio").get<double>() << (source == "served" ? "" : "  (" + source + " intervals)")
      << (g.at("moved").get<bool>() ? "  MOVED" : "") << "\n";
  }
}

}  // namespace

std::string drift_summary(const json& report) {
  std::ostringstream s;
  s << std::fixed;
  for (const json& m : report.at("ops")) summarize_model(s, m);
  if (const auto o = report.find("other_devices"); o != report.end() && o->is_array() && !o->empty()) {
    s << "not judged (models of other devices than the measurements' " << report.value("device", json("")).get<std::string>()
      << "):";
    for (const json& m : *o) s << " " << m.at("model").get<std::string>();
    s << "\n";
  }
  return s.str();
}

}  // namespace torp
