// SPDX-License-Identifier: Apache-2.0
#include "torp/model.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include "torp/atomic_file.hpp"
#include "torp/json_text.hpp"

namespace torp {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& source, const std::string& path, const std::string& msg) {
  throw TorpError(ErrorCode::model_format, source + ": " + msg, path);
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

}  // namespace

ModelFile parse_model(const json& doc, const std::string& source) {
  if (!doc.is_object()) bad(source, "", "a model file must be a JSON object");
  auto fmt = doc.find("format");
  if (fmt == doc.end() || !fmt->is_string() || fmt->get<std::string>() != kModelFormat)
    bad(source, "/format", std::string("not a TORP model: \"format\" must be \"") + kModelFormat + "\"");
  auto ver = doc.find("format_version");
  if (ver == doc.end() || !ver->is_number_integer())
    throw TorpError(ErrorCode::model_version, source + ": \"format_version\" must be an integer", "/format_version");
  int v = ver->get<int>();
  if (v > kModelFormatVersion)
    throw TorpError(ErrorCode::model_version,
                    source + ": format_version " + std::to_string(v) + " is newer than this TORP reads (" +
                        std::to_string(kModelFormatVersion) + "); upgrade TORP",
                    "/format_version");
  if (v < 1)
    throw TorpError(ErrorCode::model_version, source + ": unknown format_version " + std::to_string(v),
                    "/format_version");

  ModelFile m;
  m.id = str(need(doc, "id", source, ""), source, "/id");
  if (m.id.empty()) bad(source, "/id", "model id is empty");
  m.op = str(need(doc, "op", source, ""), source, "/op");
  m.producer = doc.contains("producer") && doc["producer"].is_string() ? doc["producer"].get<std::string>() : "";
  m.op_spec = need(doc, "op_spec", source, "");
  if (!m.op_spec.is_object()) bad(source, "/op_spec", "op_spec must be an object");
  m.device = need(doc, "device", source, "");
  if (!m.device.is_object()) bad(source, "/device", "device must be an object");

  const json& sel = need(doc, "selection", source, "");
  if (!sel.is_object()) bad(source, "/selection", "selection must be an object");
  if (auto p = sel.find("priority"); p != sel.end()) {
    if (!p->is_number_integer()) bad(source, "/selection/priority", "priority must be an integer");
    m.priority = p->get<int>();
  }
  if (auto a = sel.find("applies_when"); a != sel.end()) {
    if (!a->is_array()) bad(source, "/selection/applies_when", "applies_when must be an array of expressions");
    for (std::size_t i = 0; i < a->size(); ++i)
      m.applies_when.push_back(str((*a)[i], source, "/selection/applies_when/" + std::to_string(i)));
  }
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

  const json& feats = need(doc, "features", source, "");
  if (!feats.is_array() || feats.empty()) bad(source, "/features", "features must be a non-empty array of names");
  for (std::size_t i = 0; i < feats.size(); ++i) m.features.push_back(str(feats[i], source, "/features/" + std::to_string(i)));
  const std::size_t nf = m.features.size();

  const json& norm = need(doc, "normalization", source, "");
  m.mean = numbers(need(norm, "mean", source, "/normalization"), source, "/normalization/mean");
  m.stddev = numbers(need(norm, "std", source, "/normalization"), source, "/normalization/std");
  if (m.mean.size() != nf || m.stddev.size() != nf)
    bad(source, "/normalization", "mean and std must have one entry per feature (" + std::to_string(nf) + ")");
  for (std::size_t i = 0; i < nf; ++i)
    if (!(m.stddev[i] > 0.0)) bad(source, "/normalization/std/" + std::to_string(i), "std must be positive");

  const json& target = need(doc, "target", source, "");
  std::string tr = str(need(target, "transform", source, "/target"), source, "/target/transform");
  if (tr == "none") m.transform = TargetTransform::none;
  else if (tr == "log") m.transform = TargetTransform::log;
  else bad(source, "/target/transform", "unknown target transform \"" + tr + "\" (expected none or log)");
  if (auto b = target.find("baseline"); b != target.end() && !b->is_null()) {
    const std::string bp = "/target/baseline";
    if (m.transform != TargetTransform::log) bad(source, bp, "a baseline needs the log transform");
    if (str(need(*b, "type", source, bp), source, bp + "/type") != "linear")
      bad(source, bp + "/type", "unknown baseline type (expected \"linear\")");
    Baseline base;
    const json& g = need(*b, "group", source, bp);
    if (!g.is_null()) base.group = str(g, source, bp + "/group");
    const json& terms = need(*b, "terms", source, bp);
    if (!terms.is_array()) bad(source, bp + "/terms", "terms must be an array of feature names");
    for (std::size_t i = 0; i < terms.size(); ++i) base.features.push_back(str(terms[i], source, bp + "/terms/" + std::to_string(i)));
    const json& groups = need(*b, "groups", source, bp);
    if (!groups.is_array() || groups.empty()) bad(source, bp + "/groups", "groups must be a non-empty array");
    if (base.group.empty() && groups.size() != 1) bad(source, bp + "/groups", "without a group feature there must be exactly one group");
    for (std::size_t i = 0; i < groups.size(); ++i) {
      std::string gp = bp + "/groups/" + std::to_string(i);
      Baseline::Group grp;
      if (!base.group.empty()) {
        const json& k = need(groups[i], "key", source, gp);
        if (!k.is_number()) bad(source, gp + "/key", "expected a number");
        grp.key = k.get<double>();
      }
      const json& ic = need(groups[i], "intercept", source, gp);
      if (!ic.is_number() || !std::isfinite(ic.get<double>())) bad(source, gp + "/intercept", "expected a finite number");
      grp.intercept = ic.get<double>();
      grp.coefficients = numbers(need(groups[i], "coef", source, gp), source, gp + "/coef");
      if (grp.coefficients.size() != base.features.size())
        bad(source, gp + "/coef", "shape mismatch: one coefficient per term expected");
      base.groups.push_back(std::move(grp));
    }
    m.baseline = std::move(base);
  }

  if (auto mem = doc.find("residual_memory"); mem != doc.end() && !mem->is_null()) {
    const std::string mp = "/residual_memory";
    if (m.transform != TargetTransform::log) bad(source, mp, "a residual memory needs the log transform");
    ResidualMemory rm;
    const json& key = need(*mem, "key", source, mp);
    if (!key.is_array() || key.empty()) bad(source, mp + "/key", "key must be a non-empty array of feature names");
    for (std::size_t i = 0; i < key.size(); ++i) rm.key.push_back(str(key[i], source, mp + "/key/" + std::to_string(i)));
    const json& lookups = need(*mem, "lookups", source, mp);
    if (!lookups.is_array()) bad(source, mp + "/lookups", "lookups must be an array of {name, key}");
    for (std::size_t i = 0; i < lookups.size(); ++i) {
      std::string lp = mp + "/lookups/" + std::to_string(i);
      ResidualMemory::Lookup l;
      l.name = str(need(lookups[i], "name", source, lp), source, lp + "/name");
      const json& lk = need(lookups[i], "key", source, lp);
      if (!lk.is_array() || lk.size() != rm.key.size()) bad(source, lp + "/key", "a lookup key must have as many features as the memory key");
      for (std::size_t j = 0; j < lk.size(); ++j) l.key.push_back(str(lk[j], source, lp + "/key/" + std::to_string(j)));
      rm.lookups.push_back(std::move(l));
    }
    const json& entries = need(*mem, "entries", source, mp);
    if (!entries.is_array()) bad(source, mp + "/entries", "entries must be an array of [key..., mean, count]");
    for (std::size_t i = 0; i < entries.size(); ++i) {
      std::string ep = mp + "/entries/" + std::to_string(i);
      auto row = numbers(entries[i], source, ep);
      if (row.size() != rm.key.size() + 2) bad(source, ep, "shape mismatch: expected key values, mean and count");
      ResidualMemory::Entry e;
      e.key.assign(row.begin(), row.begin() + static_cast<long>(rm.key.size()));
      e.mean = row[rm.key.size()];
      e.count = static_cast<int>(row[rm.key.size() + 1]);
      if (e.count < 1) bad(source, ep, "count must be at least 1");
      rm.entries.push_back(std::move(e));
    }
    m.memory = std::move(rm);
  }
  for (std::size_t i = 0; i < nf; ++i) {
    const std::string& f = m.features[i];
    if (f.rfind(kMemoryFeaturePrefix, 0) != 0) continue;
    bool known = false;
    if (m.memory)
      for (const auto& l : m.memory->lookups)
        known = known || f == kMemoryFeaturePrefix + l.name + ".mean" || f == kMemoryFeaturePrefix + l.name + ".found";
    if (!known) bad(source, "/features/" + std::to_string(i), "feature " + f + " names no residual-memory lookup");
  }

  const json& net = need(doc, "network", source, "");
  const json& arch = need(net, "architecture", source, "/network");
  std::string act = str(need(arch, "activation", source, "/network/architecture"), source, "/network/architecture/activation");
  if (act != "relu") bad(source, "/network/architecture/activation", "only \"relu\" is supported");
  const json& inputs = need(arch, "inputs", source, "/network/architecture");
  if (!inputs.is_number_integer() || inputs.get<std::size_t>() != nf)
    bad(source, "/network/architecture/inputs", "inputs must equal the number of features (" + std::to_string(nf) + ")");
  std::vector<int> widths{static_cast<int>(nf)};
  const json& hidden = need(arch, "hidden", source, "/network/architecture");
  if (!hidden.is_array()) bad(source, "/network/architecture/hidden", "hidden must be an array of layer widths");
  for (const auto& h : hidden) {
    if (!h.is_number_integer() || h.get<int>() <= 0) bad(source, "/network/architecture/hidden", "layer widths must be positive integers");
    widths.push_back(h.get<int>());
  }
  widths.push_back(1);
  const json& members = need(net, "ensemble", source, "/network");
  if (!members.is_array() || members.empty()) bad(source, "/network/ensemble", "ensemble must be a non-empty array of networks");
  for (std::size_t e = 0; e < members.size(); ++e) {
    std::string ep = "/network/ensemble/" + std::to_string(e);
    const json& layers = need(members[e], "layers", source, ep);
    if (!layers.is_array() || layers.size() != widths.size() - 1)
      bad(source, ep + "/layers", "expected " + std::to_string(widths.size() - 1) + " layers for the declared architecture");
    Network n;
    for (std::size_t l = 0; l < layers.size(); ++l) {
      std::string lp = ep + "/layers/" + std::to_string(l);
      DenseLayer d;
      d.in = widths[l];
      d.out = widths[l + 1];
      const json& w = need(layers[l], "weights", source, lp);
      if (!w.is_array() || w.size() != static_cast<std::size_t>(d.out))
        bad(source, lp + "/weights", "shape mismatch: expected " + std::to_string(d.out) + " rows of " + std::to_string(d.in));
      d.weights.reserve(static_cast<std::size_t>(d.out) * d.in);
      for (int r = 0; r < d.out; ++r) {
        std::string rp = lp + "/weights/" + std::to_string(r);
        auto row = numbers(w[r], source, rp);
        if (row.size() != static_cast<std::size_t>(d.in))
          bad(source, rp, "shape mismatch: expected " + std::to_string(d.in) + " weights, found " + std::to_string(row.size()));
        d.weights.insert(d.weights.end(), row.begin(), row.end());
      }
      d.bias = numbers(need(layers[l], "bias", source, lp), source, lp + "/bias");
      if (d.bias.size() != static_cast<std::size_t>(d.out))
        bad(source, lp + "/bias", "shape mismatch: expected " + std::to_string(d.out) + " biases, found " + std::to_string(d.bias.size()));
      n.layers.push_back(std::move(d));
    }
    m.ensemble.push_back(std::move(n));
  }
  m.provenance = need(doc, "provenance", source, "");
  if (!m.provenance.is_object()) bad(source, "/provenance", "provenance must be an object");
  for (const char* k : {"device", "tt_metal_commit", "source_data", "metrics"})
    need(m.provenance, k, source, "/provenance");
  return m;
}

ModelFile load_model(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TorpError(ErrorCode::io, "cannot open model file " + file.string());
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
                        file.string() + ": non-finite number (" + literal + ") in model file; weights must be finite");
    throw TorpError(ErrorCode::model_format, file.string() + ": not valid JSON (" + e.what() + ")");
  }
  return parse_model(doc, file.string());
}

json to_json(const ModelFile& m) {
  json doc = json::object();
  doc["format"] = kModelFormat;
  doc["format_version"] = kModelFormatVersion;
  doc["id"] = m.id;
  doc["op"] = m.op;
  doc["producer"] = m.producer;
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
    for (const auto& l : m.memory->lookups) lookups.push_back({{"name", l.name}, {"key", l.key}});
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
