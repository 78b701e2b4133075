// SPDX-License-Identifier: Apache-2.0
// Dataset files (JSON Lines): load/validate, atomic save, SHA-256, repeat aggregation and the
// conversion of the reference predictor's CSV files.
#include "torp/train/dataset.hpp"

#include "torp/json_text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>

#include "train/sha256.hpp"
#include "torp/encoder.hpp"

namespace torp {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ---- files -----------------------------------------------------------------------------------

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TorpError(ErrorCode::io, "cannot open the file", "", file.string());
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw TorpError(ErrorCode::io, "error reading the file", "", file.string());
  return s.str();
}

// ---- dataset lines ---------------------------------------------------------------------------

[[noreturn]] void fail_at(const std::string& file, std::size_t line, std::size_t col, const std::string& msg,
                          std::string path = {}) {
  throw TorpError(ErrorCode::dataset, msg, std::move(path), file, line, col);
}

/// 1-based column of "key" in a raw JSON line (1 if absent), to point errors at the field.
std::size_t column_of(std::string_view line, std::string_view key) {
  std::string quoted(1, '"');
  quoted += key;
  quoted += '"';
  std::size_t p = line.find(quoted);
  return p == std::string_view::npos ? 1 : p + 1;
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

json parse_line(const std::string& file, std::size_t line_no, std::string_view line) {
  if (json_nesting_depth(line) > kMaxJsonDepth)  // printing or copying it would recurse that deep
    fail_at(file, line_no, 1, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  try {
    return json::parse(line);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // nlohmann: "[json.exception.parse_error.101] parse error at line 1, column 5: <detail>"
    std::size_t p = what.find(": ", what.find("column"));
    std::string detail = p == std::string::npos ? what : what.substr(p + 2);
    fail_at(file, line_no, std::max<std::size_t>(e.byte, 1), "invalid JSON: " + detail);
  } catch (const json::exception& e) {  // e.g. out_of_range.406: a number beyond double ("691e308")
    std::string what = e.what();
    // "[json.exception.out_of_range.406] number overflow parsing '691e308'"
    std::size_t p = what.find("] ");
    fail_at(file, line_no, 1, "invalid JSON: " + (p == std::string::npos ? what : what.substr(p + 2)));
  }
}

/// The columns of a dataset file, from its header (version 2) or implied (version 1).
struct Columns {
  int version = 0;
  std::vector<std::string> names;  // row keys, in header order
};

constexpr const char* kKnownColumns[] = {"suite", "input_hash", "args", "kernel_duration_ns"};

Columns check_header(const json& h, const std::string& file, std::size_t line_no, std::string_view line) {
  if (!h.is_object()) fail_at(file, line_no, 1, "the first line must be the dataset header object");
  auto f = h.find("format");
  if (f == h.end() || !f->is_string() || f->get<std::string>() != kDatasetFormat)
    fail_at(file, line_no, column_of(line, "format"),
            std::string("not a torp dataset: header \"format\" must be \"") + kDatasetFormat + "\"", "/format");
  auto v = h.find("format_version");
  if (v == h.end() || !v->is_number_integer())
    fail_at(file, line_no, column_of(line, "format_version"), "header needs an integer \"format_version\"",
            "/format_version");
  Columns c;
  const auto version = v->get<std::int64_t>();  // not get<int>: 2^32 + 1 must not read as 1
  c.version = version == 1 || version == 2 ? static_cast<int>(version) : 0;
  if (c.version == 0)
    fail_at(file, line_no, column_of(line, "format_version"),
            "unsupported format_version " + v->dump() + " (this build reads 1 and " +
                std::to_string(kDatasetFormatVersion) + ")",
            "/format_version");
  auto op = h.find("op");
  if (op == h.end() || !op->is_string() || op->get<std::string>().empty())
    fail_at(file, line_no, column_of(line, "op"), "header needs a non-empty string \"op\" (e.g. \"ttnn.exp\")", "/op");
  if (auto d = h.find("device"); d != h.end() && !d->is_string() && !d->is_null())
    fail_at(file, line_no, column_of(line, "device"), "header \"device\" must be a device name (string) or null",
            "/device");
  if (c.version == 1) {
    c.names = {"args", "runtime_ns", "source"};  // version 1: "source" optional
    return c;
  }
  auto cols = h.find("columns");
  const std::size_t col = column_of(line, "columns");
  if (cols == h.end() || !cols->is_array())
    fail_at(file, line_no, col, "header needs \"columns\", the list of row keys", "/columns");
  for (std::size_t i = 0; i < cols->size(); ++i) {
    const json& n = (*cols)[i];
    const std::string where = "/columns/" + std::to_string(i);
    if (!n.is_string() || std::find(std::begin(kKnownColumns), std::end(kKnownColumns), n.get<std::string>()) ==
                              std::end(kKnownColumns))
      fail_at(file, line_no, col, "unknown column " + n.dump() + " (known: suite, input_hash, args, kernel_duration_ns)",
              where);
    if (std::find(c.names.begin(), c.names.end(), n.get<std::string>()) != c.names.end())
      fail_at(file, line_no, col, "column " + n.dump() + " listed twice", where);
    c.names.push_back(n.get<std::string>());
  }
  for (const char* need : {"args", "kernel_duration_ns"})
    if (std::find(c.names.begin(), c.names.end(), need) == c.names.end())
      fail_at(file, line_no, col, std::string("\"columns\" must include \"") + need + "\"", "/columns");
  return c;
}

Measurement parse_row(json&& j, const Columns& cols, const std::string& file, std::size_t line_no,
                      std::string_view line) {
  const char* label = cols.version == 1 ? "runtime_ns" : "kernel_duration_ns";
  if (!j.is_object())
    fail_at(file, line_no, 1, std::string("a row must be a JSON object {\"args\": {...}, \"") + label + "\": N}");
  Measurement m;
  m.line = line_no;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find(cols.names.begin(), cols.names.end(), it.key()) == cols.names.end())
      fail_at(file, line_no, column_of(line, it.key()),
              "unknown key \"" + it.key() + "\" in a row" + (cols.version == 1 ? "" : " (not in the header's columns)"),
              "/" + it.key());
  if (cols.version == 2)
    for (const std::string& c : cols.names)
      if (!j.contains(c)) fail_at(file, line_no, 1, "the row has no \"" + c + "\" (a column of the header)", "/" + c);
  auto a = j.find("args");
  if (a == j.end() || !a->is_object())
    fail_at(file, line_no, column_of(line, "args"), "a row needs an \"args\" object", "/args");
  auto r = j.find(label);
  if (r == j.end() || !r->is_number())
    fail_at(file, line_no, column_of(line, label), std::string("a row needs a numeric \"") + label + "\"",
            std::string("/") + label);
  m.runtime_ns = r->get<double>();
  if (!std::isfinite(m.runtime_ns) || m.runtime_ns <= 0)
    fail_at(file, line_no, column_of(line, label),
            std::string(label) + " must be positive and finite, got " + r->dump(), std::string("/") + label);
  // Version 1 kept sweep provenance in an optional "source" object; version 2 in columns.
  const json* ids = &j;
  std::string prefix;
  if (auto s = j.find("source"); s != j.end()) {
    if (!s->is_object()) fail_at(file, line_no, column_of(line, "source"), "row \"source\" must be an object", "/source");
    ids = &*s;
    prefix = "/source";
  }
  for (auto [key, slot] : {std::pair{"suite", &m.suite}, std::pair{"input_hash", &m.input_hash}}) {
    auto it = ids->find(key);
    if (it == ids->end() || (cols.version == 1 && !it->is_string())) continue;
    if (!it->is_string())
      fail_at(file, line_no, column_of(line, key), std::string("\"") + key + "\" must be a string", prefix + "/" + key);
    *slot = it->get<std::string>();
  }
  m.args = std::move(*a);
  return m;
}

std::string header_line(const std::string& op, const json& header, bool with_sweep_ids) {
  nlohmann::ordered_json h;
  h["format"] = kDatasetFormat;
  h["format_version"] = kDatasetFormatVersion;
  h["op"] = op;
  h["columns"] = with_sweep_ids ? json{"suite", "input_hash", "args", "kernel_duration_ns"}
                                : json{"args", "kernel_duration_ns"};
  const char* known[] = {"device", "tt_metal_commit", "source", "notes"};
  for (const char* k : known)
    if (header.contains(k)) h[k] = header[k];
  for (auto it = header.begin(); it != header.end(); ++it)
    if (!h.contains(it.key())) h[it.key()] = it.value();
  return h.dump();
}

/// JSON text of a runtime: integral values as integers (9517, not 9517.0), others shortest.
void append_runtime(std::string& out, double ns) {
  char buf[32];
  auto r = ns == std::floor(ns) && ns < 9e15 ? std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(ns))
                                             : std::to_chars(buf, buf + sizeof buf, ns);
  out.append(buf, r.ptr);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---- reference CSV ---------------------------------------------------------------------------

struct CsvField {
  std::string text;
  std::size_t col = 1;  // 1-based character offset of the field
};
struct CsvRow {
  std::size_t line = 0;
  std::size_t end_col = 1;
  std::vector<CsvField> fields;
};
struct Csv {
  std::string file;
  CsvRow header;
  std::vector<CsvRow> rows;
};

CsvRow split_csv_line(std::string_view line, std::size_t line_no) {
  CsvRow r;
  r.line = line_no;
  r.end_col = line.size() + 1;
  std::size_t start = 0;
  for (;;) {
    std::size_t comma = line.find(',', start);
    std::size_t end = comma == std::string_view::npos ? line.size() : comma;
    std::size_t b = start, e = end;
    while (b < e && (line[b] == ' ' || line[b] == '\t')) ++b;
    while (e > b && (line[e - 1] == ' ' || line[e - 1] == '\t')) --e;
    r.fields.push_back({std::string(line.substr(b, e - b)), b + 1});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return r;
}

/// The non-blank lines of a text with their 1-based numbers ("\r\n" endings accepted).
class Lines {
 public:
  Lines(std::string_view text, std::size_t start) : text_(text), pos_(start) {}
  bool next(std::string_view& line, std::size_t& number) {
    while (pos_ < text_.size()) {
      std::size_t nl = text_.find('\n', pos_);
      line = text_.substr(pos_, (nl == std::string_view::npos ? text_.size() : nl) - pos_);
      pos_ = nl == std::string_view::npos ? text_.size() : nl + 1;
      number = ++line_no_;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!blank(line)) return true;
    }
    return false;
  }

 private:
  std::string_view text_;
  std::size_t pos_;
  std::size_t line_no_ = 0;
};

Csv read_csv(const fs::path& path, bool header_only) {
  Csv c;
  c.file = path.string();
  std::string text = read_file(path);
  std::size_t pos = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0, line_no = 0;  // skip a UTF-8 BOM
  bool have_header = false;
  std::string_view line;
  for (Lines lines(text, pos); lines.next(line, line_no);) {
    if (!have_header) {
      c.header = split_csv_line(line, line_no);
      have_header = true;
      if (header_only) return c;
      continue;
    }
    c.rows.push_back(split_csv_line(line, line_no));
  }
  if (!have_header) fail_at(c.file, 1, 1, "empty file (expected a CSV header line)");
  if (c.rows.empty()) fail_at(c.file, line_no + 1, 1, "no data rows after the header");
  for (const CsvRow& r : c.rows)
    if (r.fields.size() != c.header.fields.size())
      fail_at(c.file, r.line, r.fields.size() < c.header.fields.size() ? r.end_col : r.fields[c.header.fields.size()].col,
              "expected " + std::to_string(c.header.fields.size()) + " fields as in the header, found " +
                  std::to_string(r.fields.size()));
  return c;
}

bool has_column(const CsvRow& header, std::string_view name) {
  return std::any_of(header.fields.begin(), header.fields.end(), [&](const CsvField& f) { return f.text == name; });
}

/// Column index by name; "missing column" error naming the file and header line otherwise.
std::size_t column(const Csv& c, std::string_view name) {
  std::size_t found = c.header.fields.size();
  for (std::size_t i = 0; i < c.header.fields.size(); ++i) {
    if (c.header.fields[i].text != name) continue;
    if (found != c.header.fields.size())
      fail_at(c.file, c.header.line, c.header.fields[i].col, "column '" + std::string(name) + "' appears twice");
    found = i;
  }
  if (found == c.header.fields.size()) {
    std::string cols;
    for (const auto& f : c.header.fields) cols += (cols.empty() ? "" : ", ") + f.text;
    fail_at(c.file, c.header.line, 1, "missing column '" + std::string(name) + "' (header has: " + cols + ")");
  }
  return found;
}

class CsvReader {
 public:
  explicit CsvReader(const Csv& c) : c_(c) {}

  [[noreturn]] void fail(const CsvRow& r, std::size_t idx, const std::string& msg) const {
    fail_at(c_.file, r.line, r.fields[idx].col, "column '" + c_.header.fields[idx].text + "': " + msg);
  }
  double number(const CsvRow& r, std::size_t idx) const {
    const std::string& s = r.fields[idx].text;
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v))
      fail(r, idx, "expected a number, got '" + s + "'");
    return v;
  }
  std::int64_t integer(const CsvRow& r, std::size_t idx, std::int64_t min) const {
    double v = number(r, idx);
    if (v != std::floor(v) || std::fabs(v) > 9e15) fail(r, idx, "expected an integer, got '" + r.fields[idx].text + "'");
    if (v < static_cast<double>(min))
      fail(r, idx, "expected an integer >= " + std::to_string(min) + ", got '" + r.fields[idx].text + "'");
    return static_cast<std::int64_t>(v);
  }
  double runtime(const CsvRow& r, std::size_t idx) const {
    double v = number(r, idx);
    if (v <= 0) fail(r, idx, "a runtime must be a positive number of ns, got '" + r.fields[idx].text + "'");
    return v;
  }
  /// Index of the single set one-hot column among `cols` (named `what` in errors).
  std::size_t one_hot(const CsvRow& r, const std::vector<std::size_t>& cols, const std::string& what) const {
    std::vector<std::size_t> set;
    for (std::size_t i = 0; i < cols.size(); ++i) {
      std::int64_t v = integer(r, cols[i], 0);
      if (v > 1) fail(r, cols[i], "a one-hot value must be 0 or 1, got '" + r.fields[cols[i]].text + "'");
      if (v == 1) set.push_back(i);
    }
    if (set.size() == 1) return set[0];
    std::string names;
    for (std::size_t i = 0; i < cols.size(); ++i)
      if (set.empty() || std::find(set.begin(), set.end(), i) != set.end())
        names += (names.empty() ? "" : ", ") + c_.header.fields[cols[i]].text;
    fail_at(c_.file, r.line, r.fields[cols[set.empty() ? 0 : set[1]]].col,
            "columns " + names + ": unknown " + what + ": " +
                (set.empty() ? "none of the one-hot columns is 1" : "several one-hot columns are 1"));
  }

 private:
  const Csv& c_;
};

std::string device_name(const json& device) {
  auto n = device.find("name");
  if (!device.is_object() || n == device.end() || !n->is_string() || n->get<std::string>().empty())
    throw TorpError(ErrorCode::dataset, "the device description has no \"name\"", "/name");
  return n->get<std::string>();
}

int device_int(const json& device, const char* key) {
  auto it = device.find(key);
  if (it == device.end() || !it->is_number_integer() || it->get<int>() <= 0)
    throw TorpError(ErrorCode::dataset, std::string("the device description needs a positive integer \"") + key + "\"",
                    std::string("/") + key);
  return it->get<int>();
}

std::vector<json> import_exp(const Csv& c, std::vector<double>& runtimes) {
  static const std::pair<const char*, const char*> kDtypes[] = {
      {"bfloat8", "BFLOAT8_B"}, {"bfloat16", "BFLOAT16"}, {"float32", "FLOAT32"}, {"uint16", "UINT16"}, {"uint32", "UINT32"}};
  static const std::pair<const char*, const char*> kBuffers[] = {{"input_DRAM", "DRAM"}, {"input_L1", "L1"}};
  std::vector<std::size_t> shape_cols, dtype_cols, buffer_cols;
  for (int i = 1; i <= 4; ++i) shape_cols.push_back(column(c, "input_shape_" + std::to_string(i)));
  for (const auto& d : kDtypes) dtype_cols.push_back(column(c, d.first));
  for (const auto& b : kBuffers) buffer_cols.push_back(column(c, b.first));
  std::size_t runtime_col = column(c, "kernel_duration");
  CsvReader rd(c);
  std::vector<json> out;
  for (const CsvRow& r : c.rows) {
    std::vector<std::int64_t> shape;
    for (std::size_t col : shape_cols) shape.push_back(rd.integer(r, col, 0));
    while (!shape.empty() && shape.back() == 0) shape.pop_back();  // the reference pads rank to 4 with zeros
    if (shape.empty()) rd.fail(r, shape_cols[0], "the shape has no non-zero dimension");
    for (std::size_t i = 0; i < shape.size(); ++i)
      if (shape[i] == 0) rd.fail(r, shape_cols[i], "a zero dimension before a non-zero one (only trailing zeros pad the rank)");
    const char* dtype = kDtypes[rd.one_hot(r, dtype_cols, "dtype")].second;
    const char* buffer = kBuffers[rd.one_hot(r, buffer_cols, "input buffer")].second;
    runtimes.push_back(rd.runtime(r, runtime_col));
    out.push_back({{"input_tensor",
                    {{"logical_shape", shape},
                     {"dtype", dtype},
                     {"layout", "TILE"},
                     {"memory_config", {{"buffer_type", buffer}, {"memory_layout", "INTERLEAVED"}}}}}});
  }
  return out;
}

json core_grid(std::int64_t cores, std::int64_t grid_x) {
  json ranges = json::array();
  auto range = [](std::int64_t x0, std::int64_t y0, std::int64_t x1, std::int64_t y1) {
    return json{{"start", {{"x", x0}, {"y", y0}}}, {"end", {{"x", x1}, {"y", y1}}}};
  };
  std::int64_t full = cores / grid_x, rest = cores % grid_x;
  if (full > 0) ranges.push_back(range(0, 0, grid_x - 1, full - 1));
  if (rest > 0) ranges.push_back(range(0, full, rest - 1, full));
  return ranges;
}

std::vector<json> import_matmul_height_sharded(const Csv& c, const json& device, std::vector<double>& runtimes) {
  const std::int64_t grid_x = device_int(device, "grid_x"), grid_y = device_int(device, "grid_y");
  std::size_t m_col = column(c, "m_size"), k_col = column(c, "k_size"), n_col = column(c, "n_size"),
              cores_col = column(c, "num_cores"), runtime_col = column(c, "duration");
  CsvReader rd(c);
  std::vector<json> out;
  for (const CsvRow& r : c.rows) {
    std::int64_t m = rd.integer(r, m_col, 1), k = rd.integer(r, k_col, 1), n = rd.integer(r, n_col, 1);
    std::int64_t cores = rd.integer(r, cores_col, 1);
    if (cores > grid_x * grid_y)
      rd.fail(r, cores_col, std::to_string(cores) + " cores do not fit the device's " + std::to_string(grid_x) + " x " +
                                std::to_string(grid_y) + " grid");
    runtimes.push_back(rd.runtime(r, runtime_col));
    std::int64_t shard_h = ((m + 31) / 32 + cores - 1) / cores * 32;
    json shard = {{"grid", core_grid(cores, grid_x)}, {"shape", {shard_h, k}}, {"orientation", "ROW_MAJOR"}};
    out.push_back({{"input_tensor_a",
                    {{"logical_shape", {m, k}},
                     {"layout", "TILE"},
                     {"memory_config", {{"buffer_type", "L1"}, {"memory_layout", "HEIGHT_SHARDED"}, {"shard_spec", shard}}}}},
                   {"input_tensor_b", {{"logical_shape", {k, n}}, {"layout", "TILE"}}}});
  }
  return out;
}

const char* layout_notes(CsvLayout layout) {
  switch (layout) {
    case CsvLayout::exp:
      return "Converted from the reference predictor's CSV: logical_shape from input_shape_1..4 without the trailing "
             "zero padding; dtype and input buffer from the one-hot columns; layout TILE and interleaved memory as in "
             "the reference sweep. The sweep also varied the output memory config but did not record it, so rows "
             "carry no memory_config argument.";
    case CsvLayout::matmul_height_sharded:
      return "Converted from the reference predictor's CSV, which records only m, k, n and num_cores: input_tensor_a "
             "(m x k) is height-sharded in L1 over num_cores cores laid out row by row on the device grid, shard "
             "height ceil(ceil(m/32)/num_cores) tiles; input_tensor_b is (k x n). Layout TILE. The dtypes, "
             "input_tensor_b's memory config, the output memory config and the program config were not recorded, "
             "so rows carry none of them.";
  }
  return "";
}

}  // namespace

// ---- public API ------------------------------------------------------------------------------

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return h.hex();
}

std::string sha256_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TorpError(ErrorCode::io, "cannot open the file", "", file.string());
  Sha256 h;
  std::array<char, 1 << 16> buf{};
  while (in) {
    in.read(buf.data(), buf.size());
    h.update(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw TorpError(ErrorCode::io, "error reading the file", "", file.string());
  return h.hex();
}

std::string configuration_key(const json& args) { return args.dump(); }

Dataset load_dataset(const fs::path& file) {
  const std::string name = file.string();
  const std::string text = read_file(file);
  Dataset d;
  Columns cols;
  std::size_t pos = 0, line_no = 0;
  std::string_view line;
  for (Lines lines(text, pos); lines.next(line, line_no);) {
    json j = parse_line(name, line_no, line);
    if (cols.version == 0) {
      cols = check_header(j, name, line_no, line);
      d.op = canonical_op_name(j["op"].get<std::string>());
      d.header = std::move(j);
      continue;
    }
    d.rows.push_back(parse_row(std::move(j), cols, name, line_no, line));
  }
  if (cols.version == 0) fail_at(name, 1, 1, "empty file (expected the torp-dataset header line)");
  return d;
}

void save_dataset(const Dataset& d, const fs::path& file, bool overwrite) {
  if (!d.header.is_object() && !d.header.is_null())
    throw TorpError(ErrorCode::dataset, "cannot save: the header must be a JSON object", "", file.string());
  const bool ids = std::any_of(d.rows.begin(), d.rows.end(),
                               [](const Measurement& m) { return !m.suite.empty() || !m.input_hash.empty(); });
  for (std::size_t i = 0; i < d.rows.size(); ++i)  // check before creating anything
    if (!d.rows[i].args.is_object())
      throw TorpError(ErrorCode::dataset, "cannot save: row " + std::to_string(i + 1) + " has no args object", "",
                      file.string());
  DatasetWriter w(file, d.op, d.header, ids, overwrite);
  for (const Measurement& m : d.rows) w.add(w.row_prefix(m.args.dump(), m.suite, m.input_hash), m.runtime_ns);
  w.commit();
}

DatasetWriter::DatasetWriter(const fs::path& file, const std::string& op, const json& header, bool with_sweep_ids,
                             bool overwrite)
    : file_(file, overwrite), path_(file.string()), with_ids_(with_sweep_ids) {
  if (op.empty()) throw TorpError(ErrorCode::dataset, "cannot save: the dataset has no op", "", path_);
  file_.stream() << header_line(op, header, with_sweep_ids) << '\n';
}

std::string DatasetWriter::row_prefix(std::string_view args_json, std::string_view suite,
                                     std::string_view input_hash) const {
  std::string p = "{";
  if (with_ids_) {
    p += "\"suite\":";
    p += json(suite).dump();
    p += ",\"input_hash\":";
    p += json(input_hash).dump();
    p += ',';
  }
  p += "\"args\":";
  p += args_json;
  p += ",\"kernel_duration_ns\":";
  return p;
}

void DatasetWriter::add(std::string_view row_prefix, double runtime_ns) {
  if (!std::isfinite(runtime_ns) || runtime_ns <= 0)
    throw TorpError(ErrorCode::dataset,
                    "cannot save: row " + std::to_string(rows_ + 1) + " has a non-positive or non-finite runtime", "",
                    path_);
  number_.clear();
  append_runtime(number_, runtime_ns);
  number_ += "}\n";
  file_.stream() << row_prefix << number_;
  ++rows_;
}

namespace {

void add_distinct(std::vector<std::string>& values, const std::string& v) {
  if (!v.empty() && std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
}

}  // namespace

std::vector<Configuration> aggregate(const Dataset& d, double reject_factor, AggregationReport* report) {
  if (!(reject_factor >= 1.0))
    throw TorpError(ErrorCode::dataset, "the repeat rejection factor must be >= 1, got " + std::to_string(reject_factor));
  std::map<std::string, Configuration> groups;
  for (const Measurement& m : d.rows) {
    std::string key = configuration_key(m.args);
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) {
      it->second.key = std::move(key);
      it->second.args = m.args;
    }
    it->second.runtimes.push_back(m.runtime_ns);
    add_distinct(it->second.suites, m.suite);
    add_distinct(it->second.input_hashes, m.input_hash);
  }
  AggregationReport rep;
  rep.rows = d.rows.size();
  rep.reject_factor = reject_factor;
  std::vector<Configuration> out;
  out.reserve(groups.size());
  for (auto& [key, c] : groups) {
    const double med = median(c.runtimes);
    std::vector<double> kept;
    for (double r : c.runtimes)
      if (r <= med * reject_factor && r * reject_factor >= med) kept.push_back(r);
    std::size_t rejected = c.runtimes.size() - kept.size();
    rep.rejected_rows += rejected;
    if (kept.empty()) {
      ++rep.dropped_configurations;
      continue;
    }
    if (rejected > 0) ++rep.configurations_with_rejections;
    c.rejected = rejected;
    c.label_ns = median(kept);
    c.runtimes = std::move(kept);
    out.push_back(std::move(c));
  }
  rep.configurations = out.size();
  if (report) *report = rep;
  return out;
}

std::string_view to_string(CsvLayout layout) noexcept {
  switch (layout) {
    case CsvLayout::exp: return "exp";
    case CsvLayout::matmul_height_sharded: return "matmul_height_sharded";
  }
  return "?";
}

CsvLayout parse_csv_layout(std::string_view name) {
  if (name == "exp") return CsvLayout::exp;
  if (name == "matmul_height_sharded") return CsvLayout::matmul_height_sharded;
  throw TorpError(ErrorCode::dataset, "unknown CSV layout '" + std::string(name) + "' (expected exp or matmul_height_sharded)");
}

CsvLayout detect_csv_layout(const fs::path& csv) {
  Csv c = read_csv(csv, true);
  bool exp = has_column(c.header, "input_shape_1") && has_column(c.header, "kernel_duration");
  bool mm = has_column(c.header, "m_size") && has_column(c.header, "num_cores");
  if (exp != mm) return exp ? CsvLayout::exp : CsvLayout::matmul_height_sharded;
  fail_at(c.file, c.header.line, 1,
          "cannot tell the CSV layout from the header (exp has input_shape_1..4 and kernel_duration, "
          "matmul_height_sharded has m_size, k_size, n_size, num_cores and duration)");
}

Dataset import_reference_csv(const fs::path& csv, CsvLayout layout, const json& device, const json& provenance) {
  auto op = provenance.is_object() ? provenance.find("op") : provenance.end();
  if (!provenance.is_object() || op == provenance.end() || !op->is_string() || op->get<std::string>().empty())
    throw TorpError(ErrorCode::dataset, "CSV import needs the op name (provenance \"op\")", "/op");
  const std::string dev = device_name(device);
  Csv c = read_csv(csv, false);
  std::vector<double> runtimes;
  std::vector<json> args = layout == CsvLayout::exp ? import_exp(c, runtimes)
                                                    : import_matmul_height_sharded(c, device, runtimes);
  Dataset d;
  d.op = canonical_op_name(op->get<std::string>());
  json source = {{"importer", "torp dataset import-csv --layout " + std::string(to_string(layout))},
                 {"file", csv.filename().string()},
                 {"sha256", sha256_file(csv)}};
  if (auto s = provenance.find("source"); s != provenance.end() && !s->is_null()) source["origin"] = *s;
  std::string notes = layout_notes(layout);
  if (auto n = provenance.find("notes"); n != provenance.end() && n->is_string()) notes = n->get<std::string>() + " " + notes;
  d.header = {{"format", kDatasetFormat},
              {"format_version", kDatasetFormatVersion},
              {"op", d.op},
              {"device", dev},
              {"tt_metal_commit", provenance.value("tt_metal_commit", json())},
              {"source", source},
              {"notes", notes}};
  d.rows.reserve(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    Measurement m;
    m.args = std::move(args[i]);
    m.runtime_ns = runtimes[i];
    d.rows.push_back(std::move(m));
  }
  return d;
}

}  // namespace torp
