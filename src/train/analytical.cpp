// SPDX-License-Identifier: Apache-2.0
#include "torp/train/analytical.hpp"

#include <algorithm>
#include <cmath>

#include "torp/encoder.hpp"

namespace torp {

using json = nlohmann::json;

namespace {

[[noreturn]] void spec_error(const std::string& message, const std::string& path) {
  throw TorpError(ErrorCode::op_spec, message, path);
}

std::vector<Requirement> requirements(const json& recipe) {
  std::vector<Requirement> out;
  for (const json& r : recipe.value("requires", json::array()))
    out.push_back({r.at("expr").get<std::string>(), r.value("message", "not supported by the analytical model")});
  return out;
}

/// The model of one op (a plain spec) on one device.
ModelFile one_model(const json& spec, const json& device, const std::string& spec_source,
                    const std::optional<Calibration>& calibration) {
  auto recipes = spec.find("recipes");
  if (recipes == spec.end() || !recipes->contains("analytical"))
    spec_error("op spec has no \"analytical\" recipe", "/recipes/analytical");
  const json& recipe = (*recipes)["analytical"];
  const Encoder encoder(spec, device);  // the spec must compile on this device
  ModelFile m;
  m.op = encoder.op();
  const std::string device_name = device.value("name", std::string("device"));
  m.id = device_name + "/analytical/" + m.op.substr(m.op.rfind('.') + 1);
  m.producer = "torp make-analytical";
  m.kind = ModelKind::analytical;
  m.op_spec = spec;
  m.device = device;
  m.priority = kAnalyticalPriority;
  for (const json& a : recipe.value("applies_when", json::array())) m.applies_when.push_back(a.get<std::string>());
  m.requires_ = requirements(recipe);
  m.transform = TargetTransform::log;
  Baseline b;
  b.features = recipe.at("baseline").at("terms").get<std::vector<std::string>>();
  for (const auto& term : b.features) (void)encoder.feature(term);  // must name a feature
  b.groups = {Baseline::Group{0.0, 0.0, std::vector<double>(b.features.size(), 1.0)}};
  // The file format wants named inputs: the law's terms (no network reads them).
  m.features = b.features;
  m.mean.assign(m.features.size(), 0.0);
  m.stddev.assign(m.features.size(), 1.0);
  m.baseline = std::move(b);
  m.calibration = calibration;
  m.provenance = {{"device", device_name},
                  {"tt_metal_commit", nullptr},
                  {"source_data", {{"op_spec", spec_source}, {"device_constants", device.value("sources", json::object())}}},
                  {"metrics", nullptr},
                  {"recipe", "analytical"},
                  {"method", "roofline of the op spec's features in the device's constants (docs/analytical.md)"}};
  return m;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  if (lo + 1 >= v.size()) return v.back();
  return v[lo] + (pos - static_cast<double>(lo)) * (v[lo + 1] - v[lo]);
}

}  // namespace

std::vector<ModelFile> make_analytical_models(const json& spec, const json& device, const std::string& spec_source,
                                              const std::optional<Calibration>& calibration) {
  std::vector<ModelFile> out;
  for (const json& one : expand_op_family(spec)) out.push_back(one_model(one, device, spec_source, calibration));
  return out;
}

Calibration analytical_band(const std::vector<std::pair<ModelFile, Dataset>>& measured, double coverage,
                            const EvaluationOptions& options, json* report) {
  if (!(coverage > 0.0 && coverage < 1.0)) throw TorpError(ErrorCode::training, "coverage must be in (0, 1)");
  std::vector<double> residuals;
  json parts = json::array();
  for (const auto& [model, data] : measured) {
    const Evaluation ev = evaluate_model(model, data, options);
    std::size_t used = 0;
    for (std::size_t i : ev.split.test) {
      const double p = ev.predicted[i];
      if (!std::isfinite(p) || p <= 0.0) continue;
      residuals.push_back(std::log(ev.configs[i].label_ns / p));
      ++used;
    }
    parts.push_back({{"model", model.id}, {"op", model.op}, {"test_configurations", used}, {"metrics", ev.metrics}});
  }
  if (residuals.empty()) throw TorpError(ErrorCode::training, "no held-out configuration is answered by the models");
  Calibration c;
  c.coverage = coverage;
  c.method = "quantiles of log(measured / analytical) over the held-out test configurations (seed-split as torp train) "
             "of the ops with measurements, pooled, and transferred to every analytical model";
  Calibration::Band band;
  band.lo = std::min(0.0, quantile(residuals, (1.0 - coverage) / 2.0));
  band.hi = std::max(0.0, quantile(residuals, (1.0 + coverage) / 2.0));
  band.n = static_cast<int>(residuals.size());
  c.domains["analytical"] = band;
  if (report != nullptr) *report = {{"parts", parts}, {"lo", band.lo}, {"hi", band.hi}, {"n", band.n}};
  return c;
}

}  // namespace torp
