// SPDX-License-Identifier: Apache-2.0
#include "serve/runner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace torp::detail {

MemoryTable::MemoryTable(std::size_t key_length, const std::vector<ResidualMemory::Entry>& entries)
    : key_length_(key_length) {
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

std::size_t MemoryTable::hash(const double* key) const {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < key_length_; ++i) {
    const double v = key[i] + 0.0;  // -0 + 0 = +0: +0 and -0 are equal, so they hash alike
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    h = (h ^ bits) * 1099511628211ull;
    h ^= h >> 29;
  }
  return static_cast<std::size_t>(h);
}

namespace {

Expr expr(const Encoder& enc, ExprId id) { return Expr{id, expr_slot(enc, id)}; }

void compile_memory(const ModelFile& m, const Encoder& enc, CompiledModel& cm) {
  if (!m.memory) return;
  for (const auto& l : m.memory->lookups) {
    std::vector<Expr> key;
    for (const auto& k : l.key) key.push_back(expr(enc, enc.feature(k)));
    cm.memory_lookups.push_back(std::move(key));
  }
  for (const auto& k : m.memory->key) (void)enc.feature(k);  // must exist in the spec
  cm.memory.emplace(m.memory->key.size(), m.memory->entries);
}

/// Network input i: an op-spec feature, or memory slot 2 * lookup + (0 mean | 1 found).
void compile_features(const ModelFile& m, const Encoder& enc, CompiledModel& cm) {
  for (const auto& name : m.features) {
    if (name.rfind(kMemoryFeaturePrefix, 0) != 0) {
      cm.features.push_back(expr(enc, enc.feature(name)));
      continue;
    }
    for (std::size_t l = 0; l < m.memory->lookups.size(); ++l) {  // parse_model checked the name
      const std::string base = kMemoryFeaturePrefix + m.memory->lookups[l].name;
      if (name == base + ".mean") cm.features.push_back(Expr{-1, static_cast<int>(2 * l)});
      if (name == base + ".found") cm.features.push_back(Expr{-1, static_cast<int>(2 * l + 1)});
    }
  }
}

void compile_rules_and_baseline(const ModelFile& m, Encoder& enc, CompiledModel& cm) {
  for (const auto& e : m.applies_when) cm.applies_when.push_back(expr(enc, enc.compile(e)));
  for (const auto& r : m.requires_) {
    cm.requires_.push_back(expr(enc, enc.compile(r.expr)));
    cm.requires_message.push_back(r.message);
  }
  if (!m.baseline) return;
  cm.has_baseline = true;
  cm.baseline_groups = m.baseline->groups;
  cm.baseline_group_name = m.baseline->group;
  if (!m.baseline->group.empty()) cm.baseline_group = expr(enc, enc.feature(m.baseline->group));
  for (const auto& name : m.baseline->features) cm.baseline_features.push_back(expr(enc, enc.feature(name)));
}

/// Input ranges, the correction limit and the lookups that make an answer "seen". Every network
/// input is clamped into its training range, as the trainer predicts its held-out configurations;
/// residual-memory inputs (values of the model's own table) are clamped without making the
/// answer "outside".
void compile_bounds(const ModelFile& m, CompiledModel& cm) {
  cm.kind = m.kind;
  if (m.input_range) {
    cm.has_range = true;
    for (std::size_t i = 0; i < cm.features.size(); ++i) {
      cm.range_lo.push_back((*m.input_range)[i][0]);
      cm.range_hi.push_back((*m.input_range)[i][1]);
    }
  }
  if (m.correction_limit) {
    cm.has_correction_limit = true;
    cm.correction_lo = (*m.correction_limit)[0];
    cm.correction_hi = (*m.correction_limit)[1];
  }
  if (m.memory)
    for (const auto& l : m.memory->lookups) cm.lookup_seen.push_back(l.seen ? 1 : 0);
}

/// The interval band of every domain: the one place the fallback rule is made (documented in
/// docs/query-format.md). A domain without a band of its own borrows: seen the inside band,
/// outside the inside band widened twofold in log space; inside, analytical and unknown never
/// borrow. Bands are kept as factors [e^lo, e^hi] (lo <= 0 <= hi, checked by parse_model).
void compile_bands(const ModelFile& m, CompiledModel& cm) {
  const char* none = m.kind == ModelKind::imported ? "imported model: no held-out data"
                     : m.format_version < 2       ? "model file format 1 has no calibration"
                                                  : "the model file has no calibration";
  cm.interval_note.fill(none);
  cm.interval_note[static_cast<std::size_t>(Domain::unknown)] =
      m.kind == ModelKind::imported || m.format_version < 2 ? none : "the model file has no input ranges: domain unknown";
  if (!m.calibration) return;
  auto band = [&](const char* name, double widen) -> std::optional<std::array<double, 2>> {
    auto it = m.calibration->domains.find(name);
    if (it == m.calibration->domains.end()) return std::nullopt;
    return std::array<double, 2>{std::exp(widen * it->second.lo), std::exp(widen * it->second.hi)};
  };
  auto set = [&](Domain d, std::optional<std::array<double, 2>> b) {
    cm.band[static_cast<std::size_t>(d)] = b;
    if (!b) cm.interval_note[static_cast<std::size_t>(d)] = "no calibration band for this domain";
  };
  set(Domain::seen, band("seen", 1.0) ? band("seen", 1.0) : band("inside", 1.0));
  set(Domain::inside, band("inside", 1.0));
  set(Domain::outside, band("outside", 1.0) ? band("outside", 1.0) : band("inside", 2.0));
  set(Domain::analytical, band("analytical", 1.0));
}

/// Calibration groups: per group key, each domain's own band of the group, else the domain-wide
/// band (after its fallback). Unknown keys answer with the domain-wide bands.
void compile_group_bands(const ModelFile& m, const Encoder& enc, CompiledModel& cm) {
  if (!m.calibration || m.calibration->group.empty()) return;
  cm.band_group = expr(enc, enc.feature(m.calibration->group));
  for (const auto& g : m.calibration->groups) {
    CompiledModel::Bands bands = cm.band;
    const std::pair<const char*, Domain> domains[] = {
        {"seen", Domain::seen}, {"inside", Domain::inside}, {"outside", Domain::outside}, {"analytical", Domain::analytical}};
    for (const auto& [name, d] : domains)
      if (auto it = g.domains.find(name); it != g.domains.end())
        bands[static_cast<std::size_t>(d)] = std::array<double, 2>{std::exp(it->second.lo), std::exp(it->second.hi)};
    cm.band_group_keys.push_back(g.key);
    cm.group_band.push_back(bands);
  }
}

/// The arguments none of the model's expressions read, and the JSON pointers of each subset of
/// them (at most kMaxUnread are tracked; an op with more unread arguments reports the first ones).
void compile_ignored(const Encoder& enc, CompiledModel& cm) {
  constexpr std::size_t kMaxUnread = 10;
  const std::vector<std::string> paths = EncoderAccess::argument_paths(enc);
  std::vector<bool> read(paths.size(), false);
  auto mark = [&](const Expr& e) {
    if (e.id >= 0)
      for (int a : EncoderAccess::arguments_read(enc, e.id)) read[static_cast<std::size_t>(a)] = true;
  };
  for (const auto* list : {&cm.features, &cm.applies_when, &cm.requires_, &cm.baseline_features})
    for (const Expr& e : *list) mark(e);
  for (const auto& key : cm.memory_lookups)
    for (const Expr& e : key) mark(e);
  mark(cm.baseline_group);
  mark(cm.band_group);
  for (std::size_t a = 0; a < paths.size() && cm.unread_args.size() < kMaxUnread; ++a)
    if (!read[a]) cm.unread_args.push_back(static_cast<int>(a));
  cm.ignored_by_mask.resize(std::size_t{1} << cm.unread_args.size());
  for (std::size_t mask = 0; mask < cm.ignored_by_mask.size(); ++mask)
    for (std::size_t i = 0; i < cm.unread_args.size(); ++i)
      if (mask & (std::size_t{1} << i))
        cm.ignored_by_mask[mask].push_back("/args" + paths[static_cast<std::size_t>(cm.unread_args[i])]);
}

}  // namespace

std::unique_ptr<CompiledModel> compile_model(const ModelFile& m, const std::shared_ptr<Encoder>& encoder,
                                             const std::filesystem::path& file) {
  auto cm = std::make_unique<CompiledModel>();
  Encoder& enc = *encoder;
  if (canonical_op_name(m.op) != enc.op())
    throw TorpError(ErrorCode::model_format, "model op " + m.op + " differs from its op_spec op " + enc.op(), "/op");
  compile_memory(m, enc, *cm);
  compile_features(m, enc, *cm);
  compile_rules_and_baseline(m, enc, *cm);
  compile_bounds(m, *cm);
  compile_bands(m, *cm);
  compile_group_bands(m, enc, *cm);
  compile_ignored(enc, *cm);
  cm->encoder = encoder;
  cm->transform = m.transform;
  cm->mean = m.mean;
  for (double s : m.stddev) cm->inv_std.push_back(1.0 / s);
  cm->ensemble = FastEnsemble(m.ensemble);
  cm->info = ModelInfo{m.id,         enc.op(), file, m.priority, m.device.value("name", std::string()),
                       to_string(m.kind), m.features, m.provenance};
  return cm;
}

std::variant<const Expr*, Error> first_unmet(const CompiledModel& m, const Bindings& b) {
  for (const Expr& a : m.applies_when) {
    if (b.poison[a.slot]) return m.encoder->eval(a.id, b).error();
    if (b.values[a.slot] == 0.0) return &a;
  }
  return static_cast<const Expr*>(nullptr);
}

namespace {

Error why(const CompiledModel& m, const Bindings& b, const Expr& e) { return m.encoder->eval(e.id, b).error(); }

std::optional<Error> check_requires(const CompiledModel& m, const Bindings& b) {
  for (std::size_t i = 0; i < m.requires_.size(); ++i) {
    const Expr& r = m.requires_[i];
    if (b.poison[r.slot]) return why(m, b, r);
    if (b.values[r.slot] == 0.0)
      return Error{ErrorCode::invalid_argument, m.requires_message[i] + " (model " + m.info.id + ")",
                   m.encoder->blame_path(r.id, b)};
  }
  return std::nullopt;
}

/// Each lookup's (mean, found) into s.memory, in slot order.
std::optional<Error> look_up_memory(const CompiledModel& m, Scratch& s, Prepared& p) {
  const Bindings& b = s.bindings;
  const double* const values = b.values.data();
  const std::uint32_t* const poison = b.poison.data();
  const std::size_t lookups = m.memory_lookups.size();
  s.memory.resize(2 * lookups);
  for (std::size_t l = 0; l < lookups; ++l) {
    const auto& key = m.memory_lookups[l];
    s.key.resize(key.size());
    double* const k_out = s.key.data();
    for (std::size_t k = 0; k < key.size(); ++k) {
      if (poison[key[k].slot]) return why(m, b, key[k]);
      k_out[k] = values[key[k].slot];
    }
    const double* mean = m.memory->find(k_out);
    s.memory[2 * l] = mean != nullptr ? *mean : 0.0;
    s.memory[2 * l + 1] = mean != nullptr ? 1.0 : 0.0;
    p.memory_found = p.memory_found || mean != nullptr;
    p.seen = p.seen || (mean != nullptr && m.lookup_seen[l]);
  }
  return std::nullopt;
}

std::optional<Error> encode_features(const CompiledModel& m, const Scratch& s, double* x, Prepared& p) {
  const Bindings& b = s.bindings;
  const std::size_t nf = m.features.size();
  // Local pointers: stores into x cannot make the compiler reload them (x is a plain double*).
  const double* const values = b.values.data();
  const std::uint32_t* const poison = b.poison.data();
  const double* const memory = s.memory.data();
  const double *const lo = m.range_lo.data(), *const hi = m.range_hi.data();
  const double *const mean = m.mean.data(), *const inv_std = m.inv_std.data();
  const Expr* const features = m.features.data();
  const bool has_range = m.has_range;
  for (std::size_t i = 0; i < nf; ++i) {
    const Expr& f = features[i];
    double v;
    if (f.id >= 0) {
      if (poison[f.slot]) return why(m, b, f);
      v = values[f.slot];
    } else {
      v = memory[static_cast<std::size_t>(f.slot)];
    }
    if (!std::isfinite(v))
      return Error{ErrorCode::invalid_argument, "feature '" + m.info.features[i] + "' is not finite for this query",
                   f.id >= 0 ? m.encoder->blame_path(f.id, b) : std::string()};
    if (has_range && !(v >= lo[i] && v <= hi[i])) {  // bounded extrapolation
      if (f.id >= 0) p.outside.push_back(OutsideInput{m.info.features[i], v, {lo[i], hi[i]}});
      v = std::clamp(v, lo[i], hi[i]);
    }
    x[i] = (v - mean[i]) * inv_std[i];
  }
  return std::nullopt;
}

std::optional<Error> compute_baseline(const CompiledModel& m, const Bindings& b, double& base_out) {
  const Baseline::Group* g = &m.baseline_groups.front();
  if (m.baseline_group.id >= 0) {
    if (b.poison[m.baseline_group.slot]) return why(m, b, m.baseline_group);
    const double key = b.values[m.baseline_group.slot];
    g = nullptr;
    for (const auto& cand : m.baseline_groups)
      if (cand.key == key) g = &cand;
    if (g == nullptr)
      return Error{ErrorCode::invalid_argument,
                   "model " + m.info.id + " has no analytical baseline for " + m.baseline_group_name + " = " +
                       std::to_string(key) + " (not in its training data)",
                   m.encoder->blame_path(m.baseline_group.id, b)};
  }
  double base = g->intercept;
  for (std::size_t i = 0; i < m.baseline_features.size(); ++i) {
    const Expr& t = m.baseline_features[i];
    if (b.poison[t.slot]) return why(m, b, t);
    base += g->coefficients[i] * b.values[t.slot];
  }
  if (!(base > 0.0) || !std::isfinite(base))
    return Error{ErrorCode::model_output_invalid,
                 "model " + m.info.id + ": analytical baseline is " + std::to_string(base) + ", not a positive runtime",
                 ""};
  base_out = base;
  return std::nullopt;
}

}  // namespace

std::optional<Error> prepare(const CompiledModel& m, Scratch& s, double* x, Prepared& p) {
  p = Prepared{};
  if (auto e = check_requires(m, s.bindings)) return e;
  if (m.memory)
    if (auto e = look_up_memory(m, s, p)) return e;
  if (auto e = encode_features(m, s, x, p)) return e;
  for (std::size_t i = 0; i < m.unread_args.size(); ++i)
    if (s.bindings.args[static_cast<std::size_t>(m.unread_args[i])].given) p.ignored_mask |= 1u << i;
  if (m.band_group.id >= 0 && !s.bindings.poison[m.band_group.slot]) {
    const double key = s.bindings.values[m.band_group.slot];
    for (std::size_t g = 0; g < m.band_group_keys.size(); ++g)
      if (m.band_group_keys[g] == key) p.band_group = static_cast<int>(g);
  }
  if (!m.has_baseline) return std::nullopt;
  return compute_baseline(m, s.bindings, p.base);
}

namespace {

/// The domain rule (docs/query-format.md): analytical models; else seen (a "seen" lookup hit);
/// else unknown without input ranges; else outside if an input was beyond its range; else inside.
Domain domain_of(const CompiledModel& m, const Prepared& p) {
  if (m.kind == ModelKind::analytical) return Domain::analytical;
  if (p.seen) return Domain::seen;
  if (!m.has_range) return Domain::unknown;
  return p.outside.empty() ? Domain::inside : Domain::outside;
}

}  // namespace

PredictResult finish(const CompiledModel& m, double out, Prepared& p) {
  if (m.has_correction_limit) out = std::clamp(out, m.correction_lo, m.correction_hi);
  const double runtime = m.transform == TargetTransform::log ? std::exp(out) * p.base : out;
  if (!(runtime > 0.0) || !std::isfinite(runtime))
    return Error{ErrorCode::model_output_invalid,
                 "model " + m.info.id + " produced " + std::to_string(runtime) +
                     " ns, which is not a positive finite runtime; this configuration is outside what it learned",
                 ""};
  Prediction r;
  r.runtime_ns = runtime;
  r.model_id = m.info.id;
  r.memory_found = p.memory_found;
  r.domain = domain_of(m, p);
  const auto d = static_cast<std::size_t>(r.domain);
  const CompiledModel::Bands& bands = p.band_group >= 0 ? m.group_band[static_cast<std::size_t>(p.band_group)] : m.band;
  if (const auto& band = bands[d]) r.interval_ns = std::array<double, 2>{runtime * (*band)[0], runtime * (*band)[1]};
  else r.interval_note = m.interval_note[d];
  if (r.domain == Domain::outside) r.outside = std::move(p.outside);
  if (p.ignored_mask != 0) r.ignored = m.ignored_by_mask[p.ignored_mask];
  return r;
}

PredictResult run(const CompiledModel& m, Scratch& s) {
  s.x.resize(m.features.size());
  Prepared p;
  if (auto e = prepare(m, s, s.x.data(), p)) return *e;
  s.a.resize(m.ensemble.scratch_size());
  // An analytical model has no network: its correction is 0 and the answer is its law.
  return finish(m, m.ensemble.mean(s.x.data(), s.a.data()), p);
}

}  // namespace torp::detail
