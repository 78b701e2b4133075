// SPDX-License-Identifier: Apache-2.0
// Resident predictor: loads and validates every model of a directory once, then answers typed
// runtime queries. Thread-safe for concurrent queries; no file I/O or parsing on the query path.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/error.hpp"
#include "torp/model.hpp"

namespace torp {

/// Where an answer stands relative to what its model was trained on (docs/query-format.md).
enum class Domain : std::uint8_t {
  seen,        ///< this configuration, or one the model treats as equivalent, was measured
  inside,      ///< every network input lies within the training configurations' range
  outside,     ///< some input lies beyond it (see Prediction::outside); inputs were clamped
  unknown,     ///< the model carries no training range (imported models)
  analytical,  ///< an analytical model (a law, no network)
};
[[nodiscard]] const char* to_string(Domain d);

/// A network input beyond its training range: its raw value and the range (it was clamped into it).
struct OutsideInput {
  std::string_view feature;  ///< op-spec feature name; valid as long as the Predictor
  double value = 0.0;
  std::array<double, 2> trained{};  ///< [min, max] over the training configurations
};

struct Prediction {
  double runtime_ns = 0.0;
  std::string_view model_id;  ///< id of the model that answered; valid as long as the Predictor
  /// [lo, hi] with lo <= runtime_ns <= hi: a prediction interval for the measured runtime at the
  /// model's calibrated coverage (90% by default); none when the model has no calibration for
  /// this domain (interval_note says why).
  std::optional<std::array<double, 2>> interval_ns;
  Domain domain = Domain::unknown;
  std::vector<OutsideInput> outside;     ///< the inputs beyond their range (domain outside only)
  /// JSON pointers ("/args/memory_config") of arguments given in the query (not null) that the
  /// model never reads: its answer is the same whatever they are. Valid as long as the Predictor.
  std::span<const std::string> ignored;
  std::string_view interval_note;  ///< why there is no interval ("" when there is one); static text
  bool memory_found = false;  ///< a residual-memory lookup of the model found measured neighbours
};

using PredictResult = Result<Prediction>;

/// One loaded model, as `torp list` shows it.
struct ModelInfo {
  std::string id;
  std::string op;
  std::filesystem::path file;
  int priority = 0;
  std::string device;  ///< the device description's "name"
  std::string kind;    ///< "trained", "imported" or "analytical"
  std::vector<std::string> features;
  nlohmann::json provenance;
};

/// Where models are looked up when no directory is given: `explicit_dir` if set, else
/// $TORP_MODELS, else <prefix>/share/torp/models next to the installed library or executable,
/// else the installed package's models (registered below: a consumer linking the static library
/// into its own program, wherever the prefix was installed), else the share/torp/models of the
/// prefix the library was configured for, else ./models. Returns the first candidate that exists
/// (or the last one tried, for messages).
std::filesystem::path resolve_models_dir(const std::optional<std::filesystem::path>& explicit_dir = std::nullopt);

/// The directories models are loaded from: `explicit_dirs` if not empty (--models, repeatable),
/// else $TORP_MODELS split at ':' (empty parts ignored), else resolve_models_dir().
std::vector<std::filesystem::path> resolve_models_dirs(const std::vector<std::filesystem::path>& explicit_dirs = {});

/// Register the installed package's models directory for resolve_models_dir(). The CMake
/// package (find_package(torp)) defines TORP_PACKAGE_MODELS_DIR for its consumers, and this
/// header registers it when a consumer's program starts.
void set_package_models_dir(const std::filesystem::path& dir);

#ifdef TORP_PACKAGE_MODELS_DIR
namespace detail {
inline const bool package_models_dir_registered = (set_package_models_dir(TORP_PACKAGE_MODELS_DIR), true);
}  // namespace detail
#endif

/// Which models may answer: those of `device` (a device description's "name", e.g.
/// "wormhole_n300"; empty: every device), or exactly the model `model` (an id; empty: the
/// highest-priority model that applies).
struct PredictOptions {
  std::string_view device;
  std::string_view model;
};

class Predictor {
 public:
  /// Load every *.json model below `models_dir` (recursively). JSON files that are not TORP models
  /// (no "format": "torp-model") are skipped with an info log line. Throws TorpError (io,
  /// model_format, model_version, op_spec) naming the offending file if any model is invalid, and
  /// io if the directory cannot be read (e.g. a symlink loop) or holds no model.
  explicit Predictor(const std::filesystem::path& models_dir);
  /// The models of several directories (in order; model ids must be unique across them).
  explicit Predictor(const std::vector<std::filesystem::path>& models_dirs);
  /// Serve models already in memory (e.g. from load_model or the trainer), validated as a file
  /// would be; ModelInfo::file is empty. Throws TorpError (model_format, op_spec) naming the model.
  explicit Predictor(const std::vector<ModelFile>& models);
  ~Predictor();
  Predictor(Predictor&&) noexcept;
  Predictor& operator=(Predictor&&) noexcept;

  /// Predict the runtime of `op` (TTNN name, C++ name or short name) on `args` (tt-metal JSON).
  /// `model_id` pins a model; empty means the highest-priority model of the op that applies.
  [[nodiscard]] PredictResult predict(std::string_view op, const nlohmann::json& args,
                                      std::string_view model_id = {}) const;
  /// As above, choosing among the models of `options.device` (all devices when empty).
  [[nodiscard]] PredictResult predict(std::string_view op, const nlohmann::json& args,
                                      const PredictOptions& options) const;
  /// `args` as JSON text: for callers that do not share TORP's nlohmann::json (invalid text is
  /// an invalid_query answer). The template only routes std::string, string literals and
  /// std::string_view here (a nlohmann::json argument takes the overloads above).
  [[nodiscard]] PredictResult predict_text(std::string_view op, std::string_view args_json,
                                           const PredictOptions& options = {}) const;
  template <class Text>
    requires(std::is_convertible_v<const Text&, std::string_view> &&
             !std::is_same_v<std::remove_cvref_t<Text>, nlohmann::json>)
  [[nodiscard]] PredictResult predict(std::string_view op, const Text& args_json,
                                      const PredictOptions& options = {}) const {
    return predict_text(op, std::string_view(args_json), options);
  }
  /// A query object {"op": ..., "args": {...}, "model"?: ..., "device"?: ...}.
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
