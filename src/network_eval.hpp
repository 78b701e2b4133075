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
  [[nodiscard]] std::size_t max_width() const { return max_width_; }

 private:
  struct Layer {
    int in, out;
    std::vector<double> wt;  // in x out
    std::vector<double> bias;
  };
  std::vector<Layer> layers_;
  std::size_t max_width_ = 0;
};

}  // namespace torp::detail
