// SPDX-License-Identifier: Apache-2.0
// Dense forward pass for serving: an AVX2+FMA kernel with register-blocked accumulators and a
// portable one; the CPU picks at load time, so no -march flag is needed. On other architectures
// (TORP_X86 undefined) only the portable kernel is compiled.
#include "serve/network_eval.hpp"

#if defined(__x86_64__) || defined(__i386__)
#define TORP_X86 1
#include <immintrin.h>
#endif

#include <algorithm>

namespace torp::detail {

// y[o] = bias[o] + sum_i x[i] * wt[i*out + o] (ReLU if relu). Both kernels sum each output over i
// in order; they differ only by fused multiply-add rounding.

void dense_generic(const double* __restrict x, int in, const double* __restrict wt, const double* __restrict bias,
                   int out, double* __restrict y, bool relu) {
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

/// Widest layer input the single-query kernel takes (FastNetwork checks it at load).
constexpr int kMaxWidth = 4096;

void dense_rows_generic(const double* X, std::size_t n, int in, const double* wt, const double* /*panels*/,
                        const double* bias, int out, double* Y, bool relu) {
  for (std::size_t r = 0; r < n; ++r) dense_generic(X + r * in, in, wt, bias, out, Y + r * out, relu);
}

namespace {

#ifdef TORP_X86

/// Blocks of 4 * kVecs outputs whose accumulators stay in registers across all inputs: one load
/// and one FMA per 4 multiply-adds, and kVecs independent dependency chains.
template <int kVecs>
__attribute__((target("avx2,fma"), always_inline)) inline int dense_block_avx2(
    const double* __restrict x, const int* __restrict nz, int n_nz, const double* __restrict wt,
    const double* __restrict bias, int out, double* __restrict y, bool relu, int o0) {
  const __m256d zero = _mm256_setzero_pd();
  for (; o0 + 4 * kVecs <= out; o0 += 4 * kVecs) {
    __m256d acc[kVecs];
    for (int j = 0; j < kVecs; ++j) acc[j] = _mm256_loadu_pd(bias + o0 + 4 * j);
    for (int t = 0; t < n_nz; ++t) {
      const int i = nz[t];
      const __m256d xv = _mm256_set1_pd(x[i]);
      const double* w = wt + static_cast<long>(i) * out + o0;
      for (int j = 0; j < kVecs; ++j) acc[j] = _mm256_fmadd_pd(xv, _mm256_loadu_pd(w + 4 * j), acc[j]);
    }
    for (int j = 0; j < kVecs; ++j) _mm256_storeu_pd(y + o0 + 4 * j, relu ? _mm256_max_pd(acc[j], zero) : acc[j]);
  }
  return o0;
}

/// Outputs past the last multiple of 4: plain multiply-add over every input (shared by the single
/// and the batched kernel so both give bit-identical answers).
__attribute__((target("avx2,fma"), always_inline)) inline void dense_tail(const double* __restrict x, int in,
                                                                          const double* __restrict wt,
                                                                          const double* __restrict bias, int out,
                                                                          double* __restrict y, bool relu, int o) {
  for (; o < out; ++o) {
    double acc = bias[o];
    for (int i = 0; i < in; ++i) acc += x[i] * wt[static_cast<long>(i) * out + o];
    y[o] = (relu && acc < 0.0) ? 0.0 : acc;
  }
}

__attribute__((target("avx2,fma"))) void dense_avx2(const double* __restrict x, int in, const double* __restrict wt,
                                                    const double* __restrict bias, int out, double* __restrict y,
                                                    bool relu) {
  // Inputs that are exactly zero (ReLU) add exact zeros: list the others once, without branches,
  // instead of testing every input in every block (an unpredictable branch).
  int nz[kMaxWidth];
  int n_nz = 0;
  for (int i = 0; i < in; ++i) {
    nz[n_nz] = i;
    n_nz += x[i] != 0.0 ? 1 : 0;
  }
  int o = dense_block_avx2<8>(x, nz, n_nz, wt, bias, out, y, relu, 0);
  o = dense_block_avx2<1>(x, nz, n_nz, wt, bias, out, y, relu, o);
  dense_tail(x, in, wt, bias, out, y, relu, o);
}

/// Y (n x out) = X (n x in) . Wt + bias for a tile of rows. Outputs go in panels of 8 whose
/// weights are packed contiguously (in x 8); each panel stays in L1 while every group of four
/// rows passes over it, and every weight load feeds four rows' FMAs. Each output is the same FMA
/// chain over inputs as in dense_avx2 (a zero input adds an exact zero there and is skipped),
/// so answers match the single-query kernel.
__attribute__((target("avx2,fma"))) void dense_rows_avx2(const double* __restrict X, std::size_t n, int in,
                                                         const double* __restrict wt,
                                                         const double* __restrict panels,
                                                         const double* __restrict bias, int out,
                                                         double* __restrict Y, bool relu) {
  const __m256d zero = _mm256_setzero_pd();
  const int out8 = out & ~7, out4 = out & ~3;
  const std::size_t n4 = n & ~std::size_t{3};
  for (int o = 0; o < out8; o += 8) {
    const double* wp = panels + static_cast<long>(o) * in;
    for (std::size_t r = 0; r < n4; r += 4) {
      const double* x0 = X + r * in;
      double* y0 = Y + r * out;
      __m256d acc[4][2];
      for (int k = 0; k < 4; ++k) {
        acc[k][0] = _mm256_loadu_pd(bias + o);
        acc[k][1] = _mm256_loadu_pd(bias + o + 4);
      }
      for (int i = 0; i < in; ++i) {
        const __m256d w0 = _mm256_loadu_pd(wp + 8 * i), w1 = _mm256_loadu_pd(wp + 8 * i + 4);
        for (int k = 0; k < 4; ++k) {
          const __m256d xv = _mm256_set1_pd(x0[k * in + i]);
          acc[k][0] = _mm256_fmadd_pd(xv, w0, acc[k][0]);
          acc[k][1] = _mm256_fmadd_pd(xv, w1, acc[k][1]);
        }
      }
      for (int k = 0; k < 4; ++k) {
        _mm256_storeu_pd(y0 + k * out + o, relu ? _mm256_max_pd(acc[k][0], zero) : acc[k][0]);
        _mm256_storeu_pd(y0 + k * out + o + 4, relu ? _mm256_max_pd(acc[k][1], zero) : acc[k][1]);
      }
    }
  }
  for (std::size_t r = 0; r < n4; r += 4) {
    const double* x0 = X + r * in;
    double* y0 = Y + r * out;
    for (int o = out8; o < out4; o += 4) {
      __m256d acc[4];
      for (int k = 0; k < 4; ++k) acc[k] = _mm256_loadu_pd(bias + o);
      for (int i = 0; i < in; ++i) {
        const __m256d w0 = _mm256_loadu_pd(wt + static_cast<long>(i) * out + o);
        for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_pd(_mm256_set1_pd(x0[k * in + i]), w0, acc[k]);
      }
      for (int k = 0; k < 4; ++k) _mm256_storeu_pd(y0 + k * out + o, relu ? _mm256_max_pd(acc[k], zero) : acc[k]);
    }
    for (int k = 0; k < 4; ++k) dense_tail(x0 + k * in, in, wt, bias, out, y0 + k * out, relu, out4);
  }
  for (std::size_t r = n4; r < n; ++r) dense_avx2(X + r * in, in, wt, bias, out, Y + r * out, relu);
}

bool has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
bool has_avx2_fma() { return false; }
#endif

const bool kAvx2 = has_avx2_fma();

}  // namespace

bool avx2_kernel_available() { return kAvx2; }

FastNetwork::FastNetwork(const Network& net, Kernel kernel) {
#ifdef TORP_X86
  if (kAvx2 && kernel == Kernel::best) {
    dense_ = dense_avx2;
    dense_rows_ = dense_rows_avx2;
  }
#else
  (void)kernel;
#endif
  for (const auto& d : net.layers) {
    if (d.in > kMaxWidth)
      throw TorpError(ErrorCode::model_format, "layer input width " + std::to_string(d.in) + " exceeds " +
                                                   std::to_string(kMaxWidth) + ", the widest TORP serves");
    Layer l{d.in, d.out, std::vector<double>(static_cast<std::size_t>(d.in) * d.out), {}, d.bias};
    for (int o = 0; o < d.out; ++o)
      for (int i = 0; i < d.in; ++i)
        l.wt[static_cast<std::size_t>(i) * d.out + o] = d.weights[static_cast<std::size_t>(o) * d.in + i];
    const int out8 = d.out & ~7;
    l.panels.resize(static_cast<std::size_t>(out8) * d.in);
    for (int o = 0; o < out8; ++o)
      for (int i = 0; i < d.in; ++i)
        l.panels[static_cast<std::size_t>(o / 8) * d.in * 8 + static_cast<std::size_t>(i) * 8 + o % 8] =
            d.weights[static_cast<std::size_t>(o) * d.in + i];
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
    dense_(cur, L.in, L.wt.data(), L.bias.data(), L.out, y, l + 1 < layers_.size());
    cur = y;
  }
  return cur[0];
}

void FastNetwork::forward_batch(const double* x, std::size_t n, std::vector<double>& out) const {
  // Rows go through all layers in tiles small enough that activations stay in L1/L2.
  constexpr std::size_t kTile = 32;
  thread_local std::vector<double> a, b;
  a.resize(kTile * max_width_);
  b.resize(kTile * max_width_);
  out.resize(n);
  const std::size_t in0 = layers_.empty() ? 0 : static_cast<std::size_t>(layers_.front().in);
  for (std::size_t r0 = 0; r0 < n; r0 += kTile) {
    const std::size_t rows = std::min(kTile, n - r0);
    const double* cur = x + r0 * in0;
    double* bufs[2] = {a.data(), b.data()};
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      double* y = bufs[l % 2];
      dense_rows_(cur, rows, L.in, L.wt.data(), L.panels.data(), L.bias.data(), L.out, y, l + 1 < layers_.size());
      cur = y;
    }
    std::copy(cur, cur + rows, out.begin() + static_cast<long>(r0));  // the last layer has one output
  }
}

}  // namespace torp::detail
