// SPDX-License-Identifier: Apache-2.0
#include "torp/error.hpp"

namespace torp {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::unknown_op: return "unknown_op";
    case ErrorCode::no_model: return "no_model";
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::model_output_invalid: return "model_output_invalid";
    case ErrorCode::invalid_query: return "invalid_query";
    case ErrorCode::model_format: return "model_format";
    case ErrorCode::model_version: return "model_version";
    case ErrorCode::op_spec: return "op_spec";
    case ErrorCode::io: return "io";
    case ErrorCode::dataset: return "dataset";
    case ErrorCode::training: return "training";
  }
  return "unknown";
}

std::string Error::describe() const {
  std::string s(to_string(code));
  s += ": ";
  if (!file.empty()) {
    s += file;
    if (line > 0) s += ":" + std::to_string(line);
    if (line > 0 && column > 0) s += ":" + std::to_string(column);
    s += ": ";
  }
  s += message;
  if (!path.empty()) {
    s += " (at ";
    s += path;
    s += ")";
  }
  return s;
}

Error in_file(Error e, std::string file, std::size_t line, std::size_t column) {
  if (e.file.empty()) {
    e.file = std::move(file);
    e.line = line;
    e.column = column;
  }
  return e;
}

}  // namespace torp
