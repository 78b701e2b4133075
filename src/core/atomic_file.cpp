// SPDX-License-Identifier: Apache-2.0
#include "torp/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <streambuf>
#include <string>
#include <vector>

#include "torp/error.hpp"

namespace torp {
namespace fs = std::filesystem;

namespace {

TorpError io_error(const std::string& what) {
  return TorpError(ErrorCode::io, what + ": " + std::strerror(errno));
}

/// An output stream buffer over a file descriptor (the temporary file may have no name).
class FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd) : fd_(fd), buf_(1 << 16) { setp(buf_.data(), buf_.data() + buf_.size()); }
  bool failed() const { return failed_; }

 protected:
  int_type overflow(int_type c) override {
    if (!flush_buffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  bool flush_buffer() {
    for (const char* p = pbase(); p < pptr();) {
      const ssize_t n = ::write(fd_, p, static_cast<std::size_t>(pptr() - p));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return !(failed_ = true);
      p += n;
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return true;
  }
  int fd_;
  std::vector<char> buf_;
  bool failed_ = false;
};

std::string temp_name(const fs::path& file) {
  static std::atomic<unsigned> counter{0};
  return file.filename().string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

/// Remove "<name>.tmp.<pid>.<n>" files of `file`'s directory left by processes that no longer run
/// (a crash or SIGKILL where O_TMPFILE was not available, or between link and rename).
void remove_stale_temporaries(const fs::path& file) {
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const std::string prefix = file.filename().string() + ".tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const std::size_t dot = rest.find('.');
    if (dot == std::string::npos || dot == 0 || rest.find_first_not_of("0123456789.") != std::string::npos) continue;
    const long pid = std::strtol(rest.substr(0, dot).c_str(), nullptr, 10);
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
}

void fsync_directory(const fs::path& file) {
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // the rename is done; durability of the entry is best effort here
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

struct AtomicFile::Impl {
  fs::path file, named_tmp;  // named_tmp empty while the temporary file is unnamed (O_TMPFILE)
  bool overwrite = false, committed = false;
  int fd = -1;
  std::unique_ptr<FdBuf> buf;
  std::unique_ptr<std::ostream> out;

  ~Impl() {
    if (fd >= 0) ::close(fd);
    if (!committed && !named_tmp.empty()) {
      std::error_code ec;
      fs::remove(named_tmp, ec);
    }
  }

  void open() {
    const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
#ifdef O_TMPFILE
    fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#endif
    if (fd < 0) {  // no O_TMPFILE on this file system: a named temporary file
      named_tmp = dir / temp_name(file);
      fd = ::open(named_tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd < 0) {
        named_tmp.clear();
        throw io_error("cannot write a temporary file next to " + file.string());
      }
    }
    buf = std::make_unique<FdBuf>(fd);
    out = std::make_unique<std::ostream>(buf.get());
  }

  /// Give the unnamed temporary file the name `to` (fails with EEXIST if it exists).
  bool link_unnamed(const fs::path& to) {
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    return ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, to.c_str(), AT_SYMLINK_FOLLOW) == 0;
  }

  TorpError taken() const {
    return TorpError(ErrorCode::io, file.string() + " already exists (pass --force / overwrite to replace it)");
  }

  void publish() {
    if (named_tmp.empty()) {  // unnamed: link it in (no overwrite), or link to a name, then rename
      if (!overwrite) {
        if (link_unnamed(file)) return;
        if (errno == EEXIST) throw taken();
        throw io_error("cannot create " + file.string());
      }
      named_tmp = (file.has_parent_path() ? file.parent_path() : fs::path(".")) / temp_name(file);
      if (!link_unnamed(named_tmp)) {
        const fs::path failed = named_tmp;
        named_tmp.clear();
        throw io_error("cannot create " + failed.string());
      }
    } else if (!overwrite) {
      // A hard link fails atomically if the file appeared meanwhile.
      if (::link(named_tmp.c_str(), file.c_str()) == 0) {
        std::error_code ec;
        fs::remove(named_tmp, ec);
        return;
      }
      if (errno == EEXIST) throw taken();
      if (fs::exists(file)) throw taken();  // file system without hard links: check, then rename
    }
    if (::rename(named_tmp.c_str(), file.c_str()) != 0)
      throw io_error("cannot rename " + named_tmp.string() + " to " + file.string());
  }
};

AtomicFile::AtomicFile(fs::path file, bool overwrite) : impl_(std::make_unique<Impl>()) {
  impl_->file = std::move(file);
  impl_->overwrite = overwrite;
  if (!overwrite && fs::exists(impl_->file)) throw impl_->taken();
  std::error_code ec;
  if (impl_->file.has_parent_path()) fs::create_directories(impl_->file.parent_path(), ec);
  remove_stale_temporaries(impl_->file);
  impl_->open();
}

AtomicFile::~AtomicFile() = default;

std::ostream& AtomicFile::stream() { return *impl_->out; }

void AtomicFile::commit() {
  Impl& m = *impl_;
  m.out->flush();
  if (!*m.out || m.buf->failed()) throw io_error("error writing " + m.file.string());
  if (::fsync(m.fd) != 0) throw io_error("cannot sync " + m.file.string());
  m.publish();
  m.committed = true;
  ::close(m.fd);
  m.fd = -1;
  fsync_directory(m.file);
}

}  // namespace torp
