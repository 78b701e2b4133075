// SPDX-License-Identifier: Apache-2.0
// Dataset files, SHA-256, repeat aggregation, reference CSV import and the checked-in datasets.
#include <gtest/gtest.h>

#include "support/fixtures.hpp"
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>

#include "train/sha256.hpp"
#include "torp/train/dataset.hpp"
#include "torp/encoder.hpp"
#include "torp/tensor.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using torp::ErrorCode;
using torp::TorpError;
using torp::test::read_json;
using torp::test::source;

fs::path csv_fixture(const std::string& name) { return source("tests/data/csv/" + name); }


/// A fresh directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() / ("torp_test_dataset_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return path / name;
  }
};

/// The TorpError `f` throws without its code: "file:line:column: message (at path)" (and that its code is `code`).
std::string error_of(const std::function<void()>& f, ErrorCode code = ErrorCode::dataset) {
  try {
    f();
  } catch (const TorpError& e) {
    EXPECT_EQ(e.error().code, code) << e.what();
    return std::string(e.what()).substr(torp::to_string(code).size() + 2);  // "file:line:col: message (at path)"
  }
  ADD_FAILURE() << "expected a TorpError";
  return {};
}

json provenance(const std::string& op) {
  return {{"op", op}, {"tt_metal_commit", "87144607f757092c2c0cc817d12a8942d30fbfc9"}, {"source", "test fixture"}};
}

torp::Dataset import_csv(const std::string& name, torp::CsvLayout layout, const std::string& op = "ttnn.exp") {
  return torp::import_reference_csv(csv_fixture(name), layout, read_json(source("devices/wormhole_n300.json")),
                                    provenance(op));
}

int run_cli(const std::string& args) {
  std::string cmd = std::string(TORP_CLI_PATH) + " " + args + " >/dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

TEST(DatasetSha256, KnownDigests) {
  // FIPS 180-4 test vectors: OpenSSL gives the digests the hand-written code gave.
  EXPECT_EQ(torp::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(torp::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(torp::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(torp::sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(torp::sha256_hex(std::string(1000, 'q') + "xyz"),  // hashlib.sha256(b"q" * 1000 + b"xyz")
            "3b7a275c262e8c592889bf42727c6cccf483caa0adabfe72cc7907eb50061e6b");
  TempDir dir;
  std::string text(200000, 'x');
  for (std::size_t i = 0; i < text.size(); i += 7) text[i] = static_cast<char>('a' + i % 26);
  EXPECT_EQ(torp::sha256_file(dir.write("f.bin", text)), torp::sha256_hex(text));
  EXPECT_EQ(error_of([&] { torp::sha256_file(dir.path / "missing"); }, ErrorCode::io),
            (dir.path / "missing").string() + ": cannot open the file");
}

TEST(DatasetFile, SaveLoadRoundTrip) {
  TempDir dir;
  torp::Dataset d;
  d.op = "ttnn.exp";
  d.header = {{"device", "wormhole_n300"}, {"tt_metal_commit", nullptr}, {"notes", "round trip"}, {"extra", {1, 2}}};
  torp::Measurement a;
  a.args = {{"input_tensor", {{"logical_shape", {32, 64}}, {"dtype", "BFLOAT16"}}}};
  a.runtime_ns = 1873;
  torp::Measurement b;
  b.args = {{"input_tensor", {{"logical_shape", {64, 64}}, {"dtype", "FLOAT32"}}}};
  b.runtime_ns = 2010.5;
  b.suite = "2dim";
  b.input_hash = "abc";
  d.rows = {a, b};
  fs::path file = dir.path / "sub" / "d.jsonl";
  torp::save_dataset(d, file, false);

  std::ifstream in(file);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first.rfind("{\"format\":\"torp-dataset\",\"format_version\":2,\"op\":\"ttnn.exp\",\"columns\":[\"suite\","
                        "\"input_hash\",\"args\",\"kernel_duration_ns\"]",
                        0),
            0u)
      << first;
  std::string second;
  std::getline(in, second);
  EXPECT_EQ(second, R"({"suite":"","input_hash":"","args":{"input_tensor":{"dtype":"BFLOAT16","logical_shape":[32,64]}},)"
                    R"("kernel_duration_ns":1873})");

  torp::Dataset l = torp::load_dataset(file);
  EXPECT_EQ(l.op, "ttnn.exp");
  EXPECT_EQ(l.header["device"], "wormhole_n300");
  EXPECT_TRUE(l.header["tt_metal_commit"].is_null());
  EXPECT_EQ(l.header["extra"], json({1, 2}));
  ASSERT_EQ(l.rows.size(), 2u);
  EXPECT_EQ(l.rows[0].args, a.args);
  EXPECT_EQ(l.rows[0].runtime_ns, 1873);
  EXPECT_EQ(l.rows[0].line, 2u);
  EXPECT_TRUE(l.rows[0].suite.empty() && l.rows[0].input_hash.empty());
  EXPECT_EQ(l.rows[1].runtime_ns, 2010.5);
  EXPECT_EQ(l.rows[1].suite, "2dim");
  EXPECT_EQ(l.rows[1].input_hash, "abc");
  EXPECT_EQ(l.rows[1].line, 3u);

  // Refuses to overwrite unless asked; leaves no temporary files behind.
  EXPECT_NE(error_of([&] { torp::save_dataset(d, file, false); }, ErrorCode::io).find("already exists"),
            std::string::npos);
  d.rows.pop_back();
  torp::save_dataset(d, file, true);
  EXPECT_EQ(torp::load_dataset(file).rows.size(), 1u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path / "sub"), fs::directory_iterator()), 1);

  // Invalid rows are refused before anything is written.
  d.rows[0].runtime_ns = -1;
  error_of([&] { torp::save_dataset(d, dir.path / "bad.jsonl", false); });
  EXPECT_FALSE(fs::exists(dir.path / "bad.jsonl"));
}

TEST(DatasetFile, LoadErrorsNameFileLineAndColumn) {
  TempDir dir;
  const std::string header = R"({"format":"torp-dataset","format_version":1,"op":"ttnn.exp","device":"wormhole_n300"})";
  const std::string header2 =
      R"({"format":"torp-dataset","format_version":2,"op":"ttnn.exp","columns":["input_hash","args","kernel_duration_ns"]})";
  struct Case {
    std::string text, expect;
  };
  const Case cases[] = {
      {"", ":1:1: empty file"},
      {"\n  \n", ":1:1: empty file"},
      {R"({"format":"other","format_version":1,"op":"ttnn.exp"})", ":1:2: not a torp dataset"},
      {R"({"format":"torp-dataset","format_version":3,"op":"ttnn.exp"})", ":1:26: unsupported format_version 3"},
      {R"({"format":"torp-dataset","format_version":2,"op":"ttnn.exp"})", ":1:1: header needs \"columns\""},
      {R"({"format":"torp-dataset","format_version":2,"op":"ttnn.exp","columns":["args","runtime"]})",
       ":1:61: unknown column \"runtime\""},
      {R"({"format":"torp-dataset","format_version":2,"op":"ttnn.exp","columns":["args"]})",
       ":1:61: \"columns\" must include \"kernel_duration_ns\""},
      {header2 + "\n" + R"({"args":{},"kernel_duration_ns":5})", ":2:1: the row has no \"input_hash\""},
      {header2 + "\n" + R"({"input_hash":"h","args":{},"runtime_ns":5})", ":2:29: unknown key \"runtime_ns\" in a row (not in"},
      {header2 + "\n" + R"({"input_hash":7,"args":{},"kernel_duration_ns":5})", ":2:2: \"input_hash\" must be a string"},
      {R"({"format":"torp-dataset","format_version":1})", ":1:1: header needs a non-empty string \"op\""},
      {header + "\n" + R"({"args":{},"runtime_ns":5})" + "\n" + R"({"runtime_ns":5})", ":3:1: a row needs an \"args\" object"},
      {header + "\n" + R"({"args":{},"runtime_ns":-5})", ":2:12: runtime_ns must be positive and finite"},
      {header + "\n" + R"({"args":{},"runtime_ns":"5"})", ":2:12: a row needs a numeric \"runtime_ns\""},
      {header + "\n" + R"({"args":{},"runtime":5})", ":2:12: unknown key \"runtime\""},
      {header + "\n" + R"({"args":{}, "runtime_ns": 5,})", ":2:29: invalid JSON"},
      {header + "\n" + "[1, 2]", ":2:1: a row must be a JSON object"},
  };
  for (const Case& c : cases) {
    fs::path f = dir.write("bad.jsonl", c.text);
    std::string msg = error_of([&] { torp::load_dataset(f); });
    EXPECT_EQ(msg.rfind(f.string(), 0), 0u) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << msg;
  }
  EXPECT_EQ(error_of([&] { torp::load_dataset(dir.path / "missing.jsonl"); }, ErrorCode::io),
            (dir.path / "missing.jsonl").string() + ": cannot open the file");
}

TEST(DatasetAggregate, MedianOfKeptRepeatsAndRejectionCounts) {
  torp::Dataset d;
  d.op = "ttnn.exp";
  auto row = [&](const json& args, double ns) {
    torp::Measurement m;
    m.args = args;
    m.runtime_ns = ns;
    d.rows.push_back(m);
  };
  const json a = {{"x", 1}, {"y", 2}};
  const json a_reordered = json::parse(R"({"y": 2, "x": 1})");
  const json b = {{"x", 2}}, c = {{"x", 3}}, e = {{"x", 0}};
  for (double ns : {100.0, 102.0}) row(a, ns);
  for (double ns : {98.0, 300.0}) row(a_reordered, ns);  // same configuration; 300 is an outlier
  for (double ns : {50.0, 60.0}) row(b, ns);             // median 55, both within 1.5x
  for (double ns : {10.0, 100.0}) row(c, ns);            // no consensus: both > 1.5x from 55
  row(e, 7);

  torp::AggregationReport rep;
  auto configs = torp::aggregate(d, torp::kDefaultRejectFactor, &rep);
  EXPECT_EQ(rep.rows, 9u);
  EXPECT_EQ(rep.configurations, 3u);
  EXPECT_EQ(rep.rejected_rows, 3u);
  EXPECT_EQ(rep.dropped_configurations, 1u);
  EXPECT_EQ(rep.configurations_with_rejections, 1u);
  EXPECT_EQ(rep.reject_factor, 1.5);
  ASSERT_EQ(configs.size(), 3u);
  EXPECT_TRUE(std::is_sorted(configs.begin(), configs.end(),
                             [](const auto& l, const auto& r) { return l.key < r.key; }));
  EXPECT_EQ(configs[0].key, R"({"x":0})");
  EXPECT_EQ(configs[0].label_ns, 7);
  EXPECT_EQ(configs[1].key, R"({"x":1,"y":2})");
  EXPECT_EQ(configs[1].args, a);
  EXPECT_EQ(configs[1].label_ns, 100);
  EXPECT_EQ(configs[1].rejected, 1u);
  EXPECT_EQ(configs[1].runtimes, (std::vector<double>{100, 102, 98}));
  EXPECT_EQ(configs[2].label_ns, 55);
  EXPECT_EQ(configs[2].rejected, 0u);

  auto all = torp::aggregate(d, INFINITY, &rep);
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(rep.rejected_rows, 0u);
  EXPECT_EQ(all[1].label_ns, 101);
  EXPECT_EQ(torp::aggregate(d, 1.5, nullptr).size(), 3u);
  error_of([&] { torp::aggregate(d, 0.5, nullptr); });
}

TEST(DatasetCsv, ImportsTheExpLayout) {
  torp::Dataset d = import_csv("exp_good.csv", torp::CsvLayout::exp);
  EXPECT_EQ(d.op, "ttnn.exp");
  EXPECT_EQ(d.header["format"], "torp-dataset");
  EXPECT_EQ(d.header["device"], "wormhole_n300");
  EXPECT_EQ(d.header["tt_metal_commit"], "87144607f757092c2c0cc817d12a8942d30fbfc9");
  EXPECT_EQ(d.header["source"]["file"], "exp_good.csv");
  EXPECT_EQ(d.header["source"]["sha256"], torp::sha256_file(csv_fixture("exp_good.csv")));
  EXPECT_EQ(d.header["source"]["origin"], "test fixture");
  EXPECT_NE(d.header["notes"].get<std::string>().find("output memory config"), std::string::npos);
  ASSERT_EQ(d.rows.size(), 8u);
  EXPECT_EQ(d.rows[0].args, json::parse(R"({"input_tensor": {"logical_shape": [4, 53, 32, 160], "dtype": "BFLOAT16",
      "layout": "TILE", "memory_config": {"buffer_type": "DRAM", "memory_layout": "INTERLEAVED"}}})"));
  EXPECT_EQ(d.rows[0].runtime_ns, 36941);
  EXPECT_EQ(d.rows[4].args["input_tensor"]["logical_shape"], json({2048, 1024}));
  EXPECT_EQ(d.rows[4].args["input_tensor"]["dtype"], "UINT16");
  EXPECT_EQ(d.rows[4].args["input_tensor"]["memory_config"]["buffer_type"], "L1");
  EXPECT_EQ(d.rows[6].args["input_tensor"]["logical_shape"], json({3, 64, 96}));
  EXPECT_EQ(d.rows[6].args["input_tensor"]["dtype"], "BFLOAT8_B");
  EXPECT_EQ(d.rows[7].args["input_tensor"]["dtype"], "UINT32");
  torp::AggregationReport rep;
  auto configs = torp::aggregate(d, torp::kDefaultRejectFactor, &rep);
  EXPECT_EQ(configs.size(), 4u);
  EXPECT_EQ(rep.rejected_rows, 1u);  // 73588 among 36.6-36.9 us repeats
}

TEST(DatasetCsv, ImportsTheMatmulHeightShardedLayout) {
  torp::Dataset d = import_csv("matmul_good.csv", torp::CsvLayout::matmul_height_sharded, "ttnn::matmul");
  EXPECT_EQ(d.op, "ttnn.matmul");
  ASSERT_EQ(d.rows.size(), 5u);
  const json expect = json::parse(R"({
    "input_tensor_a": {"logical_shape": [640, 32], "layout": "TILE",
      "memory_config": {"buffer_type": "L1", "memory_layout": "HEIGHT_SHARDED",
        "shard_spec": {"grid": [{"start": {"x": 0, "y": 0}, "end": {"x": 7, "y": 0}},
                                {"start": {"x": 0, "y": 1}, "end": {"x": 1, "y": 1}}],
                       "shape": [64, 32], "orientation": "ROW_MAJOR"}}},
    "input_tensor_b": {"logical_shape": [32, 32], "layout": "TILE"}})");
  EXPECT_EQ(d.rows[0].args, expect);
  EXPECT_EQ(d.rows[0].runtime_ns, 1849);
  EXPECT_EQ(d.rows[3].runtime_ns, 2010.5);
  // No dtype was recorded, so none is invented.
  EXPECT_FALSE(d.rows[0].args["input_tensor_a"].contains("dtype"));
  EXPECT_NE(d.header["notes"].get<std::string>().find("dtypes"), std::string::npos);
  // Shard geometry: cores laid out row by row on the 8-wide grid; shard height in whole tiles.
  const int cores[] = {10, 10, 40, 3, 8};
  const int shard_h[] = {64, 64, 32, 320, 64};
  for (std::size_t i = 0; i < d.rows.size(); ++i) {
    auto t = torp::parse_tensor(d.rows[i].args["input_tensor_a"], "/args/input_tensor_a");
    ASSERT_TRUE(t.ok()) << t.error().describe();
    EXPECT_EQ(t.value().memory.shard.cores, cores[i]) << i;
    EXPECT_EQ(t.value().memory.shard.shape_h, shard_h[i]) << i;
    EXPECT_EQ(t.value().memory.shard.grid_x, cores[i] < 8 ? cores[i] : 8) << i;
    EXPECT_EQ(t.value().memory.memory_layout, torp::memory_layout::HEIGHT_SHARDED);
  }
  EXPECT_EQ(d.rows[2].args["input_tensor_a"]["memory_config"]["shard_spec"]["grid"],
            json::parse(R"([{"start": {"x": 0, "y": 0}, "end": {"x": 7, "y": 4}}])"));
}

TEST(DatasetCsv, DetectsTheLayoutFromTheHeader) {
  EXPECT_EQ(torp::detect_csv_layout(csv_fixture("exp_good.csv")), torp::CsvLayout::exp);
  EXPECT_EQ(torp::detect_csv_layout(csv_fixture("matmul_good.csv")), torp::CsvLayout::matmul_height_sharded);
  EXPECT_NE(error_of([] { torp::detect_csv_layout(csv_fixture("empty.csv")); }).find("empty file"), std::string::npos);
  EXPECT_EQ(torp::parse_csv_layout("matmul_height_sharded"), torp::CsvLayout::matmul_height_sharded);
  error_of([] { torp::parse_csv_layout("conv2d"); });
}

TEST(DatasetCsv, BadFilesNameFileLineAndColumn) {
  struct Case {
    std::string file;
    torp::CsvLayout layout;
    std::vector<std::string> expect;
  };
  const Case cases[] = {
      {"exp_missing_column.csv", torp::CsvLayout::exp, {":1:1: missing column 'float32'"}},
      {"exp_non_numeric.csv", torp::CsvLayout::exp, {":3:29: column 'kernel_duration': expected a number, got '36x51'"}},
      {"empty.csv", torp::CsvLayout::exp, {":1:1: empty file"}},
      {"exp_no_dtype.csv", torp::CsvLayout::exp,
       {":3:", "columns bfloat8, bfloat16, float32, uint16, uint32: unknown dtype: none of the one-hot columns is 1"}},
      {"exp_two_dtypes.csv", torp::CsvLayout::exp,
       {":2:17:", "columns bfloat16, float32: unknown dtype: several one-hot columns are 1"}},
      {"matmul_too_many_cores.csv", torp::CsvLayout::matmul_height_sharded,
       {":2:11: column 'num_cores': 64 cores do not fit the device's 8 x 7 grid"}},
      {"exp_good.csv", torp::CsvLayout::matmul_height_sharded, {":1:1: missing column 'm_size'"}},
  };
  for (const Case& c : cases) {
    std::string msg = error_of([&] { import_csv(c.file, c.layout); });
    EXPECT_EQ(msg.rfind(csv_fixture(c.file).string() + ":", 0), 0u) << msg;
    for (const auto& e : c.expect) EXPECT_NE(msg.find(e), std::string::npos) << "expected '" << e << "' in: " << msg;
  }
}

TEST(DatasetCsv, CliWritesNothingOnFailure) {
  TempDir dir;
  const std::string common = "dataset import-csv --device " + source("devices/wormhole_n300.json").string() + " --op ttnn.exp ";
  for (const char* bad : {"exp_missing_column.csv", "exp_non_numeric.csv", "empty.csv", "exp_no_dtype.csv"}) {
    fs::path out = dir.path / (std::string(bad) + ".jsonl");
    EXPECT_EQ(run_cli(common + "--layout exp " + csv_fixture(bad).string() + " " + out.string()), 1) << bad;
    EXPECT_FALSE(fs::exists(out)) << bad;
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 0);
  fs::path out = dir.path / "good.jsonl";
  EXPECT_EQ(run_cli(common + csv_fixture("exp_good.csv").string() + " " + out.string()), 0);  // layout detected
  EXPECT_EQ(torp::load_dataset(out).rows.size(), 8u);
  EXPECT_EQ(run_cli(common + csv_fixture("exp_good.csv").string() + " " + out.string()), 1);  // exists
  EXPECT_EQ(run_cli(common + "--force " + csv_fixture("exp_good.csv").string() + " " + out.string()), 0);
  EXPECT_EQ(run_cli("dataset import-csv " + csv_fixture("exp_good.csv").string() + " " + out.string()), 2);  // no --device
  EXPECT_EQ(run_cli("dataset info " + out.string()), 0);
  EXPECT_EQ(run_cli("dataset info --help"), 0);
}

TEST(DatasetEncoder, RowArgsAndFullTensorQueryEncodeIdentically) {
  const json spec = read_json(source("ops/exp.json"));
  const json device = read_json(source("devices/wormhole_n300.json"));
  torp::Encoder enc(spec, device);
  const std::vector<std::string> features = enc.feature_names();
  torp::Dataset d = import_csv("exp_good.csv", torp::CsvLayout::exp);

  // A device Tensor as tt-metal's to_json writes it (formats.md 3.3).
  auto full_tensor = [](const json& shape, int dtype, int buffer) {
    json t = json::parse(R"({"storage": {"index": 1, "value": {}},
      "tensor_spec": {"logical_shape": [],
        "tensor_layout": {"alignment": {"value": [32, 32]}, "dtype": 0,
          "memory_config": {"buffer_type": 0, "created_with_nd_shard_spec": false, "memory_layout": 0},
          "page_config": {"config": {"index": 1, "value": {"tile": {"face_shape": [16, 16], "num_faces": 4,
                                                                     "tile_shape": [32, 32]}}}}}}})");
    t["tensor_spec"]["logical_shape"] = shape;
    t["tensor_spec"]["tensor_layout"]["dtype"] = dtype;
    t["tensor_spec"]["tensor_layout"]["memory_config"]["buffer_type"] = buffer;
    return t;
  };
  struct Case {
    std::size_t row;
    json query;
  };
  const Case cases[] = {
      {0, {{"input_tensor", full_tensor({4, 53, 32, 160}, torp::dtype::BFLOAT16, torp::buffer_type::DRAM)}}},
      {4, {{"input_tensor", full_tensor({2048, 1024}, torp::dtype::UINT16, torp::buffer_type::L1)}}},
      {6, {{"input_tensor", full_tensor({3, 64, 96}, torp::dtype::BFLOAT8_B, torp::buffer_type::DRAM)}}},
      {7, {{"input_tensor", full_tensor({1, 1, 384, 96}, torp::dtype::UINT32, torp::buffer_type::L1)}}},
  };
  for (const Case& c : cases) {
    auto from_row = enc.encode(d.rows[c.row].args, features);
    auto from_query = enc.encode(c.query, features);
    ASSERT_TRUE(from_row.ok()) << from_row.error().describe();
    ASSERT_TRUE(from_query.ok()) << from_query.error().describe();
    EXPECT_EQ(from_row.value(), from_query.value()) << "row " << c.row;
  }
}

TEST(DatasetRealData, CheckedInDatasetsMatchTheirCsvAndStats) {
  const json device = read_json(source("devices/wormhole_n300.json"));
  torp::Dataset exp = torp::load_dataset(source("data/exp/exp_wormhole.jsonl"));
  EXPECT_EQ(exp.op, "ttnn.exp");
  EXPECT_EQ(exp.header["device"], "wormhole_n300");
  EXPECT_EQ(exp.header["tt_metal_commit"], "87144607f757092c2c0cc817d12a8942d30fbfc9");
  EXPECT_EQ(exp.header["source"]["sha256"], torp::sha256_file(source("data/exp/exp_wormhole.csv")));
  torp::AggregationReport rep;
  torp::aggregate(exp, torp::kDefaultRejectFactor, &rep);
  EXPECT_EQ(rep.rows, 11936u);
  EXPECT_EQ(rep.configurations, 3274u);
  EXPECT_EQ(rep.rejected_rows, 55u);
  EXPECT_EQ(rep.dropped_configurations, 0u);
  // Reproducible: re-importing the checked-in CSV gives the same rows.
  torp::Dataset again = torp::import_reference_csv(source("data/exp/exp_wormhole.csv"), torp::CsvLayout::exp, device,
                                                   {{"op", "ttnn.exp"}});
  ASSERT_EQ(again.rows.size(), exp.rows.size());
  for (std::size_t i = 0; i < exp.rows.size(); ++i) {
    ASSERT_EQ(again.rows[i].args, exp.rows[i].args) << i;
    ASSERT_EQ(again.rows[i].runtime_ns, exp.rows[i].runtime_ns) << i;
  }

  torp::Dataset mm = torp::load_dataset(source("data/matmul_height_sharded/matmul_height_sharded_wormhole.jsonl"));
  EXPECT_EQ(mm.op, "ttnn.matmul");
  EXPECT_TRUE(mm.header["tt_metal_commit"].is_null());
  torp::aggregate(mm, torp::kDefaultRejectFactor, &rep);
  EXPECT_EQ(rep.rows, 3324u);
  EXPECT_EQ(rep.configurations, 3324u);
  EXPECT_EQ(rep.rejected_rows, 0u);
}

TEST(DatasetRealData, ExpSliceIsAWholeConfigurationSampleThatEncodes) {
  torp::Dataset s = torp::load_dataset(source("tests/data/exp_slice.jsonl"));
  torp::AggregationReport rep;
  auto configs = torp::aggregate(s, INFINITY, &rep);
  EXPECT_EQ(configs.size(), 298u);
  EXPECT_EQ(s.rows.size(), 1085u);
  EXPECT_EQ(s.header["sample"]["every"], 11);
  torp::Encoder enc(read_json(source("ops/exp.json")), read_json(source("devices/wormhole_n300.json")));
  const auto features = enc.feature_names();
  for (const auto& m : s.rows) {
    auto v = enc.encode(m.args, features);
    ASSERT_TRUE(v.ok()) << "line " << m.line << ": " << v.error().describe();
  }
}
