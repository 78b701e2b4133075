// SPDX-License-Identifier: Apache-2.0
#include "cli.hpp"

#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <new>

#include <nlohmann/json.hpp>

#include "torp/error.hpp"

namespace torp::cli {
namespace {

std::map<const CLI::App*, std::function<int()>>& runners() {
  static std::map<const CLI::App*, std::function<int()>> r;
  return r;
}

/// The deepest subcommand the command line selected (the root if none).
CLI::App* selected(CLI::App& root) {
  CLI::App* app = &root;
  for (;;) {
    auto subs = app->get_subcommands();
    if (subs.empty()) return app;
    app = subs.front();
  }
}

}  // namespace

void on_run(CLI::App* app, std::function<int()> run) { runners()[app] = std::move(run); }

CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& summary,
                      const std::string& description) {
  CLI::App* app = parent.add_subcommand(name, summary);
  if (!description.empty()) app->footer("\n" + description);
  return app;
}

std::string command_path(const CLI::App* app) {
  std::string path;
  for (; app != nullptr && app->get_parent() != nullptr; app = app->get_parent())
    path = app->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

void error(const std::string& command, const std::string& message) {
  std::cerr << "torp" << (command.empty() ? "" : " " + command) << ": error: " << message << "\n";
}

int run(CLI::App& root, int argc, char** argv) {
  try {
    root.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    CLI::App* app = selected(root);
    const std::string parent = app == &root ? std::string() : command_path(app->get_parent());
    std::cout << app->help(app == &root ? "" : "torp" + (parent.empty() ? "" : " " + parent));
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << root.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    const std::string cmd = command_path(selected(root));
    error(cmd, e.what());
    std::cerr << "Run 'torp " << (cmd.empty() ? "" : cmd + " ") << "--help' for the options.\n";
    return kExitUsage;
  }
  CLI::App* app = selected(root);
  const std::string cmd = command_path(app);
  auto it = runners().find(app);
  if (it == runners().end()) {  // a command group such as `torp dataset` without its subcommand
    std::cerr << app->help();
    return kExitUsage;
  }
  try {
    return it->second();
  } catch (const UsageError& e) {
    error(cmd, std::string(e.what()) + " (see torp " + cmd + " --help)");
    return kExitUsage;
  } catch (const TorpError& e) {  // what() is "code: message (at path)"
    error(cmd, e.what());
  } catch (const std::bad_alloc&) {
    error(cmd, "out of memory");
  } catch (const std::exception& e) {
    error(cmd, std::string("internal error: ") + e.what());
  } catch (...) {
    error(cmd, "internal error: unknown exception");
  }
  return kExitFailure;
}

nlohmann::json read_json_file(const std::string& file, const char* what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TorpError(ErrorCode::io, std::string("cannot read the ") + what, "", file);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw TorpError(ErrorCode::io, std::string("the ") + what + " is not valid JSON", "", file);
  return j;
}

}  // namespace torp::cli
