// SPDX-License-Identifier: Apache-2.0
// Serving copy of a Network: weights transposed (in x out) so each input scales a contiguous
// column, which the compiler vectorizes; AVX2/FMA and generic versions are chosen at load time.
// FastEnsemble serves a model's networks together (their mean output).
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>
#include <vector>

#include "torp/model.hpp"

namespace torp::detail {

/// Whether this CPU runs the AVX2+FMA kernel (false on non-x86 builds).
bool avx2_kernel_available();

void dense_generic(const double* x, int in, const double* wt, const double* bias, int out, double* y, bool relu);
void dense_rows_generic(const double* X, std::size_t n, int in, const double* wt, const double* panels,
                        const double* bias, int out, double* Y, bool relu);

/// Allocator of cache-line-aligned doubles: a weight row of 8k doubles then spans k cache lines,
/// not k + 1 (a query reads whole rows, so this is a fifth fewer lines for 32-wide layers).
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>& /*other*/) {}  // NOLINT(google-explicit-constructor): allocators convert
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t /*n*/) { ::operator delete(p, kAlign); }
  bool operator==(const CacheLineAllocator& /*other*/) const { return true; }
};
using AlignedDoubles = std::vector<double, CacheLineAllocator<double>>;

using DenseFn = void (*)(const double*, int, const double*, const double*, int, double*, bool);
using DenseF32Fn = void (*)(const double*, int, const float*, const double*, int, double*, bool);
using DenseRowsFn = void (*)(const double*, std::size_t, int, const double*, const double*, const double*, int,
                             double*, bool);

class FastNetwork {
 public:
  /// `best`: AVX2+FMA where the CPU has it, else portable; `generic`: always the portable kernel
  /// (the tests compare both on every machine).
  enum class Kernel { best, generic };
  explicit FastNetwork(const Network& net, Kernel kernel = Kernel::best);
  /// Forward pass of a normalized input; a and b are scratch buffers of max_width() doubles.
  [[nodiscard]] double forward(const double* x, double* a, double* b) const;
  /// Forward pass of n normalized inputs (row-major n x inputs); one output per row in `out`.
  /// Equals forward() row by row exactly.
  void forward_batch(const double* x, std::size_t n, std::vector<double>& out) const;
  [[nodiscard]] std::size_t max_width() const { return max_width_; }

 private:
  friend class FastEnsemble;
  struct Layer {
    int in, out;
    AlignedDoubles wt;           // in x out
    std::vector<double> panels;  // the first out & ~7 outputs in panels of 8: [out / 8][in][8]
    AlignedDoubles bias;
  };
  std::vector<Layer> layers_;
  std::size_t max_width_ = 0;
  DenseFn dense_ = dense_generic;
  DenseRowsFn dense_rows_ = dense_rows_generic;
};

/// The networks of a model's ensemble: their mean output, equal bit for bit to summing each
/// member's FastNetwork::forward in order (from 0.0) and dividing by their count. A single query
/// runs members of one shape layer by layer side by side, so their independent dependency chains
/// (the one-output last layers above all) overlap in the CPU, and passes once over the shared
/// input for all their first layers (one weight matrix with the members' columns side by side)
/// where each first layer's width is a multiple of 4: every output then takes the same kernel
/// path, and so the same arithmetic, as in its member alone. The weights are packed in the order
/// a query reads them, each layer on its own cache lines, and a layer whose weights are all
/// floats (training rounds every layer but the last to floats) is read as floats: half the
/// memory per query, so most of three 18-32-32-1 networks' weights stay in a 32 kB L1 data cache
/// beside the query's data.
class FastEnsemble {
 public:
  FastEnsemble() = default;
  explicit FastEnsemble(const std::vector<Network>& members, FastNetwork::Kernel kernel = FastNetwork::Kernel::best);
  [[nodiscard]] bool empty() const { return members_.empty(); }
  [[nodiscard]] std::size_t size() const { return members_.size(); }
  /// Doubles of scratch that mean() needs.
  [[nodiscard]] std::size_t scratch_size() const { return scratch_size_; }
  /// Mean output on one normalized input (0.0 for no member).
  [[nodiscard]] double mean(const double* x, double* scratch) const;
  /// Mean output of n rows (row-major n x inputs), equal to mean() row by row exactly.
  void mean_batch(const double* x, std::size_t n, std::vector<double>& out) const;
  /// Whether mean() passes once over the input for every member's first layer.
  [[nodiscard]] bool fused_first_layer() const { return fused_; }
  /// How many of mean()'s layer steps read float weights.
  [[nodiscard]] std::size_t float_steps() const {
    return static_cast<std::size_t>(std::count_if(steps_.begin(), steps_.end(), [](const Step& s) { return s.f32; }));
  }

 private:
  /// One dense layer of mean()'s plan: input from x (from = -1) or buffer `from`, output to buffer `to`.
  struct Step {
    int in, out;
    int from;
    std::size_t from_offset;
    int to;
    std::size_t to_offset;
    std::size_t weights;  ///< offset of the in x out weights in arena32_ (f32) or arena_
    std::size_t bias;     ///< offset of the biases in arena_
    bool f32;             ///< every weight is a float: read from arena32_, half the memory
    bool relu;
  };
  void plan_side_by_side();

  std::vector<FastNetwork> members_;
  bool side_by_side_ = false;  ///< every member has the same layer widths
  bool fused_ = false;         ///< the first step is every member's first layer
  std::vector<Step> steps_;    ///< side by side: every layer of every member, in mean()'s order
  AlignedDoubles arena_;       ///< the steps' double weights and biases, in the order mean() reads them
  std::vector<float, CacheLineAllocator<float>> arena32_;  ///< the steps' float weights
  std::size_t scratch_size_ = 0;
  DenseFn dense_ = dense_generic;
  DenseF32Fn dense_f32_ = nullptr;
};

}  // namespace torp::detail
