// SPDX-License-Identifier: Apache-2.0
// Files that appear whole or not at all (datasets, reports, model files).
#pragma once

#include <filesystem>
#include <memory>
#include <ostream>

namespace torp {

/// A file written through a temporary file in the same directory, which replaces `file` only on
/// commit(): readers never see a partial file, and a failed or abandoned write (destructor
/// without commit) leaves nothing behind. The data and the directory entry are fsync'ed before
/// commit() returns. Where the file system supports it (Linux O_TMPFILE) the temporary file has
/// no name until commit(), so even a killed process leaves nothing visible; otherwise it is named
/// "<file>.tmp.<pid>.<n>", and such files of processes that no longer run are removed by the next
/// AtomicFile of the same directory.
class AtomicFile {
 public:
  /// Throws TorpError(io) if `file` exists and !overwrite, or the temporary file cannot be created.
  AtomicFile(std::filesystem::path file, bool overwrite);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ostream& stream();
  /// Flush, fsync and move the file into place (then fsync its directory). Without overwrite this
  /// fails (TorpError(io)) if the file appeared meanwhile.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace torp
