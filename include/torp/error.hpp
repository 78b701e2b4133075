// SPDX-License-Identifier: Apache-2.0
// Typed errors: every failure carries a stable code, a message, the JSON path of the bad field and,
// when it is about a file, that file (and the line and column in it, where known).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace torp {

/// Stable error codes. Their string ids (see to_string) are part of the CLI/Python contract.
enum class ErrorCode {
  unknown_op,            ///< no op spec answers to the requested op name
  no_model,              ///< the op is known but no loaded model covers this query (or pinned id)
  invalid_argument,      ///< a query field is missing, ill-typed or outside the model's domain
  model_output_invalid,  ///< the network produced a non-positive or non-finite runtime
  invalid_query,         ///< the query itself is not valid JSON / lacks "op" or "args"
  model_format,          ///< a model file is malformed (missing key, shape mismatch, non-finite weight)
  model_version,         ///< a model file declares an unknown or future format_version
  op_spec,               ///< an op spec is malformed (bad expression, unknown argument type)
  io,                    ///< a file could not be read or written
  dataset,               ///< a dataset or sweep file is malformed
  training,              ///< training could not proceed (e.g. too few configurations)
};

/// The string id of a code, e.g. "invalid_argument".
std::string_view to_string(ErrorCode code) noexcept;

struct Error {
  Error() = default;
  Error(ErrorCode c, std::string msg, std::string json_path = {}, std::string in_file = {}, std::size_t at_line = 0,
        std::size_t at_column = 0)
      : code(c), message(std::move(msg)), path(std::move(json_path)), file(std::move(in_file)), line(at_line),
        column(at_column) {}

  ErrorCode code{};
  std::string message;  ///< what is wrong (without the file, line and column: see describe())
  std::string path;     ///< JSON pointer of the offending field ("" when not about a field)
  std::string file;     ///< the file (or models directory) the error is about ("" when none)
  std::size_t line = 0;    ///< 1-based line in `file` (0 when not known or not about one line)
  std::size_t column = 0;  ///< 1-based byte column in that line (0 when not known)

  /// "code: file:line:column: message (at path)" for logs and exceptions; the parts that are
  /// empty or 0 are left out ("code: message" for an error about no file and no field).
  [[nodiscard]] std::string describe() const;
};

/// `e` located in `file` (and at `line`:`column` if given), unless it already names a file.
/// Readers wrap the errors of the code they call with this, so an error says where it comes from.
[[nodiscard]] Error in_file(Error e, std::string file, std::size_t line = 0, std::size_t column = 0);

/// Exception used inside the library and by the training/CLI layers. Query paths return Result.
class TorpError : public std::exception {
 public:
  explicit TorpError(Error e) : error_(std::move(e)), what_(error_.describe()) {}
  /// An error about the field at `path` (JSON pointer) of `file` (at `line`:`column` when not 0).
  TorpError(ErrorCode c, std::string msg, std::string path = {}, std::string file = {}, std::size_t line = 0,
            std::size_t column = 0)
      : TorpError(Error{c, std::move(msg), std::move(path), std::move(file), line, column}) {}
  [[nodiscard]] const Error& error() const noexcept { return error_; }
  [[nodiscard]] const char* what() const noexcept override { return what_.c_str(); }

 private:
  Error error_;
  std::string what_;
};

/// A value or an Error; never both, never neither.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}        // NOLINT(google-explicit-constructor)
  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] const T& value() const {
    if (!ok()) throw TorpError(error());
    return std::get<0>(v_);
  }
  [[nodiscard]] T& value() {
    if (!ok()) throw TorpError(error());
    return std::get<0>(v_);
  }
  [[nodiscard]] const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace torp
