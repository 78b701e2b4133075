// SPDX-License-Identifier: Apache-2.0
#include "network_eval.hpp"

#include <algorithm>

namespace torp::detail {
namespace {

// y[0..out) = bias + sum_i x[i] * wt[i*out .. i*out+out); ReLU if relu. The body is compiled
// twice: for AVX2+FMA and for the baseline ISA; the CPU picks at load time (no -march needed).
#define TORP_DENSE_BODY                                                   \
  for (int o = 0; o < out; ++o) y[o] = bias[o];                           \
  for (int i = 0; i < in; ++i) {                                          \
    const double xi = x[i];                                               \
    if (xi == 0.0) continue; /* ReLU outputs are often exactly zero */    \
    const double* w = wt + static_cast<long>(i) * out;                    \
    for (int o = 0; o < out; ++o) y[o] += xi * w[o];                      \
  }                                                                       \
  if (relu)                                                               \
    for (int o = 0; o < out; ++o) y[o] = y[o] > 0.0 ? y[o] : 0.0;

__attribute__((target("avx2,fma"))) void dense_avx2(const double* __restrict x, int in, const double* __restrict wt,
                                                    const double* __restrict bias, int out, double* __restrict y,
                                                    bool relu) {
  TORP_DENSE_BODY
}

void dense_generic(const double* __restrict x, int in, const double* __restrict wt, const double* __restrict bias,
                   int out, double* __restrict y, bool relu) {
  TORP_DENSE_BODY
}
#undef TORP_DENSE_BODY

using DenseFn = void (*)(const double*, int, const double*, const double*, int, double*, bool);

DenseFn pick_dense() {
  __builtin_cpu_init();
  return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? dense_avx2 : dense_generic;
}

const DenseFn dense = pick_dense();

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
