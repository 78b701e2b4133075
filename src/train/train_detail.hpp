// SPDX-License-Identifier: Apache-2.0
// Training internals shared by train.cpp, evaluate.cpp and the tests: a portable seeded RNG, the
// Armadillo MLP (forward, backward, Adam with early stopping) and robust non-negative linear fits.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <functional>
#include <utility>
#include <vector>

#include <armadillo>

#include "torp/model.hpp"
#include "torp/train/trainer.hpp"

namespace torp::detail {

/// xoshiro256** seeded through splitmix64. Unlike std:: distributions, its output is fixed by
/// this code alone, so a seed gives the same stream with every compiler and standard library.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ULL;
      s = mix(seed);
    }
  }
  /// splitmix64's finalizer: a bijective 64-bit hash.
  static std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n), unbiased (rejection of the short last block).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      std::uint64_t r = next();
      if (r >= limit) return r % n;
    }
  }
  /// Standard normal (Box-Muller, one value per call).
  double normal();
  /// Fisher-Yates shuffle.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<std::size_t>(below(i))]);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4]{};
};

/// An independent seed for a numbered purpose (candidate i, ensemble member j...).
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  return Rng::mix(seed ^ Rng::mix(stream + 0x632BE59BD9B4E019ULL));
}

/// Dense ReLU network in training form: layer l computes W[l] * a + b[l] (W out x in), ReLU after
/// every layer but the last, one output. Inputs are columns (features x samples).
struct Mlp {
  std::vector<arma::mat> W;
  std::vector<arma::vec> b;
};

/// He initialization (weights ~ N(0, 2 / fan_in), biases 0) from `rng`.
Mlp init_mlp(arma::uword inputs, const std::vector<int>& hidden, Rng& rng);
/// Outputs for the columns of X.
arma::rowvec mlp_forward(const Mlp& net, const arma::mat& X);
/// Mean loss over the columns of X and its gradient (same shapes as `net`) in `grad`. The loss
/// is the squared error, or with huber > 0 the Huber loss scaled to match it inside |d| <= huber.
double mlp_loss_grad(const Mlp& net, const arma::mat& X, const arma::rowvec& y, Mlp& grad, double huber = 0.0);

struct MlpFit {
  Mlp net;                   ///< weights of the best validation epoch
  int epochs = 0;            ///< epochs run
  int best_epoch = 0;        ///< 1-based epoch of the best validation loss
  double validation_loss = 0;
};
/// Adam (decoupled weight decay) on mini-batches reshuffled every epoch, learning rate halved
/// every patience/4 epochs without validation improvement, early stopping on the validation mean
/// absolute error with the best weights kept. Targets are in units of target_scale log units
/// (hp.huber is converted). Deterministic for a seed.
MlpFit fit_mlp(const arma::mat& X_train, const arma::rowvec& y_train, const arma::mat& X_val,
               const arma::rowvec& y_val, const Hyperparameters& hp, std::uint64_t seed, double target_scale = 1.0);

/// The network in model-file form, its output mapped to scale * output + shift (folded into the
/// last layer, so a network trained on a standardized target predicts the raw target).
Network to_network(const Mlp& net, double scale, double shift);

/// Residual memory of the training configurations `members` (ascending indices into the
/// per-configuration vectors): entries {key, mean residual, count} per distinct own_key, sorted by
/// key. inputs is (2 * lookups) x configurations: row 2l the mean found by lookup l
/// (lookup_key[l][i]), row 2l + 1 whether it found one (0/1). A member whose lookup key equals its
/// own key is left out of that mean (sum - own) / (count - 1), not found if alone, so training
/// sees what an unseen configuration sees; every other configuration sees the entries as stored.
struct MemoryTable {
  std::vector<ResidualMemory::Entry> entries;
  arma::mat inputs;
};
MemoryTable build_memory(const std::vector<std::vector<double>>& own_key,
                         const std::vector<std::vector<std::vector<double>>>& lookup_key,
                         const std::vector<double>& residual, const std::vector<std::size_t>& members);

/// A recipe's "search" block -> its candidates (hidden x learning_rate x batch_size over the
/// scalars); every key left out takes search_defaults(). Throws TorpError(training) naming
/// /recipes/<recipe>/search/... for a bad value.
std::vector<Hyperparameters> parse_search(const nlohmann::json& search, const std::string& recipe);

/// Split-conformal central interval [lo, hi] of residuals r at `coverage` (e.g. 0.9): the
/// floor((n + 1)(1 - coverage) / 2)-th and ceil((n + 1)(1 + coverage) / 2)-th smallest values
/// (1-based, clamped into 1..n). {0, 0} for no residuals.
std::array<double, 2> conformal_interval(std::vector<double> r, double coverage);

/// The fewest residuals whose split-conformal ranks both exist: floor((n + 1)(1 - coverage) / 2)
/// >= 1, i.e. n >= ceil(2 / (1 - coverage)) - 1 (19 at 90%). With fewer, the conformal interval is
/// unbounded (the needed order statistic does not exist), so a band borrows (calibrate()); with
/// this many or more, its expected coverage is nominal whatever n (exchangeable residuals).
std::size_t min_conformal_residuals(double coverage);

/// Interval quantiles per answer domain (0 seen, 1 inside, 2 outside) from log residuals
/// log(label / prediction) and their domains. A domain with at least min_conformal_residuals()
/// residuals gets its own quantiles; otherwise: inside <- inside + outside pooled (if enough) <-
/// all pooled; seen <- inside's interval; outside <- inside's interval with both ends (taken <= 0
/// and >= 0) doubled.
/// With `group` (one value per residual, e.g. the dtype class; empty = no groups), every (group,
/// domain) with at least min_conformal_residuals() residuals also gets its own quantiles; the
/// others use the domain's band (band()).
struct DomainCalibration {
  std::array<double, 3> lo{}, hi{};
  std::array<std::size_t, 3> n{};      ///< residuals the interval was computed from
  std::array<std::size_t, 3> own_n{};  ///< residuals of the domain itself
  std::array<std::string, 3> from;     ///< "own", or the fallback used
  struct Group {
    double key = 0.0;
    std::array<bool, 3> own{};           ///< the group has a band of its own in this domain
    std::array<double, 3> lo{}, hi{};
    std::array<std::size_t, 3> n{};      ///< the group's residuals in the domain
  };
  std::vector<Group> groups;  ///< by ascending key
  /// The band [lo, hi] an answer of domain d whose group value is g gets as served: the group's own
  /// band, else the domain's.
  [[nodiscard]] std::array<double, 2> band(int d, double g) const;
};
DomainCalibration calibrate(const std::vector<double>& residual, const std::vector<int>& domain, double coverage,
                            const std::vector<double>& group = {});

/// Fold (0..folds-1) of each configuration in `members` for grouped k-fold cross-validation:
/// configurations with equal keys share a group, every group is in exactly one fold; groups
/// (sorted by key) are dealt round-robin in a seeded random order, so fold sizes in groups differ
/// by at most one. Non-members get -1.
std::vector<int> group_folds(const std::vector<std::vector<double>>& keys, const std::vector<std::size_t>& members, int folds,
                             std::uint64_t seed);

/// Non-negative least squares min |A x - b|, x >= 0 (Lawson-Hanson active set).
arma::vec nnls(const arma::mat& A, const arma::vec& b);

/// Robust law fit: coefficients c >= 0 of y ~ A c minimizing sum_i |log((A c)_i / y_i)| (least
/// absolute log deviations: symmetric in over- and under-prediction, so shifted labels in either
/// direction pull equally little). Starts from least absolute deviations, then Gauss-Newton
/// steps solved as reweighted NNLS. y must be positive.
arma::vec fit_log_lad(const arma::mat& A, const arma::vec& y);

}  // namespace torp::detail
