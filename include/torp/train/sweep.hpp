// SPDX-License-Identifier: Apache-2.0
// Import of tt-metal sweep framework output (vectors_export + results_export JSON, all known
// generations) into a dataset. Results are joined to vectors by (suite, input_hash), never by
// position; the op spec's "sweep" block maps sweep parameters to the op's arguments. Files are
// read as streams: memory holds one record at a time plus a few dozen bytes per record.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/train/dataset.hpp"

namespace torp {

/// Why a result record did not become a dataset row. Each record counts under one reason: a
/// duplicate or superseded record under that, any other under the first of the rest that applies
/// (in this order).
enum class SweepDrop {
  no_matching_vector,  ///< no vector in the vectors file has the record's input_hash
  filtered_out,        ///< the vector is excluded by the tag / suite filters
  vector_mismatch,     ///< the record's original_vector_data disagrees with the joined vector
  invalid_vector,      ///< the vector is marked INVALID (e.g. R0's NOT_RUN "INVALID VECTOR" record)
  not_pass,            ///< status other than PASS (counted per status in not_pass_by_status)
  no_device_perf,      ///< no DEVICE KERNEL DURATION: device_perf absent, null, {} or without that metric
  zero_device_perf,    ///< the duration is 0 (profiler dummy), negative, non-finite or unreadable
  bad_args,            ///< the vector's parameters do not map to valid op arguments
  duplicate,           ///< an identical record of the same vector and run was already read
  superseded,          ///< a newer, different record of the same vector and run exists (or latest_only)
};
inline constexpr std::size_t kSweepDropReasons = 10;

/// Stable id of a reason, e.g. "no_matching_vector".
std::string_view to_string(SweepDrop reason) noexcept;

struct SweepOptions {
  std::optional<std::string> tag;   ///< keep only vectors with this "tag"
  std::vector<std::string> suites;  ///< keep only these suites (empty: all)
  /// Keep only the newest record of each vector instead of keeping separate runs as repeats.
  bool latest_only = false;
  std::optional<std::string> tt_metal_commit;  ///< else the kept records' git_hash if they all agree
  nlohmann::json origin;                        ///< free provenance for the header's source.origin
  /// A row is flagged as an outlier when it lies more than this many scaled MADs (1.4826 x the
  /// median absolute deviation, at least 1% of the median) from its configuration's median.
  double outlier_mads = 3.0;
};

/// A row far from the other repeats of its configuration (flagged, still in the dataset).
struct SweepOutlier {
  std::string suite, input_hash;
  double kernel_duration_ns = 0;
  double median_ns = 0;    ///< median of the configuration's rows
  double scale_ns = 0;     ///< max(1.4826 x MAD, 1% of the median)
  std::size_t repeats = 0; ///< rows of the configuration
};

struct SweepImportReport {
  struct File {
    std::string name;
    std::size_t records = 0;
  };
  std::vector<File> results;  ///< per results file, in the order read
  std::size_t records = 0;    ///< result records read
  std::size_t rows = 0;       ///< dataset rows
  std::size_t configurations = 0;  ///< distinct argument sets among the rows
  std::array<std::size_t, kSweepDropReasons> dropped{};
  std::map<std::string, std::size_t> not_pass_by_status;  ///< e.g. "FAIL_L1_OUT_OF_MEM" -> 3
  /// First dropped record of each reason: "<file> /<index>: <detail>".
  std::array<std::string, kSweepDropReasons> example;

  /// Every vector in exactly one class: with rows, else invalid, else filtered out, else without
  /// any result record, else with records that were all dropped.
  std::size_t vectors = 0, vectors_with_rows = 0, vectors_invalid = 0, vectors_filtered_out = 0,
              vectors_without_result = 0, vectors_all_dropped = 0;
  std::set<std::string> git_hashes;  ///< git_hash values of the kept records
  double outlier_mads = 0;
  std::vector<SweepOutlier> outliers;  ///< in dataset row order

  [[nodiscard]] std::size_t count(SweepDrop r) const { return dropped[static_cast<std::size_t>(r)]; }
  [[nodiscard]] std::size_t dropped_total() const;
  /// The report as written next to a dataset (docs/dataset-format.md, "Sweep import report").
  [[nodiscard]] nlohmann::ordered_json to_json() const;
};

/// The rows of a sweep import. Rows point at their vector, whose arguments are stored once, so
/// millions of rows take a few bytes each.
struct SweepDataset {
  struct Vector {
    std::string suite, input_hash;
    std::string args_json;  ///< the op's arguments, compact JSON
  };
  struct Row {
    std::uint32_t vector = 0;  ///< index into vectors
    double kernel_duration_ns = 0;
  };
  std::string op;
  nlohmann::json header;  ///< device, tt_metal_commit, source, notes
  std::vector<Vector> vectors;
  std::vector<Row> rows;  ///< in input order (results file, then record)

  /// The rows as an in-memory Dataset (for small imports and tests).
  [[nodiscard]] Dataset to_dataset() const;
  /// Write the dataset file (columns suite, input_hash, args, kernel_duration_ns) atomically.
  /// `before_commit` runs when every row is written and synced, just before the dataset appears
  /// (torp dataset from-sweep publishes its report there: report first, dataset last).
  void save(const std::filesystem::path& file, bool overwrite, const std::function<void()>& before_commit = {}) const;
};

/// Build a dataset from one vectors_export file and one or more results_export files (R0..R3).
/// Keeps PASS records with a positive DEVICE KERNEL DURATION [ns] whose vector maps to valid
/// arguments of `op_spec` (checked with the encoder for `device`); every other record is counted
/// in `report` by reason. Exact duplicates of a record (same vector, same run = start time, or
/// the same file when records carry none) are dropped; of different records of one vector and
/// run the newest (end time, then file order) is kept. Progress goes to the log callback.
/// Throws TorpError(dataset) for malformed files: "<file>:<line>:<column>: invalid JSON: ..."
/// for bad JSON, "<file>: <json pointer>: ..." for a wrong structure or an unknown status;
/// TorpError(op_spec) for a missing or malformed "sweep" block; TorpError(io) for unreadable files.
SweepDataset import_sweep(const std::filesystem::path& vectors, const std::vector<std::filesystem::path>& results,
                          const nlohmann::json& op_spec, const nlohmann::json& device, const SweepOptions& options,
                          SweepImportReport* report);

/// The op's arguments for one sweep vector, as import_sweep() maps them with the op spec's
/// "sweep" block. Throws TorpError(op_spec) for a bad block, TorpError(dataset) if the vector
/// does not map.
nlohmann::json sweep_vector_args(const nlohmann::json& op_spec, const nlohmann::json& vector);

/// A sweep parameter value in its plain JSON form: Python literal strings ("[1, 1, 32, 64]",
/// "(1, 2)", "True", "32", "None", "{'a': 'b'}") are decoded, recursively; anything else is
/// returned unchanged. Exposed for tests.
nlohmann::json decode_sweep_value(const nlohmann::json& value);

}  // namespace torp
