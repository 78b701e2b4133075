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

/// The weights of every layer but the last rounded to the nearest float (biases and the last
/// layer, which the target scale multiplies when stored, stay doubles). Serving then reads those
/// layers as 32-bit floats, exactly: half the memory a query streams through the cache. The
/// rounding moves an answer by about 1e-7 of itself; everything after training (selection,
/// ensemble, calibration, the reported metrics) sees the rounded network, as served.
void round_hidden_weights_to_float(Mlp& net) {
  for (std::size_t l = 0; l + 1 < net.W.size(); ++l)
    net.W[l].transform([](double w) { return static_cast<double>(static_cast<float>(w)); });
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
  round_hidden_weights_to_float(fit.net);
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

json search_defaults() {
  const Hyperparameters h;
  json d = to_json(h);
  d["hidden"] = kDefaultSearchHidden;
  d["learning_rate"] = json::array({h.learning_rate});
  d["batch_size"] = json::array({h.batch_size});
  d["ensemble_keep"] = "if_better";
  return d;
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
  /// calibration.group: op-spec feature whose values get interval bands of their own ("": none).
  std::string calibration_group;
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

/// One candidate of hidden widths `h` x learning rate `lr` x batch size `bs` over `base`.
Hyperparameters candidate(const Hyperparameters& base, const json& h, const json& lr, const json& bs, const std::string& recipe) {
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
  return c;
}

}  // namespace

namespace detail {

std::vector<Hyperparameters> parse_search(const json& s, const std::string& recipe) {
  if (!s.is_object()) recipe_error(recipe, "search must be an object", "/search");
  known_keys(s, {"hidden", "learning_rate", "batch_size", "max_epochs", "patience", "weight_decay", "ensemble", "huber",
                 "ensemble_keep"},
             recipe, "/search");
  // Every default comes from search_defaults() (Hyperparameters and kDefaultSearchHidden): small
  // nets train fast and fit the log corrections of these laws well; the Huber loss keeps a few
  // mislabelled repeats from pulling the fit (exp: median APE 1.5-1.9% with MSE, 0.55-0.6% with Huber).
  const json defaults = search_defaults();
  auto list = [&](const char* key) {
    json v = s.value(key, defaults[key]);
    return v.is_array() ? v : json::array({v});
  };
  Hyperparameters base;
  base.max_epochs = s.value("max_epochs", base.max_epochs);
  base.patience = s.value("patience", base.patience);
  base.weight_decay = s.value("weight_decay", base.weight_decay);
  base.ensemble = s.value("ensemble", base.ensemble);
  base.huber = s.value("huber", base.huber);
  if (base.max_epochs < 1 || base.patience < 1 || base.ensemble < 1 || base.weight_decay < 0 || base.huber < 0)
    recipe_error(recipe, "max_epochs, patience and ensemble must be >= 1, weight_decay and huber >= 0", "/search");
  json hidden = s.value("hidden", defaults["hidden"]);
  if (!hidden.is_array() || hidden.empty()) recipe_error(recipe, "search.hidden must be a list of layer-width lists", "/search/hidden");
  std::vector<Hyperparameters> out;
  for (const json& h : hidden) {
    if (!h.is_array() || h.empty()) recipe_error(recipe, "search.hidden entries must be non-empty width lists", "/search/hidden");
    for (const json& lr : list("learning_rate"))
      for (const json& bs : list("batch_size")) out.push_back(candidate(base, h, lr, bs, recipe));
  }
  return out;
}

}  // namespace detail

namespace {

ResidualMemory::Lookup parse_lookup(const json& l, const ResidualMemory& rm, const std::string& name, const std::string& at) {
  if (!l.is_object() || !l.contains("name") || !l["name"].is_string() || !l.contains("key"))
    recipe_error(name, "a memory lookup needs a string \"name\" and a \"key\"", at);
  known_keys(l, {"name", "key", "seen"}, name, at);
  ResidualMemory::Lookup out;
  if (auto sn = l.find("seen"); sn != l.end()) {
    if (!sn->is_boolean()) recipe_error(name, "a memory lookup's \"seen\" must be true or false", at + "/seen");
    out.seen = sn->get<bool>();
  }
  out.name = l["name"].get<std::string>();
  out.key = names(l["key"], name, at + "/key");
  if (out.name.empty()) recipe_error(name, "a memory lookup name must not be empty", at + "/name");
  if (out.key.size() != rm.key.size())
    recipe_error(name, "a memory lookup key must have as many features as the memory key", at + "/key");
  for (const auto& other : rm.lookups)
    if (other.name == out.name) recipe_error(name, "duplicate memory lookup \"" + out.name + "\"", at + "/name");
  return out;
}

void parse_memory(const json& mem, Recipe& r) {
  const std::string& name = r.name;
  if (!mem.is_object() || !mem.contains("key") || !mem.contains("lookups"))
    recipe_error(name, "memory needs \"key\" and \"lookups\"", "/memory");
  known_keys(mem, {"key", "lookups", "unseen_copies"}, name, "/memory");
  if (auto u = mem.find("unseen_copies"); u != mem.end()) {
    if (!u->is_boolean()) recipe_error(name, "memory.unseen_copies must be true or false", "/memory/unseen_copies");
    r.unseen_copies = u->get<bool>();
  }
  ResidualMemory rm;
  rm.key = names(mem["key"], name, "/memory/key");
  if (rm.key.empty()) recipe_error(name, "memory key must not be empty", "/memory/key");
  const json& ls = mem["lookups"];
  if (!ls.is_array() || ls.empty()) recipe_error(name, "memory lookups must be a non-empty array of {name, key}", "/memory/lookups");
  for (std::size_t i = 0; i < ls.size(); ++i) rm.lookups.push_back(parse_lookup(ls[i], rm, name, "/memory/lookups/" + std::to_string(i)));
  r.memory = std::move(rm);
}

/// recipe.memory_slot: which network inputs are residual-memory lookups.
void map_memory_features(Recipe& r) {
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
        recipe_error(r.name, "feature " + f + " names no lookup of the recipe's \"memory\" (memory.<lookup>.mean or .found)",
                     "/features/" + std::to_string(i));
    }
    r.memory_slot.push_back(slot);
  }
}

void parse_baseline(const json& b, Recipe& r) {
  if (!b.is_object() || !b.contains("terms")) recipe_error(r.name, "baseline needs \"terms\"", "/baseline");
  known_keys(b, {"group", "terms"}, r.name, "/baseline");
  r.has_baseline = true;
  r.baseline_terms = names(b["terms"], r.name, "/baseline/terms");
  if (auto g = b.find("group"); g != b.end() && !g->is_null()) {
    if (!g->is_string()) recipe_error(r.name, "baseline group must be a feature name", "/baseline/group");
    r.baseline_group = g->get<std::string>();
  }
}

/// applies_when, requires and priority: copied to the model's selection.
void parse_selection(Recipe& r) {
  const std::string& name = r.name;
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
}

void parse_ensemble_keep(Recipe& r) {
  if (!r.doc.contains("search") || !r.doc["search"].is_object() || !r.doc["search"].contains("ensemble_keep")) return;
  const json& k = r.doc["search"]["ensemble_keep"];
  if (!k.is_string() || (k != "always" && k != "if_better"))
    recipe_error(r.name, "search.ensemble_keep must be \"always\" or \"if_better\"", "/search/ensemble_keep");
  r.ensemble_always = k == "always";
}

void parse_cv(const json& cv, Recipe& r) {
  const std::string& name = r.name;
  if (!cv.is_object() || !cv.contains("groupings")) recipe_error(name, "cv needs \"groupings\"", "/cv");
  known_keys(cv, {"folds", "groupings", "ensemble"}, name, "/cv");
  r.cv_folds = cv.value("folds", 5);
  r.cv_ensemble = cv.value("ensemble", 0);
  if (r.cv_ensemble < 0) recipe_error(name, "cv.ensemble must be >= 1 (or 0: as many as the final model)", "/cv/ensemble");
  if (r.cv_folds < 2) recipe_error(name, "cv.folds must be >= 2", "/cv/folds");
  const json& gs = cv["groupings"];
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

void parse_calibration(const json& c, Recipe& r) {
  if (!c.is_object()) recipe_error(r.name, "calibration must be an object", "/calibration");
  known_keys(c, {"group"}, r.name, "/calibration");
  if (auto g = c.find("group"); g != c.end() && !g->is_null()) {
    if (!g->is_string() || g->get<std::string>().empty())
      recipe_error(r.name, "calibration.group must be a feature name", "/calibration/group");
    r.calibration_group = g->get<std::string>();
  }
}

/// The value of `key` in the recipe unless absent or null.
const json* optional_block(const Recipe& r, const char* key) {
  auto it = r.doc.find(key);
  return it == r.doc.end() || it->is_null() ? nullptr : &*it;
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
  known_keys(r.doc,
             {"description", "features", "baseline", "applies_when", "requires", "priority", "search", "memory", "cv",
              "calibration"},
             name, "");
  r.features = names(r.doc["features"], name, "/features");
  if (r.features.empty()) recipe_error(name, "features must not be empty", "/features");
  if (const json* mem = optional_block(r, "memory")) parse_memory(*mem, r);
  map_memory_features(r);
  if (const json* b = optional_block(r, "baseline")) parse_baseline(*b, r);
  parse_selection(r);
  r.search = detail::parse_search(r.doc.value("search", json::object()), name);
  parse_ensemble_keep(r);
  if (const json* cv = optional_block(r, "cv")) parse_cv(*cv, r);
  if (const json* c = optional_block(r, "calibration")) parse_calibration(*c, r);
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
  std::vector<double> calibration_group;  ///< per configuration, the recipe's calibration.group value (0 without one)
  std::size_t unservable = 0;
  std::string first_reason;
};

/// The compiled expressions encode() evaluates for every configuration.
struct EncodePlan {
  std::vector<ExprId> feats, terms, checks, mem_key;
  std::vector<std::vector<ExprId>> lookup_keys, cv_keys;
  std::vector<std::size_t> feat_row;  // row of X of each op-spec feature (memory rows are filled later)
  ExprId group = -1, calibration_group = -1;
  std::vector<std::string> check_text;
};

EncodePlan plan_encoding(Encoder& enc, const Recipe& r, const std::vector<CvGrouping>& cv) {
  EncodePlan p;
  for (std::size_t j = 0; j < r.features.size(); ++j)
    if (r.memory_slot[j] < 0) {
      p.feats.push_back(enc.feature(r.features[j]));
      p.feat_row.push_back(j);
    }
  if (r.memory) {
    for (const auto& k : r.memory->key) p.mem_key.push_back(enc.feature(k));
    for (const auto& l : r.memory->lookups) {
      p.lookup_keys.emplace_back();
      for (const auto& k : l.key) p.lookup_keys.back().push_back(enc.feature(k));
    }
  }
  for (const auto& g : cv) {
    p.cv_keys.emplace_back();
    for (const auto& k : g.key) p.cv_keys.back().push_back(enc.feature(k));
  }
  for (const auto& t : r.baseline_terms) p.terms.push_back(enc.feature(t));
  p.group = r.baseline_group.empty() ? -1 : enc.feature(r.baseline_group);
  p.calibration_group = r.calibration_group.empty() ? -1 : enc.feature(r.calibration_group);
  for (const auto& a : r.applies_when) {
    p.checks.push_back(enc.compile(a));
    p.check_text.push_back("applies_when " + a);
  }
  for (const auto& q : r.requires_) {
    p.checks.push_back(enc.compile(q.expr));
    p.check_text.push_back("requires " + q.expr);
  }
  return p;
}

/// One configuration's values (sized by resize()).
struct EncodedRow {
  std::vector<double> x, t, mk;
  std::vector<std::vector<double>> lk, ck;
  double group = 0.0, calibration_group = 0.0;
  void resize(const EncodePlan& p) {
    x.resize(p.feats.size());
    t.resize(p.terms.size());
    mk.resize(p.mem_key.size());
    lk.resize(p.lookup_keys.size());
    for (std::size_t l = 0; l < lk.size(); ++l) lk[l].resize(p.lookup_keys[l].size());
    ck.resize(p.cv_keys.size());
    for (std::size_t g = 0; g < ck.size(); ++g) ck[g].resize(p.cv_keys[g].size());
  }
};

/// A single expression's value into `out`, or the reason it has none.
std::string eval_one(const Encoder& enc, ExprId id, const Bindings& b, double& out) {
  auto v = enc.eval(id, b);
  if (!v) return v.error().describe();
  out = v.value();
  return {};
}

/// Evaluate one bound configuration into `row`: "" if the model can serve it, else why not.
std::string encode_row(const Encoder& enc, const EncodePlan& p, const Bindings& b, EncodedRow& row) {
  for (std::size_t c = 0; c < p.checks.size(); ++c) {
    auto v = enc.eval(p.checks[c], b);
    if (!v) return v.error().describe();
    if (v.value() == 0.0) return p.check_text[c] + " is false";
  }
  if (auto e = enc.eval_all(p.feats, b, row.x)) return e->describe();
  if (auto e = enc.eval_all(p.terms, b, row.t)) return e->describe();
  if (p.group >= 0)
    if (std::string e = eval_one(enc, p.group, b, row.group); !e.empty()) return e;
  if (auto e = enc.eval_all(p.mem_key, b, row.mk)) return e->describe();
  for (std::size_t l = 0; l < p.lookup_keys.size(); ++l)
    if (auto e = enc.eval_all(p.lookup_keys[l], b, row.lk[l])) return e->describe();
  for (std::size_t g = 0; g < p.cv_keys.size(); ++g)
    if (auto e = enc.eval_all(p.cv_keys[g], b, row.ck[g])) return e->describe();
  if (p.calibration_group >= 0)
    if (std::string e = eval_one(enc, p.calibration_group, b, row.calibration_group); !e.empty()) return e;
  for (double v : row.x)
    if (!std::isfinite(v)) return "a feature is not finite";
  for (double v : row.t)
    if (!std::isfinite(v) || v < 0.0) return "a baseline term is negative or not finite";
  return {};
}

Encoded encode(const std::vector<Configuration>& configs, const json& op_spec, const json& device, const Recipe& r,
               const std::vector<CvGrouping>& cv) {
  Encoder enc(op_spec, device);
  const EncodePlan plan = plan_encoding(enc, r, cv);
  Encoded e;
  e.servable.assign(configs.size(), false);
  e.X.zeros(r.features.size(), configs.size());
  e.group.assign(configs.size(), 0.0);
  e.calibration_group.assign(configs.size(), 0.0);
  e.terms.ones(configs.size(), plan.terms.size() + 1);
  e.memory_key.assign(configs.size(), {});
  e.lookup_key.assign(plan.lookup_keys.size(), std::vector<std::vector<double>>(configs.size()));
  e.cv_key.assign(plan.cv_keys.size(), std::vector<std::vector<double>>(configs.size()));
  Bindings b;
  EncodedRow row;
  row.resize(plan);
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const auto err = enc.bind(configs[i].args, b);
    const std::string reason = err ? err->describe() : encode_row(enc, plan, b, row);
    if (!reason.empty()) {
      if (e.unservable++ == 0) e.first_reason = reason;
      continue;
    }
    e.servable[i] = true;
    for (std::size_t j = 0; j < row.x.size(); ++j) e.X(plan.feat_row[j], i) = row.x[j];
    e.group[i] = row.group;
    e.calibration_group[i] = row.calibration_group;
    e.memory_key[i] = row.mk;
    for (std::size_t l = 0; l < row.lk.size(); ++l) e.lookup_key[l][i] = row.lk[l];
    for (std::size_t g = 0; g < row.ck.size(); ++g) e.cv_key[g][i] = row.ck[g];
    for (std::size_t j = 0; j < row.t.size(); ++j) e.terms(i, j + 1) = row.t[j];
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
/// input range and correction limit; serve() answers exactly as the model file serves.
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

using Say = std::function<void(const std::string&)>;

/// The robust per-group law on the training configurations, and every configuration's baseline.
void fit_baseline(const Context& c, const std::vector<std::size_t>& tr, Fitted& f, const Say& say) {
  const auto& configs = c.configs;
  f.base.assign(configs.size(), 1.0);
  if (!c.recipe.has_baseline) return;
  Baseline bl;
  bl.group = c.recipe.baseline_group;
  bl.features = c.recipe.baseline_terms;
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

/// Residual memory: mean residual log(label / baseline) of the training configurations per key.
/// A training configuration looking up its own key sees the others only (leave-one-out), as a
/// configuration outside the table would; every other configuration sees the table.
void fit_memory(const Context& c, const std::vector<std::size_t>& tr, Fitted& f, const Say& say) {
  const Recipe& recipe = c.recipe;
  f.X = c.enc.X;
  if (!recipe.memory) return;
  std::vector<double> residual(c.configs.size(), 0.0);
  for (std::size_t i : tr) residual[i] = std::log(c.configs[i].label_ns) - std::log(f.base[i]);
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

/// The networks' standardized training and validation data.
struct TrainingRows {
  arma::mat Xtr, Xva;
  arma::rowvec ytr, yva;
  std::vector<double> va_label, va_base;
};

/// Training rows (with memory.unseen_copies each training configuration once more with every
/// memory input empty, as a configuration of an unseen shape is served), the input range, the
/// normalization, the correction limit and the standardized targets.
TrainingRows training_rows(const Context& c, const std::vector<std::size_t>& tr, const std::vector<std::size_t>& va,
                           Fitted& f) {
  const Recipe& recipe = c.recipe;
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
  TrainingRows d;
  d.Xtr = standardize(Xtr_raw);
  d.Xva = standardize(Xva_raw);
  auto target = [&](const std::vector<std::size_t>& idx) {
    arma::rowvec t(idx.size());
    for (std::size_t k = 0; k < idx.size(); ++k) t[k] = std::log(c.configs[idx[k]].label_ns) - std::log(f.base[idx[k]]);
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
  d.ytr = (ttr - f.t_mean) / f.t_sd;
  d.yva = (tva - f.t_mean) / f.t_sd;
  for (std::size_t i : va) {
    d.va_label.push_back(c.configs[i].label_ns);
    d.va_base.push_back(f.base[i]);
  }
  return d;
}

/// Validation metrics of network outputs `out` (standardized), the log-correction clamped as served.
Metrics validation_metrics(const TrainingRows& d, const Fitted& f, const arma::rowvec& out) {
  std::vector<double> pred(d.va_label.size());
  for (std::size_t k = 0; k < pred.size(); ++k)
    pred[k] = d.va_base[k] * std::exp(std::clamp(out[k] * f.t_sd + f.t_mean, f.corr_lo, f.corr_hi));
  return compute_metrics(pred, d.va_label);
}

/// Train every candidate in parallel and choose the best on validation.
void search_candidates(const Context& c, const TrainingRows& d, const std::vector<Hyperparameters>& candidates,
                       std::uint64_t stream, Fitted& f, const Say& say) {
  f.results.resize(candidates.size());
  std::atomic<std::size_t> done{0};
  run_parallel(candidates.size(), c.threads, [&](std::size_t i) {
    CandidateResult& r = f.results[i];
    r.fit = detail::fit_mlp(d.Xtr, d.ytr, d.Xva, d.yva, candidates[i], detail::derive_seed(c.seed, stream + 1000 + i), f.t_sd);
    r.validation = validation_metrics(d, f, detail::mlp_forward(r.fit.net, d.Xva));
    say("candidate " + std::to_string(++done) + "/" + std::to_string(candidates.size()) + " " + describe(candidates[i]) +
        ": " + std::to_string(r.fit.epochs) + " epochs (best " + std::to_string(r.fit.best_epoch) + "), validation ±10% " +
        fmt(100 * r.validation.within_10, 1) + "%, median APE " + fmt(r.validation.median_ape, 2) + "%");
  });
  for (std::size_t i = 1; i < f.results.size(); ++i)
    if (better(f.results[i].validation, f.results[f.best].validation)) f.best = i;
  f.chosen = candidates[f.best];
  f.nets = {f.results[f.best].fit.net};
  f.networks_trained = candidates.size();
  for (const auto& r : f.results) f.total_epochs += r.fit.epochs;
}

/// Optional ensemble: extra members with derived seeds. Every member is paid for on every query,
/// so unless the recipe keeps it always (search.ensemble_keep), the ensemble is kept only if it
/// puts at least kEnsembleMinGain more validation configurations within ±10%.
void fit_ensemble(const Context& c, const TrainingRows& d, bool keep_always, std::uint64_t stream, Fitted& f,
                  const Say& say) {
  if (f.chosen.ensemble <= 1) return;
  std::vector<detail::MlpFit> extra(static_cast<std::size_t>(f.chosen.ensemble - 1));
  f.networks_trained += extra.size();
  run_parallel(extra.size(), c.threads, [&](std::size_t j) {
    extra[j] = detail::fit_mlp(d.Xtr, d.ytr, d.Xva, d.yva, f.chosen, detail::derive_seed(c.seed, stream + 2000 + j), f.t_sd);
  });
  arma::rowvec avg = detail::mlp_forward(f.nets[0], d.Xva);
  for (const auto& e : extra) {
    avg += detail::mlp_forward(e.net, d.Xva);
    f.total_epochs += e.epochs;
  }
  avg /= static_cast<double>(f.chosen.ensemble);
  const Metrics ens = validation_metrics(d, f, avg);
  const Metrics& single = f.results[f.best].validation;
  constexpr double kEnsembleMinGain = 0.005;  // 0.5 percentage points
  const bool keep = keep_always || ens.within_10 >= single.within_10 + kEnsembleMinGain;
  f.ensemble_summary = {{"members", f.chosen.ensemble},
                        {"validation_single", to_json(single)},
                        {"validation_ensemble", to_json(ens)},
                        {"rule", keep_always ? "always" : "if_better"},
                        {"kept", keep}};
  say("ensemble of " + std::to_string(f.chosen.ensemble) + ": validation ±10% " + fmt(100 * ens.within_10, 1) +
      "%, median APE " + fmt(ens.median_ape, 2) + "% vs single " + fmt(100 * single.within_10, 1) + "%, " +
      fmt(single.median_ape, 2) + "% -> " + (keep ? "kept" : "single network kept"));
  if (keep)
    for (const auto& e : extra) f.nets.push_back(e.net);
  else
    f.chosen.ensemble = 1;
}

/// Fit baseline, memory and networks on `tr` (early stopping on `va`). With several candidates
/// the best on `va` is chosen (the search); its ensemble follows the recipe. `stream` separates
/// the seeds of different fits (0: the final model).
Fitted fit_model(const Context& c, std::vector<std::size_t> tr, std::vector<std::size_t> va,
                 const std::vector<Hyperparameters>& candidates, bool keep_ensemble_always, std::uint64_t stream,
                 bool verbose) {
  const Say say = [&](const std::string& m) {
    if (verbose && c.say) c.say(m);
  };
  Fitted f;
  fit_baseline(c, tr, f, say);
  // Configurations whose group has no baseline cannot be predicted: leave them out.
  std::erase_if(va, [&](std::size_t i) { return !(f.base[i] > 0.0); });
  std::erase_if(tr, [&](std::size_t i) { return !(f.base[i] > 0.0); });
  if (tr.empty() || va.empty()) throw TorpError(ErrorCode::training, "no training or validation configuration has a baseline");
  fit_memory(c, tr, f, say);
  const TrainingRows d = training_rows(c, tr, va, f);
  if (candidates.size() > 1)
    say("searching " + std::to_string(candidates.size()) + " candidates on " + std::to_string(c.threads) + " thread(s): " +
        std::to_string(tr.size()) + " training, " + std::to_string(va.size()) + " validation configurations, " +
        std::to_string(c.recipe.features.size()) + " features");
  search_candidates(c, d, candidates, stream, f, say);
  fit_ensemble(c, d, keep_ensemble_always, stream, f, say);
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

/// Log residuals log(label / prediction) with the domain and calibration group of each prediction.
struct Residuals {
  std::vector<double> r;
  std::vector<int> domain;
  std::vector<double> group;
  void add(double residual, int d, double g) {
    r.push_back(residual);
    domain.push_back(d);
    group.push_back(g);
  }
  void append(const Residuals& o) {
    r.insert(r.end(), o.r.begin(), o.r.end());
    domain.insert(domain.end(), o.domain.begin(), o.domain.end());
    group.insert(group.end(), o.group.begin(), o.group.end());
  }
};

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

std::size_t min_conformal_residuals(double coverage) {
  // floor((n + 1) alpha / 2) >= 1  <=>  n + 1 >= 2 / alpha (the same 1e-9 as conformal_interval)
  return static_cast<std::size_t>(std::ceil(2.0 / (1.0 - coverage) - 1e-9)) - 1;
}

std::array<double, 2> DomainCalibration::band(int d, double g) const {
  const auto k = static_cast<std::size_t>(d);
  for (const auto& grp : groups)
    if (grp.key == g && grp.own[k]) return {grp.lo[k], grp.hi[k]};
  return {lo[k], hi[k]};
}

namespace {

/// A band always contains the prediction itself: [min(q_lo, 0), max(q_hi, 0)].
std::array<double, 2> band_of(const std::vector<double>& v, double coverage) {
  const auto q = conformal_interval(v, coverage);
  return {std::min(q[0], 0.0), std::max(q[1], 0.0)};
}

/// Per group value, each domain's own band where the group has enough residuals in it.
std::vector<DomainCalibration::Group> group_bands(const std::vector<double>& residual, const std::vector<int>& domain,
                                                  const std::vector<double>& group, double coverage) {
  std::map<double, std::array<std::vector<double>, 3>> by;  // sorted keys: a deterministic file
  for (std::size_t k = 0; k < residual.size(); ++k) by[group[k]][static_cast<std::size_t>(domain[k])].push_back(residual[k]);
  std::vector<DomainCalibration::Group> out;
  for (const auto& [key, ds] : by) {
    DomainCalibration::Group g;
    g.key = key;
    for (std::size_t d = 0; d < 3; ++d) {
      g.n[d] = ds[d].size();
      g.own[d] = ds[d].size() >= min_conformal_residuals(coverage);
      if (!g.own[d]) continue;
      const auto b = band_of(ds[d], coverage);
      g.lo[d] = b[0];
      g.hi[d] = b[1];
    }
    out.push_back(g);
  }
  return out;
}

}  // namespace

DomainCalibration calibrate(const std::vector<double>& residual, const std::vector<int>& domain, double coverage,
                            const std::vector<double>& group) {
  std::array<std::vector<double>, 3> by;
  for (std::size_t k = 0; k < residual.size(); ++k) by[static_cast<std::size_t>(domain[k])].push_back(residual[k]);
  const std::size_t min_n = min_conformal_residuals(coverage);
  DomainCalibration cal;
  auto pooled = [&](std::initializer_list<int> ds) {
    std::vector<double> v;
    for (int d : ds) v.insert(v.end(), by[static_cast<std::size_t>(d)].begin(), by[static_cast<std::size_t>(d)].end());
    return v;
  };
  auto set = [&](int d, const std::vector<double>& v, const std::string& from) {
    const auto b = band_of(v, coverage);
    cal.lo[d] = b[0];
    cal.hi[d] = b[1];
    cal.n[d] = v.size();
    cal.from[d] = from;
  };
  // inside: own; else inside + outside; else everything.
  if (by[kInside].size() >= min_n) set(kInside, by[kInside], "own");
  else if (by[kInside].size() + by[kOutside].size() >= min_n) set(kInside, pooled({kInside, kOutside}), "inside+outside");
  else set(kInside, pooled({kSeen, kInside, kOutside}), "all");
  // seen: own; else inside's interval (the wider neighbour).
  if (by[kSeen].size() >= min_n) set(kSeen, by[kSeen], "own");
  else {
    cal.lo[kSeen] = cal.lo[kInside];
    cal.hi[kSeen] = cal.hi[kInside];
    cal.n[kSeen] = cal.n[kInside];
    cal.from[kSeen] = "inside";
  }
  // outside: own; else inside's interval widened (both ends times kOutsideFallbackWidening).
  if (by[kOutside].size() >= min_n) set(kOutside, by[kOutside], "own");
  else {
    cal.lo[kOutside] = std::min(0.0, cal.lo[kInside]) * kOutsideFallbackWidening;
    cal.hi[kOutside] = std::max(0.0, cal.hi[kInside]) * kOutsideFallbackWidening;
    cal.n[kOutside] = cal.n[kInside];
    cal.from[kOutside] = "inside x" + fmt(kOutsideFallbackWidening, 0);
  }
  for (int d = 0; d < 3; ++d) cal.own_n[d] = by[static_cast<std::size_t>(d)].size();
  if (!group.empty()) cal.groups = group_bands(residual, domain, group, coverage);
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


namespace {

constexpr double kCoverage = 0.9;  ///< nominal coverage of the calibrated intervals

/// Cross-validation groupings and folds: the options' (--cv-group, --cv-folds), else the recipe's.
struct CvPlan {
  std::vector<CvGrouping> groupings;
  int folds = 0;
};

CvPlan plan_cv(const Recipe& recipe, const TrainOptions& options) {
  CvPlan p;
  p.groupings = recipe.cv;
  if (!options.cv_group.empty()) {
    std::string nm;
    for (const auto& k : options.cv_group) nm += (nm.empty() ? "" : ",") + k;
    p.groupings = {{nm, options.cv_group}};
  }
  p.folds = options.cv_folds >= 0 ? options.cv_folds : (recipe.cv_folds > 0 ? recipe.cv_folds : 5);
  if (p.folds == 1) throw TorpError(ErrorCode::training, "cross-validation needs at least 2 folds (0 turns it off)");
  if (p.folds == 0) p.groupings.clear();
  return p;
}

/// The servable, plausible configurations of the training and validation parts, and how many of
/// each part are implausible.
struct Parts {
  std::vector<std::size_t> tr, va;
  std::size_t implausible_train = 0, implausible_val = 0, implausible_test = 0;
};

Parts usable_parts(const Split& split, const Encoded& enc, const PlausibilityResult& plaus, const Say& say) {
  auto usable = [&](const std::vector<std::size_t>& part, std::size_t* implausible) {
    std::vector<std::size_t> out;
    for (std::size_t i : part) {
      if (!enc.servable[i]) continue;
      if (!plaus.plausible[i]) {
        ++*implausible;
        continue;
      }
      out.push_back(i);
    }
    return out;
  };
  Parts p;
  p.tr = usable(split.train, &p.implausible_train);
  p.va = usable(split.validation, &p.implausible_val);
  usable(split.test, &p.implausible_test);
  if (plaus.defined)
    say("plausibility rule (labels within " + fmt(plaus.factor, 2) + "x of their group's robust fit): excluded " +
        std::to_string(p.implausible_train) + " of " + std::to_string(p.implausible_train + p.tr.size()) +
        " training configurations; " + std::to_string(p.implausible_val) + " validation and " +
        std::to_string(p.implausible_test) + " test configurations are implausible");
  if (p.tr.size() < 20 || p.va.size() < 5)
    throw TorpError(ErrorCode::training, "too few usable configurations: " + std::to_string(p.tr.size()) + " for training, " +
                                             std::to_string(p.va.size()) + " for validation (need 20 and 5)");
  return p;
}

/// The out-of-fold answers of one cross-validation grouping.
struct OutOfFold {
  std::vector<std::size_t> idx;  ///< plausible configurations answered
  std::vector<double> pred;
  std::vector<int> domain, fold;
  std::size_t groups = 0;
};

/// Grouped cross-validation: the plausible training and validation configurations are grouped by
/// each grouping's key and the groups dealt into folds; fold f's model trains on the training
/// configurations of the other folds (early stopping on their validation configurations) with
/// the chosen hyperparameters and ensemble, and answers every configuration of fold f as served.
std::vector<OutOfFold> cross_validate(const Context& ctx, const CvPlan& cv, const Hyperparameters& chosen, const Parts& parts) {
  std::vector<OutOfFold> res(cv.groupings.size());
  if (cv.groupings.empty()) return res;
  std::vector<std::size_t> members = parts.tr;
  members.insert(members.end(), parts.va.begin(), parts.va.end());
  std::sort(members.begin(), members.end());
  std::vector<bool> is_val(ctx.configs.size(), false);
  for (std::size_t i : parts.va) is_val[i] = true;
  Hyperparameters fold_hp = chosen;  // the final model's hyperparameters; ensemble always kept
  if (ctx.recipe.cv_ensemble > 0) fold_hp.ensemble = ctx.recipe.cv_ensemble;
  const auto folds = static_cast<std::size_t>(cv.folds);
  std::vector<std::vector<int>> fold_of(cv.groupings.size());
  for (std::size_t g = 0; g < cv.groupings.size(); ++g)
    fold_of[g] = detail::group_folds(ctx.enc.cv_key[g], members, cv.folds, ctx.seed + g);
  std::vector<Fitted> fits(cv.groupings.size() * folds);
  ctx.say("cross-validation: " + std::to_string(cv.groupings.size()) + " grouping(s) x " + std::to_string(cv.folds) +
          " folds, " + std::to_string(fold_hp.ensemble) + " network(s) each (out-of-fold predictions calibrate the intervals)");
  // Folds train in parallel, one thread each (their seeds do not depend on the thread count).
  Context one = ctx;
  one.threads = 1;
  run_parallel(fits.size(), ctx.threads, [&](std::size_t job) {
    const std::size_t g = job / folds;
    const int k = static_cast<int>(job % folds);
    std::vector<std::size_t> ftr, fva;
    for (std::size_t i : members)
      if (fold_of[g][i] != k) (is_val[i] ? fva : ftr).push_back(i);
    fits[job] = fit_model(one, ftr, fva, {fold_hp}, true, 100000 * (1 + job), false);
  });
  for (std::size_t g = 0; g < cv.groupings.size(); ++g) {
    for (std::size_t job = g * folds; job < (g + 1) * folds; ++job) {
      const int k = static_cast<int>(job % folds);
      for (std::size_t i : members) {
        if (fold_of[g][i] != k) continue;
        const Served s = serve(ctx, fits[job], i);
        if (std::isnan(s.runtime)) continue;
        res[g].idx.push_back(i);
        res[g].pred.push_back(s.runtime);
        res[g].domain.push_back(s.domain);
        res[g].fold.push_back(k);
      }
      fits[job].X.reset();  // the inputs are large; only predictions are kept
    }
    std::map<std::vector<double>, int> distinct;
    for (std::size_t i : members) distinct.emplace(ctx.enc.cv_key[g][i], 0);
    res[g].groups = distinct.size();
  }
  return res;
}

/// The validation part answered by the final model.
Residuals validation_residuals(const Context& ctx, const Fitted& fin) {
  Residuals out;
  for (std::size_t i : fin.va) {
    const Served s = serve(ctx, fin, i);
    if (std::isnan(s.runtime)) continue;
    out.add(std::log(ctx.configs[i].label_ns / s.runtime), s.domain, ctx.enc.calibration_group[i]);
  }
  return out;
}

/// The out-of-fold residuals of `o`: all (fold < 0), or those of every fold but `except`.
Residuals fold_residuals(const Context& ctx, const OutOfFold& o, int except = -1) {
  Residuals out;
  for (std::size_t q = 0; q < o.idx.size(); ++q)
    if (o.fold[q] != except)
      out.add(std::log(ctx.configs[o.idx[q]].label_ns / o.pred[q]), o.domain[q], ctx.enc.calibration_group[o.idx[q]]);
  return out;
}

detail::DomainCalibration calibrate_residuals(const Context& ctx, const Residuals& r) {
  static const std::vector<double> kNoGroups;
  return detail::calibrate(r.r, r.domain, kCoverage, ctx.recipe.calibration_group.empty() ? kNoGroups : r.group);
}

/// Coverage tallies of the cross-conformal report: per domain, and per domain and group.
struct CoverageTally {
  std::array<std::size_t, 3> n{}, in{};
  std::map<double, std::array<std::size_t, 3>> group_n, group_in;
};

/// Each fold's answers against intervals calibrated without that fold (cross-conformal: the
/// other folds' residuals of this grouping plus the validation part), band by domain and group
/// as served.
CoverageTally cross_conformal(const Context& ctx, int folds, const OutOfFold& o, const Residuals& val) {
  CoverageTally t;
  for (int k = 0; k < folds; ++k) {
    Residuals rr = val;
    rr.append(fold_residuals(ctx, o, k));
    const detail::DomainCalibration fc = calibrate_residuals(ctx, rr);
    for (std::size_t q = 0; q < o.idx.size(); ++q) {
      if (o.fold[q] != k) continue;
      const auto d = static_cast<std::size_t>(o.domain[q]);
      const double g = ctx.enc.calibration_group[o.idx[q]];
      const double r = std::log(ctx.configs[o.idx[q]].label_ns / o.pred[q]);
      const auto band = fc.band(o.domain[q], g);
      const std::size_t in = r >= band[0] && r <= band[1] ? 1 : 0;
      ++t.n[d];
      t.in[d] += in;
      ++t.group_n[g][d];
      t.group_in[g][d] += in;
    }
  }
  return t;
}

/// The report of one grouping: out-of-fold accuracy, and per domain (and calibration group) the
/// cross-conformal coverage.
json cv_grouping_report(const Context& ctx, const CvGrouping& grouping, int folds, const OutOfFold& o, const Residuals& val) {
  const CoverageTally t = cross_conformal(ctx, folds, o, val);
  std::vector<double> p = o.pred, m;
  for (std::size_t i : o.idx) m.push_back(ctx.configs[i].label_ns);
  const Metrics all = compute_metrics(p, m);
  json dom = json::object();
  for (std::size_t d = 0; d < 3; ++d) {
    if (t.n[d] == 0) continue;
    std::vector<double> pd, md;
    for (std::size_t q = 0; q < o.idx.size(); ++q)
      if (static_cast<std::size_t>(o.domain[q]) == d) {
        pd.push_back(o.pred[q]);
        md.push_back(m[q]);
      }
    const Metrics dm = compute_metrics(pd, md);
    json& e = dom[kDomainNames[d]];
    e = {{"n", t.n[d]}, {"within_10", dm.within_10}, {"median_ape", dm.median_ape},
         {"coverage", static_cast<double>(t.in[d]) / static_cast<double>(t.n[d])}};
    if (ctx.recipe.calibration_group.empty()) continue;
    e["groups"] = json::array();
    for (const auto& [g, n] : t.group_n)
      if (n[d] > 0)
        e["groups"].push_back({{"key", g}, {"n", n[d]},
                               {"coverage", static_cast<double>(t.group_in.at(g)[d]) / static_cast<double>(n[d])}});
  }
  ctx.say("cross-validation by " + grouping.name + " (" + std::to_string(o.groups) + " groups, " + std::to_string(folds) +
          " folds): " + std::to_string(all.n) + " out-of-fold plausible configurations, ±10% " + fmt(100 * all.within_10, 1) +
          "%, median APE " + fmt(all.median_ape, 2) + "%");
  return {{"key", grouping.key}, {"folds", folds},   {"groups", o.groups},  {"n", all.n},
          {"within_10", all.within_10}, {"median_ape", all.median_ape}, {"domains", dom}};
}

/// The model file's parts that do not depend on evaluation: selection, inputs, baseline, memory,
/// networks and limits.
ModelFile assemble_model(const Encoder& enc, const json& op_spec, const json& device, const TrainOptions& options,
                         const Recipe& recipe, const Fitted& fin) {
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
  return m;
}

/// The calibration into the model file; returns the provenance's account of each band.
json attach_calibration(ModelFile& m, const detail::DomainCalibration& cal, const Recipe& recipe) {
  Calibration c;
  c.coverage = kCoverage;
  c.method = "split-conformal quantiles of log(label / served prediction) per domain" +
             std::string(recipe.calibration_group.empty() ? "" : " and per " + recipe.calibration_group) +
             ", from the out-of-fold predictions of the grouped cross-validation and the validation part (plausible "
             "labels); a domain with fewer than " + std::to_string(detail::min_conformal_residuals(kCoverage)) +
             " of them (no conformal rank) borrows: seen <- inside, inside <- inside+outside <- all, outside <- inside x2; "
             "a group with fewer in a domain uses the domain's band";
  json detail = json::object();
  for (int d = 0; d < 3; ++d) {
    c.domains[kDomainNames[d]] = {cal.lo[d], cal.hi[d], static_cast<int>(cal.n[d])};
    detail[kDomainNames[d]] = {{"from", cal.from[d]}, {"own_n", cal.own_n[d]}};
  }
  if (!recipe.calibration_group.empty()) {
    c.group = recipe.calibration_group;
    json groups = json::array();
    for (const auto& g : cal.groups) {
      Calibration::Group cg{g.key, {}};
      json own_n = json::object();
      for (int d = 0; d < 3; ++d) {
        own_n[kDomainNames[d]] = g.n[d];
        if (g.own[d]) cg.domains[kDomainNames[d]] = {g.lo[d], g.hi[d], static_cast<int>(g.n[d])};
      }
      c.groups.push_back(std::move(cg));
      groups.push_back({{"key", g.key}, {"own_n", own_n}});
    }
    detail = {{"domains", detail}, {"group", recipe.calibration_group}, {"groups", groups}};
  } else {
    detail = {{"domains", detail}};
  }
  m.calibration = std::move(c);
  return detail;
}

/// Validation and test metrics of the model as served, with per-domain test coverage.
json served_metrics(const ModelFile& m, const std::vector<Configuration>& configs, const Split& split,
                    const PlausibilityResult& plaus) {
  const std::vector<ServedAnswer> served = serve_configurations(m, configs);
  std::vector<double> predicted;
  std::vector<bool> memory_hit;
  for (const auto& a : served) {
    predicted.push_back(a.runtime_ns);
    memory_hit.push_back(a.memory_found);
  }
  json metrics = split_metrics(predicted, configs, split, plaus.plausible, m.memory ? &memory_hit : nullptr);
  if (m.calibration) metrics["test_coverage"] = coverage_by_domain(served, configs, split.test, plaus.plausible);
  return metrics;
}

/// What the provenance records: the data, its split and outliers, and how the model was made.
struct Account {
  const Dataset& data;
  const AggregationReport& agg;
  const Split& split;
  const PlausibilityResult& plaus;
  const Parts& parts;
  const Encoded& enc;
  const TrainOptions& options;
  const std::string& sha;
  const json& op_spec;
  const json& device;
  const Recipe& recipe;
};

json source_json(const Account& a) {
  return {{"file", a.options.dataset_file},
          {"sha256", a.sha},
          {"rows", a.agg.rows},
          {"configurations", a.agg.configurations},
          {"header_device", a.data.header.contains("device") ? a.data.header["device"] : json(nullptr)}};
}

json split_json(const Account& a) {
  return {{"method", "by unique configuration (seeded permutation of configurations sorted by key)"},
          {"validation_fraction", a.options.validation_fraction},
          {"test_fraction", a.options.test_fraction},
          {"train", a.split.train.size()},
          {"validation", a.split.validation.size()},
          {"test", a.split.test.size()}};
}

json outliers_json(const Account& a) {
  return {{"reject_factor", a.options.reject_factor},
          {"rows_rejected", a.agg.rejected_rows},
          {"configurations_dropped", a.agg.dropped_configurations},
          {"outside_domain", a.enc.unservable},
          {"plausibility",
           {{"rule", a.op_spec.contains("plausibility") ? a.op_spec["plausibility"] : json(nullptr)},
            {"fits", a.plaus.fits},
            {"train_excluded", a.parts.implausible_train},
            {"validation_implausible", a.parts.implausible_val},
            {"test_implausible", a.parts.implausible_test}}}};
}

json search_json(const std::vector<Hyperparameters>& candidates, const Fitted& fin) {
  json search = json::array();
  for (std::size_t i = 0; i < candidates.size(); ++i)
    search.push_back({{"hyperparameters", to_json(candidates[i])},
                      {"epochs", fin.results[i].fit.epochs},
                      {"best_epoch", fin.results[i].fit.best_epoch},
                      {"validation_plausible", to_json(fin.results[i].validation)},
                      {"chosen", i == fin.best}});
  return search;
}

json provenance_json(const Account& a, const Fitted& fin, const json& search, const json& calibration, const json& metrics,
                     std::size_t cv_networks) {
  return {{"device", a.device.value("name", std::string("device"))},
          {"tt_metal_commit", a.data.header.contains("tt_metal_commit") ? a.data.header["tt_metal_commit"] : json(nullptr)},
          {"source_data", source_json(a)},
          {"seed", a.options.seed},
          {"split", split_json(a)},
          {"recipe", {{"name", a.recipe.name}, {"spec", a.recipe.doc}}},
          {"hyperparameters", to_json(fin.chosen)},
          {"search",
           {{"candidates", search},
            {"selection", "highest validation share within ±10%, then lowest validation median APE (plausible labels)"},
            {"ensemble", fin.ensemble_summary}}},
          {"outliers", outliers_json(a)},
          {"limits",
           {{"input_range", "per network input, min and max over the training rows (inputs are clamped into it)"},
            {"correction_limit", "min / max of the training configurations' log(label / baseline), widened by log 1.5"}}},
          {"calibration", calibration},
          {"metrics", metrics},
          {"trained_by", "torp train"},
          {"effort", {{"networks_trained", fin.networks_trained + cv_networks}, {"epochs", fin.total_epochs}}}};
}

}  // namespace

TrainReport train(const Dataset& data, const json& op_spec, const json& device, const TrainOptions& options,
                  const std::string& dataset_sha256) {
  const auto started = std::chrono::steady_clock::now();
  std::mutex progress_mutex;
  const Say say = [&](const std::string& s) {
    if (!options.progress) return;
    std::lock_guard lock(progress_mutex);
    options.progress(s);
  };
  Encoder enc(op_spec, device);
  if (canonical_op_name(data.op) != enc.op())
    throw TorpError(ErrorCode::training, "dataset is of op " + data.op + " but the op spec describes " + enc.op());
  const Recipe recipe = parse_recipe(op_spec, options.recipe);
  const std::vector<Hyperparameters> candidates = options.candidates.empty() ? recipe.search : options.candidates;
  const CvPlan cv = plan_cv(recipe, options);

  AggregationReport agg;
  const std::vector<Configuration> configs = aggregate(data, options.reject_factor, &agg);
  say("aggregated " + std::to_string(agg.rows) + " rows into " + std::to_string(agg.configurations) +
      " configurations (median of repeats; " + std::to_string(agg.rejected_rows) + " repeats rejected as more than " +
      fmt(options.reject_factor, 2) + "x from their configuration's median, " +
      std::to_string(agg.dropped_configurations) + " configurations dropped for want of agreeing repeats)");
  const Split split = split_by_configuration(configs.size(), options.seed, options.validation_fraction, options.test_fraction);
  const PlausibilityResult plaus = judge_plausibility(configs, enc, split.train);
  const Encoded enc_data = encode(configs, op_spec, device, recipe, cv.groupings);
  if (enc_data.unservable > 0)
    say(std::to_string(enc_data.unservable) + " configurations are outside the recipe's domain and not used (first: " +
        enc_data.first_reason + ")");
  const Parts parts = usable_parts(split, enc_data, plaus, say);

  const unsigned threads = std::max(1u, options.threads > 0 ? static_cast<unsigned>(options.threads) : std::thread::hardware_concurrency());
  const Context ctx{configs, enc_data, recipe, threads, options.seed, say};
  const Fitted fin = fit_model(ctx, parts.tr, parts.va, candidates, recipe.ensemble_always, 0, true);
  const std::vector<OutOfFold> oof = cross_validate(ctx, cv, fin.chosen, parts);
  const Residuals val_res = validation_residuals(ctx, fin);
  Residuals cal_res = val_res;
  for (const auto& o : oof) cal_res.append(fold_residuals(ctx, o));
  json cv_json = json::object();
  for (std::size_t g = 0; g < oof.size(); ++g)
    cv_json[cv.groupings[g].name] = cv_grouping_report(ctx, cv.groupings[g], cv.folds, oof[g], val_res);

  ModelFile m = assemble_model(enc, op_spec, device, options, recipe, fin);
  json cal_detail = {{"domains", json::object()}};
  if (!cal_res.r.empty()) cal_detail = attach_calibration(m, calibrate_residuals(ctx, cal_res), recipe);
  cal_detail["residuals"] = cal_res.r.size();
  cal_detail["validation_residuals"] = val_res.r.size();
  json metrics = served_metrics(m, configs, split, plaus);
  if (!cv.groupings.empty()) metrics["cv"] = cv_json;
  const std::size_t cv_networks = cv.groupings.size() * static_cast<std::size_t>(cv.folds) *
                                  static_cast<std::size_t>(recipe.cv_ensemble > 0 ? recipe.cv_ensemble : fin.chosen.ensemble);
  const json search = search_json(candidates, fin);
  const Account account{data, agg, split, plaus, parts, enc_data, options, dataset_sha256, op_spec, device, recipe};
  m.provenance = provenance_json(account, fin, search, cal_detail, metrics, cv_networks);

  TrainReport report;
  report.metrics = metrics;
  report.search = search;
  report.model = std::move(m);
  report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace torp
