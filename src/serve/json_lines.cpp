// SPDX-License-Identifier: Apache-2.0
#include "torp/json_lines.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include "torp/json_text.hpp"
#include "torp/log.hpp"

namespace torp {
namespace {


void append_escaped(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void append_error(std::string& out, const Error& e) {
  out += R"({"status": "error", "error": {"code": ")";
  out += to_string(e.code);
  out += R"(", "message": )";
  append_escaped(out, e.message);
  out += R"(, "path": )";
  append_escaped(out, e.path);
  out += "}}\n";
}

void append_number(std::string& out, double v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

/// "outside": [{"feature", "value", "trained": [min, max]}, ...]
void append_outside(std::string& out, const std::vector<OutsideInput>& outside) {
  out += R"(, "outside": [)";
  for (std::size_t i = 0; i < outside.size(); ++i) {
    out += i ? R"(, {"feature": )" : R"({"feature": )";
    append_escaped(out, outside[i].feature);
    out += R"(, "value": )";
    append_number(out, outside[i].value);
    out += R"(, "trained": [)";
    append_number(out, outside[i].trained[0]);
    out += ", ";
    append_number(out, outside[i].trained[1]);
    out += "]}";
  }
  out += ']';
}

void append_answer(std::string& out, const PredictResult& r) {
  if (!r) {
    append_error(out, r.error());
    return;
  }
  const Prediction& p = r.value();
  out += R"({"runtime_ns": )";
  append_number(out, p.runtime_ns);
  out += R"(, "status": "ok", "model": )";
  append_escaped(out, p.model_id);
  if (p.interval_ns) {
    out += R"(, "interval_ns": [)";
    append_number(out, (*p.interval_ns)[0]);
    out += ", ";
    append_number(out, (*p.interval_ns)[1]);
    out += ']';
  }
  out += R"(, "domain": ")";
  out += to_string(p.domain);
  out += '"';
  if (!p.outside.empty()) append_outside(out, p.outside);
  if (!p.ignored.empty()) {
    out += R"(, "ignored": [)";
    for (std::size_t i = 0; i < p.ignored.size(); ++i) {
      if (i) out += ", ";
      append_escaped(out, p.ignored[i]);
    }
    out += ']';
  }
  if (!p.interval_ns) {
    out += R"(, "interval_note": )";
    append_escaped(out, p.interval_note);
  }
  out += "}\n";
}

Error not_json(std::size_t line_no) {
  return Error{ErrorCode::invalid_query, "line " + std::to_string(line_no) + " is not valid JSON", ""};
}

Error too_long(std::size_t line_no, std::size_t max_bytes) {
  return Error{ErrorCode::invalid_query,
               "line " + std::to_string(line_no) + " is longer than the limit of " + std::to_string(max_bytes) + " bytes",
               ""};
}

struct Line {
  std::string_view text;
  std::size_t number;
  bool too_long = false;  ///< over the line-length limit: answered with an error, not parsed
};

/// The query lines of `text` ("\r\n" accepted, blank lines skipped), numbered on from `line_no`;
/// a last line without its '\n' is a line too. One pass over the text.
void split_lines(std::string_view text, std::size_t& line_no, std::size_t max_bytes, std::vector<Line>& out) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view l = text.substr(pos, end - pos);
    ++line_no;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.size() > max_bytes) out.push_back({{}, line_no, true});
    else if (l.find_first_not_of(" \t") != std::string_view::npos) out.push_back({l, line_no});
    pos = end + 1;
  }
}

/// Many lines, answered through the batch call (networks run over many rows at once).
void answer_batch(const Predictor& p, std::span<const Line> lines, std::size_t max_bytes, std::string& out) {
  std::vector<nlohmann::json> queries;
  std::vector<std::size_t> query_of_line(lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].too_long) {
      query_of_line[i] = SIZE_MAX - 1;
      continue;
    }
    nlohmann::json q = parse_json(lines[i].text);
    query_of_line[i] = q.is_discarded() ? SIZE_MAX : queries.size();
    if (!q.is_discarded()) queries.push_back(std::move(q));
  }
  const std::vector<PredictResult> results = p.predict_batch(queries);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (query_of_line[i] == SIZE_MAX) append_error(out, not_json(lines[i].number));
    else if (query_of_line[i] == SIZE_MAX - 1) append_error(out, too_long(lines[i].number, max_bytes));
    else append_answer(out, results[query_of_line[i]]);
  }
}

/// A pipe or terminal: answer what has arrived as soon as it arrives (a caller may wait for each
/// answer before sending the next query), in the order of the lines. Each byte is scanned for
/// '\n' once; a line over the limit is answered with an error as soon as it passes the limit and
/// its remaining bytes are dropped, so memory stays bounded by the limit.
void answer_stream(const Predictor& predictor, int in, std::FILE* out_file, std::size_t max_bytes) {
  std::vector<Line> lines;
  std::size_t line_no = 0;
  std::string pending, out;  // pending: the start of a line whose '\n' has not arrived
  bool skipping = false;     // dropping the rest of an over-long line
  std::vector<char> buf(1 << 16);
  auto flush = [&] {
    std::fwrite(out.data(), 1, out.size(), out_file);
    std::fflush(out_file);
    out.clear();
  };
  for (;;) {
    ssize_t got = ::read(in, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    std::string_view chunk(buf.data(), static_cast<std::size_t>(got));
    if (skipping) {
      const std::size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) continue;
      skipping = false;
      chunk.remove_prefix(nl + 1);
    }
    const std::size_t last_nl = chunk.rfind('\n');  // only the new bytes are searched
    if (last_nl != std::string_view::npos) {
      pending.append(chunk.substr(0, last_nl + 1));
      lines.clear();
      split_lines(pending, line_no, max_bytes, lines);
      answer_batch(predictor, lines, max_bytes, out);
      pending.assign(chunk.substr(last_nl + 1));
    } else {
      pending.append(chunk);
    }
    if (pending.size() > max_bytes + 1) {  // + 1: a '\r' before the '\n' does not count
      append_error(out, too_long(++line_no, max_bytes));
      pending.clear();
      skipping = true;
    }
    flush();
  }
  if (!skipping) {
    lines.clear();
    split_lines(pending, line_no, max_bytes, lines);
    answer_batch(predictor, lines, max_bytes, out);
  }
  flush();
}

}  // namespace

void append_json_answer(std::string& out, const PredictResult& result) { append_answer(out, result); }

void answer_json_lines(const Predictor& predictor, int in, std::FILE* out_file, const JsonLinesOptions& options) {
  struct stat st {};
  if (::fstat(in, &st) != 0) throw TorpError(ErrorCode::io, std::string("cannot read the queries: ") + std::strerror(errno));
  const std::size_t max_bytes = options.max_line_bytes;
  if (!S_ISREG(st.st_mode)) {
    answer_stream(predictor, in, out_file, max_bytes);
    return;
  }

  // A regular file: read it whole and answer on all cores, output in input order.
  std::vector<Line> lines;
  std::size_t line_no = 0;
  std::vector<char> buf(1 << 16);
  std::string input;
  for (;;) {
    ssize_t got = ::read(in, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw TorpError(ErrorCode::io, std::string("cannot read the queries: ") + std::strerror(errno));
    if (got == 0) break;
    input.append(buf.data(), static_cast<std::size_t>(got));
  }
  split_lines(input, line_no, max_bytes, lines);

  unsigned threads = options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (lines.size() < 2048) threads = 1;
  std::vector<std::string> outs(threads);
  auto work = [&](unsigned t) {
    std::size_t begin = lines.size() * t / threads, end = lines.size() * (t + 1) / threads;
    outs[t].reserve((end - begin) * 80);
    constexpr std::size_t kChunk = 256;
    for (std::size_t i = begin; i < end; i += kChunk)
      answer_batch(predictor, std::span<const Line>(lines).subspan(i, std::min(kChunk, end - i)), max_bytes, outs[t]);
  };
  std::vector<std::thread> pool;
  unsigned started = 1;
  try {
    for (; started < threads; ++started) pool.emplace_back(work, started);
  } catch (const std::system_error& e) {  // no more threads: this one answers the rest
    log(LogLevel::warning, std::string("torp predict: could not start a worker thread (") + e.what() + "); answering on " +
                               std::to_string(started) + " threads");
  }
  for (unsigned t = started; t < threads; ++t) work(t);
  work(0);
  for (auto& th : pool) th.join();
  for (const auto& o : outs) std::fwrite(o.data(), 1, o.size(), out_file);
  std::fflush(out_file);
}

}  // namespace torp
