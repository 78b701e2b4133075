// SPDX-License-Identifier: Apache-2.0
// torp predict: JSON Lines queries in, one JSON line per query out, in order.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "torp/json_lines.hpp"
#include "torp/predictor.hpp"

namespace torp::cli {
namespace {

const char* const kDescription =
    "A query is {\"op\": NAME, \"args\": {...}, \"model\"?: ID}. NAME is the TTNN name (ttnn.exp), the C++\n"
    "name (ttnn::exp) or the short name (exp); args follow the TTNN Python signature, tensors as\n"
    "tt-metal's ttsl::json::to_json writes them. Answers:\n"
    "  {\"runtime_ns\": 1234.5, \"status\": \"ok\", \"model\": \"<model id>\"}\n"
    "  {\"status\": \"error\", \"error\": {\"code\": \"...\", \"message\": \"...\", \"path\": \"<JSON pointer>\"}}\n"
    "Error codes: unknown_op, no_model, invalid_argument, model_output_invalid, invalid_query.\n"
    "A malformed line, or one longer than --max-line-bytes, gets an error answer; the stream goes\n"
    "on. Blank lines are skipped.\n"
    "From a pipe or terminal each answer is written as soon as its line has arrived; a file\n"
    "(FILE or redirected stdin) is read whole and answered on --threads cores.\n"
    "Exit code 0 even when some queries fail; 1 if the models or the input cannot be read.";

struct Options {
  std::vector<std::string> models;
  std::optional<std::string> file;
  int threads = 0;
  std::size_t max_line_bytes = JsonLinesOptions::kDefaultMaxLineBytes;
};

int predict(const Options& o) {
  Predictor predictor(resolve_models_dirs(std::vector<std::filesystem::path>(o.models.begin(), o.models.end())));
  int in = 0;
  if (o.file) {
    in = ::open(o.file->c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
      error("predict", "cannot open " + *o.file + ": " + std::strerror(errno));
      return kExitFailure;
    }
  }
  JsonLinesOptions options;
  options.threads = static_cast<unsigned>(o.threads);
  options.max_line_bytes = o.max_line_bytes;
  answer_json_lines(predictor, in, stdout, options);
  if (in != 0) ::close(in);
  return kExitOk;
}

}  // namespace

void add_predict(CLI::App& root) {
  CLI::App* app = add_command(root, "predict",
                              "Answer runtime queries: one JSON query per input line, one JSON answer per line, in order.",
                              kDescription);
  auto o = std::make_shared<Options>();
  app->add_option("--models", o->models, "model directory, repeatable (else $TORP_MODELS: DIR:DIR..., installed models, ./models)")
      ->type_name("DIR")
      ->allow_extra_args(false);
  app->add_option("--threads", o->threads, "worker threads for large inputs (0 = all cores)")
      ->type_name("N")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app->add_option("--max-line-bytes", o->max_line_bytes,
                  "longest query line read; a longer line gets an invalid_query answer and the stream goes on")
      ->type_name("N")
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 32))
      ->capture_default_str();
  app->add_option("FILE", o->file, "JSON Lines file of queries (default: standard input)")->check(kNotDirectory);
  on_run(app, [o] { return predict(*o); });
}

}  // namespace torp::cli
