// SPDX-License-Identifier: Apache-2.0
// Query latency and batch throughput of the shipped models (models/ in the repo).
//   build/bench/torp_bench [--benchmark_filter=...]
// Queries are pre-parsed JSON (what a C++ caller holds), except BM_ParseAndPredict.
#include <benchmark/benchmark.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "support/fixtures.hpp"
#include "torp/json_text.hpp"
#include "torp/predictor.hpp"

using nlohmann::json;

namespace {

const torp::Predictor& predictor() {
  static torp::Predictor p(std::filesystem::path(TORP_SOURCE_DIR) / "models");
  return p;
}

using torp::test::full_tensor;

json exp_args(int i) {
  return {{"input_tensor", full_tensor({1 + i % 4, 8 + i % 13, 32 * (4 + i % 9), 32 * (4 + i % 7)}, i % 2, (i / 2) % 2)}};
}

void check(const torp::PredictResult& r, benchmark::State& state) {
  if (!r.ok()) state.SkipWithError(r.error().describe().c_str());
}

void BM_ExpQueryWarm(benchmark::State& state) {
  const auto& p = predictor();
  json args = exp_args(5);
  auto first = p.predict("ttnn.exp", args);
  check(first, state);
  if (first.ok()) state.SetLabel(std::string(first.value().model_id));
  for (auto _ : state) benchmark::DoNotOptimize(p.predict("ttnn.exp", args));
}
BENCHMARK(BM_ExpQueryWarm);

void BM_ExpQueryReferenceModel(benchmark::State& state) {
  const auto& p = predictor();
  json args = exp_args(5);
  check(p.predict("ttnn.exp", args, "reference/exp"), state);
  for (auto _ : state) benchmark::DoNotOptimize(p.predict("ttnn.exp", args, "reference/exp"));
}
BENCHMARK(BM_ExpQueryReferenceModel);

void BM_ExpBatch(benchmark::State& state) {
  const auto& p = predictor();
  std::vector<json> qs;
  for (int i = 0; i < state.range(0); ++i) qs.push_back({{"op", "ttnn.exp"}, {"args", exp_args(i)}});
  check(p.predict(qs[0]), state);
  for (auto _ : state) benchmark::DoNotOptimize(p.predict_batch(qs));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ExpBatch)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);

// The same query repeated: isolates the cost of walking many distinct JSON trees (cache misses).
void BM_ExpBatchSameQuery(benchmark::State& state) {
  const auto& p = predictor();
  std::vector<json> qs(static_cast<std::size_t>(state.range(0)), json{{"op", "ttnn.exp"}, {"args", exp_args(5)}});
  for (auto _ : state) benchmark::DoNotOptimize(p.predict_batch(qs));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ExpBatchSameQuery)->Arg(4096);

void BM_ParseAndPredict(benchmark::State& state) {
  const auto& p = predictor();
  std::string line = json{{"op", "ttnn.exp"}, {"args", exp_args(7)}}.dump();
  for (auto _ : state) benchmark::DoNotOptimize(p.predict(torp::parse_json(line)));
  state.SetLabel(std::to_string(line.size()) + " bytes per query");
}
BENCHMARK(BM_ParseAndPredict);

// Query text to JSON: TORP's reader and nlohmann's parser on the same line.
void BM_ParseQueryText(benchmark::State& state) {
  std::string line = json{{"op", "ttnn.exp"}, {"args", exp_args(7)}}.dump();
  for (auto _ : state) benchmark::DoNotOptimize(torp::parse_json(line));
}
BENCHMARK(BM_ParseQueryText);

void BM_ParseQueryTextNlohmann(benchmark::State& state) {
  std::string line = json{{"op", "ttnn.exp"}, {"args", exp_args(7)}}.dump();
  for (auto _ : state) benchmark::DoNotOptimize(json::parse(line));
}
BENCHMARK(BM_ParseQueryTextNlohmann);

void BM_MatmulQuery(benchmark::State& state) {
  const auto& p = predictor();
  json grid = json::array({{{"start", {{"x", 0}, {"y", 0}}}, {"end", {{"x", 7}, {"y", 0}}}}});
  json a = full_tensor({1, 1, 2560, 384}, 0, 1);
  a["tensor_spec"]["tensor_layout"]["memory_config"] = {
      {"buffer_type", 1}, {"memory_layout", 2}, {"created_with_nd_shard_spec", false},
      {"shard_spec", {{"grid", grid}, {"shape", {320, 384}}, {"orientation", 0}}}};
  json args = {{"input_tensor_a", a}, {"input_tensor_b", full_tensor({1, 1, 384, 288}, 0, 0)}};
  check(p.predict("ttnn.matmul", args), state);
  for (auto _ : state) benchmark::DoNotOptimize(p.predict("ttnn.matmul", args));
}
BENCHMARK(BM_MatmulQuery);

}  // namespace

BENCHMARK_MAIN();
