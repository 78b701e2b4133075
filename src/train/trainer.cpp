// SPDX-License-Identifier: Apache-2.0
// The trainer: recipe -> aggregated, split, plausibility-filtered configurations -> robust
// baseline -> parallel hyperparameter search of Armadillo MLPs -> model file with provenance.
#include "torp/train/trainer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <numbers>
#include <numeric>
#include <optional>
#include <sstream>
#include <thread>

#include "spec/bindings.hpp"
#include "torp/encoder.hpp"
#include "torp/train/evaluate.hpp"
#include "train/train_detail.hpp"

namespace torp {

using json = nlohmann::json;

// ---- MLP ----------------------------------------------------------------------------------------
namespace detail {

double Rng::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

namespace {

// C (m x n) = A (m x k) * B (k x n), column-major. Axpy form (each C column accumulates scaled
// A columns in order p = 0..k-1), so every element sums in the same order whatever the
// instruction set: results are identical with and without AVX2. Reference BLAS, which
// Armadillo would call, is several times slower on these small matrices.
__attribute__((target_clones("arch=haswell", "default")))
void gemm_nn(const double* __restrict A, const double* __restrict B, double* __restrict C, arma::uword m, arma::uword k,
             arma::uword n) {
  arma::uword j = 0;
  for (; j + 4 <= n; j += 4) {
    double* c0 = C + j * m;
    double* c1 = c0 + m;
    double* c2 = c1 + m;
    double* c3 = c2 + m;
    for (arma::uword i = 0; i < m; ++i) c0[i] = c1[i] = c2[i] = c3[i] = 0.0;
    for (arma::uword p = 0; p < k; ++p) {
      const double* a = A + p * m;
      const double b0 = B[j * k + p], b1 = B[(j + 1) * k + p], b2 = B[(j + 2) * k + p], b3 = B[(j + 3) * k + p];
      for (arma::uword i = 0; i < m; ++i) {
        c0[i] += a[i] * b0;
        c1[i] += a[i] * b1;
        c2[i] += a[i] * b2;
        c3[i] += a[i] * b3;
      }
    }
  }
  for (; j < n; ++j) {
    double* c = C + j * m;
    for (arma::uword i = 0; i < m; ++i) c[i] = 0.0;
    for (arma::uword p = 0; p < k; ++p) {
      const double* a = A + p * m;
      const double b = B[j * k + p];
      for (arma::uword i = 0; i < m; ++i) c[i] += a[i] * b;
    }
  }
}

arma::mat matmul(const arma::mat& A, const arma::mat& B) {
  arma::mat C(A.n_rows, B.n_cols);
  gemm_nn(A.memptr(), B.memptr(), C.memptr(), A.n_rows, A.n_cols, B.n_cols);
  return C;
}

}  // namespace

Mlp init_mlp(arma::uword inputs, const std::vector<int>& hidden, Rng& rng) {
  Mlp net;
  arma::uword in = inputs;
  std::vector<arma::uword> widths;
  for (int h : hidden) widths.push_back(static_cast<arma::uword>(h));
  widths.push_back(1);
  for (arma::uword out : widths) {
    arma::mat W(out, in);
    const double sd = std::sqrt(2.0 / static_cast<double>(in));
    for (arma::uword c = 0; c < in; ++c)  // fixed fill order: column-major, as stored
      for (arma::uword r = 0; r < out; ++r) W(r, c) = sd * rng.normal();
    net.W.push_back(std::move(W));
    net.b.emplace_back(out, arma::fill::zeros);
    in = out;
  }
  return net;
}

arma::rowvec mlp_forward(const Mlp& net, const arma::mat& X) {
  arma::mat a = X;
  for (std::size_t l = 0; l < net.W.size(); ++l) {
    arma::mat z = matmul(net.W[l], a);
    z.each_col() += net.b[l];
    if (l + 1 < net.W.size()) z = arma::clamp(z, 0.0, arma::datum::inf);
    a = std::move(z);
  }
  return a;
}

double mlp_loss_grad(const Mlp& net, const arma::mat& X, const arma::rowvec& y, Mlp& grad, double huber) {
  const std::size_t L = net.W.size();
  std::vector<arma::mat> act(L);  // act[l] = input of layer l (act[0] is X, by copy for simplicity)
  std::vector<arma::mat> pre(L);  // pre-activations
  act[0] = X;
  for (std::size_t l = 0; l < L; ++l) {
    pre[l] = matmul(net.W[l], act[l]);
    pre[l].each_col() += net.b[l];
    if (l + 1 < L) act[l + 1] = arma::clamp(pre[l], 0.0, arma::datum::inf);
  }
  arma::rowvec diff = pre[L - 1] - y;
  const double n = static_cast<double>(X.n_cols);
  double loss = 0.0;
  if (huber > 0.0) {  // d^2 inside [-huber, huber], linear continuation 2 huber |d| - huber^2 outside
    for (double& d : diff) {
      const double a = std::fabs(d);
      loss += a <= huber ? d * d : 2.0 * huber * a - huber * huber;
      if (a > huber) d = d > 0.0 ? huber : -huber;  // d now holds half the derivative
    }
  } else {
    loss = arma::accu(arma::square(diff));
  }
  loss /= n;
  grad.W.resize(L);
  grad.b.resize(L);
  arma::mat dz = (2.0 / n) * diff;
  for (std::size_t l = L; l-- > 0;) {
    grad.W[l] = matmul(dz, arma::mat(act[l].t()));
    grad.b[l] = arma::sum(dz, 1);
    if (l > 0) {
      arma::mat da = matmul(arma::mat(net.W[l].t()), dz);
      dz = da % arma::conv_to<arma::mat>::from(pre[l - 1] > 0.0);
    }
  }
  return loss;
}

MlpFit fit_mlp(const arma::mat& X_train, const arma::rowvec& y_train, const arma::mat& X_val, const arma::rowvec& y_val,
               const Hyperparameters& hp, std::uint64_t seed, double target_scale) {
  Rng rng(seed);
  MlpFit fit;
  Mlp net = init_mlp(X_train.n_rows, hp.hidden, rng);
  Mlp m = net, v = net, grad;
  for (std::size_t l = 0; l < net.W.size(); ++l) {
    m.W[l].zeros();
    m.b[l].zeros();
    v.W[l].zeros();
    v.b[l].zeros();
  }
  const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const arma::uword n = X_train.n_cols;
  const auto batch = static_cast<arma::uword>(std::max(1, std::min<int>(hp.batch_size, static_cast<int>(n))));
  std::vector<arma::uword> order(n);
  for (arma::uword i = 0; i < n; ++i) order[i] = i;
  fit.net = net;
  fit.validation_loss = arma::datum::inf;
  long step = 0;
  int since_best = 0;
  const int plateau = std::max(1, hp.patience / 4);
  double lr = hp.learning_rate;
  for (int epoch = 1; epoch <= hp.max_epochs; ++epoch) {
    rng.shuffle(order);
    for (arma::uword start = 0; start < n; start += batch) {
      const arma::uword end = std::min(n, start + batch);
      const arma::uvec idx(std::vector<arma::uword>(order.begin() + static_cast<long>(start), order.begin() + static_cast<long>(end)));
      mlp_loss_grad(net, X_train.cols(idx), y_train.cols(idx), grad, hp.huber / target_scale);
      ++step;
      const double c1 = 1.0 / (1.0 - std::pow(beta1, static_cast<double>(step)));
      const double c2 = 1.0 / (1.0 - std::pow(beta2, static_cast<double>(step)));
      auto adam = [&](arma::mat& p, arma::mat& mp, arma::mat& vp, const arma::mat& g, bool decay) {
        mp = beta1 * mp + (1.0 - beta1) * g;
        vp = beta2 * vp + (1.0 - beta2) * arma::square(g);
        if (decay && hp.weight_decay > 0.0) p *= 1.0 - lr * hp.weight_decay;
        p -= lr * (mp * c1) / (arma::sqrt(vp * c2) + eps);
      };
      for (std::size_t l = 0; l < net.W.size(); ++l) {
        adam(net.W[l], m.W[l], v.W[l], grad.W[l], true);
        adam(net.b[l], m.b[l], v.b[l], grad.b[l], false);
      }
    }
    fit.epochs = epoch;
    const double val = arma::accu(arma::abs(mlp_forward(net, X_val) - y_val)) / static_cast<double>(X_val.n_cols);
    if (val < fit.validation_loss) {
      fit.validation_loss = val;
      fit.best_epoch = epoch;
      fit.net = net;
      since_best = 0;
    } else if (++since_best >= hp.patience) {
      break;
    } else if (since_best % plateau == 0) {
      lr *= 0.5;  // reduce on plateau: finer steps once progress stalls
    }
  }
  return fit;
}

MemoryTable build_memory(const std::vector<std::vector<double>>& own_key,
                         const std::vector<std::vector<std::vector<double>>>& lookup_key,
                         const std::vector<double>& residual, const std::vector<std::size_t>& members) {
  struct Sum {
    double sum = 0.0;
    int count = 0;
  };
  std::map<std::vector<double>, Sum> sums;  // sorted by key: a deterministic file
  std::vector<bool> member(own_key.size(), false);
  for (std::size_t i : members) {  // ascending: a fixed summation order
    member[i] = true;
    Sum& s = sums[own_key[i]];
    s.sum += residual[i];
    ++s.count;
  }
  MemoryTable t;
  std::map<std::vector<double>, double> mean_of;
  for (const auto& [key, s] : sums) {
    const double mean = s.sum / s.count;
    t.entries.push_back({key, mean, s.count});
    mean_of.emplace(key, mean);
  }
  t.inputs.zeros(2 * lookup_key.size(), own_key.size());
  for (std::size_t l = 0; l < lookup_key.size(); ++l)
    for (std::size_t i = 0; i < own_key.size(); ++i) {
      const std::vector<double>& key = lookup_key[l][i];
      auto it = sums.find(key);
      if (it == sums.end()) continue;
      double mean = mean_of.at(key);
      if (member[i] && key == own_key[i]) {  // leave itself out
        if (it->second.count < 2) continue;
        mean = (it->second.sum - residual[i]) / (it->second.count - 1);
      }
      t.inputs(2 * l, i) = mean;
      t.inputs(2 * l + 1, i) = 1.0;
    }
  return t;
}

Network to_network(const Mlp& net, double scale, double shift) {
  Network out;
  for (std::size_t l = 0; l < net.W.size(); ++l) {
    const bool last = l + 1 == net.W.size();
    DenseLayer d;
    d.in = static_cast<int>(net.W[l].n_cols);
    d.out = static_cast<int>(net.W[l].n_rows);
    for (int r = 0; r < d.out; ++r)
      for (int c = 0; c < d.in; ++c) d.weights.push_back(last ? scale * net.W[l](r, c) : net.W[l](r, c));
    for (int r = 0; r < d.out; ++r) d.bias.push_back(last ? scale * net.b[l][r] + shift : net.b[l][r]);
    out.layers.push_back(std::move(d));
  }
  return out;
}

}  // namespace detail

// ---- recipe ---------------------------------------------------------------------------------------
json to_json(const Hyperparameters& h) {
  return {{"hidden", h.hidden},         {"learning_rate", h.learning_rate}, {"batch_size", h.batch_size},
          {"max_epochs", h.max_epochs}, {"patience", h.patience},           {"weight_decay", h.weight_decay},
          {"ensemble", h.ensemble},     {"huber", h.huber}};
}

namespace {

[[noreturn]] void recipe_error(const std::string& recipe, const std::string& msg, const std::string& key = {}) {
  throw TorpError(ErrorCode::training, "recipe \"" + recipe + "\": " + msg, "/recipes/" + recipe + key);
}

struct CvGrouping {
  std::string name;
  std::vector<std::string> key;  ///< op-spec features whose values form a configuration's group
};

struct Recipe {
  std::string name;
  json doc;
  std::vector<std::string> features;
  bool has_baseline = false;
  std::string baseline_group;
  std::vector<std::string> baseline_terms;
  std::vector<std::string> applies_when;
  std::vector<Requirement> requires_;
  std::optional<int> priority;
  std::vector<Hyperparameters> search;
  std::optional<ResidualMemory> memory;  ///< key and lookups; entries are filled by training
  /// Per feature: -1 for an op-spec feature, else 2 * lookup + (0: mean, 1: found).
  std::vector<int> memory_slot;
  /// memory.unseen_copies: every training configuration is presented a second time with every
  /// lookup empty, as a configuration of an unseen shape is served.
  bool unseen_copies = false;
  /// search.ensemble_keep == "always": the ensemble is kept without a validation gain.
  bool ensemble_always = false;
  std::vector<CvGrouping> cv;  ///< recipe "cv" groupings
  int cv_folds = 0;
  int cv_ensemble = 0;  ///< networks per fold model (0: as many as the final model)
};

std::vector<std::string> names(const json& j, const std::string& recipe, const std::string& key) {
  if (!j.is_array()) recipe_error(recipe, key + " must be an array of strings", key);
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string()) recipe_error(recipe, key + " must be an array of strings", key);
    out.push_back(e.get<std::string>());
  }
  return out;
}

void known_keys(const json& j, std::initializer_list<const char*> keys, const std::string& recipe, const std::string& at) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; }))
      recipe_error(recipe, "unknown key \"" + it.key() + "\"", at + "/" + it.key());
}

std::vector<Hyperparameters> parse_search(const json& s, const std::string& recipe) {
  if (!s.is_object()) recipe_error(recipe, "search must be an object", "/search");
  known_keys(s, {"hidden", "learning_rate", "batch_size", "max_epochs", "patience", "weight_decay", "ensemble", "huber",
                 "ensemble_keep"},
             recipe, "/search");
  auto list = [&](const char* key, json fallback) {
    json v = s.value(key, fallback);
    return v.is_array() ? v : json::array({v});
  };
  // Defaults (also for a recipe without "search"): small nets train fast and fit the log
  // corrections of these laws well; the Huber loss keeps a few mislabelled repeats from
  // pulling the fit (measured on exp: median APE 1.5-1.9% with MSE, 0.55-0.6% with Huber).
  Hyperparameters base;
  base.max_epochs = s.value("max_epochs", base.max_epochs);
  base.patience = s.value("patience", base.patience);
  base.weight_decay = s.value("weight_decay", base.weight_decay);
  base.ensemble = s.value("ensemble", 3);
  base.huber = s.value("huber", base.huber);
  if (base.max_epochs < 1 || base.patience < 1 || base.ensemble < 1 || base.weight_decay < 0 || base.huber < 0)
    recipe_error(recipe, "max_epochs, patience and ensemble must be >= 1, weight_decay and huber >= 0", "/search");
  json hidden = s.value("hidden", json::array({json::array({32, 32}), json::array({64, 64}), json::array({64, 64, 64})}));
  if (!hidden.is_array() || hidden.empty()) recipe_error(recipe, "search.hidden must be a list of layer-width lists", "/search/hidden");
  std::vector<Hyperparameters> out;
  for (const json& h : hidden) {
    if (!h.is_array() || h.empty()) recipe_error(recipe, "search.hidden entries must be non-empty width lists", "/search/hidden");
    for (const json& lr : list("learning_rate", base.learning_rate))
      for (const json& bs : list("batch_size", base.batch_size)) {
        Hyperparameters c = base;
        c.hidden.clear();
        for (const json& w : h) {
          if (!w.is_number_integer() || w.get<int>() < 1) recipe_error(recipe, "layer widths must be positive integers", "/search/hidden");
          c.hidden.push_back(w.get<int>());
        }
        if (!lr.is_number() || !(lr.get<double>() > 0)) recipe_error(recipe, "learning_rate must be > 0", "/search/learning_rate");
        if (!bs.is_number_integer() || bs.get<int>() < 1) recipe_error(recipe, "batch_size must be >= 1", "/search/batch_size");
        c.learning_rate = lr.get<double>();
        c.batch_size = bs.get<int>();
        out.push_back(c);
      }
  }
  return out;
}

Recipe parse_recipe(const json& op_spec, const std::string& name) {
  auto rs = op_spec.find("recipes");
  if (rs == op_spec.end() || !rs->is_object() || !rs->contains(name))
    throw TorpError(ErrorCode::training, "op spec of " + op_spec.value("op", std::string("?")) + " has no recipe \"" + name +
                                             "\" (add \"recipes\": {\"" + name + "\": {...}}; see docs/op-spec.md)",
                    "/recipes/" + name);
  Recipe r;
  r.name = name;
  r.doc = (*rs)[name];
  if (!r.doc.is_object() || !r.doc.contains("features")) recipe_error(name, "needs \"features\"");
  known_keys(r.doc, {"description", "features", "baseline", "applies_when", "requires", "priority", "search", "memory", "cv"},
             name, "");
  r.features = names(r.doc["features"], name, "/features");
  if (r.features.empty()) recipe_error(name, "features must not be empty", "/features");
  if (auto mem = r.doc.find("memory"); mem != r.doc.end() && !mem->is_null()) {
    if (!mem->is_object() || !mem->contains("key") || !mem->contains("lookups"))
      recipe_error(name, "memory needs \"key\" and \"lookups\"", "/memory");
    known_keys(*mem, {"key", "lookups", "unseen_copies"}, name, "/memory");
    if (auto u = mem->find("unseen_copies"); u != mem->end()) {
      if (!u->is_boolean()) recipe_error(name, "memory.unseen_copies must be true or false", "/memory/unseen_copies");
      r.unseen_copies = u->get<bool>();
    }
    ResidualMemory rm;
    rm.key = names((*mem)["key"], name, "/memory/key");
    if (rm.key.empty()) recipe_error(name, "memory key must not be empty", "/memory/key");
    const json& ls = (*mem)["lookups"];
    if (!ls.is_array() || ls.empty()) recipe_error(name, "memory lookups must be a non-empty array of {name, key}", "/memory/lookups");
    for (std::size_t i = 0; i < ls.size(); ++i) {
      const std::string at = "/memory/lookups/" + std::to_string(i);
      if (!ls[i].is_object() || !ls[i].contains("name") || !ls[i]["name"].is_string() || !ls[i].contains("key"))
        recipe_error(name, "a memory lookup needs a string \"name\" and a \"key\"", at);
      known_keys(ls[i], {"name", "key", "seen"}, name, at);
      ResidualMemory::Lookup l;
      if (auto sn = ls[i].find("seen"); sn != ls[i].end()) {
        if (!sn->is_boolean()) recipe_error(name, "a memory lookup's \"seen\" must be true or false", at + "/seen");
        l.seen = sn->get<bool>();
      }
      l.name = ls[i]["name"].get<std::string>();
      l.key = names(ls[i]["key"], name, at + "/key");
      if (l.name.empty()) recipe_error(name, "a memory lookup name must not be empty", at + "/name");
      if (l.key.size() != rm.key.size())
        recipe_error(name, "a memory lookup key must have as many features as the memory key", at + "/key");
      for (const auto& other : rm.lookups)
        if (other.name == l.name) recipe_error(name, "duplicate memory lookup \"" + l.name + "\"", at + "/name");
      rm.lookups.push_back(std::move(l));
    }
    r.memory = std::move(rm);
  }
  for (std::size_t i = 0; i < r.features.size(); ++i) {
    const std::string& f = r.features[i];
    int slot = -1;
    if (f.rfind(kMemoryFeaturePrefix, 0) == 0) {
      if (r.memory)
        for (std::size_t l = 0; l < r.memory->lookups.size() && slot < 0; ++l) {
          const std::string base = kMemoryFeaturePrefix + r.memory->lookups[l].name;
          if (f == base + ".mean") slot = static_cast<int>(2 * l);
          if (f == base + ".found") slot = static_cast<int>(2 * l + 1);
        }
      if (slot < 0)
        recipe_error(name, "feature " + f + " names no lookup of the recipe's \"memory\" (memory.<lookup>.mean or .found)",
                     "/features/" + std::to_string(i));
    }
    r.memory_slot.push_back(slot);
  }
  if (auto b = r.doc.find("baseline"); b != r.doc.end() && !b->is_null()) {
    if (!b->is_object() || !b->contains("terms")) recipe_error(name, "baseline needs \"terms\"", "/baseline");
    known_keys(*b, {"group", "terms"}, name, "/baseline");
    r.has_baseline = true;
    r.baseline_terms = names((*b)["terms"], name, "/baseline/terms");
    if (auto g = b->find("group"); g != b->end() && !g->is_null()) {
      if (!g->is_string()) recipe_error(name, "baseline group must be a feature name", "/baseline/group");
      r.baseline_group = g->get<std::string>();
    }
  }
  if (auto a = r.doc.find("applies_when"); a != r.doc.end()) r.applies_when = names(*a, name, "/applies_when");
  if (auto q = r.doc.find("requires"); q != r.doc.end()) {
    if (!q->is_array()) recipe_error(name, "requires must be an array of {expr, message}", "/requires");
    for (const auto& e : *q) {
      if (!e.is_object() || !e.contains("expr") || !e["expr"].is_string())
        recipe_error(name, "requires entries need \"expr\"", "/requires");
      r.requires_.push_back({e["expr"].get<std::string>(), e.value("message", "outside the model's domain: " + e["expr"].get<std::string>())});
    }
  }
  if (auto p = r.doc.find("priority"); p != r.doc.end()) {
    if (!p->is_number_integer()) recipe_error(name, "priority must be an integer", "/priority");
    r.priority = p->get<int>();
  }
  r.search = parse_search(r.doc.value("search", json::object()), name);
  if (r.doc.contains("search") && r.doc["search"].is_object() && r.doc["search"].contains("ensemble_keep")) {
    const json& k = r.doc["search"]["ensemble_keep"];
    if (!k.is_string() || (k != "always" && k != "if_better"))
      recipe_error(name, "search.ensemble_keep must be \"always\" or \"if_better\"", "/search/ensemble_keep");
    r.ensemble_always = k == "always";
  }
  if (auto cv = r.doc.find("cv"); cv != r.doc.end() && !cv->is_null()) {
    if (!cv->is_object() || !cv->contains("groupings")) recipe_error(name, "cv needs \"groupings\"", "/cv");
    known_keys(*cv, {"folds", "groupings", "ensemble"}, name, "/cv");
    r.cv_folds = cv->value("folds", 5);
    r.cv_ensemble = cv->value("ensemble", 0);
    if (r.cv_ensemble < 0) recipe_error(name, "cv.ensemble must be >= 1 (or 0: as many as the final model)", "/cv/ensemble");
    if (r.cv_folds < 2) recipe_error(name, "cv.folds must be >= 2", "/cv/folds");
    const json& gs = (*cv)["groupings"];
    if (!gs.is_array() || gs.empty()) recipe_error(name, "cv.groupings must be a non-empty array of {name, key}", "/cv/groupings");
    for (std::size_t i = 0; i < gs.size(); ++i) {
      const std::string at = "/cv/groupings/" + std::to_string(i);
      if (!gs[i].is_object() || !gs[i].contains("name") || !gs[i]["name"].is_string() || !gs[i].contains("key"))
        recipe_error(name, "a cv grouping needs a string \"name\" and a \"key\"", at);
      known_keys(gs[i], {"name", "key"}, name, at);
      r.cv.push_back({gs[i]["name"].get<std::string>(), names(gs[i]["key"], name, at + "/key")});
      if (r.cv.back().key.empty()) recipe_error(name, "a cv grouping key must not be empty", at + "/key");
    }
  }
  return r;
}

/// Run job(0..n-1) on `threads` workers; rethrows the first failure.
void run_parallel(std::size_t n, unsigned threads, const std::function<void(std::size_t)>& job) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex mu;
  auto worker = [&] {
    for (;;) {
      const std::size_t i = next++;
      if (i >= n) return;
      try {
        job(i);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < std::min<std::size_t>(threads, n); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

std::string fmt(double v, int precision) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(precision);
  o << v;
  return o.str();
}

std::string describe(const Hyperparameters& h) {
  std::string s = "[";
  for (std::size_t i = 0; i < h.hidden.size(); ++i) s += (i ? "," : "") + std::to_string(h.hidden[i]);
  std::ostringstream lr;
  lr << h.learning_rate;
  return s + "] lr " + lr.str() + " batch " + std::to_string(h.batch_size);
}

/// Validation ranking: more configurations within ±10%, then lower median APE.
bool better(const Metrics& a, const Metrics& b) {
  if (a.within_10 != b.within_10) return a.within_10 > b.within_10;
  return a.median_ape < b.median_ape;
}

/// The encoded view of the configurations the model can serve.
struct Encoded {
  std::vector<bool> servable;
  arma::mat X;             // features x configurations (raw)
  std::vector<double> group;
  arma::mat terms;         // configurations x (1 + baseline terms)
  /// With a residual memory: per configuration its own key, and per lookup the key it looks up.
  std::vector<std::vector<double>> memory_key;
  std::vector<std::vector<std::vector<double>>> lookup_key;  // [lookup][configuration]
  std::vector<std::vector<std::vector<double>>> cv_key;      // [grouping][configuration]
  std::size_t unservable = 0;
  std::string first_reason;
};

Encoded encode(const std::vector<Configuration>& configs, const json& op_spec, const json& device, const Recipe& r,
               const std::vector<CvGrouping>& cv) {
  Encoder enc(op_spec, device);
  std::vector<ExprId> feats, terms, checks, mem_key;
  std::vector<std::vector<ExprId>> lookup_keys;
  std::vector<std::size_t> feat_row;  // row of X of each op-spec feature (memory rows are filled later)
  for (std::size_t j = 0; j < r.features.size(); ++j)
    if (r.memory_slot[j] < 0) {
      feats.push_back(enc.feature(r.features[j]));
      feat_row.push_back(j);
    }
  if (r.memory) {
    for (const auto& k : r.memory->key) mem_key.push_back(enc.feature(k));
    for (const auto& l : r.memory->lookups) {
      lookup_keys.emplace_back();
      for (const auto& k : l.key) lookup_keys.back().push_back(enc.feature(k));
    }
  }
  std::vector<std::vector<ExprId>> cv_keys;
  for (const auto& g : cv) {
    cv_keys.emplace_back();
    for (const auto& k : g.key) cv_keys.back().push_back(enc.feature(k));
  }
  for (const auto& t : r.baseline_terms) terms.push_back(enc.feature(t));
  const ExprId group = r.baseline_group.empty() ? -1 : enc.feature(r.baseline_group);
  std::vector<std::string> check_text;
  for (const auto& a : r.applies_when) {
    checks.push_back(enc.compile(a));
    check_text.push_back("applies_when " + a);
  }
  for (const auto& q : r.requires_) {
    checks.push_back(enc.compile(q.expr));
    check_text.push_back("requires " + q.expr);
  }
  Encoded e;
  e.servable.assign(configs.size(), false);
  e.X.zeros(r.features.size(), configs.size());
  e.group.assign(configs.size(), 0.0);
  e.terms.ones(configs.size(), terms.size() + 1);
  e.memory_key.assign(configs.size(), {});
  e.lookup_key.assign(lookup_keys.size(), std::vector<std::vector<double>>(configs.size()));
  e.cv_key.assign(cv_keys.size(), std::vector<std::vector<double>>(configs.size()));
  std::vector<std::vector<double>> ck(cv_keys.size());
  for (std::size_t g = 0; g < cv_keys.size(); ++g) ck[g].resize(cv_keys[g].size());
  Bindings b;
  std::vector<double> x(feats.size()), t(terms.size()), mk(mem_key.size());
  std::vector<std::vector<double>> lk(lookup_keys.size());
  for (std::size_t l = 0; l < lookup_keys.size(); ++l) lk[l].resize(lookup_keys[l].size());
  for (std::size_t i = 0; i < configs.size(); ++i) {
    std::string reason;
    if (auto err = enc.bind(configs[i].args, b)) {
      reason = err->describe();
    } else {
      for (std::size_t c = 0; c < checks.size() && reason.empty(); ++c) {
        auto v = enc.eval(checks[c], b);
        if (!v) reason = v.error().describe();
        else if (v.value() == 0.0) reason = check_text[c] + " is false";
      }
      if (reason.empty()) {
        if (auto e1 = enc.eval_all(feats, b, x)) reason = e1->describe();
        else if (auto err2 = enc.eval_all(terms, b, t)) reason = err2->describe();
        else if (group >= 0) {
          auto g = enc.eval(group, b);
          if (!g) reason = g.error().describe();
          else e.group[i] = g.value();
        }
        if (reason.empty())
          if (auto err3 = enc.eval_all(mem_key, b, mk)) reason = err3->describe();
        for (std::size_t l = 0; l < lookup_keys.size() && reason.empty(); ++l)
          if (auto err4 = enc.eval_all(lookup_keys[l], b, lk[l])) reason = err4->describe();
        for (std::size_t g = 0; g < cv_keys.size() && reason.empty(); ++g)
          if (auto err5 = enc.eval_all(cv_keys[g], b, ck[g])) reason = err5->describe();
      }
      for (double v : x)
        if (reason.empty() && !std::isfinite(v)) reason = "a feature is not finite";
      for (double v : t)
        if (reason.empty() && (!std::isfinite(v) || v < 0.0)) reason = "a baseline term is negative or not finite";
    }
    if (!reason.empty()) {
      if (e.unservable++ == 0) e.first_reason = reason;
      continue;
    }
    e.servable[i] = true;
    for (std::size_t j = 0; j < x.size(); ++j) e.X(feat_row[j], i) = x[j];
    e.memory_key[i] = mk;
    for (std::size_t l = 0; l < lk.size(); ++l) e.lookup_key[l][i] = lk[l];
    for (std::size_t g = 0; g < ck.size(); ++g) e.cv_key[g][i] = ck[g];
    for (std::size_t j = 0; j < t.size(); ++j) e.terms(i, j + 1) = t[j];
  }
  return e;
}

struct CandidateResult {
  detail::MlpFit fit;
  Metrics validation;
};

/// What every fit (the final model's and each cross-validation fold's) shares.
struct Context {
  const std::vector<Configuration>& configs;
  const Encoded& enc;
  const Recipe& recipe;
  unsigned threads;
  std::uint64_t seed;
  std::function<void(const std::string&)> say;
};

/// One fitted model in training form: baseline, residual memory, normalization, networks, the
/// input range and correction limit; predict() answers exactly as the model file serves.
struct Fitted {
  std::optional<Baseline> baseline;
  std::vector<double> base;  ///< per configuration (0: no baseline group)
  std::optional<ResidualMemory> memory;
  std::map<std::vector<double>, double> memory_mean;
  arma::mat X;  ///< raw network inputs per configuration, memory inputs as in training (leave-one-out)
  arma::vec mean, sd;
  double t_mean = 0.0, t_sd = 1.0;
  std::vector<detail::Mlp> nets;
  std::vector<double> range_lo, range_hi;  ///< per input, over the training rows
  double corr_lo = 0.0, corr_hi = 0.0;     ///< clamp of the ensemble's log-correction
  std::vector<std::size_t> tr, va;         ///< training / early-stopping configurations used
  // The search (final model only).
  std::vector<CandidateResult> results;
  std::size_t best = 0;
  Hyperparameters chosen;
  json ensemble_summary = nullptr;
  int total_epochs = 0;
  std::size_t networks_trained = 0;
};

/// Widening of the correction limit beyond the training residuals (log units): a served
/// log-correction stays within [min - log 1.5, max + log 1.5] of the training configurations'
/// log(label / baseline).
const double kCorrectionWidening = std::log(1.5);

/// Fit baseline, memory and networks on `tr` (early stopping on `va`). With several candidates
/// the best on `va` is chosen (the search); its ensemble follows the recipe. `stream` separates
/// the seeds of different fits (0: the final model).
Fitted fit_model(const Context& c, std::vector<std::size_t> tr, std::vector<std::size_t> va,
                 const std::vector<Hyperparameters>& candidates, bool keep_ensemble_always, std::uint64_t stream,
                 bool verbose) {
  const auto& configs = c.configs;
  const Recipe& recipe = c.recipe;
  auto say = [&](const std::string& m) {
    if (verbose && c.say) c.say(m);
  };
  Fitted f;
  f.base.assign(configs.size(), 1.0);
  if (recipe.has_baseline) {
    Baseline bl;
    bl.group = recipe.baseline_group;
    bl.features = recipe.baseline_terms;
    std::map<double, std::vector<std::size_t>> groups;
    for (std::size_t i : tr) groups[c.enc.group[i]].push_back(i);
    std::map<double, arma::vec> coef;
    for (const auto& [key, idx] : groups) {
      arma::vec y(idx.size());
      for (std::size_t k = 0; k < idx.size(); ++k) y[k] = configs[idx[k]].label_ns;
      const arma::vec cf = detail::fit_log_lad(c.enc.terms.rows(arma::conv_to<arma::uvec>::from(idx)), y);
      coef[key] = cf;
      Baseline::Group g;
      g.key = bl.group.empty() ? 0.0 : key;
      g.intercept = cf[0];
      g.coefficients.assign(cf.begin() + 1, cf.end());
      bl.groups.push_back(std::move(g));
    }
    for (std::size_t i = 0; i < configs.size(); ++i) {
      if (!c.enc.servable[i]) continue;
      auto it = coef.find(c.enc.group[i]);
      f.base[i] = it == coef.end() ? 0.0 : arma::dot(c.enc.terms.row(i), it->second);
    }
    f.baseline = std::move(bl);
    say("baseline fitted for " + std::to_string(coef.size()) + " group(s) on " + std::to_string(tr.size()) +
        " training configurations");
  }
  // Configurations whose group has no baseline cannot be predicted: leave them out.
  std::erase_if(va, [&](std::size_t i) { return !(f.base[i] > 0.0); });
  std::erase_if(tr, [&](std::size_t i) { return !(f.base[i] > 0.0); });
  if (tr.empty() || va.empty()) throw TorpError(ErrorCode::training, "no training or validation configuration has a baseline");

  // Residual memory: mean residual log(label / baseline) of the training configurations per key.
  // A training configuration looking up its own key sees the others only (leave-one-out), as a
  // configuration outside the table would; every other configuration sees the table.
  f.X = c.enc.X;
  if (recipe.memory) {
    std::vector<double> residual(configs.size(), 0.0);
    for (std::size_t i : tr) residual[i] = std::log(configs[i].label_ns) - std::log(f.base[i]);
    detail::MemoryTable table = detail::build_memory(c.enc.memory_key, c.enc.lookup_key, residual, tr);
    for (std::size_t j = 0; j < recipe.features.size(); ++j)
      if (recipe.memory_slot[j] >= 0) f.X.row(j) = table.inputs.row(static_cast<arma::uword>(recipe.memory_slot[j]));
    ResidualMemory rm = *recipe.memory;
    rm.entries = std::move(table.entries);
    for (const auto& e : rm.entries) f.memory_mean.emplace(e.key, e.mean);
    say("residual memory: " + std::to_string(rm.entries.size()) + " keys from " + std::to_string(tr.size()) +
        " training configurations, " + std::to_string(rm.lookups.size()) + " lookup(s)" +
        (recipe.unseen_copies ? ", each training configuration also presented with every lookup empty" : ""));
    f.memory = std::move(rm);
  }

  // Training rows: the training configurations, and with memory.unseen_copies each once more with
  // every memory input empty (mean 0, found 0), as a configuration of an unseen shape is served.
  const arma::mat Xtr_plain = f.X.cols(arma::conv_to<arma::uvec>::from(tr));
  arma::mat Xtr_raw = Xtr_plain;
  if (recipe.memory && recipe.unseen_copies) {
    arma::mat copy = Xtr_plain;
    for (std::size_t j = 0; j < recipe.features.size(); ++j)
      if (recipe.memory_slot[j] >= 0) copy.row(j).zeros();
    Xtr_raw = arma::join_rows(Xtr_plain, copy);
  }
  const std::size_t copies = Xtr_raw.n_cols / std::max<std::size_t>(1, tr.size());
  f.range_lo.resize(Xtr_raw.n_rows);
  f.range_hi.resize(Xtr_raw.n_rows);
  for (arma::uword j = 0; j < Xtr_raw.n_rows; ++j) {
    f.range_lo[j] = Xtr_raw.row(j).min();
    f.range_hi[j] = Xtr_raw.row(j).max();
  }
  f.mean = arma::mean(Xtr_raw, 1);
  f.sd = arma::stddev(Xtr_raw, 1, 1);
  for (arma::uword j = 0; j < f.sd.n_elem; ++j)
    if (!(f.sd[j] > 1e-12 * std::max(1.0, std::fabs(f.mean[j])))) f.sd[j] = 1.0;
  auto standardize = [&](const arma::mat& X) { return arma::mat((X.each_col() - f.mean).each_col() / f.sd); };
  // Validation inputs as served: clamped into the training range (format 2).
  arma::mat Xva_raw = f.X.cols(arma::conv_to<arma::uvec>::from(va));
  for (arma::uword j = 0; j < Xva_raw.n_rows; ++j) Xva_raw.row(j) = arma::clamp(Xva_raw.row(j), f.range_lo[j], f.range_hi[j]);
  const arma::mat Xtr = standardize(Xtr_raw), Xva = standardize(Xva_raw);
  auto target = [&](const std::vector<std::size_t>& idx) {
    arma::rowvec t(idx.size());
    for (std::size_t k = 0; k < idx.size(); ++k) t[k] = std::log(configs[idx[k]].label_ns) - std::log(f.base[idx[k]]);
    return t;
  };
  const arma::rowvec ttr_plain = target(tr), tva = target(va);
  arma::rowvec ttr = ttr_plain;
  for (std::size_t k = 1; k < copies; ++k) ttr = arma::join_rows(ttr, ttr_plain);
  f.corr_lo = ttr_plain.min() - kCorrectionWidening;
  f.corr_hi = ttr_plain.max() + kCorrectionWidening;
  f.t_mean = arma::mean(ttr);
  f.t_sd = arma::stddev(ttr, 1);
  if (!(f.t_sd > 1e-12)) f.t_sd = 1.0;
  const arma::rowvec ytr = (ttr - f.t_mean) / f.t_sd, yva = (tva - f.t_mean) / f.t_sd;
  std::vector<double> va_label(va.size()), va_base(va.size());
  for (std::size_t k = 0; k < va.size(); ++k) {
    va_label[k] = configs[va[k]].label_ns;
    va_base[k] = f.base[va[k]];
  }
  auto validation_metrics = [&](const arma::rowvec& out) {
    std::vector<double> pred(va.size());
    for (std::size_t k = 0; k < va.size(); ++k)  // the log-correction clamped as served
      pred[k] = va_base[k] * std::exp(std::clamp(out[k] * f.t_sd + f.t_mean, f.corr_lo, f.corr_hi));
    return compute_metrics(pred, va_label);
  };

  if (candidates.size() > 1)
    say("searching " + std::to_string(candidates.size()) + " candidates on " + std::to_string(c.threads) + " thread(s): " +
        std::to_string(tr.size()) + " training, " + std::to_string(va.size()) + " validation configurations, " +
        std::to_string(recipe.features.size()) + " features");
  f.results.resize(candidates.size());
  std::atomic<std::size_t> done{0};
  run_parallel(candidates.size(), c.threads, [&](std::size_t i) {
    CandidateResult& r = f.results[i];
    r.fit = detail::fit_mlp(Xtr, ytr, Xva, yva, candidates[i], detail::derive_seed(c.seed, stream + 1000 + i), f.t_sd);
    r.validation = validation_metrics(detail::mlp_forward(r.fit.net, Xva));
    say("candidate " + std::to_string(++done) + "/" + std::to_string(candidates.size()) + " " + describe(candidates[i]) +
        ": " + std::to_string(r.fit.epochs) + " epochs (best " + std::to_string(r.fit.best_epoch) + "), validation ±10% " +
        fmt(100 * r.validation.within_10, 1) + "%, median APE " + fmt(r.validation.median_ape, 2) + "%");
  });
  for (std::size_t i = 1; i < f.results.size(); ++i)
    if (better(f.results[i].validation, f.results[f.best].validation)) f.best = i;
  f.chosen = candidates[f.best];

  // Optional ensemble: extra members with derived seeds. Every member is paid for on every query,
  // so unless the recipe keeps it always (search.ensemble_keep), the ensemble is kept only if it
  // puts at least kEnsembleMinGain more validation configurations within ±10%.
  f.nets = {f.results[f.best].fit.net};
  f.networks_trained = candidates.size();
  for (const auto& r : f.results) f.total_epochs += r.fit.epochs;
  if (f.chosen.ensemble > 1) {
    std::vector<detail::MlpFit> extra(static_cast<std::size_t>(f.chosen.ensemble - 1));
    f.networks_trained += extra.size();
    run_parallel(extra.size(), c.threads, [&](std::size_t j) {
      extra[j] = detail::fit_mlp(Xtr, ytr, Xva, yva, f.chosen, detail::derive_seed(c.seed, stream + 2000 + j), f.t_sd);
    });
    arma::rowvec avg = detail::mlp_forward(f.nets[0], Xva);
    for (const auto& e : extra) {
      avg += detail::mlp_forward(e.net, Xva);
      f.total_epochs += e.epochs;
    }
    avg /= static_cast<double>(f.chosen.ensemble);
    const Metrics ens = validation_metrics(avg);
    constexpr double kEnsembleMinGain = 0.005;  // 0.5 percentage points
    const bool keep = keep_ensemble_always || ens.within_10 >= f.results[f.best].validation.within_10 + kEnsembleMinGain;
    f.ensemble_summary = {{"members", f.chosen.ensemble},
                          {"validation_single", to_json(f.results[f.best].validation)},
                          {"validation_ensemble", to_json(ens)},
                          {"rule", keep_ensemble_always ? "always" : "if_better"},
                          {"kept", keep}};
    say("ensemble of " + std::to_string(f.chosen.ensemble) + ": validation ±10% " + fmt(100 * ens.within_10, 1) +
        "%, median APE " + fmt(ens.median_ape, 2) + "% vs single " + fmt(100 * f.results[f.best].validation.within_10, 1) +
        "%, " + fmt(f.results[f.best].validation.median_ape, 2) + "% -> " + (keep ? "kept" : "single network kept"));
    if (keep)
      for (const auto& e : extra) f.nets.push_back(e.net);
    else
      f.chosen.ensemble = 1;
  }
  f.tr = std::move(tr);
  f.va = std::move(va);
  return f;
}

/// Domains of an answer (docs/model-format.md, calibration).
enum Domain { kSeen = 0, kInside = 1, kOutside = 2 };
constexpr const char* kDomainNames[] = {"seen", "inside", "outside"};

struct Served {
  double runtime = std::numeric_limits<double>::quiet_NaN();
  int domain = kInside;
};

/// Configuration i answered by `f` as the model file serves it: domain (a seen-lookup finds an
/// entry -> seen; else every non-memory input within the input range -> inside; else outside),
/// inputs clamped into the input range, ensemble mean, log-correction clamped, times the baseline.
Served serve(const Context& c, const Fitted& f, std::size_t i) {
  Served s;
  if (!(f.base[i] > 0.0)) return s;
  bool seen = false;
  if (f.memory)
    for (std::size_t l = 0; l < f.memory->lookups.size(); ++l)
      if (f.memory->lookups[l].seen && f.memory_mean.count(c.enc.lookup_key[l][i])) seen = true;
  arma::vec x = f.X.col(i);
  if (f.memory) {  // as served: no leave-one-out, the table as stored
    for (std::size_t j = 0; j < c.recipe.features.size(); ++j) {
      const int slot = c.recipe.memory_slot[j];
      if (slot < 0) continue;
      auto it = f.memory_mean.find(c.enc.lookup_key[static_cast<std::size_t>(slot / 2)][i]);
      x[j] = it == f.memory_mean.end() ? 0.0 : (slot % 2 == 0 ? it->second : 1.0);
    }
  }
  bool inside = true;
  for (std::size_t j = 0; j < x.n_elem; ++j) {
    if (c.recipe.memory_slot[j] < 0 && (x[j] < f.range_lo[j] || x[j] > f.range_hi[j])) inside = false;
    x[j] = std::clamp(x[j], f.range_lo[j], f.range_hi[j]);
  }
  s.domain = seen ? kSeen : inside ? kInside : kOutside;
  const arma::mat xs = (x - f.mean) / f.sd;
  double o = 0.0;
  for (const auto& net : f.nets) o += detail::mlp_forward(net, xs)[0] * f.t_sd + f.t_mean;
  o /= static_cast<double>(f.nets.size());
  o = std::clamp(o, f.corr_lo, f.corr_hi);
  s.runtime = f.base[i] * std::exp(o);
  return s;
}

/// A log residual log(label / prediction) and the domain of its prediction.
struct Residual {
  double r;
  int domain;
};

/// Minimum residuals for a domain's own quantiles; fewer fall back (calibrate()).
constexpr std::size_t kMinDomainResiduals = 50;
/// Log-space widening of the fallback interval of "outside" when it has too few residuals.
constexpr double kOutsideFallbackWidening = 2.0;

}  // namespace

namespace detail {

std::array<double, 2> conformal_interval(std::vector<double> r, double coverage) {
  if (r.empty()) return {0.0, 0.0};
  std::sort(r.begin(), r.end());
  const double n = static_cast<double>(r.size());
  const double alpha = 1.0 - coverage;
  // Split-conformal order statistics of a central interval: the floor((n + 1) alpha / 2)-th
  // and ceil((n + 1) (1 - alpha / 2))-th smallest, clamped into 1..n.
  // The 1e-9 keeps rounding of (1 - coverage) from moving an exact rank (100 * 0.05 is 5, not 4.99...).
  auto at = [&](double k) {
    const auto idx = static_cast<std::size_t>(std::clamp(k, 1.0, n)) - 1;
    return r[idx];
  };
  return {at(std::floor((n + 1.0) * alpha / 2.0 + 1e-9)), at(std::ceil((n + 1.0) * (1.0 - alpha / 2.0) - 1e-9))};
}

DomainCalibration calibrate(const std::vector<double>& residual, const std::vector<int>& domain, double coverage) {
  std::array<std::vector<double>, 3> by;
  for (std::size_t k = 0; k < residual.size(); ++k) by[static_cast<std::size_t>(domain[k])].push_back(residual[k]);
  DomainCalibration cal;
  auto pooled = [&](std::initializer_list<int> ds) {
    std::vector<double> v;
    for (int d : ds) v.insert(v.end(), by[static_cast<std::size_t>(d)].begin(), by[static_cast<std::size_t>(d)].end());
    return v;
  };
  auto set = [&](int d, const std::vector<double>& v, const std::string& from) {
    const auto q = conformal_interval(v, coverage);
    cal.lo[d] = std::min(q[0], 0.0);  // a band always contains the prediction itself
    cal.hi[d] = std::max(q[1], 0.0);
    cal.n[d] = v.size();
    cal.from[d] = from;
  };
  const std::vector<double> all = pooled({kSeen, kInside, kOutside});
  // inside: own; else inside + outside; else everything.
  if (by[kInside].size() >= kMinDomainResiduals) set(kInside, by[kInside], "own");
  else if (by[kInside].size() + by[kOutside].size() >= kMinDomainResiduals) set(kInside, pooled({kInside, kOutside}), "inside+outside");
  else set(kInside, all, "all");
  // seen: own; else inside's interval (the wider neighbour).
  if (by[kSeen].size() >= kMinDomainResiduals) set(kSeen, by[kSeen], "own");
  else {
    cal.lo[kSeen] = cal.lo[kInside];
    cal.hi[kSeen] = cal.hi[kInside];
    cal.n[kSeen] = cal.n[kInside];
    cal.from[kSeen] = "inside";
  }
  // outside: own; else inside's interval widened (both ends times kOutsideFallbackWidening).
  if (by[kOutside].size() >= kMinDomainResiduals) set(kOutside, by[kOutside], "own");
  else {
    cal.lo[kOutside] = std::min(0.0, cal.lo[kInside]) * kOutsideFallbackWidening;
    cal.hi[kOutside] = std::max(0.0, cal.hi[kInside]) * kOutsideFallbackWidening;
    cal.n[kOutside] = cal.n[kInside];
    cal.from[kOutside] = "inside x" + fmt(kOutsideFallbackWidening, 0);
  }
  for (int d = 0; d < 3; ++d) cal.own_n[d] = by[static_cast<std::size_t>(d)].size();
  return cal;
}

std::vector<int> group_folds(const std::vector<std::vector<double>>& keys, const std::vector<std::size_t>& members, int folds,
                             std::uint64_t seed) {
  std::map<std::vector<double>, int> group_index;  // sorted keys: independent of configuration order
  for (std::size_t i : members) group_index.emplace(keys[i], 0);
  std::vector<int> order(group_index.size());
  std::iota(order.begin(), order.end(), 0);
  Rng rng(derive_seed(seed, 0xC5F01D));
  rng.shuffle(order);  // order[k] = group rank placed k-th
  std::vector<int> fold_of_rank(group_index.size());
  for (std::size_t k = 0; k < order.size(); ++k) fold_of_rank[static_cast<std::size_t>(order[k])] = static_cast<int>(k % static_cast<std::size_t>(folds));
  int rank = 0;
  for (auto& [key, f] : group_index) f = fold_of_rank[static_cast<std::size_t>(rank++)];
  std::vector<int> fold(keys.size(), -1);
  for (std::size_t i : members) fold[i] = group_index.at(keys[i]);
  return fold;
}

}  // namespace detail

TrainReport train(const Dataset& data, const json& op_spec, const json& device, const TrainOptions& options,
                  const std::string& dataset_sha256) {
  const auto started = std::chrono::steady_clock::now();
  std::mutex progress_mutex;
  auto say = [&](const std::string& s) {
    if (!options.progress) return;
    std::lock_guard lock(progress_mutex);
    options.progress(s);
  };

  Encoder enc(op_spec, device);
  if (canonical_op_name(data.op) != enc.op())
    throw TorpError(ErrorCode::training, "dataset is of op " + data.op + " but the op spec describes " + enc.op());
  const Recipe recipe = parse_recipe(op_spec, options.recipe);
  std::vector<Hyperparameters> candidates = options.candidates.empty() ? recipe.search : options.candidates;
  // Cross-validation groupings: the options' (--cv-group), else the recipe's; folds likewise.
  std::vector<CvGrouping> cv = recipe.cv;
  if (!options.cv_group.empty()) {
    std::string nm;
    for (const auto& k : options.cv_group) nm += (nm.empty() ? "" : ",") + k;
    cv = {{nm, options.cv_group}};
  }
  const int cv_folds = options.cv_folds >= 0 ? options.cv_folds : (recipe.cv_folds > 0 ? recipe.cv_folds : 5);
  if (cv_folds == 1) throw TorpError(ErrorCode::training, "cross-validation needs at least 2 folds (0 turns it off)");
  if (cv_folds == 0) cv.clear();

  AggregationReport agg;
  const std::vector<Configuration> configs = aggregate(data, options.reject_factor, &agg);
  say("aggregated " + std::to_string(agg.rows) + " rows into " + std::to_string(agg.configurations) +
      " configurations (median of repeats; " + std::to_string(agg.rejected_rows) + " repeats rejected as more than " +
      fmt(options.reject_factor, 2) + "x from their configuration's median, " +
      std::to_string(agg.dropped_configurations) + " configurations dropped for want of agreeing repeats)");

  const Split split = split_by_configuration(configs.size(), options.seed, options.validation_fraction, options.test_fraction);
  const PlausibilityResult plaus = judge_plausibility(configs, enc, split.train);
  const Encoded enc_data = encode(configs, op_spec, device, recipe, cv);
  if (enc_data.unservable > 0)
    say(std::to_string(enc_data.unservable) + " configurations are outside the recipe's domain and not used (first: " +
        enc_data.first_reason + ")");

  auto usable = [&](const std::vector<std::size_t>& part, std::size_t* implausible) {
    std::vector<std::size_t> out;
    for (std::size_t i : part) {
      if (!enc_data.servable[i]) continue;
      if (!plaus.plausible[i]) {
        ++*implausible;
        continue;
      }
      out.push_back(i);
    }
    return out;
  };
  std::size_t implausible_train = 0, implausible_val = 0, implausible_test = 0;
  const std::vector<std::size_t> tr = usable(split.train, &implausible_train);
  const std::vector<std::size_t> va = usable(split.validation, &implausible_val);
  usable(split.test, &implausible_test);
  if (plaus.defined)
    say("plausibility rule (labels within " + fmt(plaus.factor, 2) + "x of their group's robust fit): excluded " +
        std::to_string(implausible_train) + " of " + std::to_string(implausible_train + tr.size()) +
        " training configurations; " + std::to_string(implausible_val) + " validation and " +
        std::to_string(implausible_test) + " test configurations are implausible");
  if (tr.size() < 20 || va.size() < 5)
    throw TorpError(ErrorCode::training, "too few usable configurations: " + std::to_string(tr.size()) + " for training, " +
                                             std::to_string(va.size()) + " for validation (need 20 and 5)");

  unsigned threads = options.threads > 0 ? static_cast<unsigned>(options.threads) : std::thread::hardware_concurrency();
  threads = std::max(1u, threads);
  const Context ctx{configs, enc_data, recipe, threads, options.seed, say};
  const Fitted fin = fit_model(ctx, tr, va, candidates, recipe.ensemble_always, 0, true);
  const Hyperparameters& chosen = fin.chosen;

  // ---- grouped cross-validation: out-of-fold predictions for calibration and the report ----
  // The configurations of the training and validation parts are grouped by the grouping's key
  // and the groups dealt into folds; fold f's model trains on the training configurations of the
  // other folds (early stopping on their validation configurations) with the chosen
  // hyperparameters and ensemble, and predicts every configuration of fold f as served.
  constexpr double kCoverage = 0.9;
  std::vector<double> cal_r;
  std::vector<int> cal_d;
  // The validation part, answered by the final model.
  std::vector<Residual> val_res;
  for (std::size_t i : fin.va) {
    const Served s = serve(ctx, fin, i);
    if (std::isnan(s.runtime)) continue;
    val_res.push_back({std::log(configs[i].label_ns / s.runtime), s.domain});
  }
  struct GroupingResult {
    std::vector<std::size_t> idx;  // plausible OOF configurations
    std::vector<double> pred;
    std::vector<int> domain, fold;
    std::size_t groups = 0;
  };
  std::vector<GroupingResult> cvres(cv.size());
  std::vector<std::size_t> members = tr;
  members.insert(members.end(), va.begin(), va.end());
  std::sort(members.begin(), members.end());
  std::vector<bool> is_val(configs.size(), false);
  for (std::size_t i : va) is_val[i] = true;
  if (!cv.empty()) {
    Hyperparameters fold_hp = chosen;  // the final model's hyperparameters; ensemble always kept
    if (recipe.cv_ensemble > 0) fold_hp.ensemble = recipe.cv_ensemble;
    std::vector<std::vector<int>> fold_of(cv.size());
    for (std::size_t g = 0; g < cv.size(); ++g) fold_of[g] = detail::group_folds(enc_data.cv_key[g], members, cv_folds, options.seed + g);
    std::vector<Fitted> fits(cv.size() * static_cast<std::size_t>(cv_folds));
    say("cross-validation: " + std::to_string(cv.size()) + " grouping(s) x " + std::to_string(cv_folds) + " folds, " +
        std::to_string(fold_hp.ensemble) + " network(s) each (out-of-fold predictions calibrate the intervals)");
    // Folds train in parallel, one thread each (their seeds do not depend on the thread count).
    Context one = ctx;
    one.threads = 1;
    run_parallel(fits.size(), threads, [&](std::size_t job) {
      const std::size_t g = job / static_cast<std::size_t>(cv_folds);
      const int k = static_cast<int>(job % static_cast<std::size_t>(cv_folds));
      std::vector<std::size_t> ftr, fva;
      for (std::size_t i : members)
        if (fold_of[g][i] != k) (is_val[i] ? fva : ftr).push_back(i);
      fits[job] = fit_model(one, ftr, fva, {fold_hp}, true, 100000 * (1 + job), false);
    });
    for (std::size_t g = 0; g < cv.size(); ++g)
      for (int k = 0; k < cv_folds; ++k) {
        Fitted& f = fits[g * static_cast<std::size_t>(cv_folds) + static_cast<std::size_t>(k)];
        GroupingResult& gr = cvres[g];
        for (std::size_t i : members) {
          if (fold_of[g][i] != k) continue;
          const Served s = serve(ctx, f, i);
          if (std::isnan(s.runtime)) continue;
          gr.idx.push_back(i);
          gr.pred.push_back(s.runtime);
          gr.domain.push_back(s.domain);
          gr.fold.push_back(k);
        }
        f.X.reset();  // the inputs are large; only predictions are kept
      }
    for (std::size_t g = 0; g < cv.size(); ++g) {
      std::map<std::vector<double>, int> distinct;
      for (std::size_t i : members) distinct.emplace(enc_data.cv_key[g][i], 0);
      cvres[g].groups = distinct.size();
    }
  }
  for (const auto& v : val_res) {
    cal_r.push_back(v.r);
    cal_d.push_back(v.domain);
  }
  for (const auto& gr : cvres)
    for (std::size_t k = 0; k < gr.idx.size(); ++k) {
      cal_r.push_back(std::log(configs[gr.idx[k]].label_ns / gr.pred[k]));
      cal_d.push_back(gr.domain[k]);
    }
  const detail::DomainCalibration cal = detail::calibrate(cal_r, cal_d, kCoverage);
  const std::size_t cv_networks =
      cv.size() * static_cast<std::size_t>(cv_folds) *
      static_cast<std::size_t>(recipe.cv_ensemble > 0 ? recipe.cv_ensemble : chosen.ensemble);

  // CV report per grouping: accuracy of the out-of-fold predictions, and the coverage of
  // intervals calibrated without the fold (cross-conformal: the other folds' residuals of this
  // grouping plus the validation part).
  json cv_json = json::object();
  for (std::size_t g = 0; g < cv.size(); ++g) {
    const GroupingResult& gr = cvres[g];
    std::vector<double> p, m;
    std::array<std::size_t, 3> n_dom{}, in_dom{};
    std::array<std::vector<double>, 3> ape_dom;
    for (std::size_t k = 0; k < gr.idx.size(); ++k) {
      p.push_back(gr.pred[k]);
      m.push_back(configs[gr.idx[k]].label_ns);
    }
    for (int k = 0; k < cv_folds; ++k) {
      std::vector<double> rr;
      std::vector<int> dd;
      for (const auto& v : val_res) {
        rr.push_back(v.r);
        dd.push_back(v.domain);
      }
      for (std::size_t q = 0; q < gr.idx.size(); ++q)
        if (gr.fold[q] != k) {
          rr.push_back(std::log(configs[gr.idx[q]].label_ns / gr.pred[q]));
          dd.push_back(gr.domain[q]);
        }
      const detail::DomainCalibration fc = detail::calibrate(rr, dd, kCoverage);
      for (std::size_t q = 0; q < gr.idx.size(); ++q) {
        if (gr.fold[q] != k) continue;
        const int d = gr.domain[q];
        const double r = std::log(configs[gr.idx[q]].label_ns / gr.pred[q]);
        ++n_dom[static_cast<std::size_t>(d)];
        in_dom[static_cast<std::size_t>(d)] += r >= fc.lo[d] && r <= fc.hi[d] ? 1 : 0;
        ape_dom[static_cast<std::size_t>(d)].push_back(std::fabs(gr.pred[q] / configs[gr.idx[q]].label_ns - 1.0));
      }
    }
    const Metrics all = compute_metrics(p, m);
    json dom = json::object();
    for (int d = 0; d < 3; ++d) {
      if (n_dom[static_cast<std::size_t>(d)] == 0) continue;
      std::vector<double> pd, md;
      for (std::size_t q = 0; q < gr.idx.size(); ++q)
        if (gr.domain[q] == d) {
          pd.push_back(gr.pred[q]);
          md.push_back(configs[gr.idx[q]].label_ns);
        }
      const Metrics dm = compute_metrics(pd, md);
      dom[kDomainNames[d]] = {{"n", n_dom[static_cast<std::size_t>(d)]},
                              {"within_10", dm.within_10},
                              {"median_ape", dm.median_ape},
                              {"coverage", static_cast<double>(in_dom[static_cast<std::size_t>(d)]) /
                                               static_cast<double>(n_dom[static_cast<std::size_t>(d)])}};
    }
    cv_json[cv[g].name] = {{"key", cv[g].key},
                           {"folds", cv_folds},
                           {"groups", gr.groups},
                           {"n", all.n},
                           {"within_10", all.within_10},
                           {"median_ape", all.median_ape},
                           {"domains", dom}};
    say("cross-validation by " + cv[g].name + " (" + std::to_string(gr.groups) + " groups, " + std::to_string(cv_folds) +
        " folds): " + std::to_string(all.n) + " out-of-fold plausible configurations, ±10% " + fmt(100 * all.within_10, 1) +
        "%, median APE " + fmt(all.median_ape, 2) + "%");
  }

  // ---- the model file ---------------------------------------------------------------------------
  ModelFile m;
  const std::string device_name = device.value("name", std::string("device"));
  m.op = enc.op();
  m.id = options.id.empty() ? device_name + "/" + m.op.substr(m.op.rfind('.') + 1) : options.id;
  m.producer = "torp train 0.1.0";
  m.op_spec = op_spec;
  m.device = device;
  m.priority = recipe.priority.value_or(options.priority);
  m.applies_when = recipe.applies_when;
  m.requires_ = recipe.requires_;
  m.features = recipe.features;
  m.mean.assign(fin.mean.begin(), fin.mean.end());
  m.stddev.assign(fin.sd.begin(), fin.sd.end());
  m.transform = TargetTransform::log;
  m.baseline = fin.baseline;
  m.memory = fin.memory;
  for (const auto& net : fin.nets) m.ensemble.push_back(detail::to_network(net, fin.t_sd, fin.t_mean));
  m.kind = ModelKind::trained;
  m.input_range.emplace();
  for (std::size_t j = 0; j < fin.range_lo.size(); ++j) m.input_range->push_back({fin.range_lo[j], fin.range_hi[j]});
  m.correction_limit = std::array<double, 2>{fin.corr_lo, fin.corr_hi};
  json cal_detail = json::object();
  if (!cal_r.empty()) {
    Calibration c;
    c.coverage = kCoverage;
    c.method = "split-conformal quantiles of log(label / served prediction) per domain, from the out-of-fold "
               "predictions of the grouped cross-validation and the validation part (plausible labels); a domain with "
               "fewer than 50 of them borrows: seen <- inside, inside <- inside+outside <- all, outside <- inside x2";
    for (int d = 0; d < 3; ++d) {
      c.domains[kDomainNames[d]] = {cal.lo[d], cal.hi[d], static_cast<int>(cal.n[d])};
      cal_detail[kDomainNames[d]] = {{"from", cal.from[d]}, {"own_n", cal.own_n[d]}};
    }
    m.calibration = std::move(c);
  }

  std::vector<bool> memory_hit;
  std::vector<int> served_domain;
  const std::vector<double> predicted = predict_configurations(m, configs, &memory_hit, &served_domain);
  json metrics = split_metrics(predicted, configs, split, plaus.plausible, m.memory ? &memory_hit : nullptr);
  if (m.calibration) metrics["test_coverage"] = coverage_by_domain(m, predicted, served_domain, configs, split.test, plaus.plausible);
  if (!cv.empty()) metrics["cv"] = cv_json;

  json search = json::array();
  for (std::size_t i = 0; i < candidates.size(); ++i)
    search.push_back({{"hyperparameters", to_json(candidates[i])},
                      {"epochs", fin.results[i].fit.epochs},
                      {"best_epoch", fin.results[i].fit.best_epoch},
                      {"validation_plausible", to_json(fin.results[i].validation)},
                      {"chosen", i == fin.best}});
  json header_commit = data.header.contains("tt_metal_commit") ? data.header["tt_metal_commit"] : json(nullptr);
  m.provenance = {
      {"device", device_name},
      {"tt_metal_commit", header_commit},
      {"source_data",
       {{"file", options.dataset_file},
        {"sha256", dataset_sha256},
        {"rows", agg.rows},
        {"configurations", agg.configurations},
        {"header_device", data.header.contains("device") ? data.header["device"] : json(nullptr)}}},
      {"seed", options.seed},
      {"split",
       {{"method", "by unique configuration (seeded permutation of configurations sorted by key)"},
        {"validation_fraction", options.validation_fraction},
        {"test_fraction", options.test_fraction},
        {"train", split.train.size()},
        {"validation", split.validation.size()},
        {"test", split.test.size()}}},
      {"recipe", {{"name", recipe.name}, {"spec", recipe.doc}}},
      {"hyperparameters", to_json(chosen)},
      {"search",
       {{"candidates", search},
        {"selection", "highest validation share within ±10%, then lowest validation median APE (plausible labels)"},
        {"ensemble", fin.ensemble_summary}}},
      {"outliers",
       {{"reject_factor", options.reject_factor},
        {"rows_rejected", agg.rejected_rows},
        {"configurations_dropped", agg.dropped_configurations},
        {"outside_domain", enc_data.unservable},
        {"plausibility",
         {{"rule", op_spec.contains("plausibility") ? op_spec["plausibility"] : json(nullptr)},
          {"fits", plaus.fits},
          {"train_excluded", implausible_train},
          {"validation_implausible", implausible_val},
          {"test_implausible", implausible_test}}}}},
      {"limits",
       {{"input_range", "per network input, min and max over the training rows (inputs are clamped into it)"},
        {"correction_limit", "min / max of the training configurations' log(label / baseline), widened by log 1.5"}}},
      {"calibration", {{"residuals", cal_r.size()}, {"validation_residuals", val_res.size()}, {"domains", cal_detail}}},
      {"metrics", metrics},
      {"trained_by", "torp train"},
      {"effort", {{"networks_trained", fin.networks_trained + cv_networks},
                  {"epochs", fin.total_epochs}}}};

  TrainReport report;
  report.metrics = metrics;
  report.search = search;
  report.model = std::move(m);
  report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace torp
