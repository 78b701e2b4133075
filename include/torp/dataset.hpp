// SPDX-License-Identifier: Apache-2.0
// Per-op measurement datasets (docs/dataset-format.md): JSON Lines, a header line then one
// measurement per line holding the op's raw arguments (tt-metal JSON, reduced tensor form) and
// the measured device kernel duration. Features are computed from the arguments by the encoder,
// so they can change without re-measuring.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/error.hpp"

namespace torp {

inline constexpr const char* kDatasetFormat = "torp-dataset";
inline constexpr int kDatasetFormatVersion = 1;

struct Measurement {
  nlohmann::json args;    ///< the op's arguments, as in a query's "args"
  double runtime_ns = 0;  ///< DEVICE KERNEL DURATION [ns]
  std::size_t line = 0;   ///< 1-based line in the dataset file (0 if not from a file)
};

struct Dataset {
  std::string op;           ///< canonical op name
  nlohmann::json header;    ///< format, op, device, tt_metal_commit, source, notes...
  std::vector<Measurement> rows;
};

/// Read a dataset file. Throws TorpError(dataset) naming file and line on malformed input.
Dataset load_dataset(const std::filesystem::path& file);
/// Write a dataset file atomically; refuses to replace an existing file unless overwrite.
void save_dataset(const Dataset& d, const std::filesystem::path& file, bool overwrite);

/// SHA-256 hex digest of a file's bytes (dataset provenance).
std::string sha256_file(const std::filesystem::path& file);
std::string sha256_hex(std::string_view bytes);

/// One unique configuration with its repeated measurements aggregated.
struct Configuration {
  std::string key;              ///< canonical JSON of args (identity of the configuration)
  nlohmann::json args;
  std::vector<double> runtimes;  ///< all repeats kept after rejection
  double label_ns = 0;           ///< median of the kept repeats
  std::size_t rejected = 0;      ///< repeats rejected as outliers
};

struct AggregationReport {
  std::size_t rows = 0, configurations = 0, rejected_rows = 0;
  double reject_factor = 0;  ///< a repeat is rejected if it is > factor x or < 1/factor x the median
};

/// Group rows by configuration (canonical args JSON) and take the median of repeats after
/// rejecting repeats more than `reject_factor` away from the configuration's median.
std::vector<Configuration> aggregate(const Dataset& d, double reject_factor, AggregationReport* report);

/// Which of the reference's CSV layouts a file uses.
enum class CsvLayout { exp, matmul_height_sharded };

/// Convert the reference predictor's CSV (as in ../shared/data) into a dataset. `device` is the
/// device description (its grid lays out matmul shard cores). Throws TorpError(dataset) naming
/// file, line and column for missing columns, non-numeric values, unknown dtypes or an empty file.
Dataset import_reference_csv(const std::filesystem::path& csv, CsvLayout layout, const nlohmann::json& device,
                             const nlohmann::json& provenance);

}  // namespace torp
