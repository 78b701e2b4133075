// SPDX-License-Identifier: Apache-2.0
// Serving copy of a Network: weights transposed (in x out) so each input scales a contiguous
// column, which the compiler vectorizes; AVX2/FMA and generic versions are chosen at load time.
#pragma once

#include <vector>

#include "torp/model.hpp"

namespace torp::detail {

class FastNetwork {
 public:
  explicit FastNetwork(const Network& net);
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
};

}  // namespace torp::detail
