// SPDX-License-Identifier: Apache-2.0
#include "args.hpp"

#include <exception>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "torp/error.hpp"
#include <sstream>

namespace torp::cli {

Args::Args(std::string command, std::string summary, std::string description)
    : command_(std::move(command)), summary_(std::move(summary)), description_(std::move(description)) {
  flag("help", "show this help and exit");
}

Args& Args::option(const std::string& name, const std::string& metavar, const std::string& help,
                   std::optional<std::string> default_value, bool repeatable) {
  opts_.push_back({name, metavar, help, std::move(default_value), false, repeatable});
  return *this;
}
Args& Args::flag(const std::string& name, const std::string& help) {
  opts_.push_back({name, "", help, std::nullopt, true, false});
  return *this;
}
Args& Args::short_name(char c, const std::string& name) {
  for (auto& o : opts_)
    if (o.name == name) o.short_name = c;
  return *this;
}
Args& Args::greedy(const std::string& name) {
  for (auto& o : opts_)
    if (o.name == name) o.greedy = o.repeatable = true;
  return *this;
}
Args& Args::positional(const std::string& name, const std::string& help, bool optional) {
  pos_.push_back({name, help, optional});
  return *this;
}

std::string Args::help() const {
  std::ostringstream o;
  o << "usage: torp " << command_;
  for (const auto& p : pos_) o << (p.optional ? " [" : " ") << p.name << (p.optional ? "]" : "");
  o << " [options]\n\n" << summary_ << "\n";
  if (!description_.empty()) o << "\n" << description_ << "\n";
  if (!pos_.empty()) {
    o << "\narguments:\n";
    for (const auto& p : pos_) o << "  " << p.name << std::string(p.name.size() < 24 ? 24 - p.name.size() : 1, ' ') << p.help << "\n";
  }
  o << "\noptions:\n";
  for (const auto& op : opts_) {
    std::string lhs = (op.short_name ? std::string("-") + op.short_name + ", " : std::string()) + "--" + op.name +
                      (op.is_flag ? "" : " " + op.metavar + (op.greedy ? "..." : ""));
    o << "  " << lhs << std::string(lhs.size() < 24 ? 24 - lhs.size() : 1, ' ') << op.help;
    if (op.def) o << " (default: " << (op.def->empty() ? "\"\"" : *op.def) << ")";
    if (op.repeatable) o << " (repeatable)";
    o << "\n";
  }
  return o.str();
}

int Args::parse(int argc, char** argv) {
  std::size_t next_pos = 0;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() == 2 && a[0] == '-' && a[1] != '-') {  // -o: a declared short name
      for (const auto& o : opts_)
        if (o.short_name == a[1]) a = "--" + o.name;
      if (a.size() == 2) {
        error(command_, "unknown option " + a + " (see torp " + command_ + " --help)");
        return kExitUsage;
      }
    }
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      bool has_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      const Opt* found = nullptr;
      for (const auto& o : opts_)
        if (o.name == name) found = &o;
      if (found == nullptr) {
        error(command_, "unknown option --" + name + " (see torp " + command_ + " --help)");
        return kExitUsage;
      }
      if (found->is_flag) {
        if (name == "help") {
          std::cout << help();
          return kExitOk;
        }
        values_[name].push_back("1");
        continue;
      }
      if (!has_value) {
        if (i + 1 >= argc) {
          error(command_, "option --" + name + " needs a value " + found->metavar);
          return kExitUsage;
        }
        value = argv[++i];
      }
      if (!found->repeatable && values_.count(name)) {
        error(command_, "option --" + name + " given twice");
        return kExitUsage;
      }
      values_[name].push_back(value);
      if (found->greedy)
        while (i + 1 < argc && argv[i + 1][0] != '-') values_[name].push_back(argv[++i]);
    } else {
      if (next_pos >= pos_.size()) {
        error(command_, "unexpected argument '" + a + "' (see torp " + command_ + " --help)");
        return kExitUsage;
      }
      positional_[pos_[next_pos++].name] = a;
    }
  }
  for (std::size_t i = next_pos; i < pos_.size(); ++i)
    if (!pos_[i].optional) {
      error(command_, "missing argument " + pos_[i].name + " (see torp " + command_ + " --help)");
      return kExitUsage;
    }
  return -1;
}

bool Args::has(const std::string& name) const { return values_.count(name) > 0; }
std::string Args::get(const std::string& name) const {
  if (auto v = maybe(name)) return *v;
  return {};
}
std::optional<std::string> Args::maybe(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second.back();
  for (const auto& o : opts_)
    if (o.name == name) return o.def;
  return std::nullopt;
}
std::vector<std::string> Args::all(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  return {};
}
bool Args::flag_set(const std::string& name) const { return values_.count(name) > 0; }
std::optional<std::string> Args::pos(const std::string& name) const {
  if (auto it = positional_.find(name); it != positional_.end()) return it->second;
  return std::nullopt;
}

void error(const std::string& command, const std::string& message) {
  std::cerr << "torp " << command << ": error: " << message << "\n";
}

int run_command(const std::string& command, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // TorpError's what() is "code: message (at path)"
    error(command, e.what());
    return kExitFailure;
  }
}

bool require(const Args& a, const std::string& command, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (!a.has(n)) {
      error(command, std::string("option --") + n + " is required (see torp " + command + " --help)");
      return false;
    }
  return true;
}

nlohmann::json read_json_file(const std::string& file, const char* what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TorpError(ErrorCode::io, std::string("cannot read ") + what + " " + file);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw TorpError(ErrorCode::io, std::string(what) + " " + file + " is not valid JSON");
  return j;
}

}  // namespace torp::cli
