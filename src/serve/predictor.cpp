// SPDX-License-Identifier: Apache-2.0
#include "torp/predictor.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <unordered_map>
#include <variant>

#include "serve/model_dir.hpp"
#include "serve/runner.hpp"
#include "torp/json_text.hpp"
#include "torp/log.hpp"

namespace torp {
namespace fs = std::filesystem;

namespace {
constexpr std::string_view kDefaultDevice = "wormhole_n300";  ///< preferred among equal priorities
}  // namespace

using json = nlohmann::json;

namespace {
/// The installed package's models directory, registered by its consumers (see predictor.hpp).
fs::path& package_models_dir() {
  static fs::path dir;
  return dir;
}
}  // namespace

void set_package_models_dir(const fs::path& dir) { package_models_dir() = dir; }

fs::path resolve_models_dir(const std::optional<fs::path>& explicit_dir) {
  if (explicit_dir) return *explicit_dir;
  if (const char* env = std::getenv("TORP_MODELS"); env != nullptr && *env != '\0' && *env != ':')
    return fs::path(std::string_view(env).substr(0, std::string_view(env).find(':')));  // the first of a:b
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&resolve_models_dir), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    fs::path self = fs::canonical(fs::path(info.dli_fname), ec);
    if (!ec) {
      fs::path installed = self.parent_path().parent_path() / "share" / "torp" / "models";
      if (fs::is_directory(installed, ec)) return installed;
    }
  }
  if (std::error_code ec; !package_models_dir().empty() && fs::is_directory(package_models_dir(), ec))
    return package_models_dir();
#ifdef TORP_INSTALLED_MODELS_DIR
  // The install prefix this library was configured for (a static library linked into a consumer
  // elsewhere: dladdr names the consumer's executable).
  if (std::error_code ec; fs::is_directory(fs::path(TORP_INSTALLED_MODELS_DIR), ec)) return fs::path(TORP_INSTALLED_MODELS_DIR);
#endif
  return fs::path("models");
}

std::vector<fs::path> resolve_models_dirs(const std::vector<fs::path>& explicit_dirs) {
  if (!explicit_dirs.empty()) return explicit_dirs;
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("TORP_MODELS"); env != nullptr && *env != '\0') {
    std::string_view list = env;
    for (std::size_t start = 0; start <= list.size();) {
      std::size_t colon = std::min(list.find(':', start), list.size());
      if (colon > start) dirs.emplace_back(list.substr(start, colon - start));
      start = colon + 1;
    }
    if (!dirs.empty()) return dirs;
  }
  return {resolve_models_dir()};
}

using detail::CompiledModel;
using detail::Expr;
using detail::Scratch;

namespace {

/// Op names -> op index, in one open-addressing table (at most half full, linear probing) with an
/// inline FNV-1a hash: the query path looks up one name per query, and std::unordered_map's
/// out-of-line string hash and node walk cost a few hundred instructions.
class NameIndex {
 public:
  /// Adds name -> index unless the name is there already (the first one wins).
  void add(std::string_view name, std::size_t index) {
    if (2 * (count_ + 1) > slots_.size()) grow();
    insert(std::string(name), index);
  }
  [[nodiscard]] const std::size_t* find(std::string_view name) const {
    if (slots_.empty()) return nullptr;
    for (std::size_t at = hash(name) & mask(); slots_[at].used; at = (at + 1) & mask())
      if (slots_[at].name == name) return &slots_[at].index;
    return nullptr;
  }

 private:
  struct Slot {
    std::string name;
    std::size_t index = 0;
    bool used = false;
  };
  static std::size_t hash(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return static_cast<std::size_t>(h ^ (h >> 32));
  }
  [[nodiscard]] std::size_t mask() const { return slots_.size() - 1; }
  void insert(std::string name, std::size_t index) {
    std::size_t at = hash(name) & mask();
    for (; slots_[at].used; at = (at + 1) & mask())
      if (slots_[at].name == name) return;
    slots_[at] = Slot{std::move(name), index, true};
    ++count_;
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<std::size_t>(16, 2 * old.size()), Slot{});
    count_ = 0;
    for (Slot& s : old)
      if (s.used) insert(std::move(s.name), s.index);
  }
  std::vector<Slot> slots_;
  std::size_t count_ = 0;
};

}  // namespace

struct Predictor::Impl {
  std::vector<fs::path> dirs;  // empty for models given in memory
  std::vector<ModelInfo> infos;
  std::vector<std::unique_ptr<CompiledModel>> models;
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  /// Any accepted name -> op index; looked up by string_view without allocating.
  NameIndex op_by_name;
  std::vector<std::vector<const CompiledModel*>> models_by_op;     // by priority, then id
  std::vector<std::string> op_names;
  std::unordered_map<std::string, const CompiledModel*, NameHash, std::equal_to<>> by_id;

  /// The encoder of a model's op spec; its errors' JSON paths are made relative to the model file.
  static std::shared_ptr<Encoder> op_spec_encoder(const ModelFile& m) {
    try {
      return std::make_shared<Encoder>(m.op_spec, m.device);
    } catch (const TorpError& e) {
      Error err = e.error();
      if (err.code == ErrorCode::op_spec) err.path.insert(0, "/op_spec");
      throw TorpError(std::move(err));
    }
  }

  /// Compile one model and index it by id and op. `file` is "" for a model given in memory.
  void add(const ModelFile& m, const fs::path& file, std::map<std::string, std::shared_ptr<Encoder>>& encoders) {
    const std::string source = file.empty() ? "model " + m.id : file.string();  // the errors' `file`
    std::unique_ptr<CompiledModel> cm;
    try {
      auto& enc = encoders[m.op_spec.dump() + '\n' + m.device.dump()];  // shared between models
      if (!enc) enc = op_spec_encoder(m);
      cm = detail::compile_model(m, enc, file);
    } catch (const TorpError& e) {
      throw TorpError(in_file(e.error(), source));
    } catch (const nlohmann::json::exception& e) {  // a wrongly typed member of the op spec
      throw TorpError(ErrorCode::op_spec, std::string("malformed op spec: ") + e.what(), "/op_spec", source);
    }
    if (auto it = by_id.find(m.id); it != by_id.end())
      throw TorpError(ErrorCode::model_format,
                      "duplicate model id \"" + m.id + "\" (also in " + it->second->info.file.string() + ")", "/id",
                      source);
    const std::string& op = cm->info.op;
    std::size_t op_index;
    if (const std::size_t* known = op_by_name.find(op)) {
      op_index = *known;
    } else {
      op_index = models_by_op.size();
      models_by_op.emplace_back();
      op_names.push_back(op);
    }
    for (const auto& n : cm->encoder->names()) op_by_name.add(n, op_index);
    by_id[m.id] = cm.get();
    models_by_op[op_index].push_back(cm.get());
    models.push_back(std::move(cm));
  }

  /// After the last add(): candidates by priority, then the default device's models, then id
  /// (so that adding another device's models does not change today's answers).
  void index() {
    for (auto& v : models_by_op)
      std::sort(v.begin(), v.end(), [](const CompiledModel* a, const CompiledModel* b) {
        if (a->info.priority != b->info.priority) return a->info.priority > b->info.priority;
        const bool da = a->info.device == kDefaultDevice, db = b->info.device == kDefaultDevice;
        return da != db ? da : a->info.id < b->info.id;
      });
    for (const auto& m : models) infos.push_back(m->info);
  }

  void load_directories() {
    std::map<std::string, std::shared_ptr<Encoder>> encoders;
    for (const auto& [f, m] : load_model_dirs(dirs)) {
      add(m, f, encoders);
      log(LogLevel::debug, "loaded model " + models.back()->info.id + " from " + f.string());
    }
    index();
    std::string where;
    for (const auto& d : dirs) where += (where.empty() ? "" : ", ") + d.string();
    log(LogLevel::info, "loaded " + std::to_string(models.size()) + " models from " + where);
  }

  void load_models(const std::vector<ModelFile>& files) {
    std::map<std::string, std::shared_ptr<Encoder>> encoders;
    for (const auto& m : files) add(parse_model(to_json(m), "model " + m.id), fs::path(), encoders);  // validated as if read
    index();
  }

  /// The op index of any accepted spelling of an op name.
  std::variant<std::size_t, Error> find_op(std::string_view op) const {
    const std::size_t* index = op_by_name.find(op);
    if (index == nullptr) index = op_by_name.find(canonical_op_name(op));
    if (index == nullptr) return Error{ErrorCode::unknown_op, "no model knows op \"" + std::string(op) + "\"", "/op"};
    return *index;
  }

  /// The pinned model, bound, if it serves op `op_index` and covers the query.
  std::variant<const CompiledModel*, Error> select_pinned(std::size_t op_index, const json& args, std::string_view model_id,
                                                          Scratch& s) const {
    auto m = by_id.find(model_id);
    if (m == by_id.end())
      return Error{ErrorCode::no_model, "no model with id \"" + std::string(model_id) + "\" is loaded", "/model"};
    const CompiledModel& pinned = *m->second;
    if (pinned.info.op != op_names[op_index])
      return Error{ErrorCode::no_model,
                   "model \"" + std::string(model_id) + "\" serves " + pinned.info.op + ", not " + op_names[op_index],
                   "/model"};
    if (auto e = pinned.encoder->bind(args, s.bindings)) return *e;
    auto unmet = detail::first_unmet(pinned, s.bindings);
    if (unmet.index() == 1) return std::get<1>(std::move(unmet));
    if (const Expr* a = std::get<0>(unmet))
      return Error{ErrorCode::no_model, "model \"" + std::string(model_id) + "\" does not cover this query",
                   pinned.encoder->blame_path(a->id, s.bindings)};
    return &pinned;
  }

  /// The first candidate of op `op_index` (of `device` if given) that binds the query and applies.
  /// A candidate whose encoder cannot bind the arguments is passed over; its error is the answer
  /// only if no candidate binds.
  std::variant<const CompiledModel*, Error> select_candidate(std::size_t op_index, const json& args,
                                                             std::string_view device, Scratch& s) const {
    const Encoder* bound = nullptr;   // the encoder whose bindings s holds
    const Encoder* failed = nullptr;  // the last encoder that could not bind the arguments
    std::optional<Error> bind_error;  // the first such error
    bool any = false, bound_one = false;
    for (const CompiledModel* m : models_by_op[op_index]) {
      if (!device.empty() && m->info.device != device) continue;
      any = true;
      if (m->encoder.get() == failed) continue;
      if (bound != m->encoder.get()) {
        bound = nullptr;
        if (auto e = m->encoder->bind(args, s.bindings)) {
          if (!bind_error) bind_error = std::move(e);
          failed = m->encoder.get();
          continue;
        }
        bound = m->encoder.get();
        bound_one = true;
      }
      auto unmet = detail::first_unmet(*m, s.bindings);
      if (unmet.index() == 1) return std::get<1>(std::move(unmet));
      if (std::get<0>(unmet) == nullptr) return m;
    }
    if (!any)
      return Error{ErrorCode::no_model, "no loaded model of " + op_names[op_index] + " is for device \"" +
                                            std::string(device) + "\"", "/device"};
    if (!bound_one) return *bind_error;
    return no_cover(op_index, device);
  }

  Error no_cover(std::size_t op_index, std::string_view device) const {
    std::string ids;
    for (const CompiledModel* m : models_by_op[op_index])
      if (device.empty() || m->info.device == device) ids += (ids.empty() ? "" : ", ") + m->info.id;
    return Error{ErrorCode::no_model, "no loaded model of " + op_names[op_index] + " covers this query (tried " + ids + ")",
                 "/args"};
  }

  /// Bind a query and choose its model; the model or the answer (an error).
  std::variant<const CompiledModel*, Error> select(std::string_view op, const json& args, const PredictOptions& o,
                                                   Scratch& s) const {
    auto op_index = find_op(op);
    if (op_index.index() == 1) return std::get<1>(std::move(op_index));
    if (!o.model.empty()) return select_pinned(std::get<0>(op_index), args, o.model, s);
    return select_candidate(std::get<0>(op_index), args, o.device, s);
  }

  PredictResult predict(std::string_view op, const json& args, const PredictOptions& o) const {
    thread_local Scratch s;
    auto chosen = select(op, args, o, s);
    if (chosen.index() == 1) return std::get<1>(std::move(chosen));
    return detail::run(*std::get<0>(chosen), s);
  }

  /// A string member of a query ("model", "device"): absent or null is empty.
  static std::optional<Error> string_member(const json* v, const char* name, std::string_view& out) {
    out = {};
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_string())
      return Error{ErrorCode::invalid_query, "\"" + std::string(name) + "\" must be a string", std::string("/") + name};
    out = v->get_ref<const std::string&>();
    return std::nullopt;
  }

  /// The parts of a query object, or why it is not one.
  static std::optional<Error> unpack(const json& q, std::string_view& op, const json*& args, PredictOptions& o) {
    if (!q.is_object()) return Error{ErrorCode::invalid_query, "a query must be a JSON object {\"op\", \"args\"}", ""};
    const json *op_value = nullptr, *a = nullptr, *m = nullptr, *d = nullptr;
    for (const auto& [key, value] : q.get_ref<const json::object_t&>()) {  // one pass over the query's members
      if (key == "op") op_value = &value;
      else if (key == "args") a = &value;
      else if (key == "model") m = &value;
      else if (key == "device") d = &value;
    }
    if (op_value == nullptr || !op_value->is_string())
      return Error{ErrorCode::invalid_query, "query needs a string \"op\"", "/op"};
    if (a == nullptr) return Error{ErrorCode::invalid_query, "query needs an \"args\" object", "/args"};
    if (auto e = string_member(m, "model", o.model)) return e;
    if (auto e = string_member(d, "device", o.device)) return e;
    op = op_value->get_ref<const std::string&>();
    args = a;
    return std::nullopt;
  }

  PredictResult predict_query(const json& q) const {
    std::string_view op;
    PredictOptions o;
    const json* args = nullptr;
    if (auto e = unpack(q, op, args, o)) return *e;
    return predict(op, *args, o);
  }

  /// One model's rows of a batch chunk: normalized inputs, what prepare() learned, answer index.
  struct Pending {
    const CompiledModel* model = nullptr;
    std::vector<std::size_t> index;
    std::vector<detail::Prepared> prepared;
    std::vector<double> x;
  };

  static Pending& pending_for(std::vector<Pending>& pending, const CompiledModel* m) {
    auto it = std::find_if(pending.begin(), pending.end(), [&](const Pending& p) { return p.model == m; });
    if (it == pending.end()) it = std::find_if(pending.begin(), pending.end(), [](const Pending& p) { return !p.model; });
    if (it == pending.end()) it = pending.emplace(pending.end());
    if (it->model == nullptr) {
      it->model = m;
      it->index.clear();
      it->prepared.clear();
      it->x.clear();
    }
    return *it;
  }

  /// Query `q` of a chunk: its answer now if it is an error, else one more row of its model.
  void encode_row(const json& q, Scratch& s, std::vector<Pending>& pending, std::vector<PredictResult>& results) const {
    std::string_view op;
    PredictOptions o;
    const json* args = nullptr;
    if (auto e = unpack(q, op, args, o)) {
      results.emplace_back(std::move(*e));
      return;
    }
    auto chosen = select(op, *args, o, s);
    if (chosen.index() == 1) {
      results.emplace_back(std::get<1>(std::move(chosen)));
      return;
    }
    const CompiledModel* m = std::get<0>(chosen);
    Pending& p = pending_for(pending, m);
    const std::size_t nf = m->features.size();
    p.x.resize(p.x.size() + nf);
    detail::Prepared prepared;
    if (auto e = detail::prepare(*m, s, p.x.data() + p.x.size() - nf, prepared)) {
      p.x.resize(p.x.size() - nf);
      results.emplace_back(std::move(*e));
      return;
    }
    p.index.push_back(results.size());
    p.prepared.push_back(std::move(prepared));
    results.emplace_back(Prediction{});  // answered by run_rows
  }

  /// Every network of p's model over all its rows at once, then each row's answer.
  static void run_rows(Pending& p, std::vector<PredictResult>& results) {
    thread_local std::vector<double> mean;
    const CompiledModel& m = *p.model;
    const std::size_t n = p.index.size();
    m.ensemble.mean_batch(p.x.data(), n, mean);  // an analytical model has no network: its correction is 0
    for (std::size_t r = 0; r < n; ++r) results[p.index[r]] = detail::finish(m, mean[r], p.prepared[r]);
  }

  /// Many queries, in chunks small enough that a chunk's encoded rows stay in cache: encode each
  /// query of the chunk, run every model's networks once over its rows (matrix products), then
  /// finish. Answers equal the single-query path exactly.
  std::vector<PredictResult> predict_batch(std::span<const json> queries) const {
    constexpr std::size_t kChunk = 256;
    thread_local Scratch s;
    thread_local std::vector<Pending> pending;  // one per model of the chunk (usually one)
    std::vector<PredictResult> results;
    results.reserve(queries.size());
    for (std::size_t c0 = 0; c0 < queries.size(); c0 += kChunk) {
      for (auto& p : pending) p.model = nullptr;
      for (std::size_t q = c0; q < std::min(queries.size(), c0 + kChunk); ++q) encode_row(queries[q], s, pending, results);
      for (Pending& p : pending)
        if (p.model != nullptr) run_rows(p, results);
    }
    return results;
  }
};

Predictor::Predictor(const fs::path& models_dir) : Predictor(std::vector<fs::path>{models_dir}) {}
Predictor::Predictor(const std::vector<fs::path>& models_dirs) : impl_(std::make_unique<Impl>()) {
  impl_->dirs = models_dirs;
  impl_->load_directories();
}
Predictor::Predictor(const std::vector<ModelFile>& models) : impl_(std::make_unique<Impl>()) {
  impl_->load_models(models);
}
Predictor::~Predictor() = default;
Predictor::Predictor(Predictor&&) noexcept = default;
Predictor& Predictor::operator=(Predictor&&) noexcept = default;

namespace {

/// The error boundary of the query path: an exception (a bug, or memory running out) becomes an
/// error answer; nothing is thrown to the caller.
Error internal_error(const char* what) {
  return Error{ErrorCode::invalid_query, std::string("internal error while answering this query: ") + what, ""};
}

template <class F>
PredictResult guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return internal_error("out of memory");
  } catch (const std::exception& e) {
    return internal_error(e.what());
  } catch (...) {
    return internal_error("unknown exception");
  }
}

}  // namespace

PredictResult Predictor::predict(std::string_view op, const json& args, std::string_view model_id) const {
  return guarded([&] { return impl_->predict(op, args, PredictOptions{{}, model_id}); });
}
PredictResult Predictor::predict(std::string_view op, const json& args, const PredictOptions& options) const {
  return guarded([&] { return impl_->predict(op, args, options); });
}
PredictResult Predictor::predict_text(std::string_view op, std::string_view args_json, const PredictOptions& options) const {
  return guarded([&]() -> PredictResult {
    const json args = parse_json(args_json);
    if (args.is_discarded()) return Error{ErrorCode::invalid_query, "args is not valid JSON text", "/args"};
    return impl_->predict(op, args, options);
  });
}
PredictResult Predictor::predict(const json& query) const {
  return guarded([&] { return impl_->predict_query(query); });
}

const char* to_string(Domain d) {
  switch (d) {
    case Domain::seen: return "seen";
    case Domain::inside: return "inside";
    case Domain::outside: return "outside";
    case Domain::unknown: return "unknown";
    case Domain::analytical: return "analytical";
  }
  return "unknown";
}

std::vector<PredictResult> Predictor::predict_batch(std::span<const json> queries) const {
  try {
    return impl_->predict_batch(queries);
  } catch (...) {  // answer one by one: only the query at fault gets the error
  }
  std::vector<PredictResult> results;
  results.reserve(queries.size());
  for (const json& q : queries) results.push_back(predict(q));
  return results;
}

const std::vector<ModelInfo>& Predictor::models() const { return impl_->infos; }
const fs::path& Predictor::directory() const {
  static const fs::path none;
  return impl_->dirs.empty() ? none : impl_->dirs.front();
}
const std::vector<fs::path>& Predictor::directories() const { return impl_->dirs; }

}  // namespace torp
