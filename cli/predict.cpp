// SPDX-License-Identifier: Apache-2.0
// torp predict: JSON Lines queries in, one JSON line per query out, in order.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "args.hpp"
#include "commands.hpp"
#include "torp/json_lines.hpp"
#include "torp/predictor.hpp"

namespace torp::cli {

int cmd_predict(int argc, char** argv) {
  Args a("predict", "Answer runtime queries: one JSON query per input line, one JSON answer per line, in order.",
         "A query is {\"op\": NAME, \"args\": {...}, \"model\"?: ID}. NAME is the TTNN name (ttnn.exp), the C++\n"
         "name (ttnn::exp) or the short name (exp); args follow the TTNN Python signature, tensors as\n"
         "tt-metal's ttsl::json::to_json writes them. Answers:\n"
         "  {\"runtime_ns\": 1234.5, \"status\": \"ok\", \"model\": \"<model id>\"}\n"
         "  {\"status\": \"error\", \"error\": {\"code\": \"...\", \"message\": \"...\", \"path\": \"<JSON pointer>\"}}\n"
         "Error codes: unknown_op, no_model, invalid_argument, model_output_invalid, invalid_query.\n"
         "A malformed line gets an error answer; the stream goes on. Blank lines are skipped.\n"
         "From a pipe or terminal each answer is written as soon as its line has arrived; a file\n"
         "(FILE or redirected stdin) is read whole and answered on --threads cores.\n"
         "Exit code 0 even when some queries fail; 1 if the models or the input cannot be read.");
  a.option("models", "DIR", "model directory (else $TORP_MODELS, installed models, ./models)")
      .option("threads", "N", "worker threads for large inputs (0 = all cores)", "0")
      .positional("FILE", "JSON Lines file of queries (default: standard input)", true);
  if (int rc = a.parse(argc, argv); rc >= 0) return rc;

  std::optional<std::filesystem::path> dir;
  if (auto m = a.maybe("models")) dir = *m;
  Predictor predictor(resolve_models_dir(dir));

  int in = 0;
  if (auto file = a.pos("FILE")) {
    in = ::open(file->c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
      error("predict", "cannot open " + *file + ": " + std::strerror(errno));
      return kExitFailure;
    }
  }
  JsonLinesOptions options;
  options.threads = static_cast<unsigned>(std::stoul(a.get("threads")));
  answer_json_lines(predictor, in, stdout, options);
  if (in != 0) ::close(in);
  return kExitOk;
}

}  // namespace torp::cli
