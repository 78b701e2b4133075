// SPDX-License-Identifier: Apache-2.0
#include "torp/predictor.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_map>
#include <variant>

#include "serve/network_eval.hpp"
#include "spec/bindings.hpp"
#include "torp/encoder.hpp"
#include "torp/log.hpp"
#include "torp/model.hpp"

namespace torp {
namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path resolve_models_dir(const std::optional<fs::path>& explicit_dir) {
  if (explicit_dir) return *explicit_dir;
  if (const char* env = std::getenv("TORP_MODELS"); env != nullptr && *env != '\0') return fs::path(env);
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&resolve_models_dir), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    fs::path self = fs::canonical(fs::path(info.dli_fname), ec);
    if (!ec) {
      fs::path installed = self.parent_path().parent_path() / "share" / "torp" / "models";
      if (fs::is_directory(installed, ec)) return installed;
    }
  }
  return fs::path("models");
}

namespace {

/// Residual memory: fixed-length keys of doubles -> mean, in one open-addressing table (at most
/// half full, linear probing). A lookup hashes the key and compares a few doubles in place.
class MemoryTable {
 public:
  MemoryTable(std::size_t key_length, const std::vector<ResidualMemory::Entry>& entries) : key_length_(key_length) {
    std::size_t capacity = 16;
    while (capacity < 2 * entries.size()) capacity *= 2;
    mask_ = capacity - 1;
    keys_.assign(capacity * key_length_, 0.0);
    means_.assign(capacity, 0.0);
    used_.assign(capacity, 0);
    for (const auto& e : entries) {  // the first of equal keys wins
      std::size_t at = hash(e.key.data()) & mask_;
      while (used_[at] && !equal(at, e.key.data())) at = (at + 1) & mask_;
      if (used_[at]) continue;
      used_[at] = 1;
      std::copy(e.key.begin(), e.key.end(), keys_.begin() + static_cast<std::ptrdiff_t>(at * key_length_));
      means_[at] = e.mean;
    }
  }
  /// The mean stored for `key` (key_length doubles), or nullptr.
  [[nodiscard]] const double* find(const double* key) const {
    for (std::size_t at = hash(key) & mask_; used_[at]; at = (at + 1) & mask_)
      if (equal(at, key)) return &means_[at];
    return nullptr;
  }

 private:
  [[nodiscard]] std::size_t hash(const double* key) const {
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < key_length_; ++i) {
      std::uint64_t bits = 0;
      if (key[i] != 0.0) std::memcpy(&bits, &key[i], sizeof bits);  // +0 and -0 are equal: one hash
      h = (h ^ bits) * 1099511628211ull;
      h ^= h >> 29;
    }
    return static_cast<std::size_t>(h);
  }
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
  /// slot = 2 * lookup + (0 mean | 1 found).
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
  std::vector<detail::FastNetwork> ensemble;
  std::size_t max_width = 0;
};

struct Scratch {
  Bindings bindings;
  std::vector<double> x, a, b, key, memory;
};

}  // namespace

struct Predictor::Impl {
  fs::path dir;
  std::vector<ModelInfo> infos;
  std::vector<std::unique_ptr<CompiledModel>> models;
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  /// Any accepted name -> op index; looked up by string_view without allocating.
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> op_by_name;
  std::vector<std::vector<const CompiledModel*>> models_by_op;     // by priority, then id
  std::vector<std::string> op_names;
  std::unordered_map<std::string, const CompiledModel*, NameHash, std::equal_to<>> by_id;

  void load() {
    if (!fs::is_directory(dir))
      throw TorpError(ErrorCode::io, "model directory " + dir.string() +
                                         " does not exist (set --models DIR or TORP_MODELS)");
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::map<std::string, std::shared_ptr<Encoder>> encoders;  // by spec+device, shared between models
    for (const auto& f : files) {
      ModelFile m = load_model(f);
      auto cm = std::make_unique<CompiledModel>();
      auto& enc = encoders[m.op_spec.dump() + '\n' + m.device.dump()];
      try {
        if (!enc) enc = std::make_shared<Encoder>(m.op_spec, m.device);
        if (canonical_op_name(m.op) != enc->op())
          throw TorpError(ErrorCode::model_format, "model op " + m.op + " differs from its op_spec op " + enc->op(), "/op");
        auto expr = [&](ExprId id) { return Expr{id, expr_slot(*enc, id)}; };
        if (m.memory) {
          for (const auto& l : m.memory->lookups) {
            std::vector<Expr> key;
            for (const auto& k : l.key) key.push_back(expr(enc->feature(k)));
            cm->memory_lookups.push_back(std::move(key));
          }
          for (const auto& k : m.memory->key) (void)enc->feature(k);  // must exist in the spec
          cm->memory.emplace(m.memory->key.size(), m.memory->entries);
        }
        for (const auto& name : m.features) {
          if (name.rfind(kMemoryFeaturePrefix, 0) == 0) {
            for (std::size_t l = 0; l < m.memory->lookups.size(); ++l) {
              std::string base = kMemoryFeaturePrefix + m.memory->lookups[l].name;
              if (name == base + ".mean") cm->features.push_back(Expr{-1, static_cast<int>(2 * l)});
              if (name == base + ".found") cm->features.push_back(Expr{-1, static_cast<int>(2 * l + 1)});
            }
            continue;
          }
          cm->features.push_back(expr(enc->feature(name)));
        }
        for (const auto& e : m.applies_when) cm->applies_when.push_back(expr(enc->compile(e)));
        for (const auto& r : m.requires_) {
          cm->requires_.push_back(expr(enc->compile(r.expr)));
          cm->requires_message.push_back(r.message);
        }
        if (m.baseline) {
          cm->has_baseline = true;
          cm->baseline_groups = m.baseline->groups;
          cm->baseline_group_name = m.baseline->group;
          if (!m.baseline->group.empty()) cm->baseline_group = expr(enc->feature(m.baseline->group));
          for (const auto& name : m.baseline->features) cm->baseline_features.push_back(expr(enc->feature(name)));
        }
      } catch (const TorpError& e) {
        throw TorpError(e.error().code, f.string() + ": " + e.error().message, e.error().path);
      }
      cm->encoder = enc;
      cm->transform = m.transform;
      cm->mean = m.mean;
      for (double s : m.stddev) cm->inv_std.push_back(1.0 / s);
      for (const auto& n : m.ensemble) {
        cm->ensemble.emplace_back(n);
        cm->max_width = std::max(cm->max_width, cm->ensemble.back().max_width());
      }
      cm->info = ModelInfo{m.id, enc->op(), f, m.priority, m.features, m.provenance};
      if (by_id.count(m.id))
        throw TorpError(ErrorCode::model_format,
                        f.string() + ": duplicate model id \"" + m.id + "\" (also in " + by_id[m.id]->info.file.string() + ")",
                        "/id");
      std::size_t op_index;
      if (auto it = op_by_name.find(enc->op()); it != op_by_name.end()) {
        op_index = it->second;
      } else {
        op_index = models_by_op.size();
        models_by_op.emplace_back();
        op_names.push_back(enc->op());
      }
      for (const auto& n : enc->names()) op_by_name.emplace(n, op_index);
      by_id[m.id] = cm.get();
      models_by_op[op_index].push_back(cm.get());
      models.push_back(std::move(cm));
      log(LogLevel::debug, "loaded model " + m.id + " from " + f.string());
    }
    for (auto& v : models_by_op)
      std::sort(v.begin(), v.end(), [](const CompiledModel* a, const CompiledModel* b) {
        return a->info.priority != b->info.priority ? a->info.priority > b->info.priority : a->info.id < b->info.id;
      });
    for (const auto& m : models) infos.push_back(m->info);
    log(LogLevel::info, "loaded " + std::to_string(models.size()) + " models from " + dir.string());
  }

  /// Encode a bound query for model m: requirements, features (normalized into x) and the
  /// analytical baseline (1 without one). Everything but the network. Reads the values bind()
  /// computed; an expression without a value is reported through Encoder::eval.
  static std::optional<Error> prepare(const CompiledModel& m, Scratch& s, double* x, double* base_out) {
    const Encoder& enc = *m.encoder;
    const Bindings& b = s.bindings;
    const double* value = b.values.data();
    const std::uint32_t* poison = b.poison.data();
    auto why = [&](const Expr& e) { return enc.eval(e.id, b).error(); };
    for (std::size_t i = 0; i < m.requires_.size(); ++i) {
      const Expr& r = m.requires_[i];
      if (poison[r.slot]) return why(r);
      if (value[r.slot] == 0.0)
        return Error{ErrorCode::invalid_argument, m.requires_message[i] + " (model " + m.info.id + ")",
                     enc.blame_path(r.id, b)};
    }
    if (m.memory) {
      s.memory.clear();
      for (const auto& key : m.memory_lookups) {
        s.key.resize(key.size());
        for (std::size_t k = 0; k < key.size(); ++k) {
          if (poison[key[k].slot]) return why(key[k]);
          s.key[k] = value[key[k].slot];
        }
        const double* mean = m.memory->find(s.key.data());
        s.memory.push_back(mean != nullptr ? *mean : 0.0);
        s.memory.push_back(mean != nullptr ? 1.0 : 0.0);
      }
    }
    const std::size_t nf = m.features.size();
    for (std::size_t i = 0; i < nf; ++i) {
      const Expr& f = m.features[i];
      if (f.id >= 0) {
        if (poison[f.slot]) return why(f);
        x[i] = value[f.slot];
      } else {
        x[i] = s.memory[static_cast<std::size_t>(f.slot)];
      }
      if (!std::isfinite(x[i]))
        return Error{ErrorCode::invalid_argument, "feature '" + m.info.features[i] + "' is not finite for this query",
                     f.id >= 0 ? enc.blame_path(f.id, b) : std::string()};
      x[i] = (x[i] - m.mean[i]) * m.inv_std[i];
    }
    *base_out = 1.0;
    if (!m.has_baseline) return std::nullopt;
    const Baseline::Group* g = &m.baseline_groups.front();
    if (m.baseline_group.id >= 0) {
      if (poison[m.baseline_group.slot]) return why(m.baseline_group);
      const double key = value[m.baseline_group.slot];
      g = nullptr;
      for (const auto& cand : m.baseline_groups)
        if (cand.key == key) g = &cand;
      if (g == nullptr)
        return Error{ErrorCode::invalid_argument,
                     "model " + m.info.id + " has no analytical baseline for " + m.baseline_group_name + " = " +
                         std::to_string(key) + " (not in its training data)",
                     enc.blame_path(m.baseline_group.id, b)};
    }
    double base = g->intercept;
    for (std::size_t i = 0; i < m.baseline_features.size(); ++i) {
      const Expr& t = m.baseline_features[i];
      if (poison[t.slot]) return why(t);
      base += g->coefficients[i] * value[t.slot];
    }
    if (!(base > 0.0) || !std::isfinite(base))
      return Error{ErrorCode::model_output_invalid,
                   "model " + m.info.id + ": analytical baseline is " + std::to_string(base) + ", not a positive runtime",
                   ""};
    *base_out = base;
    return std::nullopt;
  }

  /// Turn the ensemble's mean output into the answer; never a non-positive runtime.
  static PredictResult finish(const CompiledModel& m, double out, double base) {
    double runtime = m.transform == TargetTransform::log ? std::exp(out) * base : out;
    if (!(runtime > 0.0) || !std::isfinite(runtime))
      return Error{ErrorCode::model_output_invalid,
                   "model " + m.info.id + " produced " + std::to_string(runtime) +
                       " ns, which is not a positive finite runtime; this configuration is outside what it learned",
                   ""};
    return Prediction{runtime, m.info.id};
  }

  static PredictResult run(const CompiledModel& m, Scratch& s) {
    s.x.resize(m.features.size());
    double base = 1.0;
    if (auto e = prepare(m, s, s.x.data(), &base)) return *e;
    s.a.resize(m.max_width);
    s.b.resize(m.max_width);
    double out = 0.0;
    for (const auto& net : m.ensemble) out += net.forward(s.x.data(), s.a.data(), s.b.data());
    // An analytical model has no network: its correction is 0 and the answer is its law.
    return finish(m, m.ensemble.empty() ? 0.0 : out / static_cast<double>(m.ensemble.size()), base);
  }

  /// Whether a model covers a bound query: its first applies_when expression that does not hold
  /// (nullptr: all hold), or the error of one that cannot be computed.
  static std::variant<const Expr*, Error> first_unmet(const CompiledModel& m, const Bindings& b) {
    for (const Expr& a : m.applies_when) {
      if (b.poison[a.slot]) return m.encoder->eval(a.id, b).error();
      if (b.values[a.slot] == 0.0) return &a;
    }
    return static_cast<const Expr*>(nullptr);
  }

  /// Bind a query and choose its model; the model or the answer (an error).
  std::variant<const CompiledModel*, Error> select(std::string_view op, const json& args, std::string_view model_id,
                                                   Scratch& s) const {
    auto it = op_by_name.find(op);
    if (it == op_by_name.end()) {
      it = op_by_name.find(canonical_op_name(op));
      if (it == op_by_name.end())
        return Error{ErrorCode::unknown_op, "no model knows op \"" + std::string(op) + "\"", "/op"};
    }
    const auto& candidates = models_by_op[it->second];
    if (!model_id.empty()) {
      auto m = by_id.find(model_id);
      if (m == by_id.end())
        return Error{ErrorCode::no_model, "no model with id \"" + std::string(model_id) + "\" is loaded", "/model"};
      if (m->second->info.op != op_names[it->second])
        return Error{ErrorCode::no_model,
                     "model \"" + std::string(model_id) + "\" serves " + m->second->info.op + ", not " + op_names[it->second],
                     "/model"};
      const CompiledModel& pinned = *m->second;
      if (auto e = pinned.encoder->bind(args, s.bindings)) return *e;
      auto unmet = first_unmet(pinned, s.bindings);
      if (unmet.index() == 1) return std::get<1>(std::move(unmet));
      if (const Expr* a = std::get<0>(unmet))
        return Error{ErrorCode::no_model, "model \"" + std::string(model_id) + "\" does not cover this query",
                     pinned.encoder->blame_path(a->id, s.bindings)};
      return &pinned;
    }
    const Encoder* bound = nullptr;
    for (const CompiledModel* m : candidates) {
      if (bound != m->encoder.get()) {
        if (auto e = m->encoder->bind(args, s.bindings)) return *e;
        bound = m->encoder.get();
      }
      auto unmet = first_unmet(*m, s.bindings);
      if (unmet.index() == 1) return std::get<1>(std::move(unmet));
      if (std::get<0>(unmet) == nullptr) return m;
    }
    std::string ids;
    for (const CompiledModel* m : candidates) ids += (ids.empty() ? "" : ", ") + m->info.id;
    return Error{ErrorCode::no_model, "no loaded model of " + op_names[it->second] + " covers this query (tried " + ids + ")",
                 "/args"};
  }

  PredictResult predict(std::string_view op, const json& args, std::string_view model_id) const {
    thread_local Scratch s;
    auto chosen = select(op, args, model_id, s);
    if (chosen.index() == 1) return std::get<1>(std::move(chosen));
    return run(*std::get<0>(chosen), s);
  }

  /// The parts of a query object, or why it is not one.
  static std::optional<Error> unpack(const json& q, std::string_view& op, const json*& args, std::string_view& model_id) {
    if (!q.is_object()) return Error{ErrorCode::invalid_query, "a query must be a JSON object {\"op\", \"args\"}", ""};
    const json *o = nullptr, *a = nullptr, *m = nullptr;
    for (const auto& [key, value] : q.get_ref<const json::object_t&>()) {  // one pass over the query's members
      if (key == "op") o = &value;
      else if (key == "args") a = &value;
      else if (key == "model") m = &value;
    }
    if (o == nullptr || !o->is_string()) return Error{ErrorCode::invalid_query, "query needs a string \"op\"", "/op"};
    if (a == nullptr) return Error{ErrorCode::invalid_query, "query needs an \"args\" object", "/args"};
    model_id = {};
    if (m != nullptr && !m->is_null()) {
      if (!m->is_string()) return Error{ErrorCode::invalid_query, "\"model\" must be a model id string", "/model"};
      model_id = m->get_ref<const std::string&>();
    }
    op = o->get_ref<const std::string&>();
    args = a;
    return std::nullopt;
  }

  PredictResult predict_query(const json& q) const {
    std::string_view op, model_id;
    const json* args = nullptr;
    if (auto e = unpack(q, op, args, model_id)) return *e;
    return predict(op, *args, model_id);
  }

  /// Many queries, in chunks small enough that a chunk's encoded rows stay in cache: encode each
  /// query of the chunk, run every model's networks once over its rows (matrix products), then
  /// finish. Answers equal the single-query path exactly.
  std::vector<PredictResult> predict_batch(std::span<const json> queries) const {
    constexpr std::size_t kChunk = 256;
    struct Pending {
      const CompiledModel* model = nullptr;
      std::vector<std::size_t> index;
      std::vector<double> base, x;
    };
    thread_local Scratch s;
    thread_local std::vector<Pending> pending;  // one per model of the chunk (usually one)
    thread_local std::vector<double> out, sum;
    std::vector<PredictResult> results;
    results.reserve(queries.size());
    for (std::size_t c0 = 0; c0 < queries.size(); c0 += kChunk) {
      const std::size_t c1 = std::min(queries.size(), c0 + kChunk);
      for (auto& p : pending) p.model = nullptr;
      for (std::size_t q = c0; q < c1; ++q) {
        std::string_view op, model_id;
        const json* args = nullptr;
        if (auto e = unpack(queries[q], op, args, model_id)) {
          results.emplace_back(std::move(*e));
          continue;
        }
        auto chosen = select(op, *args, model_id, s);
        if (chosen.index() == 1) {
          results.emplace_back(std::get<1>(std::move(chosen)));
          continue;
        }
        const CompiledModel* m = std::get<0>(chosen);
        auto it = std::find_if(pending.begin(), pending.end(), [&](const Pending& p) { return p.model == m; });
        if (it == pending.end()) it = std::find_if(pending.begin(), pending.end(), [](const Pending& p) { return !p.model; });
        if (it == pending.end()) it = pending.emplace(pending.end());
        Pending& p = *it;
        if (p.model == nullptr) {
          p.model = m;
          p.index.clear();
          p.base.clear();
          p.x.clear();
        }
        const std::size_t nf = m->features.size();
        p.x.resize(p.x.size() + nf);
        double base = 1.0;
        if (auto e = prepare(*m, s, p.x.data() + p.x.size() - nf, &base)) {
          p.x.resize(p.x.size() - nf);
          results.emplace_back(std::move(*e));
          continue;
        }
        p.index.push_back(q);
        p.base.push_back(base);
        results.emplace_back(Prediction{});  // answered below
      }
      for (const Pending& p : pending) {
        if (p.model == nullptr) continue;
        const CompiledModel& m = *p.model;
        const std::size_t n = p.index.size();
        sum.assign(n, 0.0);
        for (const auto& net : m.ensemble) {
          net.forward_batch(p.x.data(), n, out);
          for (std::size_t r = 0; r < n; ++r) sum[r] += out[r];
        }
        for (std::size_t r = 0; r < n; ++r)
          results[p.index[r]] =
              finish(m, m.ensemble.empty() ? 0.0 : sum[r] / static_cast<double>(m.ensemble.size()), p.base[r]);
      }
    }
    return results;
  }
};

Predictor::Predictor(const fs::path& models_dir) : impl_(std::make_unique<Impl>()) {
  impl_->dir = models_dir;
  impl_->load();
}
Predictor::~Predictor() = default;
Predictor::Predictor(Predictor&&) noexcept = default;
Predictor& Predictor::operator=(Predictor&&) noexcept = default;

PredictResult Predictor::predict(std::string_view op, const json& args, std::string_view model_id) const {
  return impl_->predict(op, args, model_id);
}
PredictResult Predictor::predict(const json& query) const { return impl_->predict_query(query); }

std::vector<PredictResult> Predictor::predict_batch(std::span<const json> queries) const {
  return impl_->predict_batch(queries);
}

const std::vector<ModelInfo>& Predictor::models() const { return impl_->infos; }
const fs::path& Predictor::directory() const { return impl_->dir; }

}  // namespace torp
