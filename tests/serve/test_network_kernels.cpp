// SPDX-License-Identifier: Apache-2.0
// The network kernels: the portable kernel (the only one on non-x86 CPUs) and the AVX2+FMA one
// give the same answers (up to fused multiply-add rounding), single rows and batches. Run on every
// machine, so the portable path is tested in CI even where AVX2 exists.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

#include "serve/network_eval.hpp"
#include "support/fixtures.hpp"
#include "torp/model.hpp"

using namespace torp;
using detail::FastNetwork;

namespace {

void expect_kernels_agree(const Network& net, std::size_t inputs) {
  const FastNetwork best(net), generic(net, FastNetwork::Kernel::generic);
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  constexpr std::size_t kRows = 67;  // not a multiple of the 4-row groups or 32-row tiles
  std::vector<double> x(kRows * inputs);
  for (double& v : x) v = normal(rng);
  for (std::size_t i = 0; i < x.size(); i += 5) x[i] = 0.0;  // zero inputs are skipped by both
  std::vector<double> a(best.max_width()), b(best.max_width()), batch_best, batch_generic;
  best.forward_batch(x.data(), kRows, batch_best);
  generic.forward_batch(x.data(), kRows, batch_generic);
  for (std::size_t r = 0; r < kRows; ++r) {
    const double g = generic.forward(x.data() + r * inputs, a.data(), b.data());
    const double f = best.forward(x.data() + r * inputs, a.data(), b.data());
    EXPECT_NEAR(f, g, 1e-9 * (1.0 + std::fabs(g))) << "row " << r;
    EXPECT_EQ(batch_generic[r], g) << "generic batch equals generic single, row " << r;
    EXPECT_EQ(batch_best[r], f) << "best batch equals best single, row " << r;
  }
}

}  // namespace

TEST(NetworkKernels, PortableAndAvx2AgreeOnTheTinyModel) {
  const ModelFile m = test::tiny_exp_model();
  expect_kernels_agree(m.ensemble[0], m.features.size());
}

TEST(NetworkKernels, PortableAndAvx2AgreeOnTheShippedExpModel) {
  const ModelFile m = load_model(test::source("models/wormhole/exp.json"));  // 18 -> 32 -> 32 -> 1 (x3)
  expect_kernels_agree(m.ensemble[0], m.features.size());
  const ModelFile r = load_model(test::source("models/reference/exp.json"));  // wide mlpack layers
  expect_kernels_agree(r.ensemble[0], r.features.size());
}

namespace {

std::uint64_t bits(double v) {
  std::uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

/// A ReLU network of the given widths with seeded weights in [-1, 1].
Network random_network(const std::vector<int>& widths, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Network n;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    DenseLayer d{widths[l], widths[l + 1], {}, {}};
    for (int k = 0; k < d.in * d.out; ++k) d.weights.push_back(u(rng));
    for (int o = 0; o < d.out; ++o) d.bias.push_back(u(rng));
    n.layers.push_back(d);
  }
  return n;
}

}  // namespace

// The single-query kernel skips exactly-zero inputs everywhere, the batched one not in the outputs
// past the last multiple of 4: the same bits all the same, for odd and even layer widths (the last
// input of an odd width is fused), mostly-zero inputs and hidden layers that ReLU leaves sparse.
TEST(NetworkKernels, SingleAndBatchGiveTheSameBitsOnEveryWidth) {
  const std::vector<std::vector<int>> shapes = {{1, 1},          {3, 2, 1},      {5, 7, 1},     {18, 32, 32, 1},
                                                {9, 50, 3, 1},   {5, 100, 50, 1}, {33, 13, 6, 1}, {2, 64, 1}};
  std::uint64_t seed = 1;
  for (const auto& widths : shapes) {
    const FastNetwork net(random_network(widths, seed++));
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    constexpr std::size_t kRows = 41;
    const auto in = static_cast<std::size_t>(widths.front());
    std::vector<double> x(kRows * in);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 3 == 0 ? normal(rng) : 0.0;
    std::vector<double> a(net.max_width()), b(net.max_width()), batch;
    net.forward_batch(x.data(), kRows, batch);
    for (std::size_t r = 0; r < kRows; ++r)
      EXPECT_EQ(bits(net.forward(x.data() + r * in, a.data(), b.data())), bits(batch[r]))
          << "widths " << ::testing::PrintToString(widths) << ", row " << r;
  }
}

// An output whose sum is exactly zero keeps the sign the sum over every input gives: bias -0 plus
// 0 * w (w > 0) is +0, although skipping the zero inputs alone would leave -0.
TEST(NetworkKernels, AZeroSumHasTheSignOfTheFullSum) {
  if (!detail::avx2_kernel_available()) GTEST_SKIP() << "the portable kernel skips zero inputs everywhere";
  Network n;
  n.layers.push_back(DenseLayer{2, 3, {1, 1, 1, 1, 1, 1}, {-5, -5, -5}});  // ReLU: all three hidden units 0
  n.layers.push_back(DenseLayer{3, 1, {0.5, 0.25, 2}, {-0.0}});
  const FastNetwork net(n);
  const std::vector<double> x = {1.0, 2.0};
  std::vector<double> a(net.max_width()), b(net.max_width()), batch;
  const double single = net.forward(x.data(), a.data(), b.data());
  net.forward_batch(x.data(), 1, batch);
  EXPECT_EQ(bits(single), bits(0.0));
  EXPECT_EQ(bits(batch[0]), bits(0.0));
}

namespace {

/// Every weight of the network's layers but the last rounded to a float, as training stores them.
Network with_float_hidden_weights(Network n) {
  for (std::size_t l = 0; l + 1 < n.layers.size(); ++l)
    for (double& w : n.layers[l].weights) w = static_cast<double>(static_cast<float>(w));
  return n;
}

/// The ensemble's mean as the members' single-query passes give it: their sum in order from 0.0,
/// over their count.
double members_mean(const std::vector<Network>& members, const double* x) {
  double sum = 0.0;
  for (const Network& n : members) {
    const FastNetwork f(n);
    std::vector<double> a(f.max_width()), b(f.max_width());
    sum += f.forward(x, a.data(), b.data());
  }
  return sum / static_cast<double>(members.size());
}

void expect_ensemble_matches_members(const std::vector<Network>& members, std::size_t inputs, const std::string& what) {
  const detail::FastEnsemble ens(members);
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  constexpr std::size_t kRows = 37;
  std::vector<double> x(kRows * inputs);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 4 == 0 ? 0.0 : normal(rng);
  std::vector<double> scratch(ens.scratch_size()), batch;
  ens.mean_batch(x.data(), kRows, batch);
  for (std::size_t r = 0; r < kRows; ++r) {
    const double single = ens.mean(x.data() + r * inputs, scratch.data());
    EXPECT_EQ(bits(single), bits(members_mean(members, x.data() + r * inputs))) << what << ", row " << r;
    EXPECT_EQ(bits(batch[r]), bits(single)) << what << ", batch row " << r;
  }
}

}  // namespace

// The ensemble's single-query plan (members side by side, first layers fused where their width is
// a multiple of 4, float weights read as floats) answers exactly as its members one by one, and
// as its batch path, whatever the widths and however many members.
TEST(NetworkKernels, EnsembleAnswersAsItsMembersBitForBit) {
  const std::vector<std::vector<int>> shapes = {{18, 32, 32, 1}, {5, 6, 1}, {9, 12, 7, 1}, {4, 1}, {33, 13, 6, 1}};
  std::uint64_t seed = 100;
  for (const auto& widths : shapes)
    for (const std::size_t count : {1u, 2u, 3u})
      for (const bool floats : {false, true}) {
        std::vector<Network> members;
        for (std::size_t k = 0; k < count; ++k) {
          Network n = random_network(widths, seed++);
          members.push_back(floats ? with_float_hidden_weights(std::move(n)) : std::move(n));
        }
        expect_ensemble_matches_members(members, static_cast<std::size_t>(widths.front()),
                                        ::testing::PrintToString(widths) + " x" + std::to_string(count) +
                                            (floats ? ", float hidden weights" : ", double weights"));
      }
  // Members of different shapes run one after the other.
  expect_ensemble_matches_members({random_network({6, 8, 1}, 1), random_network({6, 12, 4, 1}, 2)}, 6, "mixed shapes");
}

TEST(NetworkKernels, EnsemblePlanFusesFirstLayersAndReadsFloatsWhereExact) {
  std::vector<Network> doubles, floats;
  for (std::uint64_t k = 0; k < 3; ++k) {
    doubles.push_back(random_network({18, 32, 32, 1}, 50 + k));
    floats.push_back(with_float_hidden_weights(doubles.back()));
  }
  EXPECT_TRUE(detail::FastEnsemble(doubles).fused_first_layer());
  EXPECT_EQ(detail::FastEnsemble(doubles).float_steps(), 0u) << "random doubles are not floats";
  // Fused first layers (one step) and the three second layers read floats; the last layers
  // (doubles: training keeps the last layer's weights exact) do not.
  EXPECT_EQ(detail::FastEnsemble(floats).float_steps(), detail::avx2_kernel_available() ? 4u : 0u);
  EXPECT_EQ(detail::FastEnsemble(floats, FastNetwork::Kernel::generic).float_steps(), 0u);
  EXPECT_FALSE(detail::FastEnsemble({random_network({18, 30, 1}, 1), random_network({18, 30, 1}, 2)}).fused_first_layer())
      << "a width that is not a multiple of 4 would move outputs to another kernel path";
}

// The shipped trained models store their hidden layers' weights as floats (training rounds them),
// so their single queries read half the memory.
TEST(NetworkKernels, ShippedTrainedModelsHaveFloatHiddenWeights) {
  for (const char* file : {"models/wormhole/exp.json", "models/wormhole/matmul.json"}) {
    const ModelFile m = load_model(test::source(file));
    ASSERT_FALSE(m.ensemble.empty()) << file;
    for (const Network& n : m.ensemble)
      for (std::size_t l = 0; l + 1 < n.layers.size(); ++l)
        for (double w : n.layers[l].weights) ASSERT_EQ(static_cast<double>(static_cast<float>(w)), w) << file;
    if (detail::avx2_kernel_available()) EXPECT_GT(detail::FastEnsemble(m.ensemble).float_steps(), 0u) << file;
  }
}
