// SPDX-License-Identifier: Apache-2.0
// Import of tt-metal sweep framework output (vectors_export + results_export JSON, all known
// generations) into a dataset. Results are joined to vectors by (suite, input_hash), never by
// position; the op spec's "sweep" block maps sweep parameters to the op's arguments.
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/dataset.hpp"

namespace torp {

/// Why a result record did not become a dataset row. The first reason that applies is counted.
enum class SweepDrop {
  no_matching_vector,  ///< no vector with the record's input_hash
  filtered_out,        ///< the vector is excluded by the tag / suite filters
  invalid_vector,      ///< the vector is marked INVALID
  not_pass,            ///< status other than PASS (counted per status in not_pass_by_status)
  no_device_perf,      ///< no DEVICE KERNEL DURATION: device_perf absent, null, {} or without that metric
  zero_device_perf,    ///< the duration is 0 (profiler dummy), negative, non-finite or unreadable
  vector_mismatch,     ///< the record's original_vector_data disagrees with the joined vector
  bad_args,            ///< the vector's parameters do not map to valid op arguments
  duplicate,           ///< the same record (same vector, identical content) was already imported
  superseded,          ///< latest_only: an older record of a vector that has a newer one
};
inline constexpr std::size_t kSweepDropReasons = 10;

/// Stable id of a reason, e.g. "no_matching_vector".
std::string_view to_string(SweepDrop reason) noexcept;

struct SweepOptions {
  std::optional<std::string> tag;     ///< keep only vectors with this "tag"
  std::vector<std::string> suites;    ///< keep only these suites (empty: all)
  /// Keep only the latest record of each vector (by start_time_ts / test_start_ts / timestamp,
  /// then input order) instead of keeping records of separate runs as repeats.
  bool latest_only = false;
  std::optional<std::string> tt_metal_commit;  ///< else the results' git_hash if they all agree
  nlohmann::json source;              ///< free provenance text/object for the header ("origin")
};

struct SweepImportReport {
  std::size_t vectors = 0;   ///< vectors read (all suites)
  std::size_t records = 0;   ///< result records read
  std::size_t imported = 0;  ///< dataset rows
  std::array<std::size_t, kSweepDropReasons> dropped{};
  std::map<std::string, std::size_t> not_pass_by_status;  ///< e.g. "FAIL_L1_OUT_OF_MEM" -> 3
  /// First dropped record of each reason: "<file>[<index>]: <detail>".
  std::array<std::string, kSweepDropReasons> example;
  std::set<std::string> git_hashes;  ///< git_hash values of the imported records

  [[nodiscard]] std::size_t count(SweepDrop r) const { return dropped[static_cast<std::size_t>(r)]; }
  [[nodiscard]] std::size_t dropped_total() const;
};

/// Build a dataset from one vectors_export file and one or more results_export files (R0..R3).
/// Keeps PASS records with a positive DEVICE KERNEL DURATION [ns] whose vector maps to valid
/// arguments of `op_spec` (checked with the encoder for `device`). Throws TorpError(dataset) with
/// "<file>:<line>:<column>:" for unreadable JSON or files of the wrong shape, TorpError(op_spec)
/// for a missing or malformed "sweep" block, TorpError(io) for unreadable files.
Dataset import_sweep(const std::filesystem::path& vectors, const std::vector<std::filesystem::path>& results,
                     const nlohmann::json& op_spec, const nlohmann::json& device, const SweepOptions& options,
                     SweepImportReport* report);

/// A sweep parameter value in its plain JSON form: Python literal strings ("[1, 1, 32, 64]",
/// "(1, 2)", "True", "32", "None", "{'a': 'b'}") are decoded, recursively; anything else is
/// returned unchanged. Exposed for tests.
nlohmann::json decode_sweep_value(const nlohmann::json& value);

}  // namespace torp
