// SPDX-License-Identifier: Apache-2.0
// One function per torp command, each in its own file (cli/<command>.cpp): it adds the command's
// CLI11 subcommand (options, help) to the root and registers what runs it (on_run).
#pragma once

#include "cli.hpp"

namespace torp::cli {

void add_predict(CLI::App& root);
void add_list(CLI::App& root);
#ifdef TORP_WITH_TRAINING
void add_dataset(CLI::App& root);
void add_train(CLI::App& root);
void add_eval(CLI::App& root);
void add_import_mlpack(CLI::App& root);
void add_drift(CLI::App& root);
void add_suggest(CLI::App& root);
void add_regenerate(CLI::App& root);
void add_make_analytical(CLI::App& root);
#endif

}  // namespace torp::cli
