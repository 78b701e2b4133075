// SPDX-License-Identifier: Apache-2.0
// ttnn_op_runtime_predictor._core: the C++ Predictor for Python. Arguments are converted from
// Python objects to JSON with the GIL held; models load and predictions run with it released.
// This is the one place where a torp::Error becomes the package's exception for its code.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "torp/json_lines.hpp"
#include "torp/json_text.hpp"
#include "torp/predictor.hpp"

namespace py = pybind11;
using nlohmann::json;

namespace {

/// The package's pure-Python result types (ttnn_op_runtime_predictor/_types.py). Looked up when
/// the module is imported (not lazily, where two threads could race for the GIL and the guard)
/// and never released: they must outlive static destruction, which runs after the interpreter.
struct Types {
  py::object error;       ///< error(code, message, path, file, line, column) -> TorpError subclass instance
  py::object prediction;  ///< Prediction(runtime_ns, model, interval_ns, domain, outside, ignored, interval_note)
  py::object outside;     ///< OutsideInput(feature, value, trained)
};
const Types& types() {
  static const Types* t = [] {
    py::module_ m = py::module_::import("ttnn_op_runtime_predictor._types");
    return new Types{m.attr("error"), m.attr("Prediction"), m.attr("OutsideInput")};
  }();
  return *t;
}

py::object error_object(const torp::Error& e) {
  return types().error(std::string(torp::to_string(e.code)), e.message, e.path, e.file, e.line, e.column);
}

[[noreturn]] void raise(const torp::Error& e) {
  py::object exc = error_object(e);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

std::string type_name(py::handle h) { return py::str(h.get_type().attr("__name__")); }

std::string_view utf8(PyObject* str) {
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(str, &n);
  if (s == nullptr) throw py::error_already_set();
  return {s, static_cast<std::size_t>(n)};
}

/// Prefix an error's JSON pointer with one more level (RFC 6901: "~" -> "~0", "/" -> "~1").
torp::Error& below(torp::Error& e, std::string_view token) {
  std::string p = "/";
  for (char c : token) p += c == '~' ? "~0" : c == '/' ? "~1" : std::string_view(&c, 1);
  e.path.insert(0, p);
  return e;
}

/// A Python int as a JSON integer (signed, else unsigned 64-bit).
std::optional<torp::Error> integer(PyObject* o, json& out) {
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
  if (overflow == 0) {
    out = static_cast<std::int64_t>(v);
    return std::nullopt;
  }
  unsigned long long u = PyLong_AsUnsignedLongLong(o);
  if (PyErr_Occurred()) {
    PyErr_Clear();
    return torp::Error{torp::ErrorCode::invalid_argument, "integer out of the 64-bit range", ""};
  }
  out = static_cast<std::uint64_t>(u);
  return std::nullopt;
}

/// A Python value as JSON: dict (str keys), list, tuple, str, int (or anything with __index__,
/// e.g. numpy integers), float, bool, None. Anything else is an invalid_argument whose path is
/// relative to `h` (callers prefix it while unwinding, so no path is built on success).
std::optional<torp::Error> to_json(py::handle h, json& out, std::size_t depth = 0) {
  PyObject* o = h.ptr();
  if ((PyDict_Check(o) || PyList_Check(o) || PyTuple_Check(o)) && ++depth > torp::kMaxJsonDepth)
    return torp::Error{torp::ErrorCode::invalid_argument,
                       "nested deeper than " + std::to_string(torp::kMaxJsonDepth) + " levels (or contains itself)", ""};
  if (o == Py_None) {
    out = nullptr;
  } else if (PyBool_Check(o)) {
    out = o == Py_True;
  } else if (PyLong_Check(o)) {
    return integer(o, out);
  } else if (PyFloat_Check(o)) {
    out = PyFloat_AS_DOUBLE(o);
  } else if (PyUnicode_Check(o)) {
    out = std::string(utf8(o));
  } else if (PyDict_Check(o)) {
    out = json::object();
    auto& object = out.get_ref<json::object_t&>();
    PyObject *key = nullptr, *value = nullptr;
    for (Py_ssize_t pos = 0; PyDict_Next(o, &pos, &key, &value);) {
      if (!PyUnicode_Check(key))
        return torp::Error{torp::ErrorCode::invalid_argument,
                           "object keys must be strings, got a key of type " + type_name(key), ""};
      std::string_view k = utf8(key);
      if (auto e = to_json(value, object[std::string(k)], depth)) return below(*e, k);
    }
  } else if (PyList_Check(o) || PyTuple_Check(o)) {
    const bool list = PyList_Check(o);
    const Py_ssize_t n = list ? PyList_GET_SIZE(o) : PyTuple_GET_SIZE(o);
    out = json::array();
    auto& array = out.get_ref<json::array_t&>();
    array.resize(static_cast<std::size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i)
      if (auto e = to_json(list ? PyList_GET_ITEM(o, i) : PyTuple_GET_ITEM(o, i), array[static_cast<std::size_t>(i)], depth))
        return below(*e, std::to_string(i));
  } else if (PyIndex_Check(o)) {
    py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(o));
    if (!i) throw py::error_already_set();
    return integer(i.ptr(), out);
  } else {
    return torp::Error{torp::ErrorCode::invalid_argument,
                       "a value of type " + type_name(h) + " has no JSON form (use dict, list, str, int, float, bool or None)",
                       ""};
  }
  return std::nullopt;
}

/// A query (`what` "query", at the top) or a query's args (`what` "args", at "/args"): a dict,
/// or its JSON text (a query as one JSON Lines line).
std::optional<torp::Error> object_to_json(py::handle h, json& out, const std::string& what) {
  std::optional<torp::Error> e;
  if (PyUnicode_Check(h.ptr())) {
    out = torp::parse_json(utf8(h.ptr()));
    if (out.is_discarded()) e = torp::Error{torp::ErrorCode::invalid_query, what + " is not valid JSON text", ""};
  } else if (!PyDict_Check(h.ptr())) {
    e = torp::Error{torp::ErrorCode::invalid_query, what + " must be a dict or its JSON text, not a value of type " + type_name(h), ""};
  } else {
    e = to_json(h, out);
  }
  if (e && what == "args") below(*e, what);
  return e;
}

py::object to_python(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return py::none();
    case json::value_t::boolean: return py::bool_(j.get<bool>());
    case json::value_t::number_integer: return py::int_(j.get<std::int64_t>());
    case json::value_t::number_unsigned: return py::int_(j.get<std::uint64_t>());
    case json::value_t::number_float: return py::float_(j.get<double>());
    case json::value_t::string: return py::str(j.get_ref<const std::string&>());
    case json::value_t::array: {
      py::list l;
      for (const auto& v : j) l.append(to_python(v));
      return l;
    }
    case json::value_t::object: {
      py::dict d;
      for (const auto& [k, v] : j.items()) d[py::str(k)] = to_python(v);
      return d;
    }
    default: return py::none();  // binary / discarded: never in a loaded model
  }
}

std::unique_ptr<torp::Predictor> load(const std::string& dir) {
  std::optional<torp::Error> failure;
  std::unique_ptr<torp::Predictor> p;
  {
    py::gil_scoped_release release;
    try {
      p = std::make_unique<torp::Predictor>(dir);
    } catch (const torp::TorpError& e) {
      failure = e.error();
    } catch (const std::exception& e) {  // the library's boundary should not let one through
      failure = torp::Error{torp::ErrorCode::io, std::string("cannot load the models: ") + e.what(), ""};
    }
  }
  if (failure) raise(*failure);
  return p;
}

/// A Prediction as the package's record: Prediction(runtime_ns, model, interval_ns, domain,
/// outside, ignored, interval_note).
py::object record(const torp::Prediction& p) {
  const Types& t = types();
  py::object interval = p.interval_ns ? py::object(py::make_tuple((*p.interval_ns)[0], (*p.interval_ns)[1])) : py::none();
  py::tuple outside(p.outside.size());
  for (std::size_t i = 0; i < p.outside.size(); ++i) {
    const auto& o = p.outside[i];
    outside[i] = t.outside(std::string(o.feature), o.value, py::make_tuple(o.trained[0], o.trained[1]));
  }
  py::tuple ignored(p.ignored.size());
  for (std::size_t i = 0; i < p.ignored.size(); ++i) ignored[i] = py::str(p.ignored[i]);
  return t.prediction(p.runtime_ns, std::string(p.model_id), interval, torp::to_string(p.domain), outside, ignored,
                      std::string(p.interval_note));
}

torp::Prediction answer(const torp::Predictor& p, const std::string& op, py::handle args,
                        const std::optional<std::string>& model, const std::optional<std::string>& device) {
  json a;
  if (auto e = object_to_json(args, a, "args")) raise(*e);
  torp::PredictResult r = [&] {
    py::gil_scoped_release release;
    return p.predict(op, a, torp::PredictOptions{device ? std::string_view(*device) : std::string_view(),
                                                 model ? std::string_view(*model) : std::string_view()});
  }();
  if (!r) raise(r.error());
  return std::move(r.value());
}

double predict(const torp::Predictor& p, const std::string& op, py::handle args, const std::optional<std::string>& model,
               const std::optional<std::string>& device) {
  return answer(p, op, args, model, device).runtime_ns;
}

py::object predict_record(const torp::Predictor& p, const std::string& op, py::handle args,
                          const std::optional<std::string>& model, const std::optional<std::string>& device) {
  return record(answer(p, op, args, model, device));
}

/// Queries are converted and answered in chunks: the C++ batch path still runs its networks over
/// many rows at once, while memory stays bounded by one chunk's JSON trees (a list of a million
/// queries is not turned into a million trees first) and a chunk's trees are still in cache
/// when they are answered.
constexpr std::size_t kBatchChunk = 64;

py::list predict_batch(const torp::Predictor& p, const py::iterable& queries) {
  py::list out;
  std::vector<json> items;
  std::vector<std::pair<std::size_t, torp::Error>> unreadable;  // converted here, not by the Predictor
  auto answer = [&] {
    std::vector<torp::PredictResult> results;
    {
      py::gil_scoped_release release;
      results = p.predict_batch(items);
    }
    for (auto& [i, e] : unreadable) results[i] = std::move(e);
    for (const auto& r : results)
      out.append(r ? record(r.value()) : error_object(r.error()));
    items.clear();
    unreadable.clear();
  };
  for (py::handle q : queries) {
    if (auto e = object_to_json(q, items.emplace_back(), "query")) unreadable.emplace_back(items.size() - 1, std::move(*e));
    if (items.size() == kBatchChunk) answer();
  }
  if (!items.empty()) answer();
  return out;
}

py::list models(const torp::Predictor& p) {
  py::list out;
  for (const auto& m : p.models()) {
    py::dict d;
    d["id"] = m.id;
    d["op"] = m.op;
    d["file"] = m.file.string();
    d["priority"] = m.priority;
    d["features"] = m.features;
    d["provenance"] = to_python(m.provenance);
    out.append(d);
  }
  return out;
}

/// The JSON Lines protocol of `torp predict` on this process's stdin/stdout (or `file`), with the
/// GIL released. Raises the package's TorpError subclass if the models or the input cannot be read.
void answer_json_lines(const std::vector<std::string>& models_dirs, const std::optional<std::string>& file,
                       unsigned threads, std::size_t max_line_bytes) {
  std::optional<torp::Error> failure;
  {
    py::gil_scoped_release release;
    int in = 0;
    try {
      const torp::Predictor predictor{std::vector<std::filesystem::path>(models_dirs.begin(), models_dirs.end())};
      if (file) {
        in = ::open(file->c_str(), O_RDONLY | O_CLOEXEC);
        if (in < 0) throw torp::TorpError(torp::ErrorCode::io, std::string("cannot open: ") + std::strerror(errno), "", *file);
      }
      torp::answer_json_lines(predictor, in, stdout, torp::JsonLinesOptions{threads, max_line_bytes});
    } catch (const torp::TorpError& e) {
      failure = e.error();
    }
    if (in > 0) ::close(in);
  }
  if (failure) raise(*failure);
}

}  // namespace

#ifdef TORP_WITH_TRAINING
void register_training(py::module_& m);  // python/training.cpp
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "TORP's C++ predictor; use the ttnn_op_runtime_predictor package, which wraps it.";
  m.attr("__version__") = TORP_VERSION;
  types();
  m.def(
      "resolve_models_dir",
      [](const std::optional<std::string>& d) {
        return torp::resolve_models_dir(d ? std::optional<std::filesystem::path>(*d) : std::nullopt).string();
      },
      py::arg("model_dir") = py::none(),
      "model_dir, else $TORP_MODELS, else <prefix>/share/torp/models next to this module, else ./models.");
  m.attr("DEFAULT_MAX_LINE_BYTES") = torp::JsonLinesOptions::kDefaultMaxLineBytes;
  m.def("answer_json_lines", &answer_json_lines, py::arg("models_dirs"), py::arg("file") = py::none(),
        py::arg("threads") = 0u, py::arg("max_line_bytes") = torp::JsonLinesOptions::kDefaultMaxLineBytes,
        "Answer JSON Lines queries from stdin (or file) on stdout, as `torp predict`, with the models of\n"
        "every directory of `models_dirs` (in order).");
  py::class_<torp::Predictor>(m, "Predictor")
      .def(py::init(&load), py::arg("models_dir"))
      .def("predict", &predict, py::arg("op"), py::arg("args"), py::arg("model") = py::none(),
           py::arg("device") = py::none())
      .def("predict_record", &predict_record, py::arg("op"), py::arg("args"), py::arg("model") = py::none(),
           py::arg("device") = py::none())
      .def("predict_batch", &predict_batch, py::arg("queries"))
      .def("models", &models)
      .def_property_readonly("directory", [](const torp::Predictor& p) { return p.directory().string(); });
#ifdef TORP_WITH_TRAINING
  register_training(m);
#endif
}
