// SPDX-License-Identifier: Apache-2.0
// Metrics, the split by configuration, the plausibility rule, serving-identical predictions of a
// model file, and the robust non-negative fits the trainer shares.
#include "torp/train/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <ostream>

#include "spec/bindings.hpp"
#include "torp/predictor.hpp"
#include "train/train_detail.hpp"

namespace torp {

using json = nlohmann::json;

namespace {

/// Linearly interpolated quantile q in [0, 1] of sorted values.
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  if (lo + 1 >= sorted.size()) return sorted.back();
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[lo + 1] - sorted[lo]);
}

/// 1-based ranks, tied values sharing their mean rank.
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<std::size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double mean_rank = 0.5 * static_cast<double>(i + j) + 1.0;
    for (std::size_t k = i; k <= j; ++k) r[order[k]] = mean_rank;
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const auto n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  if (saa <= 0.0 || sbb <= 0.0) return 0.0;
  return sab / std::sqrt(saa * sbb);
}

}  // namespace

Metrics compute_metrics(const std::vector<double>& predicted, const std::vector<double>& measured) {
  if (predicted.size() != measured.size())
    throw TorpError(ErrorCode::training, "compute_metrics: predicted and measured differ in length");
  Metrics m;
  m.n = measured.size();
  if (m.n == 0) return m;
  std::vector<double> ape(m.n);
  double sum_ape = 0, mean_y = 0;
  std::size_t in10 = 0, in25 = 0;
  for (std::size_t i = 0; i < m.n; ++i) {
    const double rel = std::fabs(predicted[i] / measured[i] - 1.0);
    in10 += rel <= 0.10 + 1e-12 ? 1 : 0;  // exactly 10% off counts as within (despite rounding)
    in25 += rel <= 0.25 + 1e-12 ? 1 : 0;
    ape[i] = 100.0 * rel;
    sum_ape += ape[i];
    mean_y += measured[i];
  }
  const auto n = static_cast<double>(m.n);
  m.within_10 = static_cast<double>(in10) / n;
  m.within_25 = static_cast<double>(in25) / n;
  m.mean_ape = sum_ape / n;
  std::sort(ape.begin(), ape.end());
  m.median_ape = quantile(ape, 0.5);
  m.p90_ape = quantile(ape, 0.9);
  if (m.n >= 2) {
    mean_y /= n;
    double ss_res = 0, ss_tot = 0;
    for (std::size_t i = 0; i < m.n; ++i) {
      ss_res += (measured[i] - predicted[i]) * (measured[i] - predicted[i]);
      ss_tot += (measured[i] - mean_y) * (measured[i] - mean_y);
    }
    m.r2 = ss_tot > 0.0 ? 1.0 - ss_res / ss_tot : 0.0;
    m.spearman = pearson(ranks(predicted), ranks(measured));
  }
  return m;
}

json to_json(const Metrics& m) {
  if (m.n == 0)
    return {{"n", 0},           {"within_10", nullptr}, {"within_25", nullptr}, {"median_ape", nullptr},
            {"mean_ape", nullptr}, {"p90_ape", nullptr}, {"r2", nullptr},        {"spearman", nullptr}};
  return {{"n", m.n},
          {"within_10", m.within_10},
          {"within_25", m.within_25},
          {"median_ape", m.median_ape},
          {"mean_ape", m.mean_ape},
          {"p90_ape", m.p90_ape},
          {"r2", m.r2},
          {"spearman", m.spearman}};
}

Split split_by_configuration(std::size_t n_configs, std::uint64_t seed, double validation_fraction,
                             double test_fraction) {
  if (!(validation_fraction >= 0.0 && test_fraction >= 0.0 && validation_fraction + test_fraction < 1.0))
    throw TorpError(ErrorCode::training,
                    "split fractions must be >= 0 and sum to less than 1 (validation " +
                        std::to_string(validation_fraction) + ", test " + std::to_string(test_fraction) + ")");
  std::vector<std::size_t> perm(n_configs);
  std::iota(perm.begin(), perm.end(), 0);
  detail::Rng rng(detail::derive_seed(seed, 0x5B117));
  rng.shuffle(perm);
  const auto n = static_cast<double>(n_configs);
  const auto n_test = static_cast<std::size_t>(std::llround(n * test_fraction));
  const auto n_val = static_cast<std::size_t>(std::llround(n * validation_fraction));
  Split s;
  s.test.assign(perm.begin(), perm.begin() + static_cast<long>(n_test));
  s.validation.assign(perm.begin() + static_cast<long>(n_test), perm.begin() + static_cast<long>(n_test + n_val));
  s.train.assign(perm.begin() + static_cast<long>(n_test + n_val), perm.end());
  for (auto* part : {&s.train, &s.validation, &s.test}) std::sort(part->begin(), part->end());
  return s;
}

PlausibilityResult judge_plausibility(const std::vector<Configuration>& configs, const Encoder& encoder,
                                      const std::vector<std::size_t>& fit_on) {
  PlausibilityResult res;
  res.plausible.assign(configs.size(), true);
  res.fits = json::array();
  const json& spec = encoder.spec();
  auto rule_it = spec.find("plausibility");
  if (rule_it == spec.end() || rule_it->is_null()) return res;
  const json& rule = *rule_it;
  if (!rule.is_object() || !rule.contains("x") || !rule.contains("factor") || !rule["factor"].is_number())
    throw TorpError(ErrorCode::op_spec, "plausibility needs {\"x\": EXPR or [EXPR...], \"factor\": F, \"group\"?: EXPR}",
                    "/plausibility");
  res.defined = true;
  res.factor = rule["factor"].get<double>();
  if (!(res.factor > 1.0)) throw TorpError(ErrorCode::op_spec, "plausibility factor must be > 1", "/plausibility/factor");

  Encoder enc(encoder.spec(), encoder.device());
  ExprId group = -1;
  if (auto g = rule.find("group"); g != rule.end() && !g->is_null()) {
    if (!g->is_string()) throw TorpError(ErrorCode::op_spec, "plausibility group must be an expression", "/plausibility/group");
    group = enc.compile(g->get<std::string>());
  }
  std::vector<ExprId> xs;
  const json& x = rule["x"];
  for (const json& e : x.is_array() ? x : json::array({x})) {
    if (!e.is_string()) throw TorpError(ErrorCode::op_spec, "plausibility x must be expressions", "/plausibility/x");
    xs.push_back(enc.compile(e.get<std::string>()));
  }

  // Encode: group key and law terms per configuration; unencodable configurations are not judged.
  const std::size_t p = xs.size() + 1;
  std::vector<bool> encoded(configs.size(), false);
  std::vector<double> keys(configs.size(), 0.0);
  arma::mat A(configs.size(), p, arma::fill::ones);
  Bindings b;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    if (enc.bind(configs[i].args, b)) continue;
    bool ok = true;
    if (group >= 0) {
      auto k = enc.eval(group, b);
      ok = k.ok();
      if (ok) keys[i] = k.value();
    }
    for (std::size_t j = 0; ok && j < xs.size(); ++j) {
      auto v = enc.eval(xs[j], b);
      ok = v.ok() && std::isfinite(v.value());
      if (ok) A(i, j + 1) = v.value();
    }
    encoded[i] = ok;
  }

  std::map<double, std::vector<std::size_t>> members;
  for (std::size_t i : fit_on)
    if (encoded[i] && configs[i].label_ns > 0.0) members[keys[i]].push_back(i);
  std::map<double, arma::vec> fits;
  for (const auto& [key, idx] : members) {
    if (idx.size() < p + 1) continue;
    const arma::uvec rows = arma::conv_to<arma::uvec>::from(idx);
    arma::vec y(idx.size());
    for (std::size_t r = 0; r < idx.size(); ++r) y[r] = configs[idx[r]].label_ns;
    arma::vec c = detail::fit_log_lad(A.rows(rows), y);
    fits[key] = c;
    json jf = {{"group", group >= 0 ? json(key) : json(nullptr)},
               {"intercept", c[0]},
               {"coef", std::vector<double>(c.begin() + 1, c.end())},
               {"n", idx.size()}};
    res.fits.push_back(jf);
  }
  for (std::size_t i = 0; i < configs.size(); ++i) {
    if (!encoded[i]) continue;
    auto f = fits.find(keys[i]);
    if (f == fits.end()) continue;
    const double fit = arma::dot(A.row(i), f->second);
    const double y = configs[i].label_ns;
    res.plausible[i] = fit > 0.0 && y >= fit / res.factor && y <= fit * res.factor;
  }
  return res;
}

std::vector<ServedAnswer> serve_configurations(const ModelFile& model, const std::vector<Configuration>& configs) {
  std::vector<ModelFile> served{model};
  if (!served[0].provenance.is_object())  // a model still being trained: provenance never changes answers
    served[0].provenance = {{"device", nullptr}, {"tt_metal_commit", nullptr}, {"source_data", nullptr}, {"metrics", nullptr}};
  const Predictor predictor(served);
  std::vector<json> queries;
  queries.reserve(configs.size());
  for (const auto& c : configs) queries.push_back({{"op", model.op}, {"args", c.args}, {"model", model.id}});
  const std::vector<PredictResult> results = predictor.predict_batch(queries);
  std::vector<ServedAnswer> out(configs.size());
  for (std::size_t i = 0; i < configs.size(); ++i) {
    if (!results[i]) continue;
    out[i].runtime_ns = results[i].value().runtime_ns;
    out[i].memory_found = results[i].value().memory_found;
    out[i].domain = to_string(results[i].value().domain);
    out[i].interval_ns = results[i].value().interval_ns;
  }
  return out;
}

namespace {

/// The served answer's domain as a number: 0 seen, 1 inside (also a model without input ranges:
/// domain unknown or analytical), 2 outside, -1 not served.
int domain_number(const ServedAnswer& a) {
  if (std::isnan(a.runtime_ns)) return -1;
  if (a.domain == "seen") return 0;
  return a.domain == "outside" ? 2 : 1;
}

}  // namespace

json coverage_by_domain(const std::vector<ServedAnswer>& served, const std::vector<Configuration>& configs,
                        const std::vector<std::size_t>& part, const std::vector<bool>& plausible) {
  json out = json::object();
  for (const char* name : {"seen", "inside", "outside"}) {
    std::size_t in = 0;
    std::vector<double> p, m, widths;
    for (std::size_t i : part) {
      const ServedAnswer& a = served[i];
      if (std::isnan(a.runtime_ns) || a.domain != name || !plausible[i] || !a.interval_ns) continue;
      const auto [lo, hi] = *a.interval_ns;
      in += lo <= configs[i].label_ns && configs[i].label_ns <= hi ? 1 : 0;
      widths.push_back((hi - lo) / a.runtime_ns);
      p.push_back(a.runtime_ns);
      m.push_back(configs[i].label_ns);
    }
    if (p.empty()) continue;
    std::sort(widths.begin(), widths.end());
    const Metrics mm = compute_metrics(p, m);
    out[name] = {{"n", p.size()},
                 {"coverage", static_cast<double>(in) / static_cast<double>(p.size())},
                 {"width", quantile(widths, 0.5)},
                 {"within_10", mm.within_10},
                 {"median_ape", mm.median_ape}};
  }
  return out;
}

std::vector<double> predict_configurations(const ModelFile& model, const std::vector<Configuration>& configs,
                                           std::vector<bool>* memory_hit, std::vector<int>* domain) {
  const std::vector<ServedAnswer> served = serve_configurations(model, configs);
  std::vector<double> out;
  out.reserve(served.size());
  for (const auto& a : served) out.push_back(a.runtime_ns);
  if (memory_hit) {
    memory_hit->clear();
    for (const auto& a : served) memory_hit->push_back(a.memory_found);
  }
  if (domain) {
    domain->clear();
    for (const auto& a : served) domain->push_back(domain_number(a));
  }
  return out;
}

json split_metrics(const std::vector<double>& predicted, const std::vector<Configuration>& configs, const Split& split,
                   const std::vector<bool>& plausible, const std::vector<bool>* memory_hit) {
  json out = json::object();
  json not_served = json::object();
  auto part = [&](const char* name, const std::vector<std::size_t>& idx) {
    std::vector<double> p_all, m_all, p_ok, m_ok, p_new, m_new;
    std::size_t missing = 0;
    for (std::size_t i : idx) {
      if (std::isnan(predicted[i])) {
        ++missing;
        continue;
      }
      p_all.push_back(predicted[i]);
      m_all.push_back(configs[i].label_ns);
      if (plausible[i]) {
        p_ok.push_back(predicted[i]);
        m_ok.push_back(configs[i].label_ns);
        if (memory_hit && !(*memory_hit)[i]) {
          p_new.push_back(predicted[i]);
          m_new.push_back(configs[i].label_ns);
        }
      }
    }
    out[name] = to_json(compute_metrics(p_all, m_all));
    out[std::string(name) + "_plausible"] = to_json(compute_metrics(p_ok, m_ok));
    if (memory_hit) out[std::string(name) + "_plausible_no_memory_hit"] = to_json(compute_metrics(p_new, m_new));
    not_served[name] = missing;
  };
  part("validation", split.validation);
  part("test", split.test);
  out["not_served"] = not_served;
  return out;
}

namespace {

/// The baseline alone, the previous model's answers and the comparison report over e.groups.
void add_comparison(Evaluation& e, const ModelFile& model, const ModelFile* previous) {
  e.baseline = baseline_predictions(model, e.configs);
  if (previous) {
    if (canonical_op_name(previous->op) != canonical_op_name(model.op))
      throw TorpError(ErrorCode::dataset, "the previous model " + previous->id + " serves " + previous->op + ", not " + model.op);
    e.previous_id = previous->id;
    e.previous = serve_configurations(*previous, e.configs);
  }
  e.comparison = comparison_report(e, model);
}

}  // namespace

EvaluationOptions evaluation_options(const ModelFile& model) {
  EvaluationOptions o;
  const json& p = model.provenance;
  if (auto s = p.find("seed"); s != p.end() && s->is_number_integer() && s->get<std::int64_t>() >= 0)
    o.seed = s->get<std::uint64_t>();
  if (auto s = p.find("split"); s != p.end() && s->is_object()) {
    o.validation_fraction = s->value("validation_fraction", o.validation_fraction);
    o.test_fraction = s->value("test_fraction", o.test_fraction);
  }
  if (auto s = p.find("outliers"); s != p.end() && s->is_object()) o.reject_factor = s->value("reject_factor", o.reject_factor);
  return o;
}

Evaluation evaluate_model(const ModelFile& model, const Dataset& data, const EvaluationOptions& options,
                          const ModelFile* previous) {
  Evaluation e;
  e.groups = options.groups ? *options.groups : default_report_groups(model);
  check_report_groups(model, e.groups);  // before any work: an error names the key's path
  e.configs = aggregate(data, options.reject_factor, &e.aggregation);
  if (options.all) {
    e.split.train.resize(e.configs.size());
    std::iota(e.split.train.begin(), e.split.train.end(), 0);
    e.split.test = e.split.train;
  } else {
    e.split = split_by_configuration(e.configs.size(), options.seed, options.validation_fraction, options.test_fraction);
  }
  Encoder enc(model.op_spec, model.device);
  if (canonical_op_name(data.op) != enc.op())
    throw TorpError(ErrorCode::dataset, "dataset is of op " + data.op + " but the model serves " + enc.op());
  e.plausibility = judge_plausibility(e.configs, enc, e.split.train);
  e.served = serve_configurations(model, e.configs);
  std::vector<bool> memory_hit;
  for (const auto& a : e.served) {
    e.predicted.push_back(a.runtime_ns);
    memory_hit.push_back(a.memory_found);
    e.domain.push_back(domain_number(a));
  }
  e.metrics = split_metrics(e.predicted, e.configs, e.split, e.plausibility.plausible,
                            model.memory ? &memory_hit : nullptr);
  e.intervals = interval_metrics(e, e.split.test);
  if (model.calibration)
    e.metrics["test_coverage"] =
        coverage_by_domain(e.served, e.configs, e.split.test, e.plausibility.plausible);
  // Cross-validation is not repeated here: it is reported from the model's provenance.
  if (const auto* pm = model.provenance.contains("metrics") ? &model.provenance["metrics"] : nullptr;
      pm && pm->is_object() && pm->contains("cv"))
    e.metrics["cv"] = (*pm)["cv"];
  add_comparison(e, model, previous);
  return e;
}

std::string part_of(const Split& split, std::size_t i) {
  auto in = [&](const std::vector<std::size_t>& part) { return std::binary_search(part.begin(), part.end(), i); };
  return in(split.test) ? "test" : in(split.validation) ? "validation" : "train";
}

json interval_metrics(const Evaluation& e, const std::vector<std::size_t>& part) {
  struct Tally {
    std::size_t n = 0, covered = 0;
    std::vector<double> widths;
  };
  std::map<std::string, Tally> by_domain;
  for (std::size_t i : part) {
    const ServedAnswer& a = e.served[i];
    if (std::isnan(a.runtime_ns) || !e.plausibility.plausible[i]) continue;
    Tally& t = by_domain[a.domain];
    ++t.n;
    if (!a.interval_ns) continue;
    const auto [lo, hi] = *a.interval_ns;
    t.covered += lo <= e.configs[i].label_ns && e.configs[i].label_ns <= hi ? 1 : 0;
    t.widths.push_back((hi - lo) / a.runtime_ns);
  }
  json out = json::object();
  for (auto& [domain, t] : by_domain) {
    std::sort(t.widths.begin(), t.widths.end());
    const bool any = !t.widths.empty();
    out[domain] = {{"n", t.n},
                   {"with_interval", t.widths.size()},
                   {"coverage", any ? json(static_cast<double>(t.covered) / static_cast<double>(t.widths.size())) : json()},
                   {"median_width", any ? json(quantile(t.widths, 0.5)) : json()}};
  }
  return out;
}

void write_predictions(const Evaluation& e, std::ostream& out) {
  for (std::size_t i = 0; i < e.configs.size(); ++i) {
    const ServedAnswer& a = e.served[i];
    json record = {{"part", part_of(e.split, i)},
                         {"args", e.configs[i].args},
                         {"label_ns", e.configs[i].label_ns},
                         {"plausible", static_cast<bool>(e.plausibility.plausible[i])},
                         {"runtime_ns", std::isnan(a.runtime_ns) ? json(nullptr) : json(a.runtime_ns)},
                         {"memory_found", a.memory_found},
                         {"domain", a.domain},
                         {"interval_ns", a.interval_ns ? json(*a.interval_ns) : json(nullptr)}};
    const double base = e.baseline.empty() ? std::numeric_limits<double>::quiet_NaN() : e.baseline[i];
    record["baseline_ns"] = std::isnan(base) ? json(nullptr) : json(base);
    if (!e.previous.empty())
      record["previous_ns"] = std::isnan(e.previous[i].runtime_ns) ? json(nullptr) : json(e.previous[i].runtime_ns);
    record["suites"] = e.configs[i].suites;
    record["input_hashes"] = e.configs[i].input_hashes;
    out << record.dump() << '\n';
  }
}

namespace detail {

namespace {

/// Least squares on the columns `cols` of A by Householder QR; dependent columns get 0.
arma::vec least_squares(const arma::mat& A, const arma::vec& b, const std::vector<arma::uword>& cols) {
  arma::vec x(A.n_cols, arma::fill::zeros);
  if (cols.empty()) return x;
  const arma::uvec idx(cols);
  arma::mat Q, R;
  if (!arma::qr_econ(Q, R, A.cols(idx))) return x;
  const arma::vec qb = Q.t() * b;
  const double tiny = 1e-12 * std::max(1.0, std::fabs(R(0, 0)));
  arma::vec s(cols.size(), arma::fill::zeros);
  for (arma::uword k = cols.size(); k-- > 0;) {
    if (std::fabs(R(k, k)) <= tiny) continue;
    double v = qb[k];
    for (arma::uword j = k + 1; j < cols.size(); ++j) v -= R(k, j) * s[j];
    s[k] = v / R(k, k);
  }
  for (std::size_t k = 0; k < cols.size(); ++k) x[cols[k]] = s[k];
  return x;
}

}  // namespace

arma::vec nnls(const arma::mat& A0, const arma::vec& b) {
  const arma::uword n = A0.n_cols;
  arma::rowvec scale(n);
  for (arma::uword j = 0; j < n; ++j) {
    const double s = arma::norm(A0.col(j));
    scale[j] = s > 0.0 ? s : 1.0;
  }
  const arma::mat A = A0.each_row() / scale;
  arma::vec x(n, arma::fill::zeros);
  std::vector<bool> in_p(n, false);
  arma::vec w = A.t() * b;
  const double tol = 1e-12 * std::max(1.0, arma::norm(b));
  for (arma::uword outer = 0; outer < 3 * n + 3; ++outer) {
    arma::uword best = n;
    for (arma::uword j = 0; j < n; ++j)
      if (!in_p[j] && w[j] > tol && (best == n || w[j] > w[best])) best = j;
    if (best == n) break;
    in_p[best] = true;
    arma::vec s;
    for (arma::uword inner = 0; inner < 3 * n + 3; ++inner) {
      std::vector<arma::uword> cols;
      for (arma::uword j = 0; j < n; ++j)
        if (in_p[j]) cols.push_back(j);
      s = least_squares(A, b, cols);
      double alpha = 1.0;
      bool feasible = true;
      for (arma::uword j : cols)
        if (s[j] <= 0.0) {
          feasible = false;
          const double d = x[j] - s[j];
          alpha = std::min(alpha, d > 0.0 ? x[j] / d : 0.0);
        }
      if (feasible) break;
      x += alpha * (s - x);
      for (arma::uword j : cols)
        if (x[j] <= 1e-15) {
          in_p[j] = false;
          x[j] = 0.0;
        }
      s = x;
    }
    x = s;
    w = A.t() * (b - A * x);
  }
  return x / scale.t();
}

arma::vec fit_log_lad(const arma::mat& A, const arma::vec& y) {
  // Start: least absolute deviations on the runtimes (IRLS), robust to a minority of bad labels.
  arma::vec c = nnls(A, y);
  for (int it = 0; it < 100; ++it) {
    const arma::vec r = arma::abs(A * c - y);
    const double floor = 1e-3 * arma::median(r) + 1e-12 * arma::mean(y);
    const arma::vec sw = 1.0 / arma::sqrt(arma::clamp(r, floor, arma::datum::inf));
    const arma::vec next = nnls(A.each_col() % sw, y % sw);
    const double change = arma::norm(next - c);
    c = next;
    if (change <= 1e-10 * arma::norm(c)) break;
  }
  // Then least absolute log deviations: Gauss-Newton on log(A c), each step a reweighted NNLS.
  for (int it = 0; it < 100; ++it) {
    const arma::vec f = arma::max(A * c, 1e-6 * y);
    const arma::vec r = arma::log(y / f);
    const arma::vec sw = 1.0 / arma::sqrt(arma::clamp(arma::abs(r), 1e-6, arma::datum::inf));
    const arma::mat D = A.each_col() / f;
    const arma::vec next = nnls(D.each_col() % sw, (1.0 + r) % sw);
    const double change = arma::norm(next - c);
    c = next;
    if (change <= 1e-10 * arma::norm(c)) break;
  }
  return c;
}

}  // namespace detail

}  // namespace torp
