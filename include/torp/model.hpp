// SPDX-License-Identifier: Apache-2.0
// Model file format (docs/model-format.md): one self-describing JSON document per model.
// Version 2 adds the model kind and what makes answers trustworthy: the training range of every
// network input, a bound on the network's correction and calibrated prediction intervals.
// Version 1 files still load (without those, so their answers carry no interval).
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/error.hpp"

namespace torp {

inline constexpr const char* kModelFormat = "torp-model";
inline constexpr int kModelFormatVersion = 2;

/// One dense layer: y = W x + b, W stored row-major (out x in) as in the file.
struct DenseLayer {
  int in = 0;
  int out = 0;
  std::vector<double> weights;  // out * in, row-major
  std::vector<double> bias;     // out
};

/// Dense network with ReLU after every layer but the last; the last layer has one output.
struct Network {
  std::vector<DenseLayer> layers;
};

enum class TargetTransform { none, log };

/// Analytical part of a physics-informed model: a linear law in named op-spec features,
///   baseline = intercept_g + sum_i coef_g[i] * feature_i,
/// with one coefficient set per value g of the `group` feature (e.g. one per (dtype, buffer)),
/// or a single set when `group` is empty. With a baseline, runtime = baseline * exp(network output):
/// the network learns the log-correction.
struct Baseline {
  struct Group {
    double key = 0.0;  ///< value of the group feature (ignored without a group)
    double intercept = 0.0;
    std::vector<double> coefficients;  ///< one per feature
  };
  std::string group;                  ///< name of the grouping feature, "" for one group
  std::vector<std::string> features;  ///< the law's terms
  std::vector<Group> groups;
};

/// Measured-neighbour memory: the residuals r = log(label) - log(baseline) of the training
/// configurations, averaged per key (e.g. shape + buffer + dtype class). A lookup forms a key from
/// the query (possibly a variant: the same shape in the other buffer) and yields two network
/// inputs, "memory.<lookup>.mean" (0 when absent) and "memory.<lookup>.found" (0 or 1). It carries
/// what the measurements of related configurations say that the recorded parameters cannot.
struct ResidualMemory {
  struct Entry {
    std::vector<double> key;
    double mean = 0.0;
    int count = 0;
  };
  struct Lookup {
    std::string name;
    std::vector<std::string> key;  ///< features, same length as ResidualMemory::key
    bool seen = false;             ///< a hit means this configuration (or its equivalent) was measured
  };
  std::vector<std::string> key;  ///< features forming a training configuration's key
  std::vector<Lookup> lookups;
  std::vector<Entry> entries;
};

/// The feature-name prefix that refers to a residual-memory lookup.
inline constexpr const char* kMemoryFeaturePrefix = "memory.";

/// Prediction intervals calibrated on configurations the networks never trained on. For each
/// domain of an answer ("seen", "inside", "outside", "analytical"), `lo` and `hi` are quantiles of
/// log(measured / predicted): the interval is [p * exp(lo), p * exp(hi)] at nominal `coverage`.
/// Optionally the bands are also given per value of an op-spec feature (`group`, e.g. the dtype
/// class): an answer whose group value has a band for its domain gets that band, every other
/// answer the domain-wide one.
struct Calibration {
  struct Band {
    double lo = 0.0;
    double hi = 0.0;
    int n = 0;  ///< configurations the band was calibrated on
  };
  struct Group {
    double key = 0.0;                     ///< value of the `group` feature
    std::map<std::string, Band> domains;  ///< the domains with a band of this group's own
  };
  double coverage = 0.9;
  std::string method;  ///< how the bands were obtained (free text, for people)
  std::map<std::string, Band> domains;
  std::string group;          ///< op-spec feature naming an answer's calibration group; "" = none
  std::vector<Group> groups;  ///< distinct keys; empty without `group`
};

/// What produced a model: trained by TORP, imported from the reference's mlpack files, or an
/// analytical (roofline) law with no network.
enum class ModelKind { trained, imported, analytical };
[[nodiscard]] const char* to_string(ModelKind k);

struct Requirement {
  std::string expr;
  std::string message;
};

struct ModelFile {
  std::string id;             ///< stable id, e.g. "reference/exp" or "wormhole/exp"
  std::string op;             ///< canonical op name, e.g. "ttnn.exp"
  std::string producer;       ///< tool and version that wrote the file
  ModelKind kind = ModelKind::trained;
  int format_version = kModelFormatVersion;  ///< as read (to_json always writes the current one)
  nlohmann::json op_spec;     ///< frozen copy of ops/<op>.json used to encode features
  nlohmann::json device;      ///< frozen copy of the device description
  int priority = 0;           ///< among models of one op that apply, the highest priority serves
  std::vector<std::string> applies_when;  ///< expressions: all non-zero or the model does not apply (no_model)
  std::vector<Requirement> requires_;     ///< expressions: all non-zero or the query is invalid_argument
  std::vector<std::string> features;      ///< input schema: names of op-spec features, in order
  std::vector<double> mean, stddev;       ///< input normalization x' = (x - mean) / std
  TargetTransform transform = TargetTransform::none;
  std::optional<Baseline> baseline;
  std::optional<ResidualMemory> memory;   ///< needs the log transform
  std::vector<Network> ensemble;          ///< outputs averaged in the transformed space; empty only for
                                          ///< an analytical model (correction 0: runtime = baseline)
  /// Per network input (the order of `features`), the [min, max] of its raw value over the
  /// training configurations. Inputs are clamped into it at serving; outside it the answer's
  /// domain is "outside".
  std::optional<std::vector<std::array<double, 2>>> input_range;
  /// Bounds [lo, hi] of the ensemble-mean network output (the log-correction) at serving.
  std::optional<std::array<double, 2>> correction_limit;
  std::optional<Calibration> calibration;
  nlohmann::json provenance;              ///< device, tt_metal_commit, source_data, metrics, ...
};

/// Parse and validate a model document (format 1 or 2). `source` becomes the errors' `file` (the file
/// path; for a model built in memory, a description such as "model ID").
/// Throws TorpError: model_version for a missing/unknown/future format_version, model_format for
/// anything else (missing key, shape mismatch, non-finite number), each with its own message.
ModelFile parse_model(const nlohmann::json& doc, const std::string& source);
ModelFile load_model(const std::filesystem::path& file);

nlohmann::json to_json(const ModelFile& m);
/// Write to `file` (pretty JSON, trailing newline) atomically (AtomicFile: a uniquely named
/// temporary file, then rename). Refuses to replace an existing file unless `overwrite` is true.
void save_model(const ModelFile& m, const std::filesystem::path& file, bool overwrite);

/// Reference forward pass of one network on an already normalized input (straightforward loops;
/// the predictor uses its own vectorized copy). Exposed for tools and tests.
double forward(const Network& net, const std::vector<double>& x);

}  // namespace torp
