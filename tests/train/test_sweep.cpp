// SPDX-License-Identifier: Apache-2.0
// Sweep import: value eras A..C, result generations R0..R3, join by (suite, input_hash), one record
// per run, drop reasons, outliers, malformed files, the sweep blocks of every op spec, the CLI.
// Fixtures (tests/data/sweep) follow ../shared/reference/formats.md sections 1 and 2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <tuple>

#include "sweep/py_expr.hpp"
#include "support/fixtures.hpp"
#include "torp/train/dataset.hpp"
#include "torp/log.hpp"
#include "torp/predictor.hpp"
#include "torp/train/sweep.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using torp::SweepDrop;
using torp::test::read_json;
using torp::test::source;

// The vectors of vectors_era_{a,b,c}.json (formats.md 1.2, plus a rank-1 vector).
const std::string kH1 = "1adfce5843ad05ca6f0ccce87fd95747ed424046bb624e1106e2312e";  // 4dim [1,1,32,64] bf16 DRAM
const std::string kH2 = "903f06037e20b6139f3151ddea54909cb0856e3e9ea4681df4a14b72";  // 4dim [8,4,288,320] f32 L1
const std::string kH3 = "d9ef972082a98a8b53e44c9d9a8b380dad14afc2b17249c0d920e6da";  // 2dim [2048,1024] u16 DRAM
const std::string kH4 = "4c624a53a611660febfb1aa37fe2c62a556bd2c235edf815c5d4dcf1";  // 2dim INVALID
const std::string kH5 = "12a93d53627a9b2573edfeb25b74cd2bb8671f60b5e2cfcdcfcb1305";  // 1dim [64]: rank 1, bad args

fs::path sweep(const std::string& name) { return source("tests/data/sweep/" + name); }

struct Import {
  torp::SweepDataset data;
  torp::SweepImportReport report;
};

Import run(const std::string& vectors, const std::vector<std::string>& results, const torp::SweepOptions& opt = {},
           const std::string& op_spec = "ops/exp.json", const std::string& device = "devices/wormhole_n300.json") {
  std::vector<fs::path> files;
  for (const auto& r : results) files.push_back(sweep(r));
  Import i;
  i.data = torp::import_sweep(sweep(vectors), files, read_json(source(op_spec)), read_json(source(device)), opt, &i.report);
  return i;
}

json interleaved(const char* buffer) { return {{"buffer_type", buffer}, {"memory_layout", "INTERLEAVED"}}; }

json exp_args(const json& shape, const char* dtype, const char* buffer) {
  return {{"input_tensor", {{"logical_shape", shape}, {"dtype", dtype}, {"layout", "TILE"}, {"memory_config", interleaved(buffer)}}},
          {"memory_config", interleaved(buffer)}};
}
const json kArgs1 = exp_args({1, 1, 32, 64}, "BFLOAT16", "DRAM");
const json kArgs2 = exp_args({8, 4, 288, 320}, "FLOAT32", "L1");
const json kArgs3 = exp_args({2048, 1024}, "UINT16", "DRAM");

using Row = std::tuple<std::string, std::string, json, double>;  // suite, input_hash, args, kernel_duration_ns

std::vector<Row> rows_of(const torp::SweepDataset& d) {
  std::vector<Row> out;
  for (const auto& m : d.to_dataset().rows) out.emplace_back(m.suite, m.input_hash, m.args, m.runtime_ns);
  return out;
}

/// Every drop count, by reason id (zeros included), so a test states all of them.
std::map<std::string, std::size_t> drops(const torp::SweepImportReport& r) {
  std::map<std::string, std::size_t> m;
  for (std::size_t i = 0; i < torp::kSweepDropReasons; ++i)
    m[std::string(torp::to_string(static_cast<SweepDrop>(i)))] = r.dropped[i];
  return m;
}
std::map<std::string, std::size_t> expected_drops(std::map<std::string, std::size_t> nonzero) {
  for (std::size_t i = 0; i < torp::kSweepDropReasons; ++i)
    nonzero.emplace(std::string(torp::to_string(static_cast<SweepDrop>(i))), 0);
  return nonzero;
}

/// total, with_rows, invalid, filtered_out, without_result, all_records_dropped
std::vector<std::size_t> vector_classes(const torp::SweepImportReport& r) {
  return {r.vectors, r.vectors_with_rows, r.vectors_invalid, r.vectors_filtered_out, r.vectors_without_result,
          r.vectors_all_dropped};
}

const std::string& example(const torp::SweepImportReport& r, SweepDrop d) { return r.example[static_cast<std::size_t>(d)]; }

std::string error_of(const std::function<void()>& f, torp::ErrorCode code = torp::ErrorCode::dataset) {
  try {
    f();
  } catch (const torp::TorpError& e) {
    EXPECT_EQ(e.error().code, code) << e.what();
    return std::string(e.what()).substr(torp::to_string(code).size() + 2);  // "file:line:col: message (at path)"
  }
  ADD_FAILURE() << "expected a TorpError";
  return {};
}

int run_cli(const std::string& args, const fs::path& log) {
  const std::string cmd = std::string(TORP_CLI_PATH) + " " + args + " >'" + log.string() + "' 2>&1";
  int r = std::system(cmd.c_str());
  return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(SweepValues, DecodesPythonLiteralStrings) {
  using torp::decode_sweep_value;
  EXPECT_EQ(decode_sweep_value("[1, 1, 32, 64]"), json({1, 1, 32, 64}));
  EXPECT_EQ(decode_sweep_value("(1, 1, 32, 64)"), json({1, 1, 32, 64}));
  EXPECT_EQ(decode_sweep_value("(5,)"), json({5}));
  EXPECT_EQ(decode_sweep_value("(5)"), json(5));
  EXPECT_EQ(decode_sweep_value("True"), json(true));
  EXPECT_EQ(decode_sweep_value("False"), json(false));
  EXPECT_EQ(decode_sweep_value("None"), json(nullptr));
  EXPECT_EQ(decode_sweep_value("32"), json(32));
  EXPECT_EQ(decode_sweep_value("-0.5"), json(-0.5));
  EXPECT_EQ(decode_sweep_value("(8, None, False, 0.125)"), json::parse("[8, null, false, 0.125]"));
  EXPECT_EQ(decode_sweep_value("DataType.BFLOAT16"), json("DataType.BFLOAT16"));
  EXPECT_EQ(decode_sweep_value("MathFidelity.HiFi2"), json("MathFidelity.HiFi2"));
  EXPECT_EQ(decode_sweep_value("hello world"), json("hello world"));
  EXPECT_EQ(decode_sweep_value("input_shape"), json("input_shape"));  // a name is not a literal
  EXPECT_EQ(decode_sweep_value("1 + 2"), json("1 + 2"));              // nor is an expression
  EXPECT_EQ(decode_sweep_value("[1, 2"), json("[1, 2"));
  EXPECT_EQ(decode_sweep_value(R"({'a': '[1, 2]', 'b': (1, None, False, 2.5), 'c': 'it\'s', "d": {}})"),
            json::parse(R"({"a": [1, 2], "b": [1, null, false, 2.5], "c": "it's", "d": {}})"));
  EXPECT_EQ(decode_sweep_value(json({1, "2", "(3, 4)"})), json::parse("[1, 2, [3, 4]]"));
  EXPECT_EQ(decode_sweep_value(json(7)), json(7));
}

TEST(SweepValues, SweepBlockExpressionsFollowPython) {
  const json params = {{"batch_sizes", {2, 3}}, {"m", 64}, {"t", true}, {"none", nullptr}, {"vc", {4, 8, 1, 1024}}};
  auto eval = [&](const std::string& text) {
    std::string error;
    auto node = torp::py::parse(text, false, &error);
    if (!node) throw std::runtime_error("syntax: " + error);
    return torp::py::eval(*node, [&](const std::string& n) -> const json* {
      auto it = params.find(n);
      return it == params.end() ? nullptr : &*it;
    });
  };
  EXPECT_EQ(eval("(*batch_sizes, m, 32)"), json({2, 3, 64, 32}));
  EXPECT_EQ(eval("((*batch_sizes,) if t else ()) + (m, m)"), json({2, 3, 64, 64}));
  EXPECT_EQ(eval("(m, 1) if not t else (1, m)"), json({1, 64}));
  EXPECT_EQ(eval("vc[0] * vc[3] // 64"), json(64));
  EXPECT_EQ(eval("vc[-1] / 512"), json(2.0));
  EXPECT_EQ(eval("-7 // 2"), json(-4));  // floors like Python
  EXPECT_EQ(eval("-7 % 3"), json(2));
  EXPECT_EQ(eval("none or m"), json(64));
  EXPECT_EQ(eval("none and undefined_name"), json(nullptr));  // lazy: the name is never read
  EXPECT_EQ(eval("m == 64 and m != 3"), json(true));
  EXPECT_EQ(eval("'TILE'"), json("TILE"));
  EXPECT_THROW(eval("undefined_name + 1"), std::runtime_error);
  EXPECT_THROW(eval("vc[4]"), std::runtime_error);
  EXPECT_THROW(eval("batch_sizes + 1"), std::runtime_error);
  EXPECT_THROW(eval("m if t"), std::runtime_error);  // syntax: no else
  std::vector<std::string> names;
  torp::py::names(*torp::py::parse("(*batch_sizes, m) if t else vc", false), names);
  EXPECT_EQ(names, (std::vector<std::string>{"t", "batch_sizes", "m", "vc"}));
}

TEST(SweepImport, EraAVectorsWithR0Results) {
  // R0: the invalid vector has a NOT_RUN "INVALID VECTOR" record, a failure has no device_perf,
  // FAIL_UNSUPPORTED_DEVICE_PERF marks a PASS without profiler data.
  Import i = run("vectors_era_a.json", {"results_r0.json"});
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"4dim", kH1, kArgs1, 1873}}));
  EXPECT_EQ(i.report.records, 4u);
  EXPECT_EQ(drops(i.report), expected_drops({{"not_pass", 2}, {"invalid_vector", 1}}));
  EXPECT_EQ(i.report.not_pass_by_status,
            (std::map<std::string, std::size_t>{{"FAIL_L1_OUT_OF_MEM", 1}, {"FAIL_UNSUPPORTED_DEVICE_PERF", 1}}));
  EXPECT_EQ(vector_classes(i.report), (std::vector<std::size_t>{5, 1, 1, 0, 1, 2}));
  EXPECT_EQ(example(i.report, SweepDrop::invalid_vector),
            "results_r0.json /3: vector 2dim/" + kH4 + " is INVALID: Input too large for L1");
  EXPECT_EQ(i.data.op, "ttnn.exp");
  EXPECT_EQ(i.data.header["device"], "wormhole_n300");
  EXPECT_EQ(i.data.header["tt_metal_commit"], "87144607");  // the records' git_hash
  EXPECT_EQ(i.data.header["source"]["vectors"]["sha256"], torp::sha256_file(sweep("vectors_era_a.json")));
  EXPECT_EQ(i.data.header["source"]["results"][0]["file"], "results_r0.json");
}

TEST(SweepImport, R1SkippedInvalidVectorNullAndEmptyDevicePerf) {
  // formats.md 2.2: the runner skipped the invalid vector; the failure has device_perf null and
  // a PASS without profiler data has device_perf {}.
  Import i = run("vectors_era_a.json", {"results_r1.json"});
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"4dim", kH1, kArgs1, 1873}}));
  EXPECT_EQ(i.report.records, 3u);
  EXPECT_EQ(drops(i.report), expected_drops({{"not_pass", 1}, {"no_device_perf", 1}}));
  EXPECT_EQ(i.report.not_pass_by_status, (std::map<std::string, std::size_t>{{"FAIL_L1_OUT_OF_MEM", 1}}));
  EXPECT_EQ(vector_classes(i.report), (std::vector<std::size_t>{5, 1, 1, 0, 1, 2}));  // the skipped one: invalid
  EXPECT_EQ(example(i.report, SweepDrop::no_device_perf), "results_r1.json /2: device_perf is {}");
  EXPECT_EQ(example(i.report, SweepDrop::not_pass), "results_r1.json /1: status FAIL_L1_OUT_OF_MEM");
}

TEST(SweepImport, EraBVectorsWithR2Results) {
  // R2: lowercase status ("skipped" = NOT_RUN), device_perf as a list of {metric_name,
  // metric_value} with string or number values, test_start_ts.
  Import i = run("vectors_era_b.json", {"results_r2.json"});
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"4dim", kH1, kArgs1, 1880}, {"2dim", kH3, kArgs3, 5090}}));
  EXPECT_EQ(i.report.records, 5u);
  EXPECT_EQ(drops(i.report), expected_drops({{"not_pass", 1}, {"invalid_vector", 1}, {"bad_args", 1}}));
  EXPECT_EQ(i.report.not_pass_by_status, (std::map<std::string, std::size_t>{{"FAIL_L1_OUT_OF_MEM", 1}}));
  EXPECT_EQ(vector_classes(i.report), (std::vector<std::size_t>{5, 2, 1, 0, 0, 2}));
  EXPECT_NE(example(i.report, SweepDrop::bad_args).find("rank 1"), std::string::npos) << example(i.report, SweepDrop::bad_args);
  EXPECT_EQ(i.data.header["tt_metal_commit"], "5c1a0e2b");
  // Era B (MemoryConfig data as an object with enum names) maps like era A.
  Import a = run("vectors_era_a.json", {"results_r2.json"});
  EXPECT_EQ(rows_of(a.data), rows_of(i.data));
}

TEST(SweepImport, EraAAndEraCVectorsWithR3Results) {
  // R3: test_case_name, status "pass", metrics named "device_DEVICE KERNEL DURATION [ns]", no
  // start times and no git_hash.
  Import a = run("vectors_era_a.json", {"results_r3.json"});
  Import c = run("vectors_era_c.json", {"results_r3.json"});
  const std::vector<Row> want = {{"2dim", kH3, kArgs3, 5120}, {"4dim", kH1, kArgs1, 1890}};
  EXPECT_EQ(rows_of(a.data), want);
  EXPECT_EQ(rows_of(c.data), want);  // era C: native JSON values, "ttnn." enum prefixes
  for (const Import* i : {&a, &c}) {
    EXPECT_EQ(drops(i->report), expected_drops({{"not_pass", 1}}));
    EXPECT_EQ(i->report.not_pass_by_status, (std::map<std::string, std::size_t>{{"FAIL_L1_OUT_OF_MEM", 1}}));
    EXPECT_EQ(vector_classes(i->report), (std::vector<std::size_t>{5, 2, 1, 0, 1, 1}));
  }
  EXPECT_TRUE(a.data.header["tt_metal_commit"].is_null());
}

TEST(SweepImport, MemoryConfigsAreReadByTheQueryPathsReader) {
  // The sweep import reads a MemoryConfig with the reader parse_memory_config uses (one reader,
  // src/spec/memory_config.hpp): the {"type", "data"} wrapper, enums by integer or name, errors
  // naming the field's JSON pointer; it also decodes wrapper data written as a Python literal.
  const fs::path dir = torp::test::temp_dir("sweep_memory_config");
  json vectors = read_json(sweep("vectors_era_a.json"));
  vectors["4dim"][kH1]["input_a_memory_config"]["data"] =
      "{'buffer_type': 0, 'created_with_nd_shard_spec': False, 'memory_layout': 0}";
  vectors["2dim"][kH3]["input_a_memory_config"]["data"] = R"({"buffer_type": 7, "memory_layout": 0})";
  std::ofstream(dir / "vectors.json") << vectors.dump(1);
  Import i;
  i.data = torp::import_sweep(dir / "vectors.json", {sweep("results_r3.json")}, read_json(source("ops/exp.json")),
                              read_json(source("devices/wormhole_n300.json")), {}, &i.report);
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"4dim", kH1, kArgs1, 1890}}));
  EXPECT_EQ(drops(i.report), expected_drops({{"not_pass", 1}, {"bad_args", 1}}));
  EXPECT_NE(example(i.report, SweepDrop::bad_args).find("unknown buffer type 7 (at /data/buffer_type)"), std::string::npos)
      << example(i.report, SweepDrop::bad_args);
  fs::remove_all(dir);
}

TEST(SweepImport, JoinsByInputHashNotByPosition) {
  // Records in reverse vector order whose suite_name / vector_id are shifted (copied from the
  // header by position): a positional join would give every vector another vector's duration.
  Import i = run("vectors_era_a.json", {"results_r1_shuffled.json"});
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"2dim", kH3, kArgs3, 5104},
                                               {"4dim", kH2, kArgs2, 40211},
                                               {"4dim", kH1, kArgs1, 1866}}));
  EXPECT_EQ(drops(i.report), expected_drops({}));
  EXPECT_EQ(vector_classes(i.report), (std::vector<std::size_t>{5, 3, 1, 0, 1, 0}));
}

TEST(SweepImport, KeptRowsCarryTheDurationOfTheirInputHashesRecord) {
  const std::vector<std::string> files = {"results_r1_shuffled.json", "results_r2.json", "results_r3.json",
                                          "results_r0_composite.json", "results_drops.json"};
  Import i = run("vectors_era_a.json", files);
  ASSERT_EQ(i.data.rows.size(), 10u);
  // The durations each input_hash's PASS records carry, read here independently of the importer.
  std::map<std::string, std::multiset<double>> by_hash;
  for (const auto& f : files) {
    std::string text = file_text(sweep(f));
    for (std::size_t p; (p = text.find(": NaN")) != std::string::npos;) text.replace(p, 5, ": null");  // Python's NaN
    for (const json& r : json::parse(text)) {
      const std::string status = r.value("status", "");
      if (status != "TestStatus.PASS" && status != "pass") continue;
      for (const char* key : {"device_perf", "metrics"}) {
        const json p = r.value(key, json());
        std::vector<json> values;
        if (p.is_object() && p.contains("DEVICE KERNEL DURATION [ns]")) values.push_back(p["DEVICE KERNEL DURATION [ns]"]);
        if (p.is_object() && p.contains("cached")) values.push_back(p["cached"]["DEVICE KERNEL DURATION [ns]"]);
        if (p.is_array())
          for (const json& m : p)
            if (m["metric_name"].get<std::string>().find("DEVICE KERNEL DURATION [ns]") != std::string::npos)
              values.push_back(m["metric_value"]);
        for (const json& v : values) by_hash[r["input_hash"]].insert(v.is_string() ? std::stod(v.get<std::string>()) : v.get<double>());
      }
    }
  }
  for (const auto& [suite, hash, args, ns] : rows_of(i.data)) {
    auto it = by_hash.find(hash);
    ASSERT_NE(it, by_hash.end()) << hash;
    auto v = it->second.find(ns);
    ASSERT_NE(v, it->second.end()) << hash << " has no record with kernel duration " << ns;
    it->second.erase(v);  // each record gives at most one row
  }
}

TEST(SweepImport, AFileAppendedTwiceKeepsOneRecordPerRun) {
  // The R1 runner appends to its results file: the same run twice is 3 exact copies.
  Import i = run("vectors_era_a.json", {"results_r1_appended.json"});
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"4dim", kH1, kArgs1, 1873}}));
  EXPECT_EQ(i.report.records, 6u);
  EXPECT_EQ(drops(i.report), expected_drops({{"duplicate", 3}, {"not_pass", 1}, {"no_device_perf", 1}}));
  EXPECT_EQ(example(i.report, SweepDrop::duplicate), "results_r1_appended.json /3: a copy of results_r1_appended.json /0");
  // The same file given twice is the same.
  Import twice = run("vectors_era_a.json", {"results_r1.json", "results_r1.json"});
  EXPECT_EQ(rows_of(twice.data), rows_of(i.data));
  EXPECT_EQ(drops(twice.report), drops(i.report));
}

TEST(SweepImport, SeparateRunsAreRepeatsAndFarOffRepeatsAreFlagged) {
  // Four runs appended to one file (other start times): each is a measurement. Run 3 carries a
  // 10x label for H1.
  Import i = run("vectors_era_a.json", {"results_r1_runs.json"});
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"4dim", kH1, kArgs1, 1873}, {"2dim", kH3, kArgs3, 5104},
                                               {"4dim", kH1, kArgs1, 1866}, {"2dim", kH3, kArgs3, 5110},
                                               {"4dim", kH1, kArgs1, 18650}, {"2dim", kH3, kArgs3, 5098},
                                               {"4dim", kH1, kArgs1, 1870}, {"2dim", kH3, kArgs3, 5101}}));
  EXPECT_EQ(drops(i.report), expected_drops({{"not_pass", 4}}));
  EXPECT_EQ(i.report.configurations, 2u);
  ASSERT_EQ(i.report.outliers.size(), 1u);
  const torp::SweepOutlier& o = i.report.outliers[0];
  EXPECT_EQ(std::tie(o.suite, o.input_hash, o.kernel_duration_ns, o.repeats),
            std::make_tuple(std::string("4dim"), kH1, 18650.0, std::size_t{4}));
  EXPECT_EQ(o.median_ns, 1871.5);
  EXPECT_DOUBLE_EQ(o.scale_ns, 18.715);  // 1% of the median: the repeats agree within 1.4826 x MAD = 5.2 ns

  torp::SweepOptions latest;
  latest.latest_only = true;
  Import l = run("vectors_era_a.json", {"results_r1_runs.json"}, latest);
  EXPECT_EQ(rows_of(l.data), (std::vector<Row>{{"4dim", kH1, kArgs1, 1870}, {"2dim", kH3, kArgs3, 5101}}));
  EXPECT_EQ(drops(l.report), expected_drops({{"not_pass", 4}, {"superseded", 6}}));
  EXPECT_TRUE(l.report.outliers.empty());
}

TEST(SweepImport, TimeoutDoubleWritesKeepTheNewestRecordOfARun) {
  // H1 written twice identically; H2's record rewritten later within the same run (same start
  // time, later end time, other content): the newer one wins wherever it is in the file.
  Import i = run("vectors_era_a.json", {"results_r1_timeout.json"});
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"4dim", kH1, kArgs1, 1869},
                                               {"2dim", kH3, kArgs3, 5107},
                                               {"4dim", kH2, kArgs2, 40233}}));
  EXPECT_EQ(drops(i.report), expected_drops({{"duplicate", 1}, {"superseded", 1}}));
  EXPECT_EQ(example(i.report, SweepDrop::superseded),
            "results_r1_timeout.json /2: the same run of the vector has a newer record, results_r1_timeout.json /4");
}

TEST(SweepImport, CompositeOpSumsAndZeroDummies) {
  // R0 composite op: the device rows are summed and written as str(float); a PASS without
  // profiler rows has all-zero dummy durations.
  Import i = run("vectors_era_a.json", {"results_r0_composite.json"});
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"4dim", kH1, kArgs1, 19034}}));
  EXPECT_EQ(drops(i.report), expected_drops({{"zero_device_perf", 1}}));
  EXPECT_EQ(example(i.report, SweepDrop::zero_device_perf), "results_r0_composite.json /1: kernel duration \"0\"");
}

TEST(SweepImport, CountsEveryDropReason) {
  Import i = run("vectors_era_a.json", {"results_drops.json"});
  EXPECT_EQ(rows_of(i.data), (std::vector<Row>{{"2dim", kH3, kArgs3, 5000},    // {uncached, cached}: the cached run
                                               {"4dim", kH1, kArgs1, 1901}}));  // R2 metric list, "1901.0"
  EXPECT_EQ(i.report.records, 11u);
  EXPECT_EQ(drops(i.report), expected_drops({{"no_matching_vector", 1},
                                    {"invalid_vector", 1},
                                    {"not_pass", 2},
                                    {"no_device_perf", 1},
                                    {"zero_device_perf", 1},
                                    {"vector_mismatch", 1},
                                    {"bad_args", 1},
                                    {"duplicate", 1}}));
  EXPECT_EQ(i.report.dropped_total(), 9u);
  EXPECT_EQ(i.report.not_pass_by_status, (std::map<std::string, std::size_t>{{"FAIL_CRASH_HANG", 1}, {"XFAIL", 1}}));
  EXPECT_EQ(vector_classes(i.report), (std::vector<std::size_t>{5, 2, 1, 0, 0, 2}));
  // A hash present in the results but in no suite of the vectors file.
  EXPECT_EQ(example(i.report, SweepDrop::no_matching_vector),
            "results_drops.json /0: input_hash 00000000000000000000000000000000000000000000000000000000 is in no suite of "
            "vectors_era_a.json");
  EXPECT_EQ(example(i.report, SweepDrop::vector_mismatch),
            "results_drops.json /6: parameter 'input_shape': vector 4dim/" + kH1 +
                " has [1,1,32,64], the record's original_vector_data [1,1,32,128]");
  EXPECT_EQ(example(i.report, SweepDrop::bad_args),
            "results_drops.json /7: vector 1dim/" + kH5 +
                ": invalid_argument: 'input_tensor' has rank 1; this op takes rank 2..4 (at /args/input_tensor/logical_shape)");
}

TEST(SweepImport, TagAndSuiteFilters) {
  torp::SweepOptions only_2dim;
  only_2dim.suites = {"2dim"};
  Import f = run("vectors_era_a.json", {"results_r1.json"}, only_2dim);
  EXPECT_TRUE(f.data.rows.empty());
  EXPECT_EQ(drops(f.report), expected_drops({{"filtered_out", 2}, {"no_device_perf", 1}}));
  EXPECT_EQ(vector_classes(f.report), (std::vector<std::size_t>{5, 0, 1, 3, 0, 1}));
  EXPECT_EQ(f.data.header["source"]["suites"], json({"2dim"}));

  torp::SweepOptions other_tag;
  other_tag.tag = "someone_else";
  Import t = run("vectors_era_a.json", {"results_r1.json"}, other_tag);
  EXPECT_EQ(drops(t.report), expected_drops({{"filtered_out", 3}}));
}

TEST(SweepImport, DatasetFileHasSuiteInputHashAndKernelDurationColumns) {
  Import i = run("vectors_era_c.json", {"results_r1_shuffled.json", "results_r3.json"});
  const fs::path dir = torp::test::temp_dir("sweep_columns");
  const fs::path file = dir / "exp.jsonl";
  i.data.save(file, false);
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  const json header = json::parse(line);
  EXPECT_EQ(header["format_version"], 2);
  EXPECT_EQ(header["columns"], json({"suite", "input_hash", "args", "kernel_duration_ns"}));
  std::size_t n = 0;
  while (std::getline(in, line)) {
    const json row = json::parse(line);
    EXPECT_EQ(row.size(), 4u) << line;
    EXPECT_TRUE(row["input_hash"].is_string() && row["kernel_duration_ns"].is_number()) << line;
    ++n;
  }
  EXPECT_EQ(n, 5u);
  const torp::Dataset loaded = torp::load_dataset(file);
  const torp::Dataset want = i.data.to_dataset();
  ASSERT_EQ(loaded.rows.size(), want.rows.size());
  for (std::size_t k = 0; k < loaded.rows.size(); ++k) {
    EXPECT_EQ(loaded.rows[k].args, want.rows[k].args);
    EXPECT_EQ(loaded.rows[k].runtime_ns, want.rows[k].runtime_ns);
    EXPECT_EQ(loaded.rows[k].suite, want.rows[k].suite);
    EXPECT_EQ(loaded.rows[k].input_hash, want.rows[k].input_hash);
  }
  EXPECT_EQ(torp::aggregate(loaded, torp::kDefaultRejectFactor, nullptr).size(), 3u);
  fs::remove_all(dir);
}

TEST(SweepImport, MalformedFilesNameTheFileAndJsonPath) {
  const fs::path dir = torp::test::temp_dir("sweep_malformed");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
    return dir / name;
  };
  const json spec = read_json(source("ops/exp.json"));
  const json device = read_json(source("devices/wormhole_n300.json"));
  auto message = [&](const fs::path& vectors, const fs::path& results) {
    return error_of([&] { torp::import_sweep(vectors, {results}, spec, device, {}, nullptr); });
  };
  const fs::path vectors = sweep("vectors_era_a.json"), results = sweep("results_r1.json");
  const std::string record = R"({"input_hash": ")" + kH1 + R"(", "status": "TestStatus.PASS", "device_perf": {}})";

  fs::path f = write("truncated.json", "[\n  {\"input_hash\": \"x\",\n   \"status\": ");
  EXPECT_EQ(message(vectors, f), f.string() +
                                     ":3:14: invalid JSON: syntax error while parsing value - unexpected end of input; "
                                     "expected '[', '{', or a literal (at /0/status)");
  // Python's NaN is read as null; columns stay the file's own.
  f = write("nan.json", R"([{"input_hash": "x", "e2e_perf": NaN, "status": }])");
  EXPECT_EQ(message(vectors, f).rfind(f.string() + ":1:49: invalid JSON: syntax error", 0), 0u) << message(vectors, f);
  f = write("object.json", R"({"records": [])" + record + "]}");
  EXPECT_EQ(message(vectors, f), f.string() + ": expected a results_export file: a JSON list of result records (at /)");
  f = write("status.json", "[" + record + R"(, {"input_hash": "x", "status": "TestStatus.EXPLODED"}])");
  EXPECT_EQ(message(vectors, f), f.string() +
                                     ": unknown status \"TestStatus.EXPLODED\" (expected a tt-metal "
                                     "TestStatus, e.g. \"TestStatus.PASS\" or \"pass\") (at /1/status)");
  f = write("scalar_record.json", "[" + record + ", 5]");
  EXPECT_EQ(message(vectors, f),
            f.string() + ": expected an object here (a results_export file: a JSON list of result records) (at /1)");
  f = write("no_hash.json", R"([{"status": "pass"}])");
  EXPECT_EQ(message(vectors, f), f.string() + ": a result record needs an \"input_hash\" string (at /0/input_hash)");
  f = write("vectors_list.json", "[1, 2]");
  EXPECT_EQ(message(f, results),
            f.string() + ": expected a vectors_export file: {suite: {vector_id: {parameter: value}}} (at /)");
  f = write("vectors_suite.json", R"({"4dim": [1]})");
  EXPECT_EQ(message(f, results), f.string() +
                                     ": expected an object here (a vectors_export file: {suite: {vector_id: "
                                     "{parameter: value}}}) (at /4dim)");
  f = write("vectors_validity.json", R"({"4dim": {"a/b": {"validity": "MAYBE"}}})");
  EXPECT_EQ(message(f, results), f.string() + ": unknown validity \"MAYBE\" (VALID or INVALID) (at /4dim/a~1b/validity)");
  EXPECT_EQ(error_of([&] { torp::import_sweep(vectors, {dir / "missing.json"}, spec, device, {}, nullptr); },
                     torp::ErrorCode::io),
            (dir / "missing.json").string() + ": cannot open the file");
  fs::remove_all(dir);
}

TEST(SweepImport, SweepBlockErrorsAreOpSpecErrors) {
  const json device = read_json(source("devices/wormhole_n300.json"));
  auto message = [&](const json& spec) {
    return error_of([&] { torp::import_sweep(sweep("vectors_era_a.json"), {sweep("results_r1.json")}, spec, device, {}, nullptr); },
                    torp::ErrorCode::op_spec);
  };
  json spec = read_json(source("ops/exp.json"));
  spec.erase("sweep");
  EXPECT_NE(message(spec).find("no \"sweep\" block"), std::string::npos);
  spec["sweep"] = {{"args", {{"input_tensor", {{"tensor", {{"dtype", "input_a_dtype"}}}}}}}};
  EXPECT_EQ(message(spec), "a tensor mapping needs \"shape\" (at /sweep/args/input_tensor/tensor)");
  spec["sweep"] = {{"args", {{"input_tensor", {{"tensor", {{"shape", "(1, input_shape"}}}}}}}};
  EXPECT_EQ(message(spec).rfind("cannot parse '(1, input_shape': ", 0), 0u) << message(spec);
  spec["sweep"] = {{"args", {{"output", {{"memory_config", "output_memory_config"}}}}}};
  EXPECT_EQ(message(spec), "the op has no argument 'output' (see \"args\") (at /sweep/args/output)");
  spec["sweep"] = {{"args", {{"input_tensor", {{"value", "input_shape"}}}}}};
  EXPECT_EQ(message(spec),
            "argument 'input_tensor' is declared \"tensor\"; a \"value\" mapping needs int, float, bool or enum (at "
            "/sweep/args/input_tensor/value)");
  spec["sweep"] = json::parse(R"({"args": {"input_tensor": {"tensor": {"shape": "input_shape"}, "when": 3}}})");
  EXPECT_EQ(message(spec),
            "expected a Python expression over the sweep parameters (a string) (at /sweep/args/input_tensor/when)");
}

TEST(SweepOps, ConcatenateHeads) {
  Import i = run("ops/concatenate_heads.vectors.json", {"ops/concatenate_heads.results.json"}, {},
                 "ops/concatenate_heads.json", "devices/wormhole_n150.json");
  auto args = [](json shape, const char* dtype, const char* in, const char* out) {
    return json{{"input_tensor", {{"logical_shape", shape}, {"dtype", dtype}, {"layout", "TILE"}, {"memory_config", interleaved(in)}}},
                {"memory_config", interleaved(out)}};
  };
  EXPECT_EQ(rows_of(i.data),
            (std::vector<Row>{
                {"nightly", "b84e40a2509352ed853d731064141e9cc14bcad7c65378a08339f6cb", args({2, 4, 1024, 128}, "BFLOAT8_B", "L1", "DRAM"), 11807},
                {"nightly", "7e42059b10e47716821c6083c22dbc11daae51b8936cdff91a734118", args({1, 16, 384, 64}, "BFLOAT16", "DRAM", "L1"), 6431}}));
  EXPECT_EQ(drops(i.report), expected_drops({}));  // R1 original_vector_data agrees with the era A vectors
  EXPECT_EQ(vector_classes(i.report), (std::vector<std::size_t>{3, 2, 1, 0, 0, 0}));  // the invalid one was skipped
}

TEST(SweepOps, CreateQkvHeads) {
  Import i = run("ops/create_qkv_heads.vectors.json", {"ops/create_qkv_heads.results.json"}, {},
                 "ops/create_qkv_heads.json", "devices/wormhole_n150.json");
  auto input = [](json shape, const char* dtype, const char* buffer) {
    return json{{"logical_shape", shape}, {"dtype", dtype}, {"layout", "TILE"}, {"memory_config", interleaved(buffer)}};
  };
  EXPECT_EQ(rows_of(i.data),
            (std::vector<Row>{
                {"suite_1", "591744e64ba585b0c357bdb7b96c2ff1c66e66921c9e2750c78ec663",
                 {{"input_tensor", input({1, 1, 128, (16 + 2 * 16) * 64}, "BFLOAT16", "DRAM")},  // num_kv_heads None
                  {"num_heads", 16}, {"transpose_k_heads", false}, {"memory_config", interleaved("DRAM")}},
                 9120},
                {"suite_1", "47e6959210167309b2f9880565477d522f639d95fbb267e7b24070aa",
                 {{"input_tensor", input({2, 1, 256, (16 + 2 * 4) * 64}, "BFLOAT8_B", "L1")},
                  {"num_heads", 16}, {"num_kv_heads", 4}, {"transpose_k_heads", true}, {"memory_config", interleaved("L1")}},
                 7342}}));
  EXPECT_EQ(drops(i.report), expected_drops({}));  // R0 original_vector_data repr strings agree
}

TEST(SweepOps, PagedSdpaDecodeUnpacksValidCombination) {
  Import i = run("ops/paged_sdpa_decode.vectors.json", {"ops/paged_sdpa_decode.results.json"}, {},
                 "ops/paged_scaled_dot_product_attention_decode.json", "devices/wormhole_n150.json");
  auto t = [](json shape, const char* dtype, const char* layout) {
    return json{{"logical_shape", shape}, {"dtype", dtype}, {"layout", layout}};
  };
  json q1 = t({1, 4, 8, 128}, "BFLOAT16", "TILE");
  q1["memory_config"] = interleaved("DRAM");
  json q2 = t({1, 1, 32, 64}, "BFLOAT16", "TILE");
  q2["memory_config"] = interleaved("DRAM");
  // "(4, 8, 1, 1024, 128, 64, 128, 32, True, None)": 4 users x 1024 / 64 = 64 blocks of 64.
  const json first = {{"input_tensor_q", q1},
                      {"input_tensor_k", t({64, 1, 64, 128}, "BFLOAT8_B", "TILE")},
                      {"input_tensor_v", t({64, 1, 64, 128}, "BFLOAT8_B", "TILE")},
                      {"page_table_tensor", t({4, 16}, "INT32", "ROW_MAJOR")},
                      {"cur_pos_tensor", t({4}, "INT32", "ROW_MAJOR")},
                      {"is_causal", true},
                      {"program_config", {{"k_chunk_size", 128}, {"q_chunk_size", 32}, {"exp_approx_mode", false}}},
                      {"compute_kernel_config",
                       {{"math_fidelity", "HiFi2"}, {"math_approx_mode", true}, {"fp32_dest_acc_en", false}, {"packer_l1_acc", false}}},
                      {"memory_config", interleaved("DRAM")}};
  // "(1, 32, 8, 4096, 64, 32, None, None, False, 0.125)": no program or compute kernel config, a mask.
  const json second = {{"input_tensor_q", q2},
                       {"input_tensor_k", t({128, 8, 32, 64}, "BFLOAT8_B", "TILE")},
                       {"input_tensor_v", t({128, 8, 32, 64}, "BFLOAT8_B", "TILE")},
                       {"page_table_tensor", t({1, 128}, "INT32", "ROW_MAJOR")},
                       {"cur_pos_tensor", t({1}, "INT32", "ROW_MAJOR")},
                       {"attn_mask", t({1, 1, 32, 4096}, "BFLOAT16", "TILE")},
                       {"is_causal", false},
                       {"scale", 0.125},
                       {"memory_config", interleaved("DRAM")}};
  EXPECT_EQ(rows_of(i.data),
            (std::vector<Row>{{"paged", "e36330aa0829d45079f7ebcae3e1331dc7d0fa19066b3fe93ec8d68f", first, 15234},
                              {"paged", "543ddf49b50c54f0624db47d870847a2aa5e6f97fc143744c58a625a", second, 20113}}));
  EXPECT_EQ(vector_classes(i.report), (std::vector<std::size_t>{3, 2, 1, 0, 0, 0}));
}

TEST(SweepOps, MatmulUnpacksMatmulSpecs) {
  Import i = run("ops/matmul.vectors.json", {"ops/matmul.results.json"}, {}, "ops/matmul.json");
  const json grid = json::array({{{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", 7}, {"y", 0}}}}});
  const json sharded = {{"buffer_type", "L1"}, {"memory_layout", "HEIGHT_SHARDED"},
                        {"shard_spec", {{"grid", grid}, {"shape", {128, 64}}, {"orientation", "ROW_MAJOR"}}}};
  auto t = [](json shape, const char* dtype, json mc) {
    return json{{"logical_shape", shape}, {"dtype", dtype}, {"layout", "TILE"}, {"memory_config", mc}};
  };
  // "((1,), (1024, 64, 128), False)": a (1, 1024, 64) height-sharded on 8 cores, b (64, 128).
  const json first = {{"input_tensor_a", t({1, 1024, 64}, "BFLOAT16", sharded)},
                      {"input_tensor_b", t({64, 128}, "BFLOAT16", interleaved("DRAM"))},
                      {"transpose_a", false}, {"transpose_b", false},
                      {"memory_config", {{"buffer_type", "L1"}, {"memory_layout", "HEIGHT_SHARDED"}}},
                      {"dtype", "BFLOAT16"}};
  // "((2, 3), (64, 128, 96), True)" with transpose_b: b batched and (n, k).
  const json second = {{"input_tensor_a", t({2, 3, 64, 128}, "BFLOAT8_B", interleaved("DRAM"))},
                       {"input_tensor_b", t({2, 3, 96, 128}, "BFLOAT8_B", interleaved("DRAM"))},
                       {"transpose_a", false}, {"transpose_b", true},
                       {"memory_config", interleaved("DRAM")},
                       {"dtype", "BFLOAT16"}};
  EXPECT_EQ(rows_of(i.data),
            (std::vector<Row>{{"default", "7f9d4b051cc60fe3452ddec04018c40646b1de662c1f032862caf8e0", first, 8123},
                              {"default", "a8a3f60b2534a43f65e5c75f01047aa7deef356b09ac9450d9a9430e", second, 23456}}));
}

TEST(SweepOps, ImportedRowsAreQueriesTheShippedModelsAnswer) {
  torp::Predictor p(source("models"));
  struct Case {
    std::string fixture, spec, device;
    std::vector<std::string> models;  // per row: the model that answers, or "no_model"
  };
  const Case cases[] = {
      {"concatenate_heads", "ops/concatenate_heads.json", "devices/wormhole_n150.json",
       {"reference/concatenate_heads", "reference/concatenate_heads"}},
      {"create_qkv_heads", "ops/create_qkv_heads.json", "devices/wormhole_n150.json",
       {"reference/create_qkv_heads", "reference/create_qkv_heads"}},
      {"paged_sdpa_decode", "ops/paged_scaled_dot_product_attention_decode.json", "devices/wormhole_n150.json",
       {"reference/paged_scaled_dot_product_attention_decode", "reference/paged_scaled_dot_product_attention_decode"}},
      // The trained matmul model covers a height-sharded a and an unbatched b only; the analytical
      // model answers the other row.
      {"matmul", "ops/matmul.json", "devices/wormhole_n300.json", {"wormhole_n300/matmul", "wormhole_n300/analytical/matmul"}},
  };
  for (const Case& c : cases) {
    Import i = run("ops/" + c.fixture + ".vectors.json", {"ops/" + c.fixture + ".results.json"}, {}, c.spec, c.device);
    const torp::Dataset d = i.data.to_dataset();
    ASSERT_EQ(d.rows.size(), c.models.size()) << c.fixture;
    for (std::size_t k = 0; k < d.rows.size(); ++k) {
      auto r = p.predict(d.op, d.rows[k].args);
      EXPECT_EQ(r.ok() ? std::string(r.value().model_id) : std::string(torp::to_string(r.error().code)), c.models[k])
          << c.fixture << " row " << k << (r.ok() ? "" : ": " + r.error().describe());
    }
  }
}

TEST(SweepCli, FromSweepWritesDatasetAndReportOrNothing) {
  const fs::path dir = torp::test::temp_dir("sweep_cli");
  const fs::path out = dir / "exp.jsonl", report = dir / "exp.report.json", log = dir / "log.txt";
  const std::string base = "dataset from-sweep --op exp --ops '" + source("ops").string() + "' --device wormhole_n300 --devices '" +
                           source("devices").string() + "' --vectors '" + sweep("vectors_era_a.json").string() + "'";
  const std::string results = " --results '" + sweep("results_r1.json").string() + "' '" + sweep("results_r3.json").string() + "'";
  auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path() != log) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };

  ASSERT_EQ(run_cli(base + results + " -o '" + out.string() + "'", log), 0) << file_text(log);
  EXPECT_EQ(entries(), (std::vector<std::string>{"exp.jsonl", "exp.report.json"}));
  const torp::Dataset d = torp::load_dataset(out);
  ASSERT_EQ(d.rows.size(), 3u);  // 1873 from R1, 5120 and 1890 from R3
  EXPECT_EQ(d.rows[0].runtime_ns, 1873);
  const json r = read_json(report);
  EXPECT_EQ(r["dataset"], "exp.jsonl");
  EXPECT_EQ(r["records"], 6);
  EXPECT_EQ(r["rows"], 3);
  EXPECT_EQ(r["dropped"]["not_pass"], 2);
  EXPECT_EQ(r["dropped"]["no_device_perf"], 1);
  EXPECT_EQ(r["vectors"]["invalid"], 1);
  EXPECT_EQ(r["vectors"]["without_result"], 1);
  EXPECT_NE(file_text(log).find("records dropped"), std::string::npos) << file_text(log);

  // Existing outputs are kept unless --force.
  const std::string before = file_text(out);
  EXPECT_EQ(run_cli(base + " --results '" + sweep("results_r3.json").string() + "' -o '" + out.string() + "'", log), 1);
  EXPECT_NE(file_text(log).find("exists; pass --force"), std::string::npos) << file_text(log);
  EXPECT_EQ(file_text(out), before);
  EXPECT_EQ(run_cli(base + " --results '" + sweep("results_r3.json").string() + "' -o '" + out.string() + "' --force", log), 0);
  EXPECT_EQ(torp::load_dataset(out).rows.size(), 2u);

  // A malformed results file or no usable record: an error, and nothing written.
  fs::remove(out);
  fs::remove(report);
  std::ofstream(dir / "truncated.json") << "[{\"input_hash\": ";
  EXPECT_EQ(run_cli(base + " --results '" + sweep("results_r1.json").string() + "' '" + (dir / "truncated.json").string() +
                        "' -o '" + out.string() + "'",
                    log),
            1);
  EXPECT_NE(file_text(log).find("truncated.json:1:17: invalid JSON"), std::string::npos) << file_text(log);
  fs::remove(dir / "truncated.json");
  EXPECT_EQ(run_cli(base + " --suite 2dim --results '" + sweep("results_r0.json").string() + "' -o '" + out.string() + "'", log), 1);
  EXPECT_NE(file_text(log).find("no usable result records; nothing written"), std::string::npos);
  EXPECT_EQ(entries(), std::vector<std::string>{});

  EXPECT_EQ(run_cli(base + " -o '" + out.string() + "'", log), 2);  // --results missing
  EXPECT_EQ(run_cli("dataset from-sweep --help", log), 0);
  for (const char* option : {"--op NAME|FILE", "--results FILE ...", "-o,--out DATASET", "--force", "--latest-only"})
    EXPECT_NE(file_text(log).find(option), std::string::npos) << option;
  fs::remove_all(dir);
}
