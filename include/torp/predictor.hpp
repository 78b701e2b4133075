// SPDX-License-Identifier: Apache-2.0
// Resident predictor: loads and validates every model of a directory once, then answers typed
// runtime queries. Thread-safe for concurrent queries; no file I/O or parsing on the query path.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/error.hpp"
#include "torp/model.hpp"

namespace torp {

struct Prediction {
  double runtime_ns = 0.0;
  std::string_view model_id;  ///< id of the model that answered; valid as long as the Predictor
  bool memory_found = false;  ///< a residual-memory lookup of the model found measured neighbours
};

using PredictResult = Result<Prediction>;

/// One loaded model, as `torp list` shows it.
struct ModelInfo {
  std::string id;
  std::string op;
  std::filesystem::path file;
  int priority = 0;
  std::vector<std::string> features;
  nlohmann::json provenance;
};

/// Where models are looked up when no directory is given: `explicit_dir` if set, else
/// $TORP_MODELS, else <prefix>/share/torp/models next to the installed library or executable,
/// else ./models. Returns the first candidate that exists (or the last one tried, for messages).
std::filesystem::path resolve_models_dir(const std::optional<std::filesystem::path>& explicit_dir = std::nullopt);

/// The directories models are loaded from: `explicit_dirs` if not empty (--models, repeatable),
/// else $TORP_MODELS split at ':' (empty parts ignored), else resolve_models_dir().
std::vector<std::filesystem::path> resolve_models_dirs(const std::vector<std::filesystem::path>& explicit_dirs = {});

class Predictor {
 public:
  /// Load every *.json model below `models_dir` (recursively). JSON files that are not TORP models
  /// (no "format": "torp-model") are skipped with an info log line. Throws TorpError (io,
  /// model_format, model_version, op_spec) naming the offending file if any model is invalid, and
  /// io if the directory cannot be read (e.g. a symlink loop) or holds no model.
  explicit Predictor(const std::filesystem::path& models_dir);
  /// The models of several directories (in order; model ids must be unique across them).
  explicit Predictor(const std::vector<std::filesystem::path>& models_dirs);
  /// Serve models already parsed (e.g. by load_model or the trainer); ModelInfo::file is empty.
  /// Throws TorpError (model_format, op_spec) naming the model if one cannot be compiled.
  explicit Predictor(const std::vector<ModelFile>& models);
  ~Predictor();
  Predictor(Predictor&&) noexcept;
  Predictor& operator=(Predictor&&) noexcept;

  /// Predict the runtime of `op` (TTNN name, C++ name or short name) on `args` (tt-metal JSON).
  /// `model_id` pins a model; empty means the highest-priority model of the op that applies.
  [[nodiscard]] PredictResult predict(std::string_view op, const nlohmann::json& args,
                                      std::string_view model_id = {}) const;
  /// A query object {"op": ..., "args": {...}, "model"?: ...}.
  [[nodiscard]] PredictResult predict(const nlohmann::json& query) const;
  /// One result per query, in order.
  [[nodiscard]] std::vector<PredictResult> predict_batch(std::span<const nlohmann::json> queries) const;

  [[nodiscard]] const std::vector<ModelInfo>& models() const;
  [[nodiscard]] const std::filesystem::path& directory() const;  ///< the first of directories()
  [[nodiscard]] const std::vector<std::filesystem::path>& directories() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace torp
