// SPDX-License-Identifier: Apache-2.0
// The JSON Lines protocol of `torp predict`: one query per input line, one answer per line, in
// order. Shared by the torp command and the Python module (`python -m ttnn_op_runtime_predictor`).
#pragma once

#include <cstdio>
#include <string>

#include "torp/error.hpp"
#include "torp/predictor.hpp"

namespace torp {

struct JsonLinesOptions {
  unsigned threads = 0;  ///< worker threads for a regular file (0 = all cores); pipes use one
  /// A longer line (without its line end) gets an invalid_query answer and is not parsed.
  std::size_t max_line_bytes = kDefaultMaxLineBytes;
  static constexpr std::size_t kDefaultMaxLineBytes = std::size_t{1} << 20;
};

/// Answer the queries read from file descriptor `in` on `out`. A pipe or terminal is answered as
/// its lines arrive (a caller may wait for each answer before sending the next query); a regular
/// file is read whole and answered on `threads` cores. A malformed line gets an error answer and
/// the stream goes on; so does a line longer than options.max_line_bytes (from a pipe its bytes
/// are dropped as they arrive: memory stays bounded). Each input byte is scanned once.
/// Throws TorpError(io) if `in` cannot be read.
void answer_json_lines(const Predictor& predictor, int in, std::FILE* out, const JsonLinesOptions& options = {});

/// One answer as `torp predict` writes it (a JSON object and a newline), appended to `out`.
void append_json_answer(std::string& out, const PredictResult& result);

}  // namespace torp
