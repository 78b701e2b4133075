// SPDX-License-Identifier: Apache-2.0
// Per-op measurement datasets (docs/dataset-format.md): JSON Lines, a header line naming the
// columns, then one measurement per line holding the op's raw arguments (tt-metal JSON, reduced
// tensor form), the measured device kernel duration and, for sweep data, the sweep suite and
// input_hash it came from. Features are computed from the arguments by the encoder, so they can
// change without re-measuring.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/atomic_file.hpp"
#include "torp/error.hpp"

namespace torp {

inline constexpr const char* kDatasetFormat = "torp-dataset";
/// Version written. Version 1 files (label "runtime_ns", optional row "source") stay readable.
inline constexpr int kDatasetFormatVersion = 2;
/// Default for aggregate(): a repeat more than 1.5x away from its configuration's median is
/// rejected (repeats of the real exp data agree within 0.4% at the median; shifted labels are
/// 1.5x to 40x off).
inline constexpr double kDefaultRejectFactor = 1.5;

struct Measurement {
  nlohmann::json args;     ///< the op's arguments, as in a query's "args"
  double runtime_ns = 0;   ///< DEVICE KERNEL DURATION [ns] (column "kernel_duration_ns")
  std::size_t line = 0;    ///< 1-based line in the dataset file (0 if not from a file)
  std::string suite;       ///< sweep suite of the measured vector ("" if not from a sweep)
  std::string input_hash;  ///< sweep input_hash of the measured vector ("" if not from a sweep)
};

struct Dataset {
  std::string op;           ///< canonical op name
  nlohmann::json header;    ///< format, op, device, tt_metal_commit, source, notes...
  std::vector<Measurement> rows;
};

/// Read a dataset file (format version 1 or 2). Validates the header (format, format_version, op,
/// columns) and every row (exactly the header's columns: an "args" object, a positive finite
/// "kernel_duration_ns", string "suite" / "input_hash"). Throws TorpError(dataset) whose message
/// starts with "<file>:<line>:<column>:" on malformed input, TorpError(io) if it cannot be read.
Dataset load_dataset(const std::filesystem::path& file);
/// Write a dataset file atomically (see AtomicFile); refuses to replace an existing file unless
/// overwrite (TorpError(io)). The header's format, format_version, op and columns are set from
/// `d` (columns "suite" and "input_hash" when any row has them); rows must have an object "args"
/// and a positive finite runtime (TorpError(dataset) otherwise, nothing written).
void save_dataset(const Dataset& d, const std::filesystem::path& file, bool overwrite);

/// Streams a dataset to a file row by row (memory independent of the row count), atomically.
class DatasetWriter {
 public:
  /// `header` as in Dataset::header (format, format_version, op and columns are set here);
  /// `with_sweep_ids` adds the columns "suite" and "input_hash".
  DatasetWriter(const std::filesystem::path& file, const std::string& op, const nlohmann::json& header,
                bool with_sweep_ids, bool overwrite);
  /// The text of a row up to its duration (rows of one vector share it); `args_json` is the
  /// compact JSON of the args object.
  [[nodiscard]] std::string row_prefix(std::string_view args_json, std::string_view suite = {},
                                       std::string_view input_hash = {}) const;
  /// One row: a row_prefix() and the duration. TorpError(dataset) for a non-positive or
  /// non-finite runtime.
  void add(std::string_view row_prefix, double runtime_ns);
  void commit() { file_.commit(); }
  [[nodiscard]] std::size_t rows() const { return rows_; }

 private:
  AtomicFile file_;
  std::string path_, number_;
  bool with_ids_ = false;
  std::size_t rows_ = 0;
};

/// SHA-256 hex digest of a file's bytes (dataset provenance). Throws TorpError(io).
std::string sha256_file(const std::filesystem::path& file);
std::string sha256_hex(std::string_view bytes);

/// Identity of a configuration: compact JSON of the args with keys sorted (nlohmann's dump).
std::string configuration_key(const nlohmann::json& args);

/// One unique configuration with its repeated measurements aggregated.
struct Configuration {
  std::string key;              ///< canonical JSON of args (identity of the configuration)
  nlohmann::json args;
  std::vector<double> runtimes;  ///< all repeats kept after rejection, in file order
  double label_ns = 0;           ///< median of the kept repeats
  std::size_t rejected = 0;      ///< repeats rejected as outliers
  /// Distinct non-empty sweep suites / input_hashes of the configuration's rows, in file order
  /// (empty for data not from a sweep). Reports show them so a row can be traced to its vector.
  std::vector<std::string> suites, input_hashes;
};

struct AggregationReport {
  std::size_t rows = 0, configurations = 0, rejected_rows = 0;
  /// Configurations left out because no repeat lies within the factor of their median (an even
  /// number of repeats split into far-apart groups: no consensus). Their rows count as rejected.
  std::size_t dropped_configurations = 0;
  std::size_t configurations_with_rejections = 0;
  double reject_factor = 0;  ///< a repeat is rejected if it is > factor x or < 1/factor x the median
};

/// Group rows by configuration (canonical args JSON) and take the median of repeats after
/// rejecting repeats more than `reject_factor` away from the configuration's median. The output
/// is sorted by key. reject_factor must be >= 1 (infinity disables rejection); TorpError(dataset)
/// otherwise. `report` may be null.
std::vector<Configuration> aggregate(const Dataset& d, double reject_factor, AggregationReport* report);

/// Which of the reference's CSV layouts a file uses.
enum class CsvLayout { exp, matmul_height_sharded };

std::string_view to_string(CsvLayout layout) noexcept;
/// "exp" / "matmul_height_sharded"; throws TorpError(dataset) for anything else.
CsvLayout parse_csv_layout(std::string_view name);
/// Recognize the layout from the CSV's header line. Throws TorpError(dataset) naming the file if
/// it is empty or matches no layout, TorpError(io) if it cannot be read.
CsvLayout detect_csv_layout(const std::filesystem::path& csv);

/// Convert the reference predictor's CSV (as in ../shared/data) into a dataset. `device` is the
/// device description (its "name" goes to the header; its grid lays out matmul shard cores).
/// `provenance` = {"op" (required), "tt_metal_commit"?, "source"? (where the CSV came from: text
/// or object), "notes"?}. The header records the CSV's file name and sha256 and what the CSV does
/// not record. Throws TorpError(dataset) with "<file>:<line>:<column>: column '<name>': ..." for
/// missing columns, non-numeric values, unknown dtypes (no or several one-hot columns set) or an
/// empty file.
Dataset import_reference_csv(const std::filesystem::path& csv, CsvLayout layout, const nlohmann::json& device,
                             const nlohmann::json& provenance);

}  // namespace torp
