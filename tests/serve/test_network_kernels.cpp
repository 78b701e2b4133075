// SPDX-License-Identifier: Apache-2.0
// The network kernels: the portable kernel (the only one on non-x86 CPUs) and the AVX2+FMA one
// give the same answers (up to fused multiply-add rounding), single rows and batches. Run on every
// machine, so the portable path is tested in CI even where AVX2 exists.
#include <gtest/gtest.h>

#include <cmath>
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
  const ModelFile m = load_model(test::source("models/wormhole/exp.json"));  // 18 -> 64 -> 64 -> 1
  expect_kernels_agree(m.ensemble[0], m.features.size());
  const ModelFile r = load_model(test::source("models/reference/exp.json"));  // wide mlpack layers
  expect_kernels_agree(r.ensemble[0], r.features.size());
}
