// SPDX-License-Identifier: Apache-2.0
// Sweep import: value eras A..C, result generations R0..R3, join by (suite, input_hash), drop reasons.
#include <gtest/gtest.h>

#include "support/fixtures.hpp"
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "torp/dataset.hpp"
#include "torp/sweep.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using torp::SweepDrop;
using torp::test::read_json;
using torp::test::source;

const std::string kH1 = "1adfce5843ad05ca6f0ccce87fd95747ed424046bb624e1106e2312e";  // 4dim [1,1,32,64] bf16 DRAM
const std::string kH3 = "d9ef972082a98a8b53e44c9d9a8b380dad14afc2b17249c0d920e6da";  // 2dim [2048,1024] uint16 DRAM

fs::path sweep(const std::string& name) { return source("tests/data/sweep/" + name); }


struct Import {
  torp::Dataset data;
  torp::SweepImportReport report;
};

Import run(const std::string& vectors, const std::vector<std::string>& results, const torp::SweepOptions& opt = {}) {
  std::vector<fs::path> files;
  for (const auto& r : results) files.push_back(sweep(r));
  Import i;
  i.data = torp::import_sweep(sweep(vectors), files, read_json(source("ops/exp.json")),
                              read_json(source("devices/wormhole_n300.json")), opt, &i.report);
  return i;
}

json interleaved(const char* buffer) { return {{"buffer_type", buffer}, {"memory_layout", "INTERLEAVED"}}; }

json exp_args(const json& shape, const char* dtype, const char* buffer) {
  return {{"input_tensor", {{"logical_shape", shape}, {"dtype", dtype}, {"layout", "TILE"}, {"memory_config", interleaved(buffer)}}},
          {"memory_config", interleaved(buffer)}};
}

/// Runtime per logical shape of the imported rows (each shape once).
std::map<std::string, double> runtime_by_shape(const torp::Dataset& d) {
  std::map<std::string, double> m;
  for (const auto& r : d.rows) {
    auto [it, inserted] = m.emplace(r.args["input_tensor"]["logical_shape"].dump(), r.runtime_ns);
    EXPECT_TRUE(inserted) << "shape twice: " << it->first;
  }
  return m;
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
  EXPECT_EQ(decode_sweep_value("DataType.BFLOAT16"), json("DataType.BFLOAT16"));
  EXPECT_EQ(decode_sweep_value("MathFidelity.HiFi2"), json("MathFidelity.HiFi2"));
  EXPECT_EQ(decode_sweep_value("hello world"), json("hello world"));
  EXPECT_EQ(decode_sweep_value("[1, 2"), json("[1, 2"));
  EXPECT_EQ(decode_sweep_value(R"({'a': '[1, 2]', 'b': (1, None, False, 2.5), 'c': 'it\'s', "d": {}})"),
            json::parse(R"({"a": [1, 2], "b": [1, null, false, 2.5], "c": "it's", "d": {}})"));
  EXPECT_EQ(decode_sweep_value(json({1, "2", "(3, 4)"})), json::parse("[1, 2, [3, 4]]"));
  EXPECT_EQ(decode_sweep_value(json(7)), json(7));
}

TEST(SweepImport, R0ResultsWithEraAVectors) {
  Import i = run("vectors_era_a.json", {"results_r0.json"});
  EXPECT_EQ(i.report.vectors, 5u);
  EXPECT_EQ(i.report.records, 4u);
  ASSERT_EQ(i.data.rows.size(), 1u);
  EXPECT_EQ(i.data.rows[0].args, exp_args({1, 1, 32, 64}, "BFLOAT16", "DRAM"));
  EXPECT_EQ(i.data.rows[0].runtime_ns, 1873);
  EXPECT_EQ(i.data.rows[0].source, json({{"suite", "4dim"}, {"input_hash", kH1}, {"results", "results_r0.json"}}));
  EXPECT_EQ(i.report.count(SweepDrop::not_pass), 2u);
  EXPECT_EQ(i.report.not_pass_by_status.at("FAIL_L1_OUT_OF_MEM"), 1u);
  EXPECT_EQ(i.report.not_pass_by_status.at("FAIL_UNSUPPORTED_DEVICE_PERF"), 1u);
  EXPECT_EQ(i.report.count(SweepDrop::invalid_vector), 1u);  // NOT_RUN "INVALID VECTOR" record
  EXPECT_EQ(i.report.dropped_total(), 3u);
  EXPECT_EQ(i.data.op, "ttnn.exp");
  EXPECT_EQ(i.data.header["device"], "wormhole_n300");
  EXPECT_EQ(i.data.header["tt_metal_commit"], "87144607");  // the records' git_hash
  EXPECT_EQ(i.data.header["source"]["vectors"]["sha256"], torp::sha256_file(sweep("vectors_era_a.json")));
  EXPECT_EQ(i.data.header["source"]["results"][0]["file"], "results_r0.json");
}

TEST(SweepImport, R1ExampleDropsNullAndEmptyDevicePerf) {
  Import i = run("vectors_era_a.json", {"results_r1.json"});
  ASSERT_EQ(i.data.rows.size(), 1u);
  EXPECT_EQ(i.data.rows[0].args, exp_args({1, 1, 32, 64}, "BFLOAT16", "DRAM"));
  EXPECT_EQ(i.data.rows[0].runtime_ns, 1873);
  EXPECT_EQ(i.report.not_pass_by_status.at("FAIL_L1_OUT_OF_MEM"), 1u);  // device_perf null
  EXPECT_EQ(i.report.count(SweepDrop::no_device_perf), 1u);             // PASS with device_perf {}
  EXPECT_NE(i.report.example[static_cast<std::size_t>(SweepDrop::no_device_perf)].find("results_r1.json[2]"),
            std::string::npos);
}

TEST(SweepImport, R3ResultsGiveTheSameRowsWithEraAAndEraCVectors) {
  Import a = run("vectors_era_a.json", {"results_r3.json"});
  Import c = run("vectors_era_c.json", {"results_r3.json"});
  ASSERT_EQ(a.data.rows.size(), 2u);
  ASSERT_EQ(c.data.rows.size(), 2u);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(a.data.rows[k].args, c.data.rows[k].args);
    EXPECT_EQ(a.data.rows[k].runtime_ns, c.data.rows[k].runtime_ns);
  }
  EXPECT_EQ(a.data.rows[0].args, exp_args({2048, 1024}, "UINT16", "DRAM"));
  EXPECT_EQ(a.data.rows[0].runtime_ns, 5120);
  EXPECT_EQ(a.data.rows[1].runtime_ns, 1890);
  EXPECT_EQ(a.report.not_pass_by_status.at("FAIL_L1_OUT_OF_MEM"), 1u);  // lowercase R3 spelling
  EXPECT_TRUE(a.data.header["tt_metal_commit"].is_null());               // R3 records carry no git_hash
}

TEST(SweepImport, JoinsByInputHashNotByPosition) {
  // Records are in reverse vector order and carry shifted suite_name / vector_id fields.
  Import i = run("vectors_era_a.json", {"results_r1_shuffled.json"});
  ASSERT_EQ(i.data.rows.size(), 3u);
  EXPECT_EQ(i.report.dropped_total(), 0u);
  auto by_shape = runtime_by_shape(i.data);
  EXPECT_EQ(by_shape.at("[1,1,32,64]"), 1866);
  EXPECT_EQ(by_shape.at("[8,4,288,320]"), 40211);
  EXPECT_EQ(by_shape.at("[2048,1024]"), 5104);
  EXPECT_EQ(i.data.rows[0].source["suite"], "2dim");  // the vector's suite, not the record's shifted one
  EXPECT_EQ(i.data.rows[0].source["input_hash"], kH3);
  EXPECT_EQ(i.data.rows[1].args, exp_args({8, 4, 288, 320}, "FLOAT32", "L1"));
}

TEST(SweepImport, CountsEveryDropReason) {
  Import i = run("vectors_era_a.json", {"results_drops.json"});
  const auto& r = i.report;
  EXPECT_EQ(r.records, 11u);
  EXPECT_EQ(r.count(SweepDrop::no_matching_vector), 1u);
  EXPECT_EQ(r.count(SweepDrop::invalid_vector), 1u);
  EXPECT_EQ(r.count(SweepDrop::not_pass), 2u);
  EXPECT_EQ(r.not_pass_by_status.at("FAIL_CRASH_HANG"), 1u);
  EXPECT_EQ(r.not_pass_by_status.at("XFAIL"), 1u);
  EXPECT_EQ(r.count(SweepDrop::no_device_perf), 1u);
  EXPECT_EQ(r.count(SweepDrop::zero_device_perf), 1u);
  EXPECT_EQ(r.count(SweepDrop::vector_mismatch), 1u);
  EXPECT_EQ(r.count(SweepDrop::bad_args), 1u);
  EXPECT_EQ(r.count(SweepDrop::duplicate), 1u);
  EXPECT_EQ(r.count(SweepDrop::filtered_out), 0u);
  EXPECT_EQ(r.count(SweepDrop::superseded), 0u);
  EXPECT_EQ(r.dropped_total(), 9u);
  EXPECT_EQ(r.imported, 2u);
  for (SweepDrop d : {SweepDrop::no_matching_vector, SweepDrop::invalid_vector, SweepDrop::not_pass,
                      SweepDrop::no_device_perf, SweepDrop::zero_device_perf, SweepDrop::vector_mismatch,
                      SweepDrop::bad_args, SweepDrop::duplicate})
    EXPECT_FALSE(r.example[static_cast<std::size_t>(d)].empty()) << torp::to_string(d);
  EXPECT_NE(r.example[static_cast<std::size_t>(SweepDrop::vector_mismatch)].find("input_shape"), std::string::npos);
  EXPECT_NE(r.example[static_cast<std::size_t>(SweepDrop::bad_args)].find("rank"), std::string::npos);
  ASSERT_EQ(i.data.rows.size(), 2u);
  EXPECT_EQ(i.data.rows[0].args, exp_args({2048, 1024}, "UINT16", "DRAM"));
  EXPECT_EQ(i.data.rows[0].runtime_ns, 5000);  // {uncached, cached}: the cached run
  EXPECT_EQ(i.data.rows[1].runtime_ns, 1901);  // R2 list of {metric_name, metric_value}, "1901.0"
}

TEST(SweepImport, FiltersRepeatsAndLatestOnly) {
  torp::SweepOptions only_2dim;
  only_2dim.suites = {"2dim"};
  Import f = run("vectors_era_a.json", {"results_r1.json"}, only_2dim);
  EXPECT_EQ(f.report.count(SweepDrop::filtered_out), 2u);
  EXPECT_EQ(f.report.count(SweepDrop::no_device_perf), 1u);
  EXPECT_TRUE(f.data.rows.empty());
  EXPECT_EQ(f.data.header["source"]["suites"], json({"2dim"}));

  torp::SweepOptions other_tag;
  other_tag.tag = "someone_else";
  EXPECT_EQ(run("vectors_era_a.json", {"results_r1.json"}, other_tag).report.count(SweepDrop::filtered_out), 3u);

  // Separate runs are repeats; the same file twice only duplicates.
  Import both = run("vectors_era_a.json", {"results_r1.json", "results_r1_shuffled.json"});
  EXPECT_EQ(both.data.rows.size(), 4u);
  Import twice = run("vectors_era_a.json", {"results_r1_shuffled.json", "results_r1_shuffled.json"});
  EXPECT_EQ(twice.data.rows.size(), 3u);
  EXPECT_EQ(twice.report.count(SweepDrop::duplicate), 3u);

  torp::SweepOptions latest;
  latest.latest_only = true;
  latest.tt_metal_commit = "87144607f757092c2c0cc817d12a8942d30fbfc9";
  Import l = run("vectors_era_a.json", {"results_r1_shuffled.json", "results_r1.json"}, latest);
  EXPECT_EQ(l.report.count(SweepDrop::superseded), 1u);
  auto by_shape = runtime_by_shape(l.data);
  EXPECT_EQ(by_shape.at("[1,1,32,64]"), 1866);  // 2025-10-22 beats 2025-10-21 whatever the file order
  EXPECT_EQ(l.data.header["tt_metal_commit"], "87144607f757092c2c0cc817d12a8942d30fbfc9");
}

TEST(SweepImport, ImportedDatasetRoundTrips) {
  Import i = run("vectors_era_c.json", {"results_r1_shuffled.json", "results_r3.json"});
  fs::path file = fs::temp_directory_path() / ("torp_test_sweep_" + std::to_string(::getpid()) + ".jsonl");
  torp::save_dataset(i.data, file, true);
  torp::Dataset l = torp::load_dataset(file);
  fs::remove(file);
  ASSERT_EQ(l.rows.size(), i.data.rows.size());
  for (std::size_t k = 0; k < l.rows.size(); ++k) {
    EXPECT_EQ(l.rows[k].args, i.data.rows[k].args);
    EXPECT_EQ(l.rows[k].runtime_ns, i.data.rows[k].runtime_ns);
    EXPECT_EQ(l.rows[k].source, i.data.rows[k].source);
  }
  torp::AggregationReport rep;
  EXPECT_EQ(torp::aggregate(l, torp::kDefaultRejectFactor, &rep).size(), 3u);
}

TEST(SweepImport, ErrorsNameTheFileAndPosition) {
  const json device = read_json(source("devices/wormhole_n300.json"));
  json spec = read_json(source("ops/exp.json"));
  const fs::path dir = fs::temp_directory_path() / ("torp_test_sweep_err_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto code_and_message = [&](const fs::path& vectors, const fs::path& results, const json& s) {
    try {
      torp::import_sweep(vectors, {results}, s, device, {}, nullptr);
    } catch (const torp::TorpError& e) {
      return std::make_pair(e.error().code, e.error().message);
    }
    return std::make_pair(torp::ErrorCode::io, std::string("no error"));
  };
  std::ofstream(dir / "broken.json") << "[\n  {\"input_hash\": \"x\",\n   \"status\": }\n]\n";
  auto [c1, m1] = code_and_message(sweep("vectors_era_a.json"), dir / "broken.json", spec);
  EXPECT_EQ(c1, torp::ErrorCode::dataset);
  EXPECT_EQ(m1.rfind((dir / "broken.json").string() + ":3:14: invalid JSON", 0), 0u) << m1;

  std::ofstream(dir / "list.json") << "[1, 2]";
  auto [c2, m2] = code_and_message(dir / "list.json", sweep("results_r1.json"), spec);
  EXPECT_EQ(c2, torp::ErrorCode::dataset);
  EXPECT_NE(m2.find("{suite: {vector_id: {...}}}"), std::string::npos) << m2;

  spec.erase("sweep");
  auto [c3, m3] = code_and_message(sweep("vectors_era_a.json"), sweep("results_r1.json"), spec);
  EXPECT_EQ(c3, torp::ErrorCode::op_spec);
  EXPECT_NE(m3.find("no \"sweep\" block"), std::string::npos) << m3;

  spec["sweep"] = {{"args", {{"input_tensor", {{"tensor", {{"dtype", "input_a_dtype"}}}}}}}};
  auto [c4, m4] = code_and_message(sweep("vectors_era_a.json"), sweep("results_r1.json"), spec);
  EXPECT_EQ(c4, torp::ErrorCode::op_spec);
  EXPECT_NE(m4.find("needs \"shape\""), std::string::npos) << m4;
  fs::remove_all(dir);
}

TEST(SweepImport, CliImportsAndRefusesEmptyResults) {
  const fs::path out = fs::temp_directory_path() / ("torp_test_sweep_cli_" + std::to_string(::getpid()) + ".jsonl");
  fs::remove(out);
  const std::string base = std::string(TORP_CLI_PATH) + " dataset import-sweep --op-spec " + source("ops/exp.json").string() +
                           " --device " + source("devices/wormhole_n300.json").string() + " --vectors " +
                           sweep("vectors_era_a.json").string();
  auto rc = [](const std::string& cmd) {
    int r = std::system((cmd + " >/dev/null 2>&1").c_str());
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
  };
  // Only failures and no perf: nothing to import, nothing written.
  EXPECT_EQ(rc(base + " --suite 2dim --results " + sweep("results_r0.json").string() + " " + out.string()), 1);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(rc(base + " --results " + sweep("results_r1.json").string() + " --results " +
               sweep("results_r3.json").string() + " " + out.string()),
            0);
  EXPECT_EQ(torp::load_dataset(out).rows.size(), 3u);
  fs::remove(out);
  EXPECT_EQ(rc(base + " " + out.string()), 2);  // --results missing
}
