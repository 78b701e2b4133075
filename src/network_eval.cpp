// SPDX-License-Identifier: Apache-2.0
#include "network_eval.hpp"

#include <algorithm>

namespace torp::detail {
namespace {

// y[0..out) = bias + sum_i x[i] * wt[i*out .. i*out+out); ReLU if relu.
__attribute__((target_clones("arch=haswell", "default")))
void dense(const double* __restrict x, int in, const double* __restrict wt, const double* __restrict bias, int out,
           double* __restrict y, bool relu) {
  for (int o = 0; o < out; ++o) y[o] = bias[o];
  for (int i = 0; i < in; ++i) {
    const double xi = x[i];
    if (xi == 0.0) continue;  // ReLU outputs are often exactly zero
    const double* w = wt + static_cast<long>(i) * out;
    for (int o = 0; o < out; ++o) y[o] += xi * w[o];
  }
  if (relu)
    for (int o = 0; o < out; ++o) y[o] = y[o] > 0.0 ? y[o] : 0.0;
}

}  // namespace

FastNetwork::FastNetwork(const Network& net) {
  for (const auto& d : net.layers) {
    Layer l{d.in, d.out, std::vector<double>(static_cast<std::size_t>(d.in) * d.out), d.bias};
    for (int o = 0; o < d.out; ++o)
      for (int i = 0; i < d.in; ++i)
        l.wt[static_cast<std::size_t>(i) * d.out + o] = d.weights[static_cast<std::size_t>(o) * d.in + i];
    max_width_ = std::max({max_width_, static_cast<std::size_t>(d.in), static_cast<std::size_t>(d.out)});
    layers_.push_back(std::move(l));
  }
}

double FastNetwork::forward(const double* x, double* a, double* b) const {
  const double* cur = x;
  double* bufs[2] = {a, b};
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    double* y = bufs[l % 2];
    dense(cur, L.in, L.wt.data(), L.bias.data(), L.out, y, l + 1 < layers_.size());
    cur = y;
  }
  return cur[0];
}

}  // namespace torp::detail
