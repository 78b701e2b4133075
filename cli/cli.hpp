// SPDX-License-Identifier: Apache-2.0
// The torp command line on CLI11: every command registers a CLI11 subcommand with typed,
// range-checked options (add_<command> in cli/<command>.cpp) and the function that runs it.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>

#include "torp/error.hpp"

namespace torp::cli {

/// Exit codes of the torp command (documented in `torp --help`).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  ///< the command ran and failed (bad input file, I/O...)
inline constexpr int kExitUsage = 2;    ///< bad command line

/// A bad command line found after parsing (options that go together, ...): exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// `run` answers the (sub)command `app` once its command line has been parsed.
void on_run(CLI::App* app, std::function<int()> run);

/// A subcommand with torp's help layout: `summary` in the command list and at the top of its help,
/// `description` (may be empty) after the options.
CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& summary,
                      const std::string& description = {});

/// "predict", "dataset from-sweep": the subcommand path of `app` below the root.
std::string command_path(const CLI::App* app);

/// Print "torp <command>: error: <message>" to stderr.
void error(const std::string& command, const std::string& message);

/// Parse the command line and run the chosen command; the whole CLI's error boundary: a bad
/// command line gives exit 2, any exception a command throws is reported with error() and gives 1.
int run(CLI::App& root, int argc, char** argv);

/// Read a JSON file (op spec, device, config); TorpError(io) naming `what`, with the file in its `file`.
nlohmann::json read_json_file(const std::string& file, const char* what);

/// Run `f`; an op_spec error that names no file (the op spec was read from `op_spec_file` and
/// handed over as JSON) gets that file.
template <class F>
decltype(auto) with_op_spec_file(const std::string& op_spec_file, F&& f) {
  try {
    return f();
  } catch (const TorpError& e) {
    if (e.error().code != ErrorCode::op_spec) throw;
    throw TorpError(in_file(e.error(), op_spec_file));
  }
}

/// CLI11 check: the path is not a directory (a missing file is reported when it is opened).
inline const CLI::Validator kNotDirectory(
    [](std::string& path) {
      std::error_code ec;
      return std::filesystem::is_directory(path, ec) ? "'" + path + "' is a directory, not a file" : std::string();
    },
    "FILE");

}  // namespace torp::cli
