// SPDX-License-Identifier: Apache-2.0
#include "torp/model.hpp"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "torp/atomic_file.hpp"
#include "torp/json_text.hpp"

namespace torp {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& source, const std::string& path, const std::string& msg) {
  throw TorpError(ErrorCode::model_format, msg, path, source);
}

const json& need(const json& j, const char* key, const std::string& source, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end()) bad(source, path + "/" + key, std::string("missing key \"") + key + "\"");
  return *it;
}

std::vector<double> numbers(const json& j, const std::string& source, const std::string& path) {
  if (!j.is_array()) bad(source, path, "expected an array of numbers");
  std::vector<double> v;
  v.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number()) bad(source, path + "/" + std::to_string(i), "expected a number");
    double d = j[i].get<double>();
    if (!std::isfinite(d)) bad(source, path + "/" + std::to_string(i), "non-finite number");
    v.push_back(d);
  }
  return v;
}

std::string str(const json& j, const std::string& source, const std::string& path) {
  if (!j.is_string()) bad(source, path, "expected a string");
  return j.get<std::string>();
}

/// An integer in [lo, hi]; a float, a larger integer or an out-of-range one is an error (never
/// truncated: 2^32 + 1 is not 1).
long long integer(const json& j, long long lo, long long hi, const std::string& source, const std::string& path,
                  const char* what) {
  bool ok = false;
  long long v = 0;
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    ok = u <= static_cast<std::uint64_t>(hi);
    v = ok ? static_cast<long long>(u) : 0;
  } else if (j.is_number_integer()) {
    v = j.get<std::int64_t>();
    ok = v >= lo && v <= hi;
  }
  if (!ok)
    bad(source, path,
        std::string(what) + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  return v;
}

std::vector<std::string> names(const json& j, const std::string& source, const std::string& path, const char* what) {
  if (!j.is_array()) bad(source, path, std::string(what) + " must be an array of names");
  std::vector<std::string> v;
  for (std::size_t i = 0; i < j.size(); ++i) v.push_back(str(j[i], source, path + "/" + std::to_string(i)));
  return v;
}

/// The first repeated name of `v` is an error at path/<index>.
void unique_names(const std::vector<std::string>& v, const std::string& source, const std::string& path,
                  const char* what) {
  for (std::size_t i = 0; i < v.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (v[i] == v[j]) bad(source, path + "/" + std::to_string(i), std::string("duplicate ") + what + " \"" + v[i] + "\"");
}

int format_version(const json& doc, const std::string& source) {
  auto fmt = doc.find("format");
  if (fmt == doc.end() || !fmt->is_string() || fmt->get<std::string>() != kModelFormat)
    bad(source, "/format", std::string("not a TORP model: \"format\" must be \"") + kModelFormat + "\"");
  auto ver = doc.find("format_version");
  if (ver == doc.end() || !ver->is_number_integer())
    throw TorpError(ErrorCode::model_version, "\"format_version\" must be an integer", "/format_version", source);
  const bool is_newer = ver->is_number_unsigned() ? ver->get<std::uint64_t>() > kModelFormatVersion
                                                  : ver->get<std::int64_t>() > kModelFormatVersion;
  if (is_newer)
    throw TorpError(ErrorCode::model_version,
                    "format_version " + ver->dump() + " is newer than this TORP reads (" +
                        std::to_string(kModelFormatVersion) + "); upgrade TORP",
                    "/format_version", source);
  const std::int64_t v = ver->get<std::int64_t>();  // now within [min, kModelFormatVersion]
  if (v < 1)
    throw TorpError(ErrorCode::model_version, "unknown format_version " + ver->dump(), "/format_version", source);
  return static_cast<int>(v);
}

void parse_selection(const json& doc, const std::string& source, ModelFile& m) {
  const json& sel = need(doc, "selection", source, "");
  if (!sel.is_object()) bad(source, "/selection", "selection must be an object");
  if (auto p = sel.find("priority"); p != sel.end())
    m.priority = static_cast<int>(integer(*p, -1000000, 1000000, source, "/selection/priority", "priority"));
  if (auto a = sel.find("applies_when"); a != sel.end())
    m.applies_when = names(*a, source, "/selection/applies_when", "applies_when");
  if (auto r = sel.find("requires"); r != sel.end()) {
    if (!r->is_array()) bad(source, "/selection/requires", "requires must be an array of {expr, message}");
    for (std::size_t i = 0; i < r->size(); ++i) {
      std::string p = "/selection/requires/" + std::to_string(i);
      const json& e = (*r)[i];
      if (!e.is_object()) bad(source, p, "expected {expr, message}");
      m.requires_.push_back({str(need(e, "expr", source, p), source, p + "/expr"),
                             str(need(e, "message", source, p), source, p + "/message")});
    }
  }
}

void parse_normalization(const json& doc, const std::string& source, ModelFile& m) {
  const std::size_t nf = m.features.size();
  const json& norm = need(doc, "normalization", source, "");
  m.mean = numbers(need(norm, "mean", source, "/normalization"), source, "/normalization/mean");
  m.stddev = numbers(need(norm, "std", source, "/normalization"), source, "/normalization/std");
  if (m.mean.size() != nf || m.stddev.size() != nf)
    bad(source, "/normalization", "mean and std must have one entry per feature (" + std::to_string(nf) + ")");
  for (std::size_t i = 0; i < nf; ++i)
    if (!(m.stddev[i] > 0.0)) bad(source, "/normalization/std/" + std::to_string(i), "std must be positive");
}

Baseline parse_baseline(const json& b, const std::string& source) {
  const std::string bp = "/target/baseline";
  if (str(need(b, "type", source, bp), source, bp + "/type") != "linear")
    bad(source, bp + "/type", "unknown baseline type (expected \"linear\")");
  Baseline base;
  const json& g = need(b, "group", source, bp);
  if (!g.is_null()) base.group = str(g, source, bp + "/group");
  base.features = names(need(b, "terms", source, bp), source, bp + "/terms", "terms");
  const json& groups = need(b, "groups", source, bp);
  if (!groups.is_array() || groups.empty()) bad(source, bp + "/groups", "groups must be a non-empty array");
  if (base.group.empty() && groups.size() != 1) bad(source, bp + "/groups", "without a group feature there must be exactly one group");
  for (std::size_t i = 0; i < groups.size(); ++i) {
    std::string gp = bp + "/groups/" + std::to_string(i);
    Baseline::Group grp;
    if (!base.group.empty()) {
      const json& k = need(groups[i], "key", source, gp);
      if (!k.is_number() || !std::isfinite(k.get<double>())) bad(source, gp + "/key", "expected a finite number");
      grp.key = k.get<double>();
      for (const auto& other : base.groups)
        if (other.key == grp.key) bad(source, gp + "/key", "duplicate group key " + k.dump());
    }
    const json& ic = need(groups[i], "intercept", source, gp);
    if (!ic.is_number() || !std::isfinite(ic.get<double>())) bad(source, gp + "/intercept", "expected a finite number");
    grp.intercept = ic.get<double>();
    grp.coefficients = numbers(need(groups[i], "coef", source, gp), source, gp + "/coef");
    if (grp.coefficients.size() != base.features.size())
      bad(source, gp + "/coef", "shape mismatch: one coefficient per term expected");
    base.groups.push_back(std::move(grp));
  }
  return base;
}

void parse_target(const json& doc, const std::string& source, ModelFile& m) {
  const json& target = need(doc, "target", source, "");
  std::string tr = str(need(target, "transform", source, "/target"), source, "/target/transform");
  if (tr == "none") m.transform = TargetTransform::none;
  else if (tr == "log") m.transform = TargetTransform::log;
  else bad(source, "/target/transform", "unknown target transform \"" + tr + "\" (expected none or log)");
  if (auto b = target.find("baseline"); b != target.end() && !b->is_null()) {
    if (m.transform != TargetTransform::log) bad(source, "/target/baseline", "a baseline needs the log transform");
    m.baseline = parse_baseline(*b, source);
  }
}

ResidualMemory::Lookup parse_lookup(const json& j, std::size_t key_size, int version, const std::string& source,
                                    const std::string& lp) {
  ResidualMemory::Lookup l;
  l.name = str(need(j, "name", source, lp), source, lp + "/name");
  l.key = names(need(j, "key", source, lp), source, lp + "/key", "a lookup key");
  if (l.key.size() != key_size) bad(source, lp + "/key", "a lookup key must have as many features as the memory key");
  if (auto seen = j.find("seen"); version >= 2 && seen != j.end()) {
    if (!seen->is_boolean()) bad(source, lp + "/seen", "seen must be true or false");
    l.seen = seen->get<bool>();
  }
  return l;
}

ResidualMemory parse_memory(const json& mem, int version, const std::string& source) {
  const std::string mp = "/residual_memory";
  ResidualMemory rm;
  rm.key = names(need(mem, "key", source, mp), source, mp + "/key", "key");
  if (rm.key.empty()) bad(source, mp + "/key", "key must be a non-empty array of feature names");
  const json& lookups = need(mem, "lookups", source, mp);
  if (!lookups.is_array()) bad(source, mp + "/lookups", "lookups must be an array of {name, key}");
  std::vector<std::string> lookup_names;
  for (std::size_t i = 0; i < lookups.size(); ++i) {
    rm.lookups.push_back(parse_lookup(lookups[i], rm.key.size(), version, source, mp + "/lookups/" + std::to_string(i)));
    lookup_names.push_back(rm.lookups.back().name);
  }
  unique_names(lookup_names, source, mp + "/lookups", "lookup name");
  const json& entries = need(mem, "entries", source, mp);
  if (!entries.is_array()) bad(source, mp + "/entries", "entries must be an array of [key..., mean, count]");
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::string ep = mp + "/entries/" + std::to_string(i);
    if (!entries[i].is_array() || entries[i].size() != rm.key.size() + 2)
      bad(source, ep, "shape mismatch: expected key values, mean and count");
    auto row = numbers(entries[i], source, ep);
    ResidualMemory::Entry e;
    e.key.assign(row.begin(), row.begin() + static_cast<long>(rm.key.size()));
    e.mean = row[rm.key.size()];
    e.count = static_cast<int>(integer(entries[i][rm.key.size() + 1], 1, 1000000000, source,
                                       ep + "/" + std::to_string(rm.key.size() + 1), "count"));
    rm.entries.push_back(std::move(e));
  }
  return rm;
}

/// Every "memory.<lookup>.mean|found" feature names a lookup of the model's memory.
void check_memory_features(const ModelFile& m, const std::string& source) {
  for (std::size_t i = 0; i < m.features.size(); ++i) {
    const std::string& f = m.features[i];
    if (f.rfind(kMemoryFeaturePrefix, 0) != 0) continue;
    bool known = false;
    if (m.memory)
      for (const auto& l : m.memory->lookups)
        known = known || f == kMemoryFeaturePrefix + l.name + ".mean" || f == kMemoryFeaturePrefix + l.name + ".found";
    if (!known) bad(source, "/features/" + std::to_string(i), "feature " + f + " names no residual-memory lookup");
  }
}

DenseLayer parse_layer(const json& layer, int in, int out, const std::string& source, const std::string& lp) {
  DenseLayer d;
  d.in = in;
  d.out = out;
  const json& w = need(layer, "weights", source, lp);
  if (!w.is_array() || w.size() != static_cast<std::size_t>(d.out))
    bad(source, lp + "/weights", "shape mismatch: expected " + std::to_string(d.out) + " rows of " + std::to_string(d.in));
  d.weights.reserve(static_cast<std::size_t>(d.out) * static_cast<std::size_t>(d.in));
  for (int r = 0; r < d.out; ++r) {
    std::string rp = lp + "/weights/" + std::to_string(r);
    auto row = numbers(w[static_cast<std::size_t>(r)], source, rp);
    if (row.size() != static_cast<std::size_t>(d.in))
      bad(source, rp, "shape mismatch: expected " + std::to_string(d.in) + " weights, found " + std::to_string(row.size()));
    d.weights.insert(d.weights.end(), row.begin(), row.end());
  }
  d.bias = numbers(need(layer, "bias", source, lp), source, lp + "/bias");
  if (d.bias.size() != static_cast<std::size_t>(d.out))
    bad(source, lp + "/bias", "shape mismatch: expected " + std::to_string(d.out) + " biases, found " + std::to_string(d.bias.size()));
  return d;
}

/// Layer widths: inputs, hidden..., 1.
std::vector<int> architecture(const json& net, std::size_t nf, const std::string& source) {
  const std::string ap = "/network/architecture";
  const json& arch = need(net, "architecture", source, "/network");
  if (str(need(arch, "activation", source, ap), source, ap + "/activation") != "relu")
    bad(source, ap + "/activation", "only \"relu\" is supported");
  const long long inputs = integer(need(arch, "inputs", source, ap), 0, 1000000, source, ap + "/inputs", "inputs");
  if (static_cast<std::size_t>(inputs) != nf)
    bad(source, ap + "/inputs", "inputs must equal the number of features (" + std::to_string(nf) + ")");
  std::vector<int> widths{static_cast<int>(nf)};
  const json& hidden = need(arch, "hidden", source, ap);
  if (!hidden.is_array()) bad(source, ap + "/hidden", "hidden must be an array of layer widths");
  for (std::size_t i = 0; i < hidden.size(); ++i)
    widths.push_back(static_cast<int>(integer(hidden[i], 1, 65536, source, ap + "/hidden/" + std::to_string(i), "a layer width")));
  widths.push_back(1);
  return widths;
}

void parse_network(const json& doc, const std::string& source, ModelFile& m) {
  const json& net = need(doc, "network", source, "");
  const std::vector<int> widths = architecture(net, m.features.size(), source);
  const json& members = need(net, "ensemble", source, "/network");
  if (!members.is_array()) bad(source, "/network/ensemble", "ensemble must be an array of networks");
  if (members.empty() && m.kind != ModelKind::analytical)
    bad(source, "/network/ensemble", "ensemble must be a non-empty array of networks (only an analytical model has none)");
  for (std::size_t e = 0; e < members.size(); ++e) {
    std::string ep = "/network/ensemble/" + std::to_string(e);
    const json& layers = need(members[e], "layers", source, ep);
    if (!layers.is_array() || layers.size() != widths.size() - 1)
      bad(source, ep + "/layers", "expected " + std::to_string(widths.size() - 1) + " layers for the declared architecture");
    Network n;
    for (std::size_t l = 0; l < layers.size(); ++l)
      n.layers.push_back(parse_layer(layers[l], widths[l], widths[l + 1], source, ep + "/layers/" + std::to_string(l)));
    m.ensemble.push_back(std::move(n));
  }
}

ModelKind parse_kind(const json& doc, int version, const ModelFile& m, const std::string& source) {
  if (version < 2) return m.baseline ? ModelKind::trained : ModelKind::imported;  // v1 had no kind
  const std::string k = str(need(doc, "kind", source, ""), source, "/kind");
  if (k == "trained") return ModelKind::trained;
  if (k == "imported") return ModelKind::imported;
  if (k == "analytical") return ModelKind::analytical;
  bad(source, "/kind", "unknown model kind \"" + k + "\" (expected trained, imported or analytical)");
}

std::array<double, 2> interval(const json& j, const std::string& source, const std::string& path) {
  if (!j.is_array() || j.size() != 2) bad(source, path, "expected [lo, hi]");
  auto v = numbers(j, source, path);
  if (!(v[0] <= v[1])) bad(source, path, "lo must not exceed hi");
  return {v[0], v[1]};
}

void parse_input_range(const json& r, const std::string& source, ModelFile& m) {
  const std::string rp = "/input_range";
  auto lo = numbers(need(r, "min", source, rp), source, rp + "/min");
  auto hi = numbers(need(r, "max", source, rp), source, rp + "/max");
  if (lo.size() != m.features.size() || hi.size() != m.features.size())
    bad(source, rp, "min and max must have one entry per feature (" + std::to_string(m.features.size()) + ")");
  std::vector<std::array<double, 2>> range;
  for (std::size_t i = 0; i < lo.size(); ++i) {
    if (!(lo[i] <= hi[i])) bad(source, rp + "/min/" + std::to_string(i), "min must not exceed max");
    range.push_back({lo[i], hi[i]});
  }
  m.input_range = std::move(range);
}

/// {"<domain>": {"lo", "hi", "n"}, ...} at `path`; `allow_empty` for a group's bands.
std::map<std::string, Calibration::Band> parse_bands(const json& domains, const std::string& source,
                                                     const std::string& path, bool allow_empty) {
  if (!domains.is_object() || (domains.empty() && !allow_empty))
    bad(source, path, allow_empty ? "domains must be an object" : "domains must be a non-empty object");
  std::map<std::string, Calibration::Band> out;
  for (const auto& [name, band] : domains.items()) {
    const std::string dp = path + "/" + name;
    if (name != "seen" && name != "inside" && name != "outside" && name != "analytical")
      bad(source, dp, "unknown domain \"" + name + "\" (expected seen, inside, outside or analytical)");
    Calibration::Band b;
    b.lo = numbers(json::array({need(band, "lo", source, dp)}), source, dp + "/lo")[0];
    b.hi = numbers(json::array({need(band, "hi", source, dp)}), source, dp + "/hi")[0];
    if (!(b.lo <= 0.0 && 0.0 <= b.hi)) bad(source, dp, "a band must contain 0: lo <= 0 <= hi");
    b.n = static_cast<int>(integer(need(band, "n", source, dp), 0, 1000000000, source, dp + "/n", "n"));
    out[name] = b;
  }
  return out;
}

/// Optional per-group bands: "group" (an op-spec feature) and "groups": [{"key", "domains"}, ...].
void parse_calibration_groups(const json& c, const std::string& source, Calibration& cal) {
  const std::string cp = "/calibration";
  auto g = c.find("group");
  auto gs = c.find("groups");
  if ((g == c.end() || g->is_null()) && (gs == c.end() || gs->is_null())) return;
  if (g == c.end() || g->is_null() || gs == c.end() || gs->is_null())
    bad(source, cp + (g == c.end() || g->is_null() ? "/group" : "/groups"), "\"group\" and \"groups\" go together");
  cal.group = str(*g, source, cp + "/group");
  if (cal.group.empty()) bad(source, cp + "/group", "group must name an op-spec feature");
  if (!gs->is_array() || gs->empty()) bad(source, cp + "/groups", "groups must be a non-empty array of {key, domains}");
  for (std::size_t i = 0; i < gs->size(); ++i) {
    const std::string gp = cp + "/groups/" + std::to_string(i);
    const json& e = (*gs)[i];
    if (!e.is_object()) bad(source, gp, "expected {\"key\", \"domains\"}");
    Calibration::Group grp;
    grp.key = numbers(json::array({need(e, "key", source, gp)}), source, gp + "/key")[0];
    for (const auto& other : cal.groups)
      if (other.key == grp.key) bad(source, gp + "/key", "duplicate calibration group key");
    grp.domains = parse_bands(need(e, "domains", source, gp), source, gp + "/domains", true);
    cal.groups.push_back(std::move(grp));
  }
}

Calibration parse_calibration(const json& c, const std::string& source) {
  const std::string cp = "/calibration";
  Calibration cal;
  const json& cov = need(c, "coverage", source, cp);
  if (!cov.is_number() || !(cov.get<double>() > 0.0 && cov.get<double>() < 1.0))
    bad(source, cp + "/coverage", "coverage must be a number between 0 and 1");
  cal.coverage = cov.get<double>();
  if (auto meth = c.find("method"); meth != c.end()) cal.method = str(*meth, source, cp + "/method");
  cal.domains = parse_bands(need(c, "domains", source, cp), source, cp + "/domains", false);
  parse_calibration_groups(c, source, cal);
  return cal;
}

/// Format 2: input_range, correction_limit, calibration (each optional).
void parse_trust(const json& doc, int version, const std::string& source, ModelFile& m) {
  if (version < 2) return;
  if (auto r = doc.find("input_range"); r != doc.end() && !r->is_null()) parse_input_range(*r, source, m);
  if (auto c = doc.find("correction_limit"); c != doc.end() && !c->is_null())
    m.correction_limit = interval(*c, source, "/correction_limit");
  if (auto c = doc.find("calibration"); c != doc.end() && !c->is_null()) m.calibration = parse_calibration(*c, source);
  if (m.kind == ModelKind::analytical && (!m.baseline || m.transform != TargetTransform::log))
    bad(source, "/target", "an analytical model needs a baseline law and the log transform");
}

}  // namespace

const char* to_string(ModelKind k) {
  switch (k) {
    case ModelKind::trained: return "trained";
    case ModelKind::imported: return "imported";
    case ModelKind::analytical: return "analytical";
  }
  return "?";
}

ModelFile parse_model(const json& doc, const std::string& source) {
  if (!doc.is_object()) bad(source, "", "a model file must be a JSON object");
  const int version = format_version(doc, source);
  ModelFile m;
  m.id = str(need(doc, "id", source, ""), source, "/id");
  if (m.id.empty()) bad(source, "/id", "model id is empty");
  m.op = str(need(doc, "op", source, ""), source, "/op");
  m.producer = doc.contains("producer") && doc["producer"].is_string() ? doc["producer"].get<std::string>() : "";
  m.op_spec = need(doc, "op_spec", source, "");
  if (!m.op_spec.is_object()) bad(source, "/op_spec", "op_spec must be an object");
  m.device = need(doc, "device", source, "");
  if (!m.device.is_object()) bad(source, "/device", "device must be an object");
  parse_selection(doc, source, m);
  m.features = names(need(doc, "features", source, ""), source, "/features", "features");
  if (m.features.empty()) bad(source, "/features", "features must be a non-empty array of names");
  unique_names(m.features, source, "/features", "feature");
  parse_normalization(doc, source, m);
  parse_target(doc, source, m);
  if (auto mem = doc.find("residual_memory"); mem != doc.end() && !mem->is_null()) {
    if (m.transform != TargetTransform::log) bad(source, "/residual_memory", "a residual memory needs the log transform");
    m.memory = parse_memory(*mem, version, source);
  }
  check_memory_features(m, source);
  m.kind = parse_kind(doc, version, m, source);
  m.format_version = version;
  parse_network(doc, source, m);
  parse_trust(doc, version, source, m);
  m.provenance = need(doc, "provenance", source, "");
  if (!m.provenance.is_object()) bad(source, "/provenance", "provenance must be an object");
  for (const char* k : {"device", "tt_metal_commit", "source_data", "metrics"})
    need(m.provenance, k, source, "/provenance");
  return m;
}

ModelFile load_model(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TorpError(ErrorCode::io, "cannot open the model file", "", file.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = std::move(buffer).str();
  json doc = parse_json(text);  // model files are mostly numbers: TORP's reader is the fast way in
  if (doc.is_discarded()) try {
    doc = json::parse(text);  // for nlohmann's account of where the text goes wrong
  } catch (const json::exception& e) {
    for (const char* literal : {"NaN", "Infinity"})
      if (text.find(literal) != std::string::npos)
        throw TorpError(ErrorCode::model_format,
                        std::string("non-finite number (") + literal + ") in model file; weights must be finite", "",
                        file.string());
    throw TorpError(ErrorCode::model_format, std::string("not valid JSON (") + e.what() + ")", "", file.string());
  }
  return parse_model(doc, file.string());
}

namespace {

void write_trust(const ModelFile& m, json& doc) {
  if (m.input_range) {
    json lo = json::array(), hi = json::array();
    for (const auto& r : *m.input_range) {
      lo.push_back(r[0]);
      hi.push_back(r[1]);
    }
    doc["input_range"] = {{"min", lo}, {"max", hi}};
  }
  if (m.correction_limit) doc["correction_limit"] = {(*m.correction_limit)[0], (*m.correction_limit)[1]};
  if (m.calibration) {
    auto bands = [](const std::map<std::string, Calibration::Band>& ds) {
      json domains = json::object();
      for (const auto& [name, b] : ds) domains[name] = {{"lo", b.lo}, {"hi", b.hi}, {"n", b.n}};
      return domains;
    };
    const Calibration& c = *m.calibration;
    doc["calibration"] = {{"coverage", c.coverage}, {"method", c.method}, {"domains", bands(c.domains)}};
    if (!c.group.empty()) {
      json groups = json::array();
      for (const auto& g : c.groups) groups.push_back({{"key", g.key}, {"domains", bands(g.domains)}});
      doc["calibration"]["group"] = c.group;
      doc["calibration"]["groups"] = std::move(groups);
    }
  }
}

}  // namespace

json to_json(const ModelFile& m) {
  json doc = json::object();
  doc["format"] = kModelFormat;
  doc["format_version"] = kModelFormatVersion;
  doc["id"] = m.id;
  doc["op"] = m.op;
  doc["producer"] = m.producer;
  doc["kind"] = to_string(m.kind);
  json req = json::array();
  for (const auto& r : m.requires_) req.push_back({{"expr", r.expr}, {"message", r.message}});
  doc["selection"] = {{"priority", m.priority}, {"applies_when", m.applies_when}, {"requires", req}};
  doc["features"] = m.features;
  doc["normalization"] = {{"mean", m.mean}, {"std", m.stddev}};
  json target = {{"transform", m.transform == TargetTransform::log ? "log" : "none"}, {"baseline", nullptr}};
  if (m.baseline) {
    json groups = json::array();
    for (const auto& g : m.baseline->groups) {
      json jg = {{"intercept", g.intercept}, {"coef", g.coefficients}};
      if (!m.baseline->group.empty()) jg["key"] = g.key;
      groups.push_back(jg);
    }
    target["baseline"] = {{"type", "linear"},
                          {"group", m.baseline->group.empty() ? json(nullptr) : json(m.baseline->group)},
                          {"terms", m.baseline->features},
                          {"groups", groups}};
  }
  doc["target"] = target;
  if (m.memory) {
    json lookups = json::array();
    for (const auto& l : m.memory->lookups) {
      json jl = {{"name", l.name}, {"key", l.key}};
      if (l.seen) jl["seen"] = true;
      lookups.push_back(std::move(jl));
    }
    json entries = json::array();
    for (const auto& e : m.memory->entries) {
      json row = e.key;
      row.push_back(e.mean);
      row.push_back(e.count);
      entries.push_back(row);
    }
    doc["residual_memory"] = {{"key", m.memory->key}, {"lookups", lookups}, {"entries", entries}};
  } else {
    doc["residual_memory"] = nullptr;
  }
  std::vector<int> hidden;
  if (!m.ensemble.empty())
    for (std::size_t l = 0; l + 1 < m.ensemble[0].layers.size(); ++l) hidden.push_back(m.ensemble[0].layers[l].out);
  json members = json::array();
  for (const auto& n : m.ensemble) {
    json layers = json::array();
    for (const auto& d : n.layers) {
      json rows = json::array();
      for (int r = 0; r < d.out; ++r)
        rows.push_back(std::vector<double>(d.weights.begin() + static_cast<long>(r) * d.in,
                                           d.weights.begin() + static_cast<long>(r + 1) * d.in));
      layers.push_back({{"weights", rows}, {"bias", d.bias}});
    }
    members.push_back({{"layers", layers}});
  }
  doc["network"] = {{"architecture", {{"activation", "relu"}, {"inputs", m.features.size()}, {"hidden", hidden}, {"outputs", 1}}},
                    {"ensemble", members}};
  write_trust(m, doc);
  doc["provenance"] = m.provenance;
  doc["device"] = m.device;
  doc["op_spec"] = m.op_spec;
  return doc;
}

void save_model(const ModelFile& m, const std::filesystem::path& file, bool overwrite) {
  AtomicFile out(file, overwrite);
  out.stream() << to_json(m).dump(1) << '\n';
  out.commit();
}

double forward(const Network& net, const std::vector<double>& x) {
  std::vector<double> cur = x, next;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    const DenseLayer& d = net.layers[l];
    next.assign(static_cast<std::size_t>(d.out), 0.0);
    for (int o = 0; o < d.out; ++o) {
      double s = d.bias[o];
      for (int i = 0; i < d.in; ++i) s += d.weights[static_cast<std::size_t>(o) * d.in + i] * cur[i];
      next[o] = (l + 1 < net.layers.size() && s < 0.0) ? 0.0 : s;
    }
    cur.swap(next);
  }
  return cur[0];
}

}  // namespace torp
