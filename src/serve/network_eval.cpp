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
#include <cstdint>

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
/// Four weights as doubles: loaded, or loaded as floats and widened (exactly).
__attribute__((target("avx2,fma"), always_inline)) inline __m256d load4(const double* w) { return _mm256_loadu_pd(w); }
__attribute__((target("avx2,fma"), always_inline)) inline __m256d load4(const float* w) {
  return _mm256_cvtps_pd(_mm_loadu_ps(w));
}

template <int kVecs, class W>
__attribute__((target("avx2,fma"), always_inline)) inline int dense_block_avx2(
    const double* __restrict x, const int* __restrict nz, int n_nz, const W* __restrict wt,
    const double* __restrict bias, int out, double* __restrict y, bool relu, int o0) {
  const __m256d zero = _mm256_setzero_pd();
  for (; o0 + 4 * kVecs <= out; o0 += 4 * kVecs) {
    __m256d acc[kVecs];
    for (int j = 0; j < kVecs; ++j) acc[j] = _mm256_loadu_pd(bias + o0 + 4 * j);
    for (int t = 0; t < n_nz; ++t) {
      const int i = nz[t];
      const __m256d xv = _mm256_set1_pd(x[i]);
      const W* w = wt + static_cast<long>(i) * out + o0;
      for (int j = 0; j < kVecs; ++j) acc[j] = _mm256_fmadd_pd(xv, load4(w + 4 * j), acc[j]);
    }
    for (int j = 0; j < kVecs; ++j) _mm256_storeu_pd(y + o0 + 4 * j, relu ? _mm256_max_pd(acc[j], zero) : acc[j]);
  }
  return o0;
}

/// acc + x * w with the product rounded on its own (never contracted into a fused multiply-add).
__attribute__((target("avx2,fma"), always_inline)) inline double add_product(double acc, double x, double w) {
  double p = x * w;
  asm("" : "+x"(p));  // the compiler cannot see through this, so it cannot fuse p into the addition
  return acc + p;
}

/// acc + x * w rounded once (fused multiply-add).
__attribute__((target("avx2,fma"), always_inline)) inline double add_fused(double acc, double x, double w) {
  return _mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(x), _mm_set_sd(w), _mm_set_sd(acc)));
}

/// One output past the last multiple of 4 (w = wt + o, stride = out): bias plus, over the inputs
/// in order, each product rounded on its own, except that the last input of an odd-width layer is
/// added by a fused multiply-add. This is the arithmetic GCC 12 -O3 made of the plain loop
/// `acc += x[i] * w[i]` these kernels had (products of input pairs by one vector multiply, added
/// in order; the odd last input fused), written out so that answers do not depend on how the
/// compiler vectorizes, and so that tail_output_nonzero (single queries) and dense_tail4 (batches)
/// give the same bits.
template <class W>
__attribute__((target("avx2,fma"), always_inline)) inline double tail_output(const double* __restrict x, int in,
                                                                             const W* __restrict w, int stride,
                                                                             double bias) {
  double acc = bias;
  const int even = in & ~1;
  for (int i = 0; i < even; ++i) acc = add_product(acc, x[i], w[static_cast<long>(i) * stride]);
  if (in & 1) acc = add_fused(acc, x[even], w[static_cast<long>(even) * stride]);
  return acc;
}

/// tail_output over the nonzero inputs nz only (the last layer of a network has one output: this
/// is most of its cost when ReLU zeroed most hidden units). A skipped input would add 0 * w = +-0
/// (weights are finite), which leaves a non-zero sum unchanged exactly, and a later non-zero term
/// gives the same sum whatever the sign of a zero before it; so only a sum that ends exactly zero
/// could differ (+0 or -0), and it is recomputed over every input.
template <class W>
__attribute__((target("avx2,fma"), always_inline)) inline double tail_output_nonzero(
    const double* __restrict x, const int* __restrict nz, int n_nz, int in, const W* __restrict w, int stride,
    double bias) {
  const bool fused_last = (in & 1) != 0 && n_nz > 0 && nz[n_nz - 1] == in - 1;
  const int n = n_nz - (fused_last ? 1 : 0);
  double acc = bias;
  for (int t = 0; t < n; ++t) acc = add_product(acc, x[nz[t]], w[static_cast<long>(nz[t]) * stride]);
  if (fused_last) acc = add_fused(acc, x[in - 1], w[static_cast<long>(in - 1) * stride]);
  return acc == 0.0 ? tail_output(x, in, w, stride, bias) : acc;
}

/// Input i of rows x0 .. x0 + 3 * in, one per lane.
__attribute__((target("avx2,fma"), always_inline)) inline __m256d column4(const double* __restrict x0, int in, int i) {
  return _mm256_set_pd(x0[3 * in + i], x0[2 * in + i], x0[in + i], x0[i]);
}

/// The outputs past the last multiple of 4 (from o on) of rows x0 .. x0 + 3 * in at once, one row
/// per vector lane: each lane's arithmetic is tail_output's (products rounded on their own, added
/// in order; the odd last input fused), so the batched kernel answers as the single one.
__attribute__((target("avx2,fma"), always_inline)) inline void dense_tail4(const double* __restrict x0, int in,
                                                                           const double* __restrict wt,
                                                                           const double* __restrict bias, int out,
                                                                           double* __restrict y0, bool relu, int o) {
  const int even = in & ~1;
  for (; o < out; ++o) {
    __m256d acc = _mm256_set1_pd(bias[o]);
    for (int i = 0; i < even; ++i) {
      __m256d p = _mm256_mul_pd(column4(x0, in, i), _mm256_set1_pd(wt[static_cast<long>(i) * out + o]));
      asm("" : "+x"(p));  // no contraction into a fused multiply-add, as add_product
      acc = _mm256_add_pd(acc, p);
    }
    if (in & 1) acc = _mm256_fmadd_pd(column4(x0, in, even), _mm256_set1_pd(wt[static_cast<long>(even) * out + o]), acc);
    alignas(32) double r[4];
    _mm256_store_pd(r, acc);
    for (int k = 0; k < 4; ++k) y0[k * out + o] = (relu && r[k] < 0.0) ? 0.0 : r[k];
  }
}

/// For each 4-bit mask: the positions of its set bits, in order (the rest is never read).
alignas(16) constexpr std::int32_t kSetBits[16][4] = {
    {0, 0, 0, 0}, {0, 0, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0}, {2, 0, 0, 0}, {0, 2, 0, 0}, {1, 2, 0, 0}, {0, 1, 2, 0},
    {3, 0, 0, 0}, {0, 3, 0, 0}, {1, 3, 0, 0}, {0, 1, 3, 0}, {2, 3, 0, 0}, {0, 2, 3, 0}, {1, 2, 3, 0}, {0, 1, 2, 3}};
constexpr int kBitCount[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};

/// The indices of the inputs that are not exactly zero, in order, into nz (room for in + 3
/// ints); their count. Four inputs per step: compare, mask, and store the mask's positions.
__attribute__((target("avx2,fma"), always_inline)) inline int nonzero_inputs(const double* __restrict x, int in,
                                                                             int* __restrict nz) {
  const __m256d zero = _mm256_setzero_pd();
  int n_nz = 0, i = 0;
  for (; i + 4 <= in; i += 4) {
    // x != 0.0, NaN included (unordered, not equal), as the scalar test below.
    const int mask = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(x + i), zero, _CMP_NEQ_UQ));
    const __m128i at = _mm_add_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(kSetBits[mask])), _mm_set1_epi32(i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(nz + n_nz), at);
    n_nz += kBitCount[mask];
  }
  for (; i < in; ++i) {
    nz[n_nz] = i;
    n_nz += x[i] != 0.0 ? 1 : 0;
  }
  return n_nz;
}

/// One row through a dense layer whose weights are W (double, or float: the same values when
/// every weight is a float, read from half the memory).
template <class W>
__attribute__((target("avx2,fma"), always_inline)) inline void dense_avx2_row(const double* __restrict x, int in,
                                                                              const W* __restrict wt,
                                                                              const double* __restrict bias, int out,
                                                                              double* __restrict y, bool relu) {
  // Inputs that are exactly zero (ReLU) add exact zeros: list the others once, without branches,
  // instead of testing every input in every block (an unpredictable branch).
  int nz[kMaxWidth + 4];
  const int n_nz = nonzero_inputs(x, in, nz);
  int o = dense_block_avx2<8, W>(x, nz, n_nz, wt, bias, out, y, relu, 0);
  o = dense_block_avx2<1, W>(x, nz, n_nz, wt, bias, out, y, relu, o);
  for (; o < out; ++o) {
    const double acc = tail_output_nonzero<W>(x, nz, n_nz, in, wt + o, out, bias[o]);
    y[o] = (relu && acc < 0.0) ? 0.0 : acc;
  }
}

__attribute__((target("avx2,fma"))) void dense_avx2(const double* __restrict x, int in, const double* __restrict wt,
                                                    const double* __restrict bias, int out, double* __restrict y,
                                                    bool relu) {
  dense_avx2_row<double>(x, in, wt, bias, out, y, relu);
}

__attribute__((target("avx2,fma"))) void dense_avx2_f32(const double* __restrict x, int in, const float* __restrict wt,
                                                        const double* __restrict bias, int out, double* __restrict y,
                                                        bool relu) {
  dense_avx2_row<float>(x, in, wt, bias, out, y, relu);
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
    dense_tail4(x0, in, wt, bias, out, y0, relu, out4);
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

namespace {

/// The kernels a FastNetwork::Kernel stands for on this CPU (dense_f32 null: float weights are
/// read as doubles).
struct Kernels {
  DenseFn dense = dense_generic;
  DenseF32Fn dense_f32 = nullptr;
  DenseRowsFn dense_rows = dense_rows_generic;
};

Kernels kernels(FastNetwork::Kernel kernel) {
#ifdef TORP_X86
  if (kAvx2 && kernel == FastNetwork::Kernel::best) return {dense_avx2, dense_avx2_f32, dense_rows_avx2};
#endif
  (void)kernel;
  return {};
}

}  // namespace

FastNetwork::FastNetwork(const Network& net, Kernel kernel)
    : dense_(kernels(kernel).dense), dense_rows_(kernels(kernel).dense_rows) {
  for (const auto& d : net.layers) {
    if (d.in > kMaxWidth)
      throw TorpError(ErrorCode::model_format, "layer input width " + std::to_string(d.in) + " exceeds " +
                                                   std::to_string(kMaxWidth) + ", the widest TORP serves");
    Layer l{d.in, d.out, AlignedDoubles(static_cast<std::size_t>(d.in) * d.out), {},
            AlignedDoubles(d.bias.begin(), d.bias.end())};
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

namespace {

/// Elements of T up to the next cache line.
template <class T>
std::size_t line_up(std::size_t n) {
  constexpr std::size_t k = 64 / sizeof(T);
  return (n + k - 1) / k * k;
}

bool all_floats(const AlignedDoubles& v) {
  return std::all_of(v.begin(), v.end(), [](double w) { return static_cast<double>(static_cast<float>(w)) == w; });
}

}  // namespace

FastEnsemble::FastEnsemble(const std::vector<Network>& members, FastNetwork::Kernel kernel)
    : dense_(kernels(kernel).dense), dense_f32_(kernels(kernel).dense_f32) {
  std::size_t widest = 0;
  for (const auto& n : members) {
    members_.emplace_back(n, kernel);
    widest = std::max(widest, members_.back().max_width());
  }
  if (members_.empty()) return;
  const auto& first = members_.front().layers_;
  side_by_side_ = !first.empty() && std::all_of(members_.begin(), members_.end(), [&](const FastNetwork& m) {
    return std::equal(m.layers_.begin(), m.layers_.end(), first.begin(), first.end(),
                      [](const FastNetwork::Layer& a, const FastNetwork::Layer& b) { return a.in == b.in && a.out == b.out; });
  });
  // Side by side, layer l of member k writes at k * (its width) in one of two buffers.
  scratch_size_ = 2 * (side_by_side_ ? members_.size() : 1) * widest;
  if (side_by_side_) plan_side_by_side();
}

void FastEnsemble::plan_side_by_side() {
  const std::size_t k_count = members_.size(), layers = members_.front().layers_.size();
  const int out0 = members_.front().layers_.front().out;
  constexpr std::size_t kMaxFusedWidth = std::size_t{1} << 20;  // keeps widths in int
  fused_ = k_count > 1 && layers > 1 && out0 % 4 == 0 && k_count * static_cast<std::size_t>(out0) <= kMaxFusedWidth;
  // The steps in the order mean() runs them, each with the layers whose weights it reads (the
  // fused first step: every member's, columns side by side).
  std::vector<std::vector<const FastNetwork::Layer*>> sources;
  for (std::size_t l = 0; l < layers; ++l) {
    const FastNetwork::Layer& head = members_.front().layers_[l];
    const bool relu = l + 1 < layers;
    if (l == 0 && fused_) {
      steps_.push_back(Step{head.in, out0 * static_cast<int>(k_count), -1, 0, 0, 0, 0, 0, false, relu});
      sources.emplace_back();
      for (const auto& m : members_) sources.back().push_back(&m.layers_.front());
      continue;
    }
    for (std::size_t k = 0; k < k_count; ++k) {
      steps_.push_back(Step{head.in, head.out, l == 0 ? -1 : static_cast<int>((l - 1) % 2), k * head.in,
                            static_cast<int>(l % 2), k * head.out, 0, 0, false, relu});
      sources.push_back({&members_[k].layers_[l]});
    }
  }
  // Pack weights (floats where every weight of the step is one and the kernel reads floats) and
  // biases in that order, each block on its own cache lines.
  std::size_t doubles = 0, floats = 0;
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    Step& st = steps_[s];
    const std::size_t n = static_cast<std::size_t>(st.in) * st.out;
    st.f32 = dense_f32_ != nullptr &&
             std::all_of(sources[s].begin(), sources[s].end(), [](const FastNetwork::Layer* l) { return all_floats(l->wt); });
    st.weights = st.f32 ? floats : doubles;
    (st.f32 ? floats : doubles) += st.f32 ? line_up<float>(n) : line_up<double>(n);
    st.bias = doubles;
    doubles += line_up<double>(static_cast<std::size_t>(st.out));
  }
  arena_.assign(doubles, 0.0);
  arena32_.assign(floats, 0.0f);
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    const Step& st = steps_[s];
    const int part = st.out / static_cast<int>(sources[s].size());  // the columns of one source layer
    for (std::size_t k = 0; k < sources[s].size(); ++k) {
      const FastNetwork::Layer& l = *sources[s][k];
      for (int i = 0; i < st.in; ++i)
        for (int o = 0; o < part; ++o) {
          const double w = l.wt[static_cast<std::size_t>(i) * part + o];
          const std::size_t at = st.weights + static_cast<std::size_t>(i) * st.out + k * part + o;
          if (st.f32) arena32_[at] = static_cast<float>(w);
          else arena_[at] = w;
        }
      std::copy(l.bias.begin(), l.bias.end(), arena_.begin() + static_cast<long>(st.bias + k * part));
    }
  }
}

double FastEnsemble::mean(const double* x, double* scratch) const {
  double sum = 0.0;
  if (members_.empty()) return sum;
  const std::size_t half = scratch_size_ / 2;
  if (!side_by_side_) {
    for (const auto& m : members_) sum += m.forward(x, scratch, scratch + half);
    return sum / static_cast<double>(members_.size());
  }
  double* bufs[2] = {scratch, scratch + half};
  for (const Step& st : steps_) {
    const double* in = st.from < 0 ? x : bufs[st.from] + st.from_offset;
    double* y = bufs[st.to] + st.to_offset;
    if (st.f32) dense_f32_(in, st.in, arena32_.data() + st.weights, arena_.data() + st.bias, st.out, y, st.relu);
    else dense_(in, st.in, arena_.data() + st.weights, arena_.data() + st.bias, st.out, y, st.relu);
  }
  const std::size_t layers = members_.front().layers_.size();
  const double* last = bufs[(layers - 1) % 2];
  const auto last_out = static_cast<std::size_t>(members_.front().layers_.back().out);
  for (std::size_t k = 0; k < members_.size(); ++k) sum += last[k * last_out];  // each member's first output
  return sum / static_cast<double>(members_.size());
}

void FastEnsemble::mean_batch(const double* x, std::size_t n, std::vector<double>& out) const {
  thread_local std::vector<double> member;
  out.assign(n, 0.0);
  if (members_.empty()) return;
  for (const auto& m : members_) {
    m.forward_batch(x, n, member);
    for (std::size_t r = 0; r < n; ++r) out[r] += member[r];
  }
  for (double& v : out) v /= static_cast<double>(members_.size());
}

}  // namespace torp::detail
