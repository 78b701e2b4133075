// SPDX-License-Identifier: Apache-2.0
// op_perf: the reference predictor's C++ interface over TORP's resident predictor. This layer
// alone translates the reference's conventions: positional arguments, null = absent, `{}` = no
// memory config, zero-padded shapes ([32, 32, 0, 0] is rank 2), math fidelity 1 = LoFi.
#include <cmath>
#include <limits>
#include <memory>
#include <string_view>

#include "op_perf/interface.hpp"
#include "torp/encoder.hpp"
#include "torp/predictor.hpp"

namespace op_perf {
namespace {

using json = nlohmann::json;

/// The process-wide predictor over the installed models, loaded on first use; null if the
/// models cannot be loaded (every answer is then 0).
const torp::Predictor* resident_predictor() noexcept {
  static const std::unique_ptr<const torp::Predictor> predictor = []() -> std::unique_ptr<const torp::Predictor> {
    try {
      return std::make_unique<const torp::Predictor>(torp::resolve_models_dirs());
    } catch (...) {
      return nullptr;
    }
  }();
  return predictor.get();
}

/// The reference pads shapes to rank 4 with trailing zeros; drop them (this layer only).
void strip_shape_padding(json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "logical_shape" && it->is_array()) {
        while (it->size() > 1 && it->back().is_number() && it->back().get<double>() == 0.0) it->erase(it->size() - 1);
      } else if (it.key() == "math_fidelity" && it->is_number_integer() && it->get<long long>() == 1) {
        *it = 0;  // the reference's LoFi
      } else {
        strip_shape_padding(*it);
      }
    }
  } else if (j.is_array()) {
    for (auto& e : j) strip_shape_padding(e);
  }
}

/// Null and `{}` (tt-metal's absent memory config) are absent.
bool absent(const json& v) { return v.is_null() || (v.is_object() && v.empty()); }

std::uint64_t answer(std::string_view op, json args) noexcept {
  try {
    const torp::Predictor* p = resident_predictor();
    if (p == nullptr) return 0;
    strip_shape_padding(args);
    const auto r = p->predict(op, args);
    if (!r.ok()) return 0;
    const double ns = r.value().runtime_ns;
    if (!std::isfinite(ns) || ns < 1.0 || ns >= static_cast<double>(std::numeric_limits<std::uint64_t>::max())) return 0;
    return static_cast<std::uint64_t>(ns);
  } catch (...) {
    return 0;
  }
}

/// Positional argument names per op (the reference's order for its four ops, TTNN's C++ order
/// for the others). Absent entries (null, {}) are left out of the query.
struct Signature {
  const char* short_name;
  const char* op;
  std::vector<const char*> names;
};

const std::vector<Signature>& signatures() {
  static const std::vector<Signature> table = [] {
    std::vector<Signature> t;
    for (const char* u : {"exp", "relu", "gelu", "silu", "sigmoid", "tanh", "log", "sqrt", "reciprocal", "neg", "abs"})
      t.push_back({u, nullptr, {"input_tensor", "memory_config"}});
    t.push_back({"concatenate_heads", "ttnn.transformer.concatenate_heads", {"input_tensor", "memory_config"}});
    t.push_back({"create_qkv_heads", "ttnn.experimental.create_qkv_heads",
                 {"input_tensor", "num_heads", "num_kv_heads", "transpose_k_heads"}});
    for (const char* b : {"add", "subtract", "multiply"})
      t.push_back({b, nullptr, {"input_tensor_a", "input_tensor_b", "dtype", "memory_config"}});
    t.push_back({"typecast", nullptr, {"input_tensor", "dtype", "memory_config"}});
    t.push_back({"matmul", nullptr,
                 {"input_tensor_a", "input_tensor_b", "transpose_a", "transpose_b", "memory_config", "dtype",
                  "program_config", "activation", "compute_kernel_config"}});
    t.push_back({"linear", nullptr,
                 {"input_tensor_a", "input_tensor_b", "bias", "transpose_a", "transpose_b", "memory_config", "dtype",
                  "program_config", "activation", "compute_kernel_config"}});
    t.push_back({"softmax", nullptr, {"input_tensor", "dim", "memory_config", "compute_kernel_config", "numeric_stable"}});
    for (const char* n : {"layer_norm", "rms_norm"})
      t.push_back({n, nullptr,
                   {"input_tensor", "epsilon", "weight", "bias", "residual_input_tensor", "memory_config",
                    "program_config", "compute_kernel_config"}});
    for (const char* r : {"sum", "mean"})
      t.push_back({r, nullptr, {"input_tensor", "dim", "keepdim", "memory_config", "compute_kernel_config"}});
    t.push_back({"transpose", nullptr, {"input_tensor", "dim1", "dim2", "memory_config"}});
    t.push_back({"concat", nullptr, {"tensors", "dim", "memory_config"}});
    t.push_back({"to_memory_config", nullptr, {"tensor", "memory_config", "dtype"}});
    t.push_back({"reshard", nullptr, {"input_tensor", "output_memory_config"}});
    t.push_back({"to_layout", nullptr, {"tensor", "layout", "dtype", "memory_config"}});
    t.push_back({"embedding", nullptr,
                 {"input_tensor", "weight", "padding_idx", "layout", "embeddings_type", "dtype", "memory_config"}});
    return t;
  }();
  return table;
}

std::string short_name(const std::string& op_name) {
  const std::string canonical = torp::canonical_op_name(op_name);
  return canonical.substr(canonical.rfind('.') + 1);
}

/// paged SDPA decode: the reference's 18 positional arguments as the query contract's.
std::uint64_t paged_sdpa(const std::vector<json>& a) noexcept {
  try {
    if (a.size() != 18) return 0;
    json args = {{"input_tensor_q", a[0]}, {"input_tensor_k", a[1]}, {"input_tensor_v", a[2]},
                 {"page_table_tensor", a[3]}, {"is_causal", a[6]}};
    if (!absent(a[4])) args["cur_pos_tensor"] = a[4];
    if (!absent(a[5])) args["attn_mask"] = a[5];
    if (!absent(a[7])) args["scale"] = a[7];
    if (!absent(a[10])) args["memory_config"] = a[10];
    if (a[16].is_boolean() ? a[16].get<bool>() : !absent(a[16]) && a[16] != 0)
      args["program_config"] = {{"k_chunk_size", a[8]}, {"q_chunk_size", a[9]}, {"exp_approx_mode", a[15]}};
    if (a[17].is_boolean() ? a[17].get<bool>() : !absent(a[17]) && a[17] != 0)
      args["compute_kernel_config"] = {{"math_fidelity", a[11]}, {"math_approx_mode", a[12]},
                                       {"fp32_dest_acc_en", a[13]}, {"packer_l1_acc", a[14]}};
    return answer("ttnn.transformer.paged_scaled_dot_product_attention_decode", std::move(args));
  } catch (...) {
    return 0;
  }
}

}  // namespace

namespace detail {

std::uint64_t runtime_from_positional(const std::string& op_name, const std::vector<json>& args) noexcept {
  try {
    const std::string name = short_name(op_name);
    if (name == "paged_scaled_dot_product_attention_decode") return paged_sdpa(args);
    for (const Signature& s : signatures()) {
      if (name != s.short_name) continue;
      if (args.size() > s.names.size()) return 0;
      json q = json::object();
      for (std::size_t i = 0; i < args.size(); ++i)
        if (!absent(args[i])) q[s.names[i]] = args[i];
      return answer(s.op != nullptr ? std::string(s.op) : "ttnn." + name, std::move(q));
    }
    return 0;
  } catch (...) {
    return 0;
  }
}

}  // namespace detail

std::uint64_t predict_eltwise_unary_runtime(const std::string& op_name, const json& tensor,
                                            const json& output_memory_config) noexcept {
  try {
    const std::string name = short_name(op_name);
    for (const char* u : {"exp", "relu", "gelu", "silu", "sigmoid", "tanh", "log", "sqrt", "reciprocal", "neg", "abs"})
      if (name == u) return detail::runtime_from_positional(name, {tensor, output_memory_config});
    return 0;
  } catch (...) {
    return 0;
  }
}

std::uint64_t predict_eltwise_unary_runtime(const json& tensor, const json& output_memory_config) noexcept {
  return predict_eltwise_unary_runtime("exp", tensor, output_memory_config);
}

std::uint64_t predict_concatenate_heads_runtime(const json& tensor, const json& output_memory_config) noexcept {
  try {
    return detail::runtime_from_positional("concatenate_heads", {tensor, output_memory_config});
  } catch (...) {
    return 0;
  }
}

std::uint64_t predict_create_qkv_heads_runtime(const json& tensor, const int& num_heads,
                                               const std::optional<int>& num_kv_heads,
                                               const bool& transpose_k_heads) noexcept {
  try {
    return detail::runtime_from_positional(
        "create_qkv_heads", {tensor, num_heads, num_kv_heads ? json(*num_kv_heads) : json(nullptr), transpose_k_heads});
  } catch (...) {
    return 0;
  }
}

std::uint64_t predict_paged_sdpa_decode_runtime(
    const json& q, const json& k, const json& v, const json& page_table, const std::optional<json>& cur_pos_tensor,
    const std::optional<json>& attn_mask, const bool& is_causal, const float& scale, const int& k_chunk_size,
    const int& q_chunk_size, const json& output_memory_config, const int& math_fidelity, const int& math_approx_mode,
    const int& fp32_dest_acc_en, const int& packer_l1_acc, const int& exp_approx_mode,
    const bool& use_sdpa_program_config, const bool& use_compute_kernel_config) noexcept {
  try {
    return paged_sdpa({q, k, v, page_table, cur_pos_tensor.value_or(json(nullptr)), attn_mask.value_or(json(nullptr)),
                       is_causal, scale, k_chunk_size, q_chunk_size, output_memory_config, math_fidelity,
                       math_approx_mode, fp32_dest_acc_en, packer_l1_acc, exp_approx_mode, use_sdpa_program_config,
                       use_compute_kernel_config});
  } catch (...) {
    return 0;
  }
}

}  // namespace op_perf
