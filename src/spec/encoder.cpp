// SPDX-License-Identifier: Apache-2.0
// Encoder: reading an op spec (arguments, features, validate rules) into its compiled form, and
// the public API over it (src/spec/encoder_impl.hpp lists the other parts).
#include "spec/encoder_impl.hpp"

#include <algorithm>
#include <span>

namespace torp {
using namespace opspec;
namespace {

using json = nlohmann::json;

ArgType parse_arg_type(const std::string& s, const std::string& path) {
  if (s == "tensor") return ArgType::tensor;
  if (s == "memory_config") return ArgType::memory_config;
  if (s == "int") return ArgType::integer;
  if (s == "float" || s == "number") return ArgType::number;
  if (s == "bool") return ArgType::boolean;
  if (s == "enum") return ArgType::enumeration;
  if (s == "object") return ArgType::object;
  if (s == "tensor_or_number") return ArgType::tensor_or_number;
  if (s == "tensor_list") return ArgType::tensor_list;
  spec_error("unknown argument type '" + s +
                 "' (expected tensor, tensor_or_number, tensor_list, memory_config, int, float, bool, enum or object)",
             path);
}

EnumKind parse_enum_kind(const std::string& s, const std::string& path) {
  if (auto k = enum_kind_named(s)) return *k;
  spec_error("unknown enum '" + s + "'", path);
}

}  // namespace

[[noreturn]] void opspec::spec_error(std::string msg, std::string path) {
  throw TorpError(ErrorCode::op_spec, std::move(msg), std::move(path));
}

std::vector<json> expand_op_family(const json& spec) {
  auto members = spec.find("members");
  if (!spec.is_object() || members == spec.end()) return {spec};
  if (!members->is_object() || members->empty())
    spec_error("\"members\" must be a non-empty object of op name -> {features, aliases, description}", "/members");
  std::vector<json> out;
  for (auto it = members->begin(); it != members->end(); ++it) {
    const std::string path = "/members/" + it.key();
    if (!it->is_object()) spec_error("a family member must be an object", path);
    json one = spec;
    one.erase("members");
    one["op"] = it.key();
    for (const char* key : {"aliases", "description"})
      if (it->contains(key)) one[key] = (*it)[key];
    if (auto ar = it->find("args"); ar != it->end()) {
      if (!ar->is_object()) spec_error("a member's args must be an object", path + "/args");
      for (auto ai = ar->begin(); ai != ar->end(); ++ai) one["args"][ai.key()] = ai.value();
    }
    if (auto f = it->find("features"); f != it->end()) {
      if (!f->is_object()) spec_error("a member's features must be an object", path + "/features");
      for (auto fi = f->begin(); fi != f->end(); ++fi) one["features"][fi.key()] = fi.value();
    }
    out.push_back(std::move(one));
  }
  return out;
}

std::string canonical_op_name(std::string_view name) {
  std::string s(name);
  for (std::size_t p; (p = s.find("::")) != std::string::npos;) s.replace(p, 2, ".");
  return s;
}

void Encoder::Impl::load(const json& spec) {
  if (!spec.is_object()) spec_error("op spec must be a JSON object");
  load_names(spec);
  auto ar = spec.find("args");
  if (ar == spec.end() || !ar->is_object()) spec_error("op spec needs an \"args\" object", "/args");
  // Keep the declaration order of the file: nlohmann::json sorts keys, so "args" may be an
  // object (order irrelevant for parsing) — arguments are addressed by name only.
  for (auto it = ar->begin(); it != ar->end(); ++it) args.push_back(load_arg(it.key(), it.value()));
  if (auto f = spec.find("features"); f != spec.end()) {
    if (!f->is_object()) spec_error("features must be an object of name -> expression", "/features");
    for (auto it = f->begin(); it != f->end(); ++it) {
      if (!it->is_string()) spec_error("feature must be an expression string", "/features/" + it.key());
      if (arg_index(it.key()) >= 0) spec_error("feature name clashes with an argument", "/features/" + it.key());
      feature_names.push_back(it.key());
      feature_src.push_back(it->get<std::string>());
    }
  }
  compile_all(spec);
}

void Encoder::Impl::load_names(const json& spec) {
  auto op_it = spec.find("op");
  if (op_it == spec.end() || !op_it->is_string() || op_it->get<std::string>().empty())
    spec_error("op spec needs a string \"op\" (e.g. \"ttnn.exp\")", "/op");
  op = canonical_op_name(op_it->get<std::string>());
  auto add_name = [&](const std::string& n) {
    if (!n.empty() && std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  };
  add_name(op);
  std::string cpp = op;
  for (std::size_t p; (p = cpp.find('.')) != std::string::npos;) cpp.replace(p, 1, "::");
  add_name(cpp);
  add_name(op.substr(op.rfind('.') + 1));
  if (auto a = spec.find("aliases"); a != spec.end()) {
    if (!a->is_array()) spec_error("aliases must be an array of strings", "/aliases");
    for (const auto& n : *a) {
      if (!n.is_string()) spec_error("aliases must be an array of strings", "/aliases");
      add_name(canonical_op_name(n.get<std::string>()));
    }
  }
}

ArgSpec Encoder::Impl::load_arg(const std::string& name, const json& d) {
  ArgSpec a;
  a.name = name;
  a.path = "/" + name;
  std::string sp = "/args/" + name;
  if (!d.is_object() || !d.contains("type") || !d["type"].is_string())
    spec_error("argument needs a string \"type\"", sp + "/type");
  a.type = parse_arg_type(d["type"].get<std::string>(), sp + "/type");
  if (a.type == ArgType::enumeration) {
    if (!d.contains("enum") || !d["enum"].is_string()) spec_error("enum argument needs \"enum\"", sp + "/enum");
    a.enum_kind = parse_enum_kind(d["enum"].get<std::string>(), sp + "/enum");
  }
  a.optional = d.value("optional", false);
  if (auto df = d.find("default"); df != d.end()) {
    a.optional = true;
    if (df->is_string()) a.default_expr = df->get<std::string>();
    else if (df->is_boolean()) a.default_value = df->get<bool>() ? 1.0 : 0.0;
    else if (df->is_number()) a.default_value = df->get<double>();
    else spec_error("default must be a number, boolean or expression string", sp + "/default");
  }
  if (auto r = d.find("rank"); r != d.end()) {
    if (!r->is_array() || r->size() != 2) spec_error("rank must be [min, max]", sp + "/rank");
    a.min_rank = (*r)[0].get<int>();
    a.max_rank = (*r)[1].get<int>();
  }
  if (auto m = d.find("min"); m != d.end()) a.min = m->get<double>();
  if (auto m = d.find("max"); m != d.end()) a.max = m->get<double>();
  if (a.type == ArgType::object) {
    auto f = d.find("fields");
    if (f == d.end() || !f->is_object()) spec_error("object argument needs \"fields\"", sp + "/fields");
    for (auto fi = f->begin(); fi != f->end(); ++fi) a.fields.push_back(load_field(fi.key(), fi.value(), sp));
  }
  return a;
}

FieldSpec Encoder::Impl::load_field(const std::string& name, const json& d, const std::string& arg_path) {
  FieldSpec fs;
  fs.name = name;
  std::string fp = arg_path + "/fields/" + name;
  if (!d.is_object() || !d.contains("type")) spec_error("field needs a \"type\"", fp);
  fs.type = parse_arg_type(d["type"].get<std::string>(), fp + "/type");
  if (fs.type == ArgType::tensor || fs.type == ArgType::memory_config || fs.type == ArgType::object)
    spec_error("object fields must be scalars", fp + "/type");
  if (fs.type == ArgType::enumeration) fs.enum_kind = parse_enum_kind(d.value("enum", std::string()), fp + "/enum");
  if (auto df = d.find("default"); df != d.end()) {
    if (df->is_boolean()) fs.default_value = df->get<bool>() ? 1.0 : 0.0;
    else if (df->is_number()) fs.default_value = df->get<double>();
    else spec_error("a field default must be a number or boolean", fp + "/default");
  }
  return fs;
}

void Encoder::Impl::compile_all(const json& spec) {
  feature_root.assign(feature_names.size(), -1);
  std::vector<int> stack;
  // Argument defaults first: nodes run in index order, and uses of an argument read its default.
  for (auto& a : args) {
    if (a.default_expr.empty()) continue;
    try {
      a.default_id = compile_expr(a.default_expr, stack);
    } catch (const TorpError& e) {
      spec_error(e.error().message, "/args/" + a.name + "/default");
    }
  }
  for (std::size_t i = 0; i < feature_names.size(); ++i) compile_feature(static_cast<int>(i), stack);
  for (std::size_t i = 0; i < feature_names.size(); ++i) exprs.push_back(feature_root[i]);  // ExprId i = feature i
  auto v = spec.find("validate");
  if (v == spec.end()) return;
  if (!v->is_array()) spec_error("validate must be an array of {expr, message}", "/validate");
  for (std::size_t i = 0; i < v->size(); ++i) {
    const json& r = (*v)[i];
    std::string rp = "/validate/" + std::to_string(i);
    if (!r.is_object() || !r.contains("expr") || !r["expr"].is_string()) spec_error("validate rule needs \"expr\"", rp);
    Rule rule;
    try {
      rule.expr = compile_expr(r["expr"].get<std::string>(), stack);
    } catch (const TorpError& e) {
      spec_error(e.error().message, rp + "/expr");
    }
    rule.message = r.value("message", "validation failed: " + r["expr"].get<std::string>());
    validate.push_back(std::move(rule));
  }
}

Encoder::Encoder(const json& spec, const json& device) : impl_(std::make_unique<Impl>()) {
  impl_->spec_json = spec;
  impl_->device_json = device.is_object() ? device : json::object();
  impl_->read_device_limits();
  impl_->load(spec);
}
Encoder::~Encoder() = default;
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;

const std::string& Encoder::op() const { return impl_->op; }
const std::vector<std::string>& Encoder::names() const { return impl_->names; }
const json& Encoder::spec() const { return impl_->spec_json; }
const json& Encoder::device() const { return impl_->device_json; }
std::vector<std::string> Encoder::feature_names() const { return impl_->feature_names; }

ExprId Encoder::feature(std::string_view name) const {
  int fi = impl_->feature_index(name);
  if (fi < 0) throw TorpError(ErrorCode::op_spec, "op spec of " + impl_->op + " has no feature '" + std::string(name) + "'");
  return fi;  // ExprIds below the feature count are the features themselves
}

ExprId Encoder::compile(std::string_view expression) {
  std::vector<int> stack;
  int root = impl_->compile_expr(expression, stack);
  impl_->exprs.push_back(root);
  return static_cast<ExprId>(impl_->exprs.size()) - 1;
}

std::optional<Error> Encoder::bind(const json& args, Bindings& b, std::string_view args_path) const {
  return impl_->bind(args, b, args_path);
}

Result<double> Encoder::eval(ExprId id, const Bindings& b) const {
  const auto at = static_cast<std::size_t>(expr_slot(*this, id));
  if (at >= b.poison.size()) return Error{ErrorCode::op_spec, "expression compiled after the arguments were bound", {}};
  if (b.poison[at]) return impl_->failure(b, b.poison[at]);
  return b.values[at];
}

std::optional<Error> Encoder::eval_all(std::span<const ExprId> ids, const Bindings& b, std::span<double> out) const {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto v = eval(ids[i], b);
    if (!v) return v.error();
    out[i] = v.value();
  }
  return std::nullopt;
}

int EncoderAccess::slot(const Encoder& encoder, ExprId id) {
  return encoder.impl_->exprs.at(static_cast<std::size_t>(id));
}

std::vector<std::string> EncoderAccess::argument_paths(const Encoder& encoder) {
  std::vector<std::string> out;
  for (const auto& a : encoder.impl_->args) out.push_back(a.path);
  return out;
}

std::vector<int> EncoderAccess::arguments_read(const Encoder& encoder, ExprId id) {
  const auto& im = *encoder.impl_;
  std::vector<bool> read(im.args.size(), false), visited(im.nodes.size(), false);
  std::vector<int> todo = {im.exprs.at(static_cast<std::size_t>(id))};
  while (!todo.empty()) {
    const int ni = todo.back();
    todo.pop_back();
    if (ni < 0 || visited[static_cast<std::size_t>(ni)]) continue;
    visited[static_cast<std::size_t>(ni)] = true;
    const Node& n = im.nodes[static_cast<std::size_t>(ni)];
    if (n.kind != NodeKind::constant && n.arg >= 0) {
      read[static_cast<std::size_t>(n.arg)] = true;
      todo.push_back(im.args[static_cast<std::size_t>(n.arg)].default_id);
    }
    todo.push_back(n.default_node);
    todo.insert(todo.end(), n.kids.begin(), n.kids.end());
  }
  std::vector<int> out;
  for (std::size_t a = 0; a < read.size(); ++a)
    if (read[a]) out.push_back(static_cast<int>(a));
  return out;
}

std::string Encoder::blame_path(ExprId id, const Bindings& b) const {
  return impl_->blame(b, impl_->exprs.at(static_cast<std::size_t>(id)));
}

Result<std::vector<double>> Encoder::encode(const json& args, std::span<const std::string> features) const {
  std::vector<ExprId> ids;
  try {
    for (const auto& f : features) ids.push_back(feature(f));
  } catch (const TorpError& e) {
    return e.error();
  }
  Bindings b;
  if (auto e = bind(args, b)) return *e;
  std::vector<double> out(ids.size());
  if (auto e = eval_all(ids, b, out)) return *e;
  return out;
}

}  // namespace torp
