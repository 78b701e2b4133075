// SPDX-License-Identifier: Apache-2.0
// Internal to the library (not installed): the per-query state Encoder::bind() fills and the slot
// of an expression's value in it, the fast path of the serving runner and the dataset encoders.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/encoder.hpp"
#include "torp/tensor.hpp"

namespace torp {

/// Per-query state: the parsed arguments and the value of every expression of the op, computed
/// by bind(). Reuse one per thread: its buffers keep their capacity between queries.
struct Bindings {
  struct Arg {
    bool present = false;                  // given, or absent with a default
    bool given = false;                    // in the query and not null
    double number = 0.0;                   // int / float / bool / enum arguments
    bool is_tensor = false;                // tensor / tensor_list, or a tensor_or_number given a tensor
    TensorInfo tensor;                     // tensor arguments (a tensor list: its first element)
    std::vector<TensorInfo> list;          // tensor_list arguments
    MemoryConfigInfo memory;               // memory_config arguments
    const nlohmann::json* object = nullptr;  // object arguments (fields read on demand)
  };
  std::vector<Arg> args;
  /// By expr_slot(): the value of each expression, and 0 or a nonzero code when it has no
  /// value (the encoder turns that code into an Error on request).
  std::vector<double> values;
  std::vector<std::uint32_t> poison;
  std::string_view args_path = "/args";
  std::string path;  // scratch for JSON pointers (keeps its capacity between queries)
};

/// What the library's serving runner reads of a compiled encoder besides its public interface.
struct EncoderAccess {
  /// Where an expression's value lives in Bindings::values / Bindings::poison (the fast path for
  /// callers that read many values per query; poison != 0 means: ask Encoder::eval() for the error).
  static int slot(const Encoder& encoder, ExprId id);
  /// The op's arguments, in Bindings::args order: their JSON pointers below the args object
  /// ("/memory_config").
  static std::vector<std::string> argument_paths(const Encoder& encoder);
  /// Which arguments (Bindings::args indices, ascending) an expression reads, through its operands
  /// and the defaults of the arguments it reads.
  static std::vector<int> arguments_read(const Encoder& encoder, ExprId id);
};

inline int expr_slot(const Encoder& encoder, ExprId id) { return EncoderAccess::slot(encoder, id); }

}  // namespace torp
