// SPDX-License-Identifier: Apache-2.0
#include "torp/atomic_file.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

#include "torp/error.hpp"

namespace torp {
namespace fs = std::filesystem;

AtomicFile::AtomicFile(fs::path file, bool overwrite) : file_(std::move(file)), overwrite_(overwrite) {
  if (!overwrite_ && fs::exists(file_))
    throw TorpError(ErrorCode::io, file_.string() + " already exists (pass --force / overwrite to replace it)");
  std::error_code ec;
  if (file_.has_parent_path()) fs::create_directories(file_.parent_path(), ec);
  static std::atomic<unsigned> counter{0};
  tmp_ = file_;
  tmp_ += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) throw TorpError(ErrorCode::io, "cannot write " + tmp_.string());
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  out_.close();
  std::error_code ec;
  fs::remove(tmp_, ec);
}

void AtomicFile::commit() {
  out_.close();
  if (!out_) throw TorpError(ErrorCode::io, "error writing " + tmp_.string());
  std::error_code ec;
  auto taken = [&] { return TorpError(ErrorCode::io, file_.string() + " already exists (pass --force / overwrite to replace it)"); };
  if (!overwrite_) {
    // A hard link fails atomically if the file appeared meanwhile.
    fs::create_hard_link(tmp_, file_, ec);
    if (ec == std::errc::file_exists) throw taken();
    if (!ec) {
      fs::remove(tmp_, ec);
      committed_ = true;
      return;
    }
    if (fs::exists(file_)) throw taken();  // filesystem without hard links: check, then rename
  }
  fs::rename(tmp_, file_, ec);
  if (ec) throw TorpError(ErrorCode::io, "cannot rename " + tmp_.string() + " to " + file_.string() + ": " + ec.message());
  committed_ = true;
}

}  // namespace torp
