// SPDX-License-Identifier: Apache-2.0
// Internal to the library (not installed): the one reader of a MemoryConfig's fields as tt-metal
// and its sweeps serialize them. The query path (parse_memory_config, src/spec/tensor.cpp) keeps
// the values the encoder derives from them; the sweep import (src/sweep/sweep.cpp) writes them in
// the dataset's named form.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "torp/error.hpp"

namespace torp {

/// A MemoryConfig's fields, unwrapped from a sweep's {"type": "...MemoryConfig", "data": <object or
/// JSON text>} and with its enums read (integers or names).
struct MemoryConfigFields {
  int buffer_type = -1;    ///< -1: not given
  int memory_layout = -1;  ///< -1: not given
  /// The shard spec, if given (not null): "shard_spec", else "nd_shard_spec" (nd: its shape key is
  /// "shard_shape"). Points into the read object (or into `parsed`).
  const nlohmann::json* shard_spec = nullptr;
  bool nd = false;
  /// The fields were read from the wrapper's "data": their JSON pointers are below <path>/data.
  bool wrapped = false;
  nlohmann::json parsed;  ///< the wrapper's data when it is given as JSON text

  /// JSON pointer of the object the fields were read from, for a config read at `path`.
  [[nodiscard]] std::string fields_path(std::string_view path) const {
    return std::string(path) + (wrapped ? "/data" : "");
  }
  /// "shard_spec" or "nd_shard_spec".
  [[nodiscard]] const char* shard_key() const { return nd ? "nd_shard_spec" : "shard_spec"; }
};

/// For wrapper data that is text but not JSON: the value it stands for (the sweep import reads
/// Python literals). Without one, such data is an error.
using DecodeText = nlohmann::json (*)(const nlohmann::json& text);

/// Read the MemoryConfig `j` found at JSON pointer `path` into `out` (a fresh MemoryConfigFields).
/// Errors (invalid_argument) name the bad field's JSON pointer: not an object, wrapper data that is
/// neither JSON nor decodable by `decode_text`, an unknown buffer type or memory layout.
std::optional<Error> read_memory_config_fields(const nlohmann::json& j, std::string_view path,
                                               MemoryConfigFields& out, DecodeText decode_text = nullptr);

}  // namespace torp
