// SPDX-License-Identifier: Apache-2.0
// One function per torp command; each lives in its own file (cli/<command>.cpp).
#pragma once

namespace torp::cli {

int cmd_predict(int argc, char** argv);
int cmd_list(int argc, char** argv);
#ifdef TORP_WITH_TRAINING
int cmd_import_mlpack(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_dataset(int argc, char** argv);
#endif

}  // namespace torp::cli
