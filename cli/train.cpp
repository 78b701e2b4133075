// SPDX-License-Identifier: Apache-2.0
#include "args.hpp"
#include "commands.hpp"

namespace torp::cli {
int cmd_train(int, char**) {
  error("train", "not implemented yet");
  return kExitFailure;
}
}  // namespace torp::cli
