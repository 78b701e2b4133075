// SPDX-License-Identifier: Apache-2.0
// Probe sets: a few configurations that reveal whether an op's model drifted, written as sweep
// vectors (tt-metal sweep framework, vectors_export format) so an engineer measures N vectors
// instead of a whole sweep, then runs `torp dataset from-sweep` and `torp drift` on the results.
//
// Selection (deterministic for a seed): the candidates are the pool's configurations the model
// serves; they are split into the groups drift reports (drift_groups(): e.g. dtype x buffer) and,
// within a group, into three regimes by predicted runtime (short / middle / long thirds). Probes
// are taken round-robin over groups, and within a group round-robin over its regimes, each a
// seeded random pick of its cell. Every group thus gets about count / groups probes, enough for
// drift's per-group test (5 probes all outside a 90% interval give p = 1e-5), and each covers
// the model's range of runtimes.
//
// Vectors: the op spec's "sweep" block maps sweep parameters to arguments; its inverse is derived
// for parameters mapped directly (a tensor field, value or memory config that is just the
// parameter's name) and given explicitly in "sweep": {"inverse": {PARAM: EXPR}} for the others
// (Python expressions over the arguments: for a tensor argument X the names X_shape, X_dtype
// ("DataType.BFLOAT16"), X_layout, X_memory_config (the sweep's MemoryConfig wrapper); for any
// other argument X its value, or its declared default, or None). Every vector is checked by
// mapping it forward again: the arguments must reproduce the configuration's (a vector may set
// more, e.g. a dtype the pool did not record).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/model.hpp"
#include "torp/train/dataset.hpp"

namespace torp {

/// The sweep vector (parameters only, in the op spec's order) whose arguments are `args`.
/// Throws TorpError(op_spec) for a bad "sweep" block, TorpError(dataset) naming the argument when
/// the vector cannot reproduce `args`.
nlohmann::ordered_json sweep_parameters_of(const nlohmann::json& op_spec, const nlohmann::json& args);

/// Indices into `pool` of at most `count` probes for `model` (see the header comment).
std::vector<std::size_t> choose_probes(const ModelFile& model, const std::vector<Configuration>& pool,
                                       std::size_t count, std::uint64_t seed);

struct SuggestOptions {
  std::string op;                     ///< any spelling of the op, e.g. "exp"
  std::size_t count = 50;
  std::filesystem::path models_dir;   ///< where the op's model is loaded from
  std::string model_id;               ///< pin a model; default: the op's highest-priority trained model
  std::optional<std::filesystem::path> pool;  ///< candidate configurations; default: the model's training dataset
  std::uint64_t seed = 1;
  std::string suite = "torp_probe";   ///< suite name of the written vectors
  std::string tag = "torp";           ///< "tag" of the written vectors
  std::filesystem::path out;          ///< vectors_export file to write
  bool overwrite = false;
};

/// Choose the probes and write them as a vectors_export file ({suite: {input_hash: vector}}).
/// Returns {"op", "model", "pool", "pool_configurations", "count", "file", "suite", "module",
/// "groups": {label: probes}, "probes": [{"input_hash", "group", "predicted_ns"}]}.
/// Throws TorpError(no_model) without a model, TorpError(io) if the pool cannot be found or the
/// file exists and !overwrite.
nlohmann::json suggest(const SuggestOptions& options);

}  // namespace torp
