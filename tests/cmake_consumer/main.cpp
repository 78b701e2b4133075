// SPDX-License-Identifier: Apache-2.0
// Downstream use of an installed TORP, as tt-metal's BUILD_MLP_OP_PERF path does it: the
// installed models are found without TORP_MODELS; op_perf::get_runtime_from_model answers
// "ttnn::exp" on a full tt-metal tensor JSON with a {} output memory config. Prints
//   predictor <model id> <runtime_ns>   torp::Predictor on that query
//   op_perf <runtime truncated>         op_perf on it
//   op_perf_padded <runtime truncated>  op_perf on the reference's zero-padded rank-2 shape
// for run.sh to compare with the installed `torp predict`, and checks that unknown ops and bad
// input give 0.
#include <cstdint>
#include <iomanip>
#include <iostream>

#include "interface.hpp"  // as tt-metal includes it
#include <torp/predictor.hpp>

namespace {

nlohmann::json tt_metal_tensor(std::vector<int> shape, int dtype, int buffer_type) {
  using nlohmann::json;
  json layout = json::object();
  layout["alignment"] = {{"value", {1, 1, 32, 32}}};
  layout["dtype"] = dtype;
  layout["memory_config"] = {{"buffer_type", buffer_type}, {"created_with_nd_shard_spec", false}, {"memory_layout", 0}};
  layout["page_config"]["config"]["index"] = 1;
  layout["page_config"]["config"]["value"]["tile"]["tile_shape"] = {32, 32};
  json t = json::object();
  t["storage"] = {{"index", 1}, {"value", json::object()}};
  t["tensor_spec"]["logical_shape"] = shape;
  t["tensor_spec"]["tensor_layout"] = layout;
  return t;
}

}  // namespace

int main() {
  const nlohmann::json tensor = tt_metal_tensor({1, 1, 64, 128}, op_perf::BFLOAT16, op_perf::DRAM);
  const nlohmann::json no_config = nlohmann::json::object();

  torp::Predictor predictor(torp::resolve_models_dir());
  auto r = predictor.predict("ttnn::exp", nlohmann::json{{"input_tensor", tensor}, {"memory_config", no_config}});
  if (!r.ok()) {
    std::cerr << r.error().describe() << "\n";
    return 1;
  }
  std::cout << std::setprecision(17) << "predictor " << r.value().model_id << " " << r.value().runtime_ns << "\n";

  const std::uint64_t ns = op_perf::get_runtime_from_model("ttnn::exp", tensor, no_config);
  std::cout << "op_perf " << ns << "\n";
  if (op_perf::get_runtime_from_model("exp", tensor, no_config) != ns ||
      op_perf::get_runtime_from_model("ttnn.exp", tensor, no_config) != ns ||
      op_perf::predict_eltwise_unary_runtime(tensor, no_config) != ns) {
    std::cerr << "op name spellings or the per-op entry point answer differently\n";
    return 1;
  }
  // The reference's zero-padded shape is rank 2 in this layer.
  const nlohmann::json padded = {{"logical_shape", {64, 128, 0, 0}}, {"dtype", op_perf::BFLOAT16},
                                 {"memory_config", {{"buffer_type", op_perf::DRAM}, {"memory_layout", 0}}}};
  std::cout << "op_perf_padded " << op_perf::get_runtime_from_model("exp", padded, nullptr) << "\n";
  // No answer is 0: an unknown op, a tensor that is not one, too many arguments.
  if (op_perf::get_runtime_from_model("ttnn::no_such_op", tensor, no_config) != 0 ||
      op_perf::get_runtime_from_model("ttnn::exp", nlohmann::json("not a tensor"), no_config) != 0 ||
      op_perf::get_runtime_from_model("ttnn::exp", tensor, no_config, 1, 2, 3) != 0 ||
      op_perf::get_runtime_from_model("ttnn::exp") != 0) {
    std::cerr << "an unanswerable query did not give 0\n";
    return 1;
  }
  return ns > 0 ? 0 : 1;
}
