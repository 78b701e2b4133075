// SPDX-License-Identifier: Apache-2.0
// The evaluation report's comparison: per-group figures on a dataset built so that every figure
// is known by hand, the physical baseline alone, a previous model beside the new one, and the
// sweep suite / input_hash of the rows in the worst-error tables.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "support/fixtures.hpp"
#include "torp/train/evaluate.hpp"

using nlohmann::json;
using namespace torp;

namespace {

json exp_args(const char* dtype, const char* buffer, std::vector<int> shape) {
  return {{"input_tensor",
           {{"dtype", dtype},
            {"layout", "TILE"},
            {"logical_shape", shape},
            {"memory_config", {{"buffer_type", buffer}, {"memory_layout", "INTERLEAVED"}}}}}};
}

/// One group of the hand-built dataset: dtype, buffer and the signed error (predicted / label - 1)
/// of each of its configurations; configuration k has shape kShapes[k].
struct HandGroup {
  const char* dtype;
  const char* buffer;
  std::vector<double> errors;
};
const std::vector<std::vector<int>> kShapes = {{1, 1, 32, 32}, {1, 1, 64, 128}, {1, 1, 320, 320}, {1, 1, 640, 1280}};
// tiles 1, 8, 100, 800 -> ceil(tiles / 56 cores) = 1, 1, 2, 15 -> the tiny model's law 1500 + 120 x:
const std::vector<double> kBaseline = {1620, 1620, 1740, 3300};
const std::vector<HandGroup> kGroups = {{"BFLOAT16", "DRAM", {0.0, 0.05, -0.20, 0.30}},
                                        {"BFLOAT16", "L1", {0.01, -0.02, 0.08}},
                                        {"FLOAT32", "DRAM", {0.50, -0.15}},
                                        {"FLOAT32", "L1", {0.0}}};

/// The tiny exp model with every input inside its range and a calibrated "inside" interval
/// [runtime * e^-0.2, runtime * e^0.3]; no plausibility rule (every label plausible).
ModelFile hand_model() {
  ModelFile m = test::tiny_exp_model();
  m.op_spec.erase("plausibility");
  m.input_range = std::vector<std::array<double, 2>>(4, {-100.0, 100.0});
  Calibration c;
  c.domains["inside"] = {-0.2, 0.3, 10};
  m.calibration = c;
  return m;
}

/// Labels = served prediction / (1 + error): each configuration's APE is |error| exactly (to rounding).
/// Rows carry a suite and input_hash "h<group><k>"; the first configuration is measured twice
/// (two vectors).
Dataset hand_dataset(const ModelFile& m) {
  Dataset d;
  d.op = "ttnn.exp";
  std::vector<Configuration> configs;
  for (const auto& g : kGroups)
    for (std::size_t k = 0; k < g.errors.size(); ++k) configs.push_back({"", exp_args(g.dtype, g.buffer, kShapes[k]), {}, 0, 0, {}, {}});
  const std::vector<ServedAnswer> served = serve_configurations(m, configs);
  std::size_t i = 0;
  for (std::size_t gi = 0; gi < kGroups.size(); ++gi)
    for (std::size_t k = 0; k < kGroups[gi].errors.size(); ++k, ++i) {
      const double label = served[i].runtime_ns / (1.0 + kGroups[gi].errors[k]);
      const std::string hash = "h" + std::to_string(gi) + std::to_string(k);
      d.rows.push_back({configs[i].args, label, 0, "exp_suite_" + std::to_string(gi), hash});
      if (i == 0) d.rows.push_back({configs[i].args, label, 0, "exp_suite_0", "h00b"});
    }
  return d;
}

ReportGroup dtype_buffer() {
  return parse_report_group(json::parse(R"({"name": "dtype x buffer", "keys": ["input_tensor.dtype", "input_tensor.buffer_type"]})"), "");
}

Evaluation hand_evaluation(const ModelFile& m, const ModelFile* previous = nullptr) {
  EvaluationOptions o;
  o.all = true;
  o.groups = std::vector<ReportGroup>{dtype_buffer()};
  return evaluate_model(m, hand_dataset(m), o, previous);
}

const json& row_labelled(const json& comparison, const std::string& label) {
  for (const json& r : comparison["groups"][0]["rows"])
    if (r["label"] == label) return r;
  ADD_FAILURE() << "no row " << label << " in " << comparison.dump();
  static const json none;
  return none;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(ReportGroups, PerGroupFiguresAreTheHandComputedOnes) {
  const ModelFile m = hand_model();
  const Evaluation ev = hand_evaluation(m);
  const json& c = ev.comparison;
  ASSERT_EQ(c["groups"].size(), 1u);
  EXPECT_EQ(c["groups"][0]["name"], "dtype x buffer");
  ASSERT_EQ(c["groups"][0]["rows"].size(), 4u);
  struct Expected {
    const char* label;
    std::size_t n;
    double within_10, median_ape, coverage;
  };
  // APEs (%): {0, 5, 20, 30}, {1, 2, 8}, {50, 15}, {0}. Inside [e^-0.2, e^0.3] x runtime lies a
  // label runtime / (1 + error) unless log(1 + error) > 0.2 or < -0.3: +30% and +50% fall out.
  const Expected expected[] = {{"BFLOAT16 × DRAM", 4, 0.5, 12.5, 0.75},
                               {"BFLOAT16 × L1", 3, 1.0, 2.0, 1.0},
                               {"FLOAT32 × DRAM", 2, 0.0, 32.5, 0.5},
                               {"FLOAT32 × L1", 1, 1.0, 0.0, 1.0}};
  for (const auto& x : expected) {
    const json& r = row_labelled(c, x.label)["model"];
    EXPECT_EQ(r["n"].get<std::size_t>(), x.n) << x.label;
    EXPECT_DOUBLE_EQ(r["within_10"].get<double>(), x.within_10) << x.label;
    EXPECT_NEAR(r["median_ape"].get<double>(), x.median_ape, 1e-9) << x.label;
    EXPECT_DOUBLE_EQ(r["coverage"].get<double>(), x.coverage) << x.label;
    EXPECT_NEAR(r["median_width"].get<double>(), std::exp(0.3) - std::exp(-0.2), 1e-12) << x.label;
  }
  // Overall: 10 configurations, 6 within 10%; APEs sorted 0 0 1 2 5 8 15 20 30 50 -> median 6.5.
  const json& all = c["overall"]["plausible"]["model"];
  EXPECT_EQ(all["n"].get<std::size_t>(), 10u);
  EXPECT_DOUBLE_EQ(all["within_10"].get<double>(), 0.6);
  EXPECT_NEAR(all["median_ape"].get<double>(), 6.5, 1e-9);
  EXPECT_DOUBLE_EQ(all["coverage"].get<double>(), 0.8);  // 3 + 3 + 1 + 1 of 10
  EXPECT_TRUE(row_labelled(c, "BFLOAT16 × DRAM")["common"].empty());  // the enum names say it all
}

TEST(ReportGroups, RowsOfABareNumberKeyNameWhatTheirConfigurationsShare) {
  const ModelFile m = hand_model();
  EvaluationOptions o;
  o.all = true;
  o.groups = std::vector<ReportGroup>{parse_report_group(json("dtype_buffer"), "")};  // dtype * 8 + buffer_type
  const Evaluation ev = evaluate_model(m, hand_dataset(m), o);
  // What the rows of a group share (beyond what every row shares): dtype and buffer.
  EXPECT_EQ(row_labelled(ev.comparison, "dtype_buffer = 0")["common"],
            json({{"/input_tensor/dtype", "BFLOAT16"}, {"/input_tensor/memory_config/buffer_type", "DRAM"}}));
  EXPECT_TRUE(row_labelled(ev.comparison, "dtype_buffer = 9")["common"].empty());  // one configuration: nothing to say
  EXPECT_NE(comparison_table(ev.comparison).find("dtype_buffer = 1 (input_tensor.dtype=BFLOAT16, input_tensor.buffer_type=L1)"),
            std::string::npos)
      << comparison_table(ev.comparison);
  EXPECT_NE(html_report(m, ev, "hand.jsonl").find("input_tensor.dtype=BFLOAT16, input_tensor.buffer_type=DRAM"),
            std::string::npos);
}

TEST(ReportGroups, BaselineAloneIsTheLawScoredTheSameWay) {
  const ModelFile m = hand_model();
  const Evaluation ev = hand_evaluation(m);
  // The law by hand per configuration, and its scores in the BFLOAT16 x L1 group.
  std::size_t i = 0;
  std::vector<double> l1_ape;
  std::size_t l1_within = 0;
  for (std::size_t gi = 0; gi < kGroups.size(); ++gi)
    for (std::size_t k = 0; k < kGroups[gi].errors.size(); ++k, ++i) {
      const json args = exp_args(kGroups[gi].dtype, kGroups[gi].buffer, kShapes[k]);
      std::size_t at = 0;
      while (ev.configs[at].args != args) ++at;
      EXPECT_EQ(ev.baseline[at], kBaseline[k]) << args.dump();
      if (gi != 1) continue;
      const double ape = std::fabs(kBaseline[k] / ev.configs[at].label_ns - 1.0);
      l1_ape.push_back(100 * ape);
      l1_within += ape <= 0.10 ? 1 : 0;
    }
  std::sort(l1_ape.begin(), l1_ape.end());
  const json& b = row_labelled(ev.comparison, "BFLOAT16 × L1")["baseline"];
  EXPECT_EQ(b["n"].get<std::size_t>(), 3u);
  EXPECT_DOUBLE_EQ(b["within_10"].get<double>(), static_cast<double>(l1_within) / 3.0);
  EXPECT_DOUBLE_EQ(b["median_ape"].get<double>(), l1_ape[1]);
  EXPECT_FALSE(b.contains("coverage"));  // the law alone has no interval
}

TEST(ReportGroups, BaselineAloneEqualsTheServedLawBitForBit) {
  // An analytical copy of the tiny model answers its law: served runtime == baseline column.
  ModelFile law = test::tiny_exp_model();
  law.kind = ModelKind::analytical;
  law.ensemble.clear();
  const auto configs = aggregate(load_dataset(test::source_dir() / "tests/data/exp_slice.jsonl"), kDefaultRejectFactor, nullptr);
  const std::vector<ServedAnswer> served = serve_configurations(law, configs);
  const std::vector<double> base = baseline_predictions(test::tiny_exp_model(), configs);
  std::size_t compared = 0;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    ASSERT_EQ(std::isnan(served[i].runtime_ns), std::isnan(base[i])) << configs[i].key;
    if (std::isnan(base[i])) continue;
    EXPECT_EQ(served[i].runtime_ns, base[i]) << configs[i].key;
    ++compared;
  }
  EXPECT_GT(compared, 100u);
  ModelFile no_law = test::tiny_exp_model();
  no_law.baseline.reset();
  for (double v : baseline_predictions(no_law, configs)) EXPECT_TRUE(std::isnan(v));
}

TEST(ReportGroups, PreviousSameModelGivesIdenticalColumns) {
  const ModelFile m = hand_model();
  const Evaluation ev = hand_evaluation(m, &m);
  const json& c = ev.comparison;
  EXPECT_EQ(c["previous"], m.id);
  for (const char* part : {"plausible", "all"}) EXPECT_EQ(c["overall"][part]["previous"], c["overall"][part]["model"]);
  for (const json& r : c["groups"][0]["rows"]) EXPECT_EQ(r["previous"], r["model"]) << r["label"];
  // A different previous model: its own figures (the law alone, as an analytical model).
  ModelFile law = hand_model();
  law.kind = ModelKind::analytical;
  law.ensemble.clear();
  law.calibration.reset();
  const Evaluation ev2 = hand_evaluation(m, &law);
  for (const json& r : ev2.comparison["groups"][0]["rows"]) {
    EXPECT_EQ(r["previous"]["within_10"], r["baseline"]["within_10"]) << r["label"];
    EXPECT_EQ(r["previous"]["median_ape"], r["baseline"]["median_ape"]) << r["label"];
    EXPECT_TRUE(r["previous"]["coverage"].is_null());
  }
  const std::string html = html_report(m, ev2, "hand.jsonl");
  EXPECT_NE(html.find("previous error"), std::string::npos);
}

TEST(ReportGroups, InputHashAndSuiteAppearInTheWorstErrorTables) {
  const ModelFile m = hand_model();
  const Evaluation ev = hand_evaluation(m);
  // The largest plausible error is FLOAT32 x DRAM's +50% (group 2, configuration 0).
  const std::vector<std::size_t> worst = worst_errors(ev, true, 3);
  ASSERT_EQ(worst.size(), 3u);
  EXPECT_EQ(ev.configs[worst[0]].input_hashes, std::vector<std::string>{"h20"});
  EXPECT_EQ(ev.configs[worst[0]].suites, std::vector<std::string>{"exp_suite_2"});
  const json j = evaluation_json(m, ev, "hand.jsonl", 3);
  EXPECT_EQ(j["worst"]["plausible"][0]["input_hashes"], json({"h20"}));
  EXPECT_NEAR(j["worst"]["plausible"][0]["error"].get<double>(), 0.5, 1e-12);
  EXPECT_EQ(j["worst"]["plausible"][1]["input_hashes"], json({"h03"}));  // +30%
  EXPECT_TRUE(j["worst"]["implausible"].empty());
  const std::string html = html_report(m, ev, "hand.jsonl");
  EXPECT_NE(html.find("<code>h20</code>"), std::string::npos);
  EXPECT_NE(html.find("exp_suite_2"), std::string::npos);
  // A configuration measured by two vectors lists both hashes.
  std::size_t first = 0;
  while (ev.configs[first].args != exp_args("BFLOAT16", "DRAM", kShapes[0])) ++first;
  EXPECT_EQ(ev.configs[first].input_hashes, (std::vector<std::string>{"h00", "h00b"}));
}

TEST(ReportGroups, ImplausibleLabelsAreListedWithTheirHash) {
  ModelFile m = hand_model();
  m.op_spec = test::tiny_exp_model().op_spec;  // the exp plausibility rule: within 2x of the group's law
  m.op_spec.erase("report");                    // groups by default, without the spec's report block
  Dataset d = hand_dataset(hand_model());
  Dataset more = d;
  for (auto& r : more.rows) {  // the same configurations in a second batch makes each group fit
    r.args["input_tensor"]["logical_shape"][1] = 2;
  }
  d.rows.insert(d.rows.end(), more.rows.begin(), more.rows.end());
  d.rows[2].runtime_ns *= 10;  // BFLOAT16 DRAM [64, 128]: 10x its group's law
  d.rows[2].input_hash = "shifted";
  EvaluationOptions o;
  o.all = true;
  const Evaluation ev = evaluate_model(m, d, o);
  const json j = evaluation_json(m, ev, "hand.jsonl");
  ASSERT_EQ(j["worst"]["implausible"].size(), 1u);
  EXPECT_EQ(j["worst"]["implausible"][0]["input_hashes"], json({"shifted"}));
  EXPECT_NE(html_report(m, ev, "hand.jsonl").find("<code>shifted</code>"), std::string::npos);
  // Default groups of the exp spec: its baseline / plausibility group, dtype_buffer (once).
  ASSERT_EQ(ev.groups.size(), 1u);
  EXPECT_EQ(ev.groups[0].keys[0].expr, "dtype_buffer");
  std::size_t implausible = 0;
  for (const json& r : ev.comparison["groups"][0]["rows"]) implausible += r["implausible"].get<std::size_t>();
  EXPECT_EQ(implausible, 1u);
}

TEST(ReportGroups, GroupDefinitionsParseAndLabel) {
  const ReportGroup g = parse_report_group(
      json::parse(R"({"keys": [{"expr": "tiles_per_core", "label": "tiles/core", "bins": [1, 2, 8]}, "input_tensor.dtype"]})"), "/g");
  EXPECT_EQ(g.name, "tiles/core × input_tensor.dtype");
  ASSERT_EQ(g.keys.size(), 2u);
  EXPECT_EQ(g.keys[1].enum_kind, EnumKind::data_type);
  EXPECT_FALSE(g.keys[0].enum_kind.has_value());
  EvaluationOptions o;
  o.all = true;
  o.groups = std::vector<ReportGroup>{g};
  const ModelFile m = hand_model();
  const Evaluation ev = evaluate_model(m, hand_dataset(m), o);
  std::vector<std::string> labels;
  for (const json& r : ev.comparison["groups"][0]["rows"]) labels.push_back(r["label"].get<std::string>());
  // tiles per core 1, 1, 2, 15: bins [1, 2) and [2, 8) and >= 8, by dtype.
  EXPECT_EQ(labels, (std::vector<std::string>{"tiles/core [1, 2) × BFLOAT16", "tiles/core [1, 2) × FLOAT32",
                                              "tiles/core [2, 8) × BFLOAT16", "tiles/core >= 8 × BFLOAT16"}));
  EXPECT_THROW(parse_report_group(json::parse(R"({"keys": [{"expr": "x", "bins": [2, 1]}]})"), "/g"), TorpError);
  EXPECT_THROW(parse_report_group(json::parse(R"({"name": "no keys"})"), "/g"), TorpError);
  try {
    parse_report_group(json::parse(R"({"keys": [{"expr": "x", "enum": "colour"}]})"), "/report/groups/0");
    ADD_FAILURE();
  } catch (const TorpError& e) {
    EXPECT_EQ(e.error().path, "/report/groups/0/keys/0/enum");
  }
  json spec = m.op_spec;
  spec["report"] = {{"groups", {"input_tensor.buffer_type"}}};
  ASSERT_EQ(report_groups_of_spec(spec).size(), 1u);
  EXPECT_EQ(report_groups_of_spec(spec)[0].keys[0].enum_kind, EnumKind::buffer_type);
}

TEST(ReportGroups, EvalCommandWritesTheJsonReport) {
  const auto dir = test::temp_dir("eval_json_report");
  const ModelFile m = hand_model();
  save_model(m, dir / "m.json", true);
  save_dataset(hand_dataset(m), dir / "d.jsonl", true);
  const std::string cmd = std::string(TORP_CLI_PATH) + " eval --all --model '" + (dir / "m.json").string() +
                          "' --dataset '" + (dir / "d.jsonl").string() + "' --previous '" + (dir / "m.json").string() +
                          "' --group-by input_tensor.buffer_type --group-by '{\"name\": \"dtype\", \"expr\": "
                          "\"input_tensor.dtype\"}' --json '" + (dir / "r.json").string() + "' --html '" +
                          (dir / "r.html").string() + "' > '" + (dir / "log.txt").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir / "log.txt");
  const json r = json::parse(read_file(dir / "r.json"));
  ASSERT_EQ(r["comparison"]["groups"].size(), 2u);
  EXPECT_EQ(r["comparison"]["groups"][0]["rows"][0]["label"], "DRAM");
  EXPECT_EQ(r["comparison"]["groups"][0]["rows"][0]["model"]["n"], 6);  // 4 BFLOAT16 + 2 FLOAT32 in DRAM
  EXPECT_EQ(r["comparison"]["groups"][1]["name"], "dtype");
  EXPECT_EQ(r["comparison"]["overall"]["plausible"]["previous"], r["comparison"]["overall"]["plausible"]["model"]);
  EXPECT_EQ(r["worst"]["plausible"][0]["input_hashes"], json({"h20"}));
  EXPECT_NE(read_file(dir / "log.txt").find("baseline alone"), std::string::npos);
  EXPECT_NE(read_file(dir / "r.html").find("By dtype"), std::string::npos);

  // --groups: the groups of another op spec (the repository's exp spec and its report block).
  const std::string with_file = std::string(TORP_CLI_PATH) + " eval --all --model '" + (dir / "m.json").string() +
                                "' --dataset '" + (dir / "d.jsonl").string() + "' --groups '" +
                                (test::source_dir() / "ops/exp.json").string() + "' --json '" +
                                (dir / "g.json").string() + "' > '" + (dir / "log.txt").string() + "' 2>&1";
  ASSERT_EQ(std::system(with_file.c_str()), 0) << read_file(dir / "log.txt");
  const json g = json::parse(read_file(dir / "g.json"))["comparison"]["groups"];
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0]["name"], "dtype × buffer");
  EXPECT_EQ(g[0]["rows"].size(), 4u);
  EXPECT_EQ(g[1]["rows"][0]["label"], "tiles_per_core [1, 2)");
  EXPECT_EQ(g[1]["rows"][0]["model"]["n"], 7);  // [32, 32] and [64, 128] in each dtype x buffer; FLOAT32 L1 has only the first
  std::filesystem::remove_all(dir);
}
