// SPDX-License-Identifier: Apache-2.0
// Minimal declarative argument parser for the torp commands: every option is declared with its
// help text, so --help is always complete.
#pragma once

#include <charconv>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace torp::cli {

/// Exit codes of the torp command (documented in `torp --help`).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  ///< the command ran and failed (bad input file, I/O...)
inline constexpr int kExitUsage = 2;    ///< bad command line

class Args {
 public:
  Args(std::string command, std::string summary, std::string description = {});
  Args& option(const std::string& name, const std::string& metavar, const std::string& help,
               std::optional<std::string> default_value = std::nullopt, bool repeatable = false);
  Args& flag(const std::string& name, const std::string& help);
  /// `-c` is another spelling of --name.
  Args& short_name(char c, const std::string& name);
  /// The repeatable option --name also takes the arguments after its value, up to the next
  /// option ("--results a.json b.json").
  Args& greedy(const std::string& name);
  Args& positional(const std::string& name, const std::string& help, bool optional = false);

  /// Parse; on --help prints help and returns kExitOk, on error prints usage and returns
  /// kExitUsage; returns -1 when the command should run.
  int parse(int argc, char** argv);

  [[nodiscard]] bool has(const std::string& name) const;
  [[nodiscard]] std::string get(const std::string& name) const;  ///< value or default ("" if none)
  [[nodiscard]] std::optional<std::string> maybe(const std::string& name) const;
  [[nodiscard]] std::vector<std::string> all(const std::string& name) const;
  [[nodiscard]] bool flag_set(const std::string& name) const;
  [[nodiscard]] std::optional<std::string> pos(const std::string& name) const;
  [[nodiscard]] std::string help() const;

 private:
  struct Opt {
    std::string name, metavar, help;
    std::optional<std::string> def;
    bool is_flag = false, repeatable = false, greedy = false;
    char short_name = 0;
  };
  struct Pos {
    std::string name, help;
    bool optional = false;
  };
  std::string command_, summary_, description_;
  std::vector<Opt> opts_;
  std::vector<Pos> pos_;
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, std::string> positional_;
};

/// Print "torp <command>: error: <message>" to stderr.
void error(const std::string& command, const std::string& message);

/// Run one command; an exception that escapes it is reported with error() and gives kExitFailure.
int run_command(const std::string& command, int (*run)(int, char**), int argc, char** argv);

/// Options a command needs but Args declares optional: reports the first missing one.
bool require(const Args& a, const std::string& command, std::initializer_list<const char*> names);

/// Read a JSON file (op spec, device, config); TorpError(io) naming `what` and the file.
nlohmann::json read_json_file(const std::string& file, const char* what);

/// Parse the whole string as a number of type T (int, double, ...); false if it is not one.
template <class T>
bool parse_value(const std::string& s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

/// The whole string as a number of type T, or nullopt.
template <class T>
std::optional<T> parse_as(const std::string& s) {
  T v{};
  if (!parse_value(s, v)) return std::nullopt;
  return v;
}

}  // namespace torp::cli
