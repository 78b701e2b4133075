// SPDX-License-Identifier: Apache-2.0
#include "args.hpp"
#include "commands.hpp"

namespace torp::cli {
int cmd_eval(int, char**) {
  error("eval", "not implemented yet");
  return kExitFailure;
}
}  // namespace torp::cli
