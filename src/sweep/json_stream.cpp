// SPDX-License-Identifier: Apache-2.0
#include "sweep/json_stream.hpp"

#include "torp/json_text.hpp"

#define XXH_INLINE_ALL  // header-only use of libxxhash-dev: nothing to link
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <istream>
#include <mutex>
#include <streambuf>
#include <thread>
#include <utility>

#include "train/sha256.hpp"
#include "torp/error.hpp"

namespace torp {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::uint64_t kMul = 0xc6a4a7935bd1e995ULL;

std::uint64_t mix(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

/// Bytes that need a look: outside strings a quote, a newline or the first letter of a token
/// Python writes (NaN, Infinity, -Infinity); inside strings a quote, a backslash or a newline.
struct ByteClass {
  std::array<bool, 256> outside{}, inside{};
  ByteClass() {
    for (unsigned char c : {'"', '\n', 'N', 'I', '-'}) outside[c] = true;
    for (unsigned char c : {'"', '\\', '\n'}) inside[c] = true;
  }
};
const ByteClass kBytes;

/// The file's bytes as nlohmann reads them: bare NaN, Infinity and -Infinity outside strings
/// become null ("Infinity" and "-Infinity" padded with spaces to their width; "NaN" is one byte
/// longer as "null", which is remembered to give error columns in the file's own terms). A
/// thread reads, hashes (SHA-256) and filters the next chunks while the parser works.
class FilterBuf : public std::streambuf {
 public:
  explicit FilterBuf(const fs::path& file) : f_(std::fopen(file.c_str(), "rb")) {
    if (!f_) throw TorpError(ErrorCode::io, "cannot open the file", "", file.string());
    raw_.resize(kChunk + kCarry);
    for (auto& c : chunks_) {
      c.data.resize((kChunk + kCarry) * 4 / 3 + 16);
      free_.push_back(&c);
    }
    reader_ = std::thread([this] { produce(); });
  }
  ~FilterBuf() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    reader_.join();
    std::fclose(f_);
  }
  FilterBuf(const FilterBuf&) = delete;
  FilterBuf& operator=(const FilterBuf&) = delete;

  [[nodiscard]] std::uint64_t consumed() const { return consumed_.load(std::memory_order_relaxed); }
  /// After the parser reached the end: whether reading failed, and the SHA-256 of the bytes.
  [[nodiscard]] bool read_error() {
    finish();
    return read_error_;
  }
  [[nodiscard]] std::string sha256() {
    finish();
    return sha_.hex();
  }
  /// Column in the file of filtered column `column` on line `line` (both 1-based).
  [[nodiscard]] std::size_t file_column(std::size_t line, std::size_t column) {
    std::lock_guard lock(mutex_);
    std::size_t shift = 0;
    for (const auto& [l, c] : expansions_)
      if (l == line && column > c) ++shift;
    return column - shift;
  }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    std::unique_lock lock(mutex_);
    if (current_) free_.push_back(std::exchange(current_, nullptr));
    changed_.notify_all();
    changed_.wait(lock, [&] { return !ready_.empty() || done_; });
    if (ready_.empty()) return traits_type::eof();
    current_ = ready_.front();
    ready_.pop_front();
    changed_.notify_all();
    setg(current_->data.data(), current_->data.data(), current_->data.data() + current_->size);
    return traits_type::to_int_type(*gptr());
  }

 private:
  static constexpr std::size_t kChunk = 1 << 20;
  static constexpr std::size_t kCarry = 16;  // longest token that may straddle chunks: "-Infinity"

  struct Chunk {
    std::vector<char> data;
    std::size_t size = 0;
  };

  void finish() {
    if (reader_.joinable()) {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return done_; });
    }
  }
  /// The reader thread: fill free chunks until the end of the file (or until stopped).
  void produce() {
    for (;;) {
      Chunk* c = nullptr;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return !free_.empty() || stop_; });
        if (stop_) break;
        c = free_.front();
        free_.pop_front();
      }
      const bool more = fill(*c);
      {
        std::lock_guard lock(mutex_);
        if (c->size > 0) ready_.push_back(c);
        else free_.push_back(c);
        if (!more) done_ = true;
      }
      changed_.notify_all();
      if (!more) return;
    }
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  /// Read the next piece of the file and filter it into `c`; false at the end of the file.
  bool fill(Chunk& c) {
    std::size_t len = carry_;
    if (!eof_) {
      std::size_t n = std::fread(raw_.data() + carry_, 1, kChunk, f_);
      sha_.update(reinterpret_cast<const unsigned char*>(raw_.data() + carry_), n);
      if (n < kChunk) {
        eof_ = true;
        read_error_ = std::ferror(f_) != 0;
      }
      len += n;
      consumed_.fetch_add(n, std::memory_order_relaxed);
    }
    // Keep a tail that might be the start of a token for the next chunk, unless at the end.
    const std::size_t limit = eof_ ? len : (len > kCarry ? len - kCarry : 0);
    const char* in = raw_.data();
    char* const out = c.data.data();
    char* o = out;
    std::size_t i = 0;
    while (i < limit) {
      // Copy the run of bytes that need no look.
      const auto& table = in_string_ ? kBytes.inside : kBytes.outside;
      std::size_t j = i;
      while (j < limit && !table[static_cast<unsigned char>(in[j])]) ++j;
      std::memcpy(o, in + i, j - i);
      o += j - i;
      i = j;
      if (i == limit) break;
      const char ch = in[i];
      if (in_string_) {
        *o++ = ch;
        ++i;
        if (ch == '\\') {
          if (i < len) *o++ = in[i++];  // the escaped byte (a quote or backslash stays in the string)
        } else if (ch == '"') {
          in_string_ = false;
        } else {
          new_line(out, o);
        }
        continue;
      }
      const char* token = ch == 'N' ? "NaN" : ch == 'I' ? "Infinity" : ch == '-' ? "-Infinity" : nullptr;
      const std::size_t tl = token ? std::strlen(token) : 0;
      if (token && i + tl <= len && std::memcmp(in + i, token, tl) == 0) {
        if (ch == 'N') {
          std::memcpy(o, "null", 4);
          o += 4;
          std::lock_guard lock(mutex_);
          expansions_.emplace_back(line_, static_cast<std::size_t>(emitted_ + static_cast<std::uint64_t>(o - out) - line_start_));
        } else {
          std::memcpy(o, "null     ", tl);  // same width
          o += tl;
        }
        i += tl;
        continue;
      }
      *o++ = ch;
      ++i;
      if (ch == '"') in_string_ = true;
      else if (ch == '\n') new_line(out, o);
    }
    carry_ = len - i;
    std::memmove(raw_.data(), raw_.data() + i, carry_);
    c.size = static_cast<std::size_t>(o - out);
    emitted_ += c.size;
    return !(eof_ && carry_ == 0);
  }
  void new_line(const char* out, const char* o) {
    ++line_;
    line_start_ = emitted_ + static_cast<std::uint64_t>(o - out);
  }

  std::FILE* f_;
  // Reader thread only:
  std::vector<char> raw_;
  std::size_t carry_ = 0;
  bool eof_ = false, in_string_ = false, read_error_ = false;
  std::size_t line_ = 1;
  std::uint64_t emitted_ = 0, line_start_ = 0;  // filtered bytes before this chunk; offset after the last newline
  Sha256 sha_;
  // Shared:
  std::array<Chunk, 3> chunks_;
  std::deque<Chunk*> free_, ready_;
  Chunk* current_ = nullptr;  // the chunk the parser reads
  bool done_ = false, stop_ = false;
  std::vector<std::pair<std::size_t, std::size_t>> expansions_;  // (line, filtered column after "null")
  std::atomic<std::uint64_t> consumed_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::thread reader_;
};

/// SAX handler: builds each item's DOM (only captured keys), hashes its events, tracks the
/// JSON pointer of the current value for errors.
class ItemSax {
 public:
  ItemSax(const JsonItemReader& r, std::string file, FilterBuf& buf)
      : r_(r), file_(std::move(file)), buf_(buf) {
    for (const std::string& k : r.capture) capture_.emplace_back(hash_bytes(k, 7), k);
    std::sort(capture_.begin(), capture_.end());
  }

  bool null() { return scalar(json(nullptr), 1, 0); }
  bool boolean(bool v) { return scalar(json(v), 2, v ? 1 : 0); }
  bool number_integer(json::number_integer_t v) { return scalar(json(v), 3, static_cast<std::uint64_t>(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return scalar(json(v), 3, v); }
  bool number_float(json::number_float_t v, const std::string& text) { return scalar(json(v), 4, hash_bytes(text)); }
  bool string(std::string& v) {
    const std::uint64_t h = hash_bytes(v, 5);
    return scalar(json(std::move(v)), 5, h);
  }
  bool binary(json::binary_t& /*unused*/) { return scalar(json(nullptr), 6, 0); }
  bool start_object(std::size_t /*unused*/) { return open(false); }
  bool start_array(std::size_t /*unused*/) { return open(true); }
  bool key(std::string& k) {
    if (inside_item()) {
      const std::uint64_t h = hash_bytes(k, 7);
      feed(7, h);
      if (depth() == r_.item_depth + 1) {  // a key of the item itself: build its value? hash it apart?
        auto c = std::lower_bound(capture_.begin(), capture_.end(), std::pair<std::uint64_t, std::string>(h, {}));
        for (wanted_ = capture_.empty(); !wanted_ && c != capture_.end() && c->first == h; ++c) wanted_ = c->second == k;
        is_hash_key_ = !r_.hash_key.empty() && k == r_.hash_key;
      }
    }
    path_.keys.back() = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/, const nlohmann::detail::exception& e) {
    // nlohmann: "[json.exception.parse_error.101] parse error at line 3, column 14: <detail>"
    std::string what = e.what();
    std::size_t line = 0, column = 0;
    if (auto p = what.find("at line "); p != std::string::npos)
      std::sscanf(what.c_str() + p, "at line %zu, column %zu", &line, &column);
    std::size_t colon = what.find(": ", what.find("column"));
    std::string detail = colon == std::string::npos ? what : what.substr(colon + 2);
    // The JSON path is that of the value being read when the text went wrong.
    throw TorpError(ErrorCode::dataset, "invalid JSON: " + detail, path_.keys.empty() ? "" : pointer_or_root(), file_,
                    line, buf_.file_column(line, column));
  }

 /// Whether progress was reported (the file took more than a second).
  [[nodiscard]] bool reported_progress() const { return reported_; }

 private:
  [[nodiscard]] int depth() const { return static_cast<int>(path_.keys.size()); }
  [[nodiscard]] bool inside_item() const { return in_item_; }
  [[nodiscard]] std::string pointer_or_root() const {
    std::string p = path_.pointer();
    return p.empty() ? "/" : p;
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw TorpError(ErrorCode::dataset, message, pointer_or_root(), file_);
  }
  void feed(std::uint64_t tag, std::uint64_t v) {
    hash_ = mix(hash_ ^ (v * kMul + tag));
    if (sub_from_ >= 0) sub_ = mix(sub_ ^ (v * kMul + tag));
  }
  /// At the start of a value: if it is the item's hash_key value, hash it on its own too.
  void maybe_start_sub() {
    if (depth() == r_.item_depth + 1 && is_hash_key_) {
      sub_from_ = depth();
      sub_ = 0x9e3779b97f4a7c15ULL;
    }
  }
  void maybe_end_sub() {
    if (sub_from_ != depth()) return;
    key_hash_ = sub_ | 1;
    sub_from_ = -1;
  }

  /// Bookkeeping common to every value: array index, type checks above items, item start.
  void begin_value(bool is_object) {
    if (depth() >= static_cast<int>(kMaxJsonDepth))  // copying or printing it would recurse that deep
      fail("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    if (depth() == 0) {
      if (!started_) {
        started_ = true;
        if (is_object == r_.root_is_array || !is_container_) fail("expected " + r_.expect);
      }
      return;
    }
    if (is_array_.back()) ++path_.indices.back();
    if (depth() < r_.item_depth && !is_object) fail("expected an object here (" + r_.expect + ")");
    if (depth() == r_.item_depth) {
      if (!is_object) fail("expected an object here (" + r_.expect + ")");
      in_item_ = true;
      hash_ = 0x9e3779b97f4a7c15ULL;
      key_hash_ = 0;
      item_ = json::object();
      build_.clear();
    }
  }
  /// Where a value at the current position goes in the item being built (nullptr: not built).
  json* slot() {
    if (!in_item_ || depth() == r_.item_depth || skip_from_ >= 0) return nullptr;
    json& parent = *build_.back();
    if (depth() == r_.item_depth + 1 && !wanted_) return nullptr;
    if (parent.is_array()) {
      parent.push_back(nullptr);
      return &parent.back();
    }
    return &parent[path_.keys.back()];
  }
  bool scalar(json v, std::uint64_t tag, std::uint64_t h) {
    is_container_ = false;
    begin_value(false);
    if (in_item_) {
      maybe_start_sub();
      feed(tag, h);
      maybe_end_sub();
      if (json* s = slot()) *s = std::move(v);
    }
    return true;
  }
  bool open(bool array) {
    is_container_ = true;
    begin_value(!array);
    if (in_item_) {
      maybe_start_sub();
      feed(array ? 8 : 9, 0);
      if (depth() == r_.item_depth) {
        build_.push_back(&item_);
      } else if (json* s = slot()) {
        *s = array ? json::array() : json::object();
        build_.push_back(s);
      } else if (skip_from_ < 0) {
        skip_from_ = depth();
      }
    }
    path_.keys.emplace_back();
    path_.indices.push_back(array ? -1 : -2);
    is_array_.push_back(array);
    return true;
  }
  bool close() {
    path_.keys.pop_back();
    path_.indices.pop_back();
    is_array_.pop_back();
    if (!in_item_) return true;
    feed(10, 0);
    maybe_end_sub();
    if (skip_from_ == depth()) {
      skip_from_ = -1;
    } else if (skip_from_ < 0) {
      build_.pop_back();
    }
    if (depth() == r_.item_depth) {
      in_item_ = false;
      r_.on_item({item_, hash_, key_hash_, path_});
      if (r_.on_progress && (++items_ & 0xfff) == 0) {
        auto now = std::chrono::steady_clock::now();
        if (now - last_progress_ >= std::chrono::seconds(1)) {
          last_progress_ = now;
          reported_ = true;
          r_.on_progress(buf_.consumed());
        }
      }
    }
    return true;
  }

  const JsonItemReader& r_;
  std::string file_;
  FilterBuf& buf_;
  JsonItemPath path_;            // one entry per open container: current key / index
  std::vector<bool> is_array_;
  bool started_ = false, is_container_ = false, in_item_ = false;
  int skip_from_ = -1;           // depth of the container whose subtree is not built
  int sub_from_ = -1;            // depth of the hash_key value being hashed on its own
  std::uint64_t sub_ = 0, key_hash_ = 0;
  std::vector<std::pair<std::uint64_t, std::string>> capture_;  // (hash, key), sorted
  bool wanted_ = true, is_hash_key_ = false;                     // for the item key just read
  json item_;
  std::vector<json*> build_;
  std::uint64_t hash_ = 0;
  std::size_t items_ = 0;
  bool reported_ = false;
  std::chrono::steady_clock::time_point last_progress_ = std::chrono::steady_clock::now();
};

}  // namespace

std::string JsonItemPath::pointer() const {
  std::string p;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    p += '/';
    if (indices[i] >= 0) {
      p += std::to_string(indices[i]);
      continue;
    }
    for (char c : keys[i]) {  // RFC 6901 escaping
      if (c == '~') p += "~0";
      else if (c == '/') p += "~1";
      else p += c;
    }
  }
  return p;
}

std::uint64_t hash_bytes(std::string_view bytes, std::uint64_t seed) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

std::string JsonItemReader::read(const fs::path& file) const {
  FilterBuf buf(file);
  std::istream in(&buf);
  ItemSax sax(*this, file.string(), buf);
  json::sax_parse(in, &sax);
  if (buf.read_error()) throw TorpError(ErrorCode::io, "error reading the file", "", file.string());
  if (on_progress && sax.reported_progress()) on_progress(buf.consumed());
  return buf.sha256();
}

}  // namespace torp
