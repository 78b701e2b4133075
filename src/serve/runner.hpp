// SPDX-License-Identifier: Apache-2.0
// Internal (not installed): one model compiled for serving, and the steps that answer a bound
// query with it. The Predictor (model selection, batches) answers every query through these
// steps, and `torp eval` / the trainer's metrics go through the Predictor, so there is one
// memory-slot mapping and one serving forward pass.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "serve/network_eval.hpp"
#include "spec/bindings.hpp"
#include "torp/encoder.hpp"
#include "torp/model.hpp"
#include "torp/predictor.hpp"

namespace torp::detail {

inline constexpr std::size_t kDomains = 5;  ///< the values of torp::Domain

/// Residual memory: fixed-length keys of doubles -> mean, in one open-addressing table (at most
/// half full, linear probing). A lookup hashes the key and compares a few doubles in place.
class MemoryTable {
 public:
  MemoryTable(std::size_t key_length, const std::vector<ResidualMemory::Entry>& entries);
  /// The mean stored for `key` (key_length doubles), or nullptr.
  [[nodiscard]] const double* find(const double* key) const {
    for (std::size_t at = hash(key) & mask_; used_[at]; at = (at + 1) & mask_)
      if (equal(at, key)) return &means_[at];
    return nullptr;
  }

 private:
  [[nodiscard]] std::size_t hash(const double* key) const;
  [[nodiscard]] bool equal(std::size_t at, const double* key) const {
    const double* k = &keys_[at * key_length_];
    for (std::size_t i = 0; i < key_length_; ++i)
      if (!(k[i] == key[i])) return false;
    return true;
  }
  std::size_t key_length_, mask_ = 0;
  std::vector<double> keys_, means_;
  std::vector<unsigned char> used_;
};

/// An expression of a model, with where its value lives in the query's Bindings.
struct Expr {
  ExprId id = -1;
  int slot = -1;
};

struct CompiledModel {
  ModelInfo info;
  std::shared_ptr<const Encoder> encoder;
  /// Per network input: an expression (id >= 0), or for a residual-memory input id = -1 and
  /// slot = 2 * lookup + (0 mean | 1 found). The one place this mapping is made.
  std::vector<Expr> features;
  std::vector<std::vector<Expr>> memory_lookups;  ///< key expressions of each lookup
  std::optional<MemoryTable> memory;
  std::vector<Expr> applies_when;
  std::vector<Expr> requires_;
  std::vector<std::string> requires_message;
  std::vector<Expr> baseline_features;
  Expr baseline_group;
  std::vector<Baseline::Group> baseline_groups;
  std::string baseline_group_name;
  bool has_baseline = false;
  TargetTransform transform = TargetTransform::none;
  std::vector<double> inv_std, mean;
  FastEnsemble ensemble;

  // What makes an answer trustworthy (format 2; docs/query-format.md).
  ModelKind kind = ModelKind::trained;
  bool has_range = false;
  std::vector<double> range_lo, range_hi;     ///< per network input (memory inputs: unbounded)
  bool has_correction_limit = false;
  double correction_lo = 0.0, correction_hi = 0.0;
  std::vector<unsigned char> lookup_seen;     ///< per lookup: a hit makes the answer "seen"
  /// Interval band [lo, hi] (log space) per Domain, after the fallback rule; none: no interval.
  using Bands = std::array<std::optional<std::array<double, 2>>, kDomains>;
  Bands band;
  /// Calibration groups (format 2, optional): the group feature, its keys, and per key the bands
  /// of every domain (the group's own band, else `band`'s). prepare() picks the index.
  Expr band_group;
  std::vector<double> band_group_keys;
  std::vector<Bands> group_band;
  std::array<std::string_view, kDomains> interval_note;  ///< why a domain has no band
  /// Arguments the model never reads: their Bindings::args indices and, per subset of them given
  /// in a query (bit i: unread_args[i] given), the JSON pointers to report.
  std::vector<int> unread_args;
  std::vector<std::vector<std::string>> ignored_by_mask;
};

/// Compile `m` for serving with `encoder` (compiled from m's op spec and device, possibly shared
/// with other models: the model's extra expressions are added to it). `file` is where m came from
/// ("" for a model given in memory). Throws TorpError(model_format / op_spec).
std::unique_ptr<CompiledModel> compile_model(const ModelFile& m, const std::shared_ptr<Encoder>& encoder,
                                             const std::filesystem::path& file);

/// Per-thread buffers of the query path (they keep their capacity between queries).
struct Scratch {
  Bindings bindings;
  std::vector<double> x, a, key, memory;  // a: the ensemble's scratch
};

/// What prepare() learns about a query besides the network input.
struct Prepared {
  double base = 1.0;          ///< the analytical baseline (1 without one)
  bool memory_found = false;  ///< some residual-memory lookup found an entry
  bool seen = false;          ///< a lookup marked "seen" found an entry
  std::uint32_t ignored_mask = 0;    ///< CompiledModel::ignored_by_mask index
  int band_group = -1;               ///< CompiledModel::group_band index; -1: the domain-wide bands
  std::vector<OutsideInput> outside;  ///< inputs beyond their training range (clamped)
};

/// Whether a model covers a bound query: its first applies_when expression that does not hold
/// (nullptr: all hold), or the error of one that cannot be computed.
std::variant<const Expr*, Error> first_unmet(const CompiledModel& m, const Bindings& b);

/// Encode a bound query (s.bindings) for model m: requirements, network input (normalized into
/// x, m.features.size() doubles) and the analytical baseline. Everything but the network. Reads
/// the values bind() computed; an expression without a value is reported through Encoder::eval.
std::optional<Error> prepare(const CompiledModel& m, Scratch& s, double* x, Prepared& p);

/// The answer from the ensemble's mean output; never a non-positive or non-finite runtime.
PredictResult finish(const CompiledModel& m, double out, Prepared& p);

/// prepare, the networks one query at a time, finish.
PredictResult run(const CompiledModel& m, Scratch& s);

}  // namespace torp::detail
