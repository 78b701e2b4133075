// SPDX-License-Identifier: Apache-2.0
#include "args.hpp"
#include "commands.hpp"

namespace torp::cli {
int cmd_import_mlpack(int, char**) {
  error("import_mlpack", "not implemented yet");
  return kExitFailure;
}
}  // namespace torp::cli
