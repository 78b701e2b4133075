// SPDX-License-Identifier: Apache-2.0
#include "args.hpp"
#include "commands.hpp"

namespace torp::cli {
int cmd_dataset(int, char**) {
  error("dataset", "not implemented yet");
  return kExitFailure;
}
}  // namespace torp::cli
