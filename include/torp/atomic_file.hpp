// SPDX-License-Identifier: Apache-2.0
// Files that appear whole or not at all (datasets, reports, model files).
#pragma once

#include <filesystem>
#include <fstream>

namespace torp {

/// A file written through a temporary file in the same directory, which replaces `file` only on
/// commit(): readers never see a partial file, and a failed or abandoned write (destructor
/// without commit) leaves nothing behind.
class AtomicFile {
 public:
  /// Throws TorpError(io) if `file` exists and !overwrite, or the temporary file cannot be created.
  AtomicFile(std::filesystem::path file, bool overwrite);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ostream& stream() { return out_; }
  /// Flush and move the file into place. Without overwrite this fails (TorpError(io)) if the
  /// file appeared meanwhile.
  void commit();

 private:
  std::filesystem::path file_, tmp_;
  bool overwrite_ = false, committed_ = false;
  std::ofstream out_;
};

}  // namespace torp
