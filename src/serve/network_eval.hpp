// SPDX-License-Identifier: Apache-2.0
// Serving copy of a Network: weights transposed (in x out) so each input scales a contiguous
// column, which the compiler vectorizes; AVX2/FMA and generic versions are chosen at load time.
#pragma once

#include <cstddef>
#include <vector>

#include "torp/model.hpp"

namespace torp::detail {

/// Whether this CPU runs the AVX2+FMA kernel (false on non-x86 builds).
bool avx2_kernel_available();

void dense_generic(const double* x, int in, const double* wt, const double* bias, int out, double* y, bool relu);
void dense_rows_generic(const double* X, std::size_t n, int in, const double* wt, const double* panels,
                        const double* bias, int out, double* Y, bool relu);

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
  struct Layer {
    int in, out;
    std::vector<double> wt;      // in x out
    std::vector<double> panels;  // the first out & ~7 outputs in panels of 8: [out / 8][in][8]
    std::vector<double> bias;
  };
  std::vector<Layer> layers_;
  std::size_t max_width_ = 0;
  void (*dense_)(const double*, int, const double*, const double*, int, double*, bool) = dense_generic;
  void (*dense_rows_)(const double*, std::size_t, int, const double*, const double*, const double*, int, double*,
                      bool) = dense_rows_generic;
};

}  // namespace torp::detail
