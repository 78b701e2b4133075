// SPDX-License-Identifier: Apache-2.0
// Drop-in for the reference predictor's C++ entry point (tenstorrent/ttnn-op-runtime-predictor
// interface/interface.hpp), as tt-metal's BUILD_MLP_OP_PERF path calls it:
//
//   #include "interface.hpp"
//   uint64_t ns = op_perf::get_runtime_from_model("ttnn::exp", tensor_json, output_memory_config_json);
//
// Answers come from one process-wide TORP predictor, loaded once (thread-safe) from the
// installed models. The runtime is truncated to an integer; 0 means "no answer" (unknown op, bad
// arguments, no model, a configuration tt-metal rejects): the caller then measures on the device.
// No exception escapes. CMake: find_package(torp) and link torp::op_perf.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/predictor.hpp"  // registers the installed package's models directory

namespace op_perf {

/// tt-metal's DataType integers (what the reference's callers write into tensor JSON).
enum DataType : int {
  BFLOAT16 = 0,
  FLOAT32 = 1,
  UINT32 = 2,
  BFLOAT8_B = 3,
  BFLOAT4_B = 4,
  UINT8 = 5,
  UINT16 = 6,
  INT32 = 7,
};

/// The reference's memory-config categories: its feature encoding's buffer types (DRAM 0, L1 1)
/// and the height-sharded L1 layout of its sweeps (tt-metal's TensorMemoryLayout 2).
enum MemoryConfigKind : int {
  DRAM = 0,
  L1 = 1,
  L1_HEIGHT_SHARDED = 2,
};

/// tt-metal's TensorMemoryLayout integers.
enum TensorMemoryLayout : int {
  INTERLEAVED = 0,
  HEIGHT_SHARDED = 2,
  WIDTH_SHARDED = 3,
  BLOCK_SHARDED = 4,
};

/// tt-metal's MathFidelity integers. The reference's own callers pass 1 for LoFi (its training
/// data's encoding); the integer arguments of this header accept both 0 and 1 as LoFi.
enum MathFidelity : int {
  LoFi = 0,
  HiFi2 = 2,
  HiFi3 = 3,
  HiFi4 = 4,
};

namespace detail {

/// The runtime in ns (truncated) of `op_name` called with positional arguments as tt-metal
/// converts them (ttsl::json::to_json; null = absent), or 0. Never throws.
std::uint64_t runtime_from_positional(const std::string& op_name, const std::vector<nlohmann::json>& args) noexcept;

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

/// One positional argument as JSON: nlohmann::json as is, std::optional as its value or null,
/// enumerators as their integers, numbers, booleans and strings as JSON values. Anything else
/// (a type TORP cannot read) becomes null, i.e. "absent".
template <typename T>
nlohmann::json to_json_arg(const T& value) {
  using U = std::remove_cv_t<std::remove_reference_t<T>>;
  if constexpr (std::is_same_v<U, nlohmann::json>) {
    return value;
  } else if constexpr (is_optional<U>::value) {
    return value.has_value() ? to_json_arg(*value) : nlohmann::json(nullptr);
  } else if constexpr (std::is_enum_v<U>) {
    return nlohmann::json(static_cast<long long>(value));
  } else if constexpr (std::is_same_v<U, bool> || std::is_arithmetic_v<U> || std::is_convertible_v<U, std::string>) {
    return nlohmann::json(value);
  } else if constexpr (std::is_same_v<U, std::nullptr_t>) {
    return nlohmann::json(nullptr);
  } else {
    return nlohmann::json(nullptr);
  }
}

}  // namespace detail

/// The reference's entry point: the op's name in any form ("ttnn::exp", "ttnn.exp", "exp") and
/// its positional arguments (the reference's order for exp, concatenate_heads,
/// create_qkv_heads and paged SDPA decode; TTNN's C++ order for the other ops TORP knows).
template <typename... Args>
std::uint64_t get_runtime_from_model(const std::string& op_name, Args&&... args) {
  try {
    std::vector<nlohmann::json> converted;
    converted.reserve(sizeof...(Args));
    (converted.push_back(detail::to_json_arg(args)), ...);
    return detail::runtime_from_positional(op_name, converted);
  } catch (...) {
    return 0;
  }
}

/// The reference's per-op entry points, with its parameters.
std::uint64_t predict_eltwise_unary_runtime(const std::string& op_name, const nlohmann::json& tensor,
                                            const nlohmann::json& output_memory_config) noexcept;
std::uint64_t predict_eltwise_unary_runtime(const nlohmann::json& tensor,
                                            const nlohmann::json& output_memory_config) noexcept;  // exp
std::uint64_t predict_concatenate_heads_runtime(const nlohmann::json& tensor,
                                                const nlohmann::json& output_memory_config) noexcept;
std::uint64_t predict_create_qkv_heads_runtime(const nlohmann::json& tensor, const int& num_heads,
                                               const std::optional<int>& num_kv_heads,
                                               const bool& transpose_k_heads) noexcept;
std::uint64_t predict_paged_sdpa_decode_runtime(
    const nlohmann::json& q, const nlohmann::json& k, const nlohmann::json& v, const nlohmann::json& page_table,
    const std::optional<nlohmann::json>& cur_pos_tensor, const std::optional<nlohmann::json>& attn_mask,
    const bool& is_causal, const float& scale, const int& k_chunk_size, const int& q_chunk_size,
    const nlohmann::json& output_memory_config, const int& math_fidelity, const int& math_approx_mode,
    const int& fp32_dest_acc_en, const int& packer_l1_acc, const int& exp_approx_mode,
    const bool& use_sdpa_program_config, const bool& use_compute_kernel_config) noexcept;

}  // namespace op_perf
