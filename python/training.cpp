// SPDX-License-Identifier: Apache-2.0
// The training-layer calls of ttnn_op_runtime_predictor._core (built with TORP_BUILD_TRAINING):
// from_sweep, train, evaluate, drift, suggest and regenerate, the same library functions as the
// torp commands. Each takes plain values, runs with the GIL released, sends progress lines to a
// Python callable (with the GIL taken for each line) and returns its JSON report as text; the
// package's _training.py turns that into a dict and the keyword API.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "torp/atomic_file.hpp"
#include "torp/log.hpp"
#include "torp/predictor.hpp"
#include "torp/train/drift.hpp"
#include "torp/train/evaluate.hpp"
#include "torp/train/regenerate.hpp"
#include "torp/train/suggest.hpp"
#include "torp/train/sweep.hpp"
#include "torp/train/trainer.hpp"

namespace py = pybind11;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using Progress = std::function<void(const std::string&)>;

/// Runs `work` without the GIL; progress and the library's log go to `callback` (GIL taken per
/// line; an exception raised by the callback is dropped, not thrown through C++ threads). A
/// TorpError becomes the package's exception for its code; an op_spec error that names no file
/// gets `op_spec_file` (the op spec is read here and handed to the library as JSON).
json run(const py::object& callback, const std::function<json(const Progress&)>& work,
         const std::string& op_spec_file = {}) {
  Progress progress = [&callback](const std::string& line) {
    if (callback.is_none()) return;
    py::gil_scoped_acquire gil;
    try {
      callback(line);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("ttnn_op_runtime_predictor progress callback");
    }
  };
  std::optional<torp::Error> failure;
  json out;
  {
    py::gil_scoped_release release;
    torp::set_log_callback([&](torp::LogLevel level, std::string_view m) {
      if (level >= torp::LogLevel::info) progress(std::string(m));
    });
    try {
      out = work(progress);
    } catch (const torp::TorpError& e) {
      failure = e.error();
      if (failure->code == torp::ErrorCode::op_spec && !op_spec_file.empty())
        failure = torp::in_file(std::move(*failure), op_spec_file);
    } catch (const std::exception& e) {
      failure = torp::Error{torp::ErrorCode::io, e.what(), ""};
    }
    torp::set_log_callback(nullptr);
  }
  if (failure) {
    py::object exc = py::module_::import("ttnn_op_runtime_predictor._types")
                         .attr("error")(std::string(torp::to_string(failure->code)), failure->message, failure->path,
                                        failure->file, failure->line, failure->column);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    throw py::error_already_set();
  }
  return out;
}

json read_json(const std::string& file, const char* what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw torp::TorpError(torp::ErrorCode::io, std::string("cannot read the ") + what, "", file);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw torp::TorpError(torp::ErrorCode::io, std::string("the ") + what + " is not valid JSON", "", file);
  return j;
}

fs::path models_dir(const std::optional<std::string>& d) {
  return torp::resolve_models_dir(d ? std::optional<fs::path>(*d) : std::nullopt);
}

std::string from_sweep(const std::string& op_spec, const std::string& device, const std::string& vectors,
                       const std::vector<std::string>& results, const std::string& out,
                       const std::optional<std::string>& tag, const std::vector<std::string>& suites, bool latest_only,
                       const std::optional<std::string>& commit, bool force, const py::object& progress) {
  return run(progress, [&](const Progress&) {
           torp::SweepOptions o;
           o.tag = tag;
           o.suites = suites;
           o.latest_only = latest_only;
           o.tt_metal_commit = commit;
           std::vector<fs::path> files(results.begin(), results.end());
           fs::path report_file = out;
           report_file.replace_extension(".report.json");
           torp::SweepImportReport rep;
           const torp::SweepDataset d = torp::import_sweep(vectors, files, read_json(op_spec, "op spec"),
                                                           read_json(device, "device description"), o, &rep);
           if (d.rows.empty()) throw torp::TorpError(torp::ErrorCode::dataset, "no usable result records; nothing written");
           nlohmann::ordered_json report = rep.to_json();
           report["dataset"] = fs::path(out).filename().string();
           torp::AtomicFile rf(report_file, force);
           rf.stream() << report.dump(1) << "\n";
           d.save(out, force);
           rf.commit();
           return json::parse(report.dump());
         },
         op_spec)
      .dump();
}

std::string train(const std::string& dataset, const std::string& op_spec, const std::string& device,
                  const std::string& out, std::uint64_t seed, const std::string& recipe, const std::string& id,
                  int threads, double validation_fraction, double test_fraction, double reject_factor, bool force,
                  const py::object& progress) {
  return run(progress, [&](const Progress& say) {
           if (!force && fs::exists(out)) throw torp::TorpError(torp::ErrorCode::io, out + " exists; pass force=True");
           torp::TrainOptions o;
           o.seed = seed;
           o.recipe = recipe;
           o.id = id;
           o.threads = threads;
           o.validation_fraction = validation_fraction;
           o.test_fraction = test_fraction;
           o.reject_factor = reject_factor;
           o.dataset_file = dataset;
           o.progress = say;
           const torp::Dataset data = torp::load_dataset(dataset);
           torp::TrainReport r = torp::train(data, read_json(op_spec, "op spec"), read_json(device, "device description"),
                                             o, torp::sha256_file(dataset));
           torp::save_model(r.model, out, force);
           return json{{"model", r.model.id}, {"op", r.model.op}, {"file", out}, {"metrics", r.metrics},
                       {"search", r.search}, {"wall_seconds", r.wall_seconds}};
         },
         op_spec)
      .dump();
}

std::string evaluate(const std::string& model_file, const std::string& dataset, const std::optional<std::string>& html,
                     const std::optional<std::string>& previous_file, const py::object& progress) {
  return run(progress, [&](const Progress&) {
           const torp::ModelFile model = torp::load_model(model_file);
           const std::optional<torp::ModelFile> previous =
               previous_file ? std::optional<torp::ModelFile>(torp::load_model(*previous_file)) : std::nullopt;
           const torp::Dataset data = torp::load_dataset(dataset);
           const torp::Evaluation ev =
               torp::evaluate_model(model, data, torp::evaluation_options(model), previous ? &*previous : nullptr);
           if (html) {
             torp::AtomicFile f(*html, true);
             f.stream() << torp::html_report(model, ev, dataset);
             f.commit();
           }
           json r = torp::evaluation_json(model, ev, dataset);
           r["test_configurations"] = ev.split.test.size();
           return r;
         })
      .dump();
}

std::string drift(const std::string& dataset, const std::optional<std::string>& models, double alpha, double min_shift,
                  double reject_factor, const py::object& progress) {
  return run(progress, [&](const Progress&) {
           torp::DriftOptions o;
           o.alpha = alpha;
           o.min_shift = min_shift;
           o.reject_factor = reject_factor;
           json r = torp::drift(torp::load_dataset(dataset), models_dir(models), o);
           r["dataset"] = dataset;
           return r;
         })
      .dump();
}

std::string suggest(const std::string& op, const std::string& out, std::size_t count, const std::optional<std::string>& models,
                    const std::string& model, const std::optional<std::string>& dataset, std::uint64_t seed,
                    const std::string& suite, const std::string& tag, bool force, const py::object& progress) {
  return run(progress, [&](const Progress&) {
           torp::SuggestOptions o;
           o.op = op;
           o.out = out;
           o.count = count;
           o.models_dir = models_dir(models);
           o.model_id = model;
           if (dataset) o.pool = *dataset;
           o.seed = seed;
           o.suite = suite;
           o.tag = tag;
           o.overwrite = force;
           return torp::suggest(o);
         })
      .dump();
}

std::string regenerate(const std::string& op_spec, const std::string& device, const std::string& work,
                       const std::optional<std::string>& dataset, const std::optional<std::string>& vectors,
                       const std::vector<std::string>& results, const std::optional<std::string>& models,
                       const std::string& replace, const std::optional<std::string>& install_as, std::uint64_t seed,
                       const std::string& recipe, const std::string& id, int threads, bool force,
                       const py::object& progress) {
  return run(progress, [&](const Progress& say) {
           torp::RegenerateOptions o;
           o.models_dir = models_dir(models);
           o.replace = torp::parse_replace_policy(replace);
           if (install_as) o.install_as = *install_as;
           o.train.seed = seed;
           o.train.recipe = recipe;
           o.train.id = id;
           o.train.threads = threads;
           o.train.progress = say;
           torp::RegenerateInputs in;
           if (dataset) in.dataset = *dataset;
           if (vectors) in.vectors = *vectors;
           in.results.assign(results.begin(), results.end());
           in.work = work;
           in.force = force;
           const auto r = torp::regenerate_files(in, read_json(op_spec, "op spec"), read_json(device, "device description"), o);
           json c = r.comparison;
           c["model_file"] = r.model_file.string();
           c["previous_file"] = r.previous_file.empty() ? json() : json(r.previous_file.string());
           return c;
         },
         op_spec)
      .dump();
}

}  // namespace

void register_training(py::module_& m) {
  using py::arg;
  m.def("_from_sweep", &from_sweep, arg("op_spec"), arg("device"), arg("vectors"), arg("results"), arg("out"),
        arg("tag"), arg("suites"), arg("latest_only"), arg("tt_metal_commit"), arg("force"), arg("progress"));
  m.def("_train", &train, arg("dataset"), arg("op_spec"), arg("device"), arg("out"), arg("seed"), arg("recipe"), arg("id"),
        arg("threads"), arg("validation_fraction"), arg("test_fraction"), arg("reject_factor"), arg("force"),
        arg("progress"));
  m.def("_evaluate", &evaluate, arg("model"), arg("dataset"), arg("html"), arg("previous"), arg("progress"));
  m.def("_drift", &drift, arg("dataset"), arg("models"), arg("alpha"), arg("min_shift"), arg("reject_factor"),
        arg("progress"));
  m.def("_suggest", &suggest, arg("op"), arg("out"), arg("count"), arg("models"), arg("model"), arg("dataset"),
        arg("seed"), arg("suite"), arg("tag"), arg("force"), arg("progress"));
  m.def("_regenerate", &regenerate, arg("op_spec"), arg("device"), arg("work"), arg("dataset"), arg("vectors"),
        arg("results"), arg("models"), arg("replace"), arg("install_as"), arg("seed"), arg("recipe"), arg("id"),
        arg("threads"), arg("force"), arg("progress"));
}
