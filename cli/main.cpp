// SPDX-License-Identifier: Apache-2.0
// torp: predict TTNN op runtimes, and build the models that do it.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App root("TORP, the TTNN op runtime predictor: how long will this op take on the device?", "torp");
  root.set_version_flag("--version", "torp " TORP_VERSION);
  root.require_subcommand(1);
  root.footer(
      "\nRun 'torp <command> --help' or 'torp help <command>' for the command's options.\n"
      "Models are read from --models DIR (repeatable), else $TORP_MODELS (directories separated by ':'),\n"
      "else the installed share/torp/models, else ./models. JSON files that are not TORP models are skipped.\n"
      "Exit codes: 0 success, 1 the command failed (message on stderr), 2 bad command line.");
  torp::cli::add_predict(root);
  torp::cli::add_list(root);
#ifdef TORP_WITH_TRAINING
  torp::cli::add_dataset(root);
  torp::cli::add_train(root);
  torp::cli::add_eval(root);
  torp::cli::add_drift(root);
  torp::cli::add_suggest(root);
  torp::cli::add_regenerate(root);
  torp::cli::add_import_mlpack(root);
  torp::cli::add_make_analytical(root);
#endif
  if (argc < 2) {
    std::cerr << root.help();
    return torp::cli::kExitUsage;
  }
  // `torp help [CMD [SUB]]` is `torp [CMD [SUB]] --help`.
  std::vector<char*> args(argv, argv + argc);
  static char help_flag[] = "--help";
  if (std::strcmp(argv[1], "help") == 0) {
    args.erase(args.begin() + 1);
    args.push_back(help_flag);
  }
  return torp::cli::run(root, static_cast<int>(args.size()), args.data());
}
