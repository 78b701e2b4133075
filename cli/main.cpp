// SPDX-License-Identifier: Apache-2.0
// torp: predict TTNN op runtimes, and build the models that do it.
#include <iostream>
#include <string>

#include "args.hpp"
#include "commands.hpp"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"predict", torp::cli::cmd_predict, "answer runtime queries (JSON Lines in, JSON Lines out)"},
    {"list", torp::cli::cmd_list, "list the loaded models with op, device, tt-metal commit and metrics"},
#ifdef TORP_WITH_TRAINING
    {"dataset", torp::cli::cmd_dataset, "build datasets: import-csv (reference CSV), from-sweep (sweep JSON), info, sample"},
    {"train", torp::cli::cmd_train, "train a model for one op from a dataset (search, split, metrics, provenance)"},
    {"eval", torp::cli::cmd_eval, "evaluate a model on a dataset's test configurations (table + HTML report)"},
    {"import-mlpack", torp::cli::cmd_import_mlpack, "convert a reference mlpack model + scaler into a TORP model"},
#endif
};

void usage(std::ostream& o) {
  o << "usage: torp <command> [options]\n\n"
       "TORP, the TTNN op runtime predictor: how long will this op take on the device?\n\ncommands:\n";
  for (const auto& c : kCommands) {
    std::string n = c.name;
    o << "  " << n << std::string(n.size() < 16 ? 16 - n.size() : 1, ' ') << c.summary << "\n";
  }
  o << "\nRun 'torp <command> --help' for the command's options.\n"
       "Models are read from --models DIR, else $TORP_MODELS, else the installed share/torp/models,\n"
       "else ./models.\n"
       "Exit codes: 0 success, 1 the command failed (message on stderr), 2 bad command line.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return torp::cli::kExitUsage;
  }
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(std::cout);
    return torp::cli::kExitOk;
  }
  if (cmd == "--version") {
    std::cout << "torp " TORP_VERSION "\n";
    return torp::cli::kExitOk;
  }
  for (const auto& c : kCommands)
    if (cmd == c.name) return torp::cli::run_command(cmd, c.run, argc - 2, argv + 2);
  std::cerr << "torp: unknown command '" << cmd << "'\n\n";
  usage(std::cerr);
  return torp::cli::kExitUsage;
}
