// SPDX-License-Identifier: Apache-2.0
// mlpack import: find the flat parameter matrix and the StandardScaler vectors in cereal binary
// archives by their headers, and turn them into a v1 model with row-major weights.
#include "torp/train/mlpack_import.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>

#include "torp/encoder.hpp"
#include "torp/log.hpp"

namespace torp {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "mlpack binaries are read as little-endian");

constexpr std::size_t kMatrixHeader = 24;   // uint64 n_rows, uint64 n_cols, uint64 reserved
constexpr std::size_t kParameterTrailer = 16;  // bytes after the parameter matrix in an FFN archive

[[noreturn]] void bad_file(const fs::path& file, const std::string& msg) {
  throw TorpError(ErrorCode::model_format, msg, "", file.string());
}

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TorpError(ErrorCode::io, "cannot open " + file.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw TorpError(ErrorCode::io, "cannot read " + file.string());
  return bytes;
}

std::uint64_t u64(std::string_view b, std::size_t off) {
  std::uint64_t v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

/// True if a column-vector header (n_rows == n, n_cols == 1) starts at `off`.
bool vector_header_at(std::string_view b, std::size_t off, std::uint64_t n) {
  return off + kMatrixHeader <= b.size() && u64(b, off) == n && u64(b, off + 8) == 1;
}

/// Bytes available for the n doubles of a vector whose header starts at `off`.
bool vector_fits(std::string_view b, std::size_t off, std::uint64_t n) {
  return n <= (b.size() - off - kMatrixHeader) / 8;
}

std::vector<double> read_doubles(std::string_view b, std::size_t off, std::size_t n, const fs::path& file,
                                 const char* what) {
  std::vector<double> v(n);
  std::memcpy(v.data(), b.data() + off, n * sizeof(double));
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) bad_file(file, std::string(what) + " " + std::to_string(i) + " is not finite");
  return v;
}

std::string architecture_text(std::size_t inputs, const std::vector<int>& hidden) {
  std::string s = std::to_string(inputs);
  for (int h : hidden) s += " -> " + std::to_string(h);
  return s + " -> 1";
}

const json& recipe_of(const json& spec, const std::string& recipe) {
  auto rs = spec.find("recipes");
  if (rs == spec.end() || !rs->is_object() || !rs->contains(recipe))
    throw TorpError(ErrorCode::op_spec, "op spec has no recipe \"" + recipe + "\"", "/recipes/" + recipe);
  const json& r = (*rs)[recipe];
  if (!r.is_object()) throw TorpError(ErrorCode::op_spec, "recipe must be an object", "/recipes/" + recipe);
  return r;
}

std::vector<std::string> strings(const json& r, const char* key, const std::string& path, bool required) {
  std::vector<std::string> out;
  auto it = r.find(key);
  if (it == r.end()) {
    if (required) throw TorpError(ErrorCode::op_spec, std::string("recipe has no \"") + key + "\"", path);
    return out;
  }
  if (!it->is_array()) throw TorpError(ErrorCode::op_spec, std::string("\"") + key + "\" must be an array of strings", path);
  for (const auto& s : *it) {
    if (!s.is_string()) throw TorpError(ErrorCode::op_spec, std::string("\"") + key + "\" must be an array of strings", path);
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::vector<Requirement> requirements(const json& r, const std::string& path) {
  std::vector<Requirement> out;
  auto it = r.find("requires");
  if (it == r.end()) return out;
  if (!it->is_array()) throw TorpError(ErrorCode::op_spec, "\"requires\" must be an array of {expr, message}", path);
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    if (!e.is_object() || !e.contains("expr") || !e["expr"].is_string() || !e.contains("message") ||
        !e["message"].is_string())
      throw TorpError(ErrorCode::op_spec, "requirement needs string \"expr\" and \"message\"", path + "/" + std::to_string(i));
    out.push_back({e["expr"].get<std::string>(), e["message"].get<std::string>()});
  }
  return out;
}

}  // namespace

std::size_t mlpack_parameter_count(std::size_t inputs, const std::vector<int>& hidden) {
  std::size_t count = 0, in = inputs;
  for (int h : hidden) {
    count += in * static_cast<std::size_t>(h) + static_cast<std::size_t>(h);
    in = static_cast<std::size_t>(h);
  }
  return count + in + 1;
}

std::vector<double> read_mlpack_parameters(const fs::path& model_bin, std::size_t expected_count) {
  const std::string bytes = read_bytes(model_bin);
  const std::string_view b = bytes;
  if (b.find("mlpack::LinearType") == std::string_view::npos)
    bad_file(model_bin, "not an mlpack FFN archive (no mlpack::LinearType layer in it)");
  std::vector<std::size_t> fits;
  std::optional<std::size_t> truncated;
  for (std::size_t off = 0; off + kMatrixHeader <= b.size(); ++off) {
    if (!vector_header_at(b, off, expected_count)) continue;
    if (vector_fits(b, off, expected_count)) fits.push_back(off);
    else truncated = off;
  }
  if (fits.size() > 1) {  // prefer the matrix that ends where the archive's trailer begins
    std::vector<std::size_t> exact;
    for (std::size_t off : fits)
      if (off + kMatrixHeader + 8 * expected_count + kParameterTrailer == b.size()) exact.push_back(off);
    if (exact.size() == 1) fits = exact;
  }
  if (fits.size() == 1) return read_doubles(b, fits[0] + kMatrixHeader, expected_count, model_bin, "parameter");
  if (fits.size() > 1)
    bad_file(model_bin, "found " + std::to_string(fits.size()) + " candidate parameter matrices of " +
                            std::to_string(expected_count) + " values; cannot tell which one holds the weights");
  if (truncated)
    bad_file(model_bin, "file is truncated: the parameter matrix of " + std::to_string(expected_count) +
                            " values starting at byte " + std::to_string(*truncated + kMatrixHeader) + " needs " +
                            std::to_string(8 * expected_count) + " bytes, only " +
                            std::to_string(b.size() - *truncated - kMatrixHeader) + " remain");
  // Name what the file does hold: a matrix header whose data ends at the archive's trailer.
  for (std::size_t off = 0; off + kMatrixHeader + kParameterTrailer <= b.size(); ++off) {
    std::uint64_t n = u64(b, off);
    if (n == 0 || u64(b, off + 8) != 1 || n > b.size() / 8) continue;
    if (off + kMatrixHeader + 8 * n + kParameterTrailer == b.size())
      bad_file(model_bin, "expected " + std::to_string(expected_count) +
                              " parameters for the declared architecture, but the file holds " + std::to_string(n) +
                              "; check the hidden layer widths and the recipe's features");
  }
  bad_file(model_bin, "no parameter matrix of " + std::to_string(expected_count) +
                          " values found (header uint64 n_rows, uint64 n_cols = 1); truncated or not an FFN archive?");
}

MlpackScaler read_mlpack_scaler(const fs::path& scaler_bin, std::size_t features) {
  if (features == 0) throw TorpError(ErrorCode::model_format, "a scaler needs at least one feature");
  const std::string bytes = read_bytes(scaler_bin);
  const std::string_view b = bytes;
  const std::size_t vec_bytes = kMatrixHeader + 8 * features;
  bool partial = false;
  for (std::size_t off = 0; off + kMatrixHeader <= b.size(); ++off) {
    if (!vector_header_at(b, off, features)) continue;
    const std::size_t second = off + vec_bytes;
    if (second + vec_bytes > b.size()) {
      partial = true;
      continue;
    }
    if (!vector_header_at(b, second, features)) continue;
    MlpackScaler s;
    s.mean = read_doubles(b, off + kMatrixHeader, features, scaler_bin, "mean");
    s.stddev = read_doubles(b, second + kMatrixHeader, features, scaler_bin, "standard deviation");
    for (std::size_t i = 0; i < features; ++i) {
      if (s.stddev[i] < 0.0) bad_file(scaler_bin, "standard deviation " + std::to_string(i) + " is negative");
      if (s.stddev[i] == 0.0) {
        s.stddev[i] = 1.0;
        log(LogLevel::warning, scaler_bin.string() + ": standard deviation " + std::to_string(i) +
                                   " is 0; using 1 as mlpack's StandardScaler does for constant features");
      }
    }
    return s;
  }
  if (partial)
    bad_file(scaler_bin, "file is truncated: expected two vectors (mean, standard deviation) of " +
                             std::to_string(features) + " values, " + std::to_string(2 * vec_bytes) +
                             " bytes after the archive header");
  // Name what the file does hold: two equal-length vectors back to back.
  for (std::size_t off = 0; off + kMatrixHeader <= b.size(); ++off) {
    std::uint64_t n = u64(b, off);
    if (n == 0 || n == features || u64(b, off + 8) != 1 || n > b.size() / 16) continue;
    std::size_t second = off + kMatrixHeader + 8 * n;
    if (second + kMatrixHeader + 8 * n <= b.size() && vector_header_at(b, second, n))
      bad_file(scaler_bin, "the scaler has " + std::to_string(n) + " features, the model expects " +
                               std::to_string(features));
  }
  bad_file(scaler_bin, "no StandardScaler found: expected two vectors (mean, standard deviation) of " +
                           std::to_string(features) + " values, each uint64 n_rows, uint64 n_cols = 1, uint64 "
                           "reserved, then float64 values");
}

ModelFile import_mlpack(const fs::path& model_bin, const fs::path& scaler_bin, const MlpackImportOptions& options) {
  if (options.id.empty()) throw TorpError(ErrorCode::model_format, "the model id is empty", "/id");
  for (int h : options.hidden)
    if (h <= 0) throw TorpError(ErrorCode::model_format, "hidden layer widths must be positive", "/network/architecture/hidden");
  if (!options.provenance.is_object())
    throw TorpError(ErrorCode::model_format, "provenance must be an object", "/provenance");
  for (const char* k : {"device", "tt_metal_commit", "source_data", "metrics"})
    if (!options.provenance.contains(k))
      throw TorpError(ErrorCode::model_format, std::string("provenance needs \"") + k + "\"", std::string("/provenance/") + k);

  Encoder encoder(options.op_spec, options.device);
  const std::string rp = "/recipes/" + options.recipe;
  const json& recipe = recipe_of(options.op_spec, options.recipe);

  ModelFile m;
  m.id = options.id;
  m.op = encoder.op();
  m.producer = options.producer;
  m.kind = ModelKind::imported;
  m.op_spec = options.op_spec;
  m.device = options.device;
  m.priority = options.priority;
  m.features = strings(recipe, "features", rp + "/features", true);
  if (m.features.empty()) throw TorpError(ErrorCode::op_spec, "recipe lists no features", rp + "/features");
  m.requires_ = requirements(recipe, rp + "/requires");
  m.applies_when = strings(recipe, "applies_when", rp + "/applies_when", false);
  m.applies_when.insert(m.applies_when.end(), options.applies_when.begin(), options.applies_when.end());
  for (const auto& f : m.features) (void)encoder.feature(f);
  for (const auto& r : m.requires_) encoder.compile(r.expr);
  for (const auto& a : m.applies_when) encoder.compile(a);

  const std::size_t nf = m.features.size();
  const std::size_t count = mlpack_parameter_count(nf, options.hidden);
  std::vector<double> params;
  try {
    params = read_mlpack_parameters(model_bin, count);
  } catch (const TorpError& e) {
    if (e.error().code != ErrorCode::model_format) throw;
    Error err = e.error();
    err.message += " (architecture " + architecture_text(nf, options.hidden) + ")";
    throw TorpError(std::move(err));
  }
  MlpackScaler scaler = read_mlpack_scaler(scaler_bin, nf);
  m.mean = std::move(scaler.mean);
  m.stddev = std::move(scaler.stddev);

  // mlpack stores each Linear(in -> out) as an out x in column-major block followed by out biases.
  Network net;
  std::size_t off = 0;
  std::vector<int> widths{static_cast<int>(nf)};
  widths.insert(widths.end(), options.hidden.begin(), options.hidden.end());
  widths.push_back(1);
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    DenseLayer d;
    d.in = widths[l];
    d.out = widths[l + 1];
    const auto in = static_cast<std::size_t>(d.in), out = static_cast<std::size_t>(d.out);
    d.weights.resize(in * out);
    for (std::size_t o = 0; o < out; ++o)
      for (std::size_t i = 0; i < in; ++i) d.weights[o * in + i] = params[off + i * out + o];
    off += in * out;
    d.bias.assign(params.begin() + static_cast<std::ptrdiff_t>(off), params.begin() + static_cast<std::ptrdiff_t>(off + out));
    off += out;
    net.layers.push_back(std::move(d));
  }
  m.transform = TargetTransform::none;
  m.ensemble.push_back(std::move(net));
  m.provenance = options.provenance;
  if (!m.provenance.contains("imported_by")) m.provenance["imported_by"] = "torp import-mlpack";
  // The result must be a model TORP loads: validate it the way the loader does.
  return parse_model(to_json(m), "imported model " + m.id);
}

}  // namespace torp
