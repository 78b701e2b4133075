// SPDX-License-Identifier: Apache-2.0
// _torp: the C++ predictor for Python. The torp package (python/torp/__init__.py) wraps it with
// exception classes; queries cross the boundary as JSON text.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "torp/predictor.hpp"

namespace py = pybind11;
using nlohmann::json;

namespace {

/// (True, runtime_ns, model_id) or (False, code, message, path).
py::tuple to_tuple(const torp::PredictResult& r) {
  if (r.ok()) return py::make_tuple(true, r.value().runtime_ns, std::string(r.value().model_id));
  return py::make_tuple(false, std::string(torp::to_string(r.error().code)), r.error().message, r.error().path);
}

torp::PredictResult predict_text(const torp::Predictor& p, const std::string& op, const std::string& args,
                                 const std::string& model) {
  json a = json::parse(args, nullptr, false);
  if (a.is_discarded()) return torp::Error{torp::ErrorCode::invalid_query, "args is not valid JSON", "/args"};
  return p.predict(op, a, model);
}

}  // namespace

PYBIND11_MODULE(_torp, m) {
  m.doc() = "TORP C++ predictor (use the torp package)";
  m.def("resolve_models_dir", [](std::optional<std::string> d) {
    return torp::resolve_models_dir(d ? std::optional<std::filesystem::path>(*d) : std::nullopt).string();
  }, py::arg("models") = py::none());
  py::class_<torp::Predictor>(m, "Predictor")
      .def(py::init([](const std::string& dir) {
             try {
               return std::make_unique<torp::Predictor>(dir);
             } catch (const torp::TorpError& e) {
               throw py::value_error(std::string(torp::to_string(e.error().code)) + "\t" + e.what());
             }
           }),
           py::arg("models_dir"))
      .def("predict",
           [](const torp::Predictor& p, const std::string& op, const std::string& args, const std::string& model) {
             torp::PredictResult r = [&] {
               py::gil_scoped_release release;
               return predict_text(p, op, args, model);
             }();
             return to_tuple(r);
           },
           py::arg("op"), py::arg("args_json"), py::arg("model") = "")
      .def("predict_lines",
           [](const torp::Predictor& p, const std::vector<std::string>& queries) {
             std::vector<torp::PredictResult> results;
             {
               py::gil_scoped_release release;
               results.reserve(queries.size());
               for (const auto& q : queries) {
                 json j = json::parse(q, nullptr, false);
                 if (j.is_discarded())
                   results.emplace_back(torp::Error{torp::ErrorCode::invalid_query, "query is not valid JSON", ""});
                 else
                   results.push_back(p.predict(j));
               }
             }
             py::list out;
             for (const auto& r : results) out.append(to_tuple(r));
             return out;
           },
           py::arg("queries_json"))
      .def("models", [](const torp::Predictor& p) {
        py::list out;
        for (const auto& mi : p.models()) {
          py::dict d;
          d["id"] = mi.id;
          d["op"] = mi.op;
          d["file"] = mi.file.string();
          d["priority"] = mi.priority;
          d["features"] = mi.features;
          d["provenance_json"] = mi.provenance.dump();
          out.append(d);
        }
        return out;
      });
}
