// SPDX-License-Identifier: Apache-2.0
// Downstream use of an installed TORP: load the installed models, answer one exp query.
#include <iostream>

#include <torp/predictor.hpp>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  torp::Predictor p(argv[1]);
  nlohmann::json args = {{"input_tensor",
                          {{"logical_shape", {1, 1, 64, 128}}, {"dtype", "BFLOAT16"}, {"layout", "TILE"},
                           {"memory_config", {{"buffer_type", "DRAM"}, {"memory_layout", "INTERLEAVED"}}}}}};
  auto r = p.predict("ttnn.exp", args);
  if (!r.ok()) {
    std::cerr << r.error().describe() << "\n";
    return 1;
  }
  std::cout << r.value().model_id << " " << r.value().runtime_ns << "\n";
  return r.value().runtime_ns > 0 ? 0 : 1;
}
