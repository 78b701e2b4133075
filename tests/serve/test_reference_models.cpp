// SPDX-License-Identifier: Apache-2.0
// The shipped reference models (models/reference) against a forward pass computed here straight
// from the mlpack files in data/reference_models, with features written out by hand, on seeded
// queries in every tensor JSON form; plus reshard selection, errors and bad mlpack files.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torp/encoder.hpp"
#include "support/bytes.hpp"
#include "torp/error.hpp"
#include "torp/model.hpp"
#include "torp/predictor.hpp"

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path kRepo = TORP_SOURCE_DIR;
const fs::path kBins = kRepo / "data" / "reference_models";

// ---- an mlpack reader and forward pass of its own --------------------------------------------

using torp::test::file_bytes;
using torp::test::le_f64;
using torp::test::le_u64;

/// A reference network as mlpack stores it: per layer an out x in column-major weight block,
/// then out biases; the scaler's mean and standard deviation.
struct RawMlp {
  std::vector<int> widths;  // inputs, hidden..., 1
  std::vector<double> params, mean, stddev;
};

RawMlp load_raw(const std::string& model, const std::string& scaler, const std::vector<int>& widths) {
  RawMlp m;
  m.widths = widths;
  std::size_t count = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l)
    count += static_cast<std::size_t>(widths[l]) * widths[l + 1] + widths[l + 1];
  const std::string b = file_bytes(kBins / model);
  for (std::size_t off = 0; off + 24 <= b.size() && m.params.empty(); ++off) {
    if (le_u64(b, off) != count || le_u64(b, off + 8) != 1) continue;
    for (std::size_t i = 0; i < count; ++i) m.params.push_back(le_f64(b, off + 24 + 8 * i));
  }
  EXPECT_EQ(m.params.size(), count) << model;
  // A 4-byte archive header, then two vectors: uint64 n, uint64 1, uint64 reserved, n doubles.
  const std::string s = file_bytes(kBins / scaler);
  const std::size_t n = static_cast<std::size_t>(widths[0]);
  EXPECT_EQ(s.size(), 4 + 2 * (24 + 8 * n)) << scaler;
  EXPECT_EQ(le_u64(s, 4), n);
  EXPECT_EQ(le_u64(s, 4 + 24 + 8 * n), n);
  for (std::size_t i = 0; i < n; ++i) {
    m.mean.push_back(le_f64(s, 4 + 24 + 8 * i));
    m.stddev.push_back(le_f64(s, 4 + 2 * 24 + 8 * n + 8 * i));
  }
  return m;
}

double raw_predict(const RawMlp& m, const std::vector<double>& features) {
  std::vector<double> x(features.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = (features[i] - m.mean[i]) / m.stddev[i];
  std::size_t off = 0;
  for (std::size_t l = 0; l + 1 < m.widths.size(); ++l) {
    const auto in = static_cast<std::size_t>(m.widths[l]), out = static_cast<std::size_t>(m.widths[l + 1]);
    std::vector<double> y(out);
    for (std::size_t o = 0; o < out; ++o) {
      double s = m.params[off + in * out + o];
      for (std::size_t i = 0; i < in; ++i) s += m.params[off + i * out + o] * x[i];
      y[o] = (l + 2 < m.widths.size() && s < 0.0) ? 0.0 : s;
    }
    off += in * out + out;
    x = y;
  }
  return x[0];
}

// ---- tensor JSON in the forms tt-metal and the reference write ----------------------------

constexpr int BF16 = 0, FP32 = 1, U32 = 2, BF8 = 3, U16 = 6, I32 = 7;
constexpr int DRAM = 0, L1 = 1;
constexpr int INTERLEAVED = 0, HEIGHT = 2, WIDTH = 3, BLOCK = 4;

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(std::uint64_t seed) : gen(seed) {}
  int in(int lo, int hi) { return lo + static_cast<int>(gen() % static_cast<std::uint64_t>(hi - lo + 1)); }
  template <class T>
  T pick(const std::vector<T>& v) { return v[gen() % v.size()]; }
  bool chance(int percent) { return in(1, 100) <= percent; }
};

std::string dtype_name(int d) {
  switch (d) {
    case BF16: return "BFLOAT16";
    case FP32: return "FLOAT32";
    case U32: return "UINT32";
    case BF8: return "BFLOAT8_B";
    case U16: return "UINT16";
    default: return "INT32";
  }
}
std::string layout_name(int l) {
  switch (l) {
    case HEIGHT: return "HEIGHT_SHARDED";
    case WIDTH: return "WIDTH_SHARDED";
    case BLOCK: return "BLOCK_SHARDED";
    default: return "INTERLEAVED";
  }
}

struct Shard {
  int x0 = 0, y0 = 0, gx = 1, gy = 1;  // bounding box of the cores
  bool split = false;                  // described by two core ranges instead of one
  std::vector<int> shape{32, 32};
};

struct Mem {
  int buffer = DRAM;
  int layout = INTERLEAVED;
  std::optional<Shard> shard;
};

struct Tensor {
  std::vector<std::int64_t> shape;
  int dtype = BF16;
  Mem mem;
};

enum class Style { ints, names, prefixed };

json core(int x, int y) { return {{"x", x}, {"y", y}}; }

json grid_json(const Shard& s) {
  const int x1 = s.x0 + s.gx - 1, y1 = s.y0 + s.gy - 1;
  if (s.split && s.gy > 1)  // full rows, then a partial last row
    return json::array({{{"start", core(s.x0, s.y0)}, {"end", core(x1, y1 - 1)}},
                        {{"start", core(s.x0, y1)}, {"end", core(s.x0 + (s.gx - 1) / 2, y1)}}});
  if (s.split && s.gx > 1)
    return json::array({{{"start", core(s.x0, s.y0)}, {"end", core(x1 - 1, y1)}},
                        {{"start", core(x1, s.y0)}, {"end", core(x1, y1)}}});
  return json::array({{{"start", core(s.x0, s.y0)}, {"end", core(x1, y1)}}});
}

json memory_json(const Mem& m, Style style) {
  json j;
  if (style == Style::ints) j = {{"buffer_type", m.buffer}, {"memory_layout", m.layout}, {"created_with_nd_shard_spec", false}};
  else j = {{"buffer_type", m.buffer == DRAM ? "DRAM" : "L1"}, {"memory_layout", layout_name(m.layout)}};
  if (m.shard)
    j["shard_spec"] = {{"grid", grid_json(*m.shard)}, {"shape", m.shard->shape}, {"orientation", 0}, {"mode", 0},
                       {"physical_shard_shape", nullptr}};
  return j;
}

json dtype_json(int d, Style style) {
  if (style == Style::ints) return d;
  if (style == Style::prefixed) return "DataType." + dtype_name(d);
  return dtype_name(d);
}

json layout_json(const Tensor& t, Style style) {
  const json tile = {{"face_shape", {16, 16}}, {"num_faces", 4}, {"tile_shape", {32, 32}}};
  const json page = {{"config", {{"index", 1}, {"value", {{"tile", tile}}}}}};
  return {{"alignment", {{"value", {32, 32}}}},
          {"dtype", dtype_json(t.dtype, style)},
          {"memory_config", memory_json(t.mem, style)},
          {"page_config", page}};
}

/// A ttnn Tensor as tt-metal serializes it (enums as integers).
json full_tensor_json(const Tensor& t) {
  return {{"storage", {{"index", 1}, {"value", json::object()}}},
          {"tensor_spec", {{"logical_shape", t.shape}, {"tensor_layout", layout_json(t, Style::ints)}}}};
}

/// One of the accepted tensor forms, chosen by the generator: full Tensor, bare TensorSpec, or a
/// reduced form (shape, dtype, memory_config beside each other; optionally zero-padded to rank 4).
json tensor_json(const Tensor& t, Rng& rng, bool allow_padding = false) {
  const Style style = rng.pick(std::vector<Style>{Style::ints, Style::names, Style::prefixed});
  switch (rng.in(0, 2)) {
    case 0: return full_tensor_json(t);
    case 1: return {{"logical_shape", t.shape}, {"tensor_layout", layout_json(t, style)}};
    default: {
      json shape = t.shape;
      if (allow_padding)
        while (shape.size() < 4) shape.push_back(0);
      json j = {{rng.chance(80) ? "logical_shape" : "shape", shape}, {"dtype", dtype_json(t.dtype, style)}};
      j["memory_config"] = t.mem.layout == INTERLEAVED && !t.mem.shard && rng.chance(50)
                               ? json{{"buffer_type", style == Style::ints ? json(t.mem.buffer) : json(t.mem.buffer == DRAM ? "DRAM" : "L1")}}
                               : memory_json(t.mem, style);
      return j;
    }
  }
}

/// A memory_config argument, sometimes in the sweep's {"type", "data": "<json string>"} wrapper.
json memory_arg_json(const Mem& m, Rng& rng) {
  json j = memory_json(m, rng.chance(50) ? Style::ints : Style::names);
  if (rng.chance(25)) return {{"type", "ttnn._ttnn.tensor.MemoryConfig"}, {"data", j.dump()}};
  return j;
}

Tensor interleaved(std::vector<std::int64_t> shape, int dtype, int buffer) {
  return {std::move(shape), dtype, Mem{buffer, INTERLEAVED, std::nullopt}};
}

double one_if(bool b) { return b ? 1.0 : 0.0; }

// ---- generated queries with hand-written features ---------------------------------------

struct Case {
  json args;
  std::vector<double> features;  // as the reference encodes them, written from the generator's values
};

std::vector<Case> exp_cases(Rng& rng, int n) {
  std::vector<Case> out;
  for (int k = 0; k < n; ++k) {
    const int rank = rng.in(2, 4);
    std::vector<std::int64_t> shape;
    if (rank == 2) shape = {32 * rng.in(1, 64), 32 * rng.in(1, 64)};
    else if (rank == 3) shape = {rng.in(1, 8), 32 * rng.in(1, 16), 32 * rng.in(1, 16)};
    else shape = {rng.in(1, 4), rng.in(1, 64), 32 * rng.in(1, 12), 32 * rng.in(1, 6)};
    const int dtype = rng.pick(std::vector<int>{BF8, BF16, FP32, U16, U32});
    const int buffer = rng.pick(std::vector<int>{DRAM, L1});
    Case c;
    c.args = {{"input_tensor", tensor_json(interleaved(shape, dtype, buffer), rng, true)}};
    if (rng.chance(30)) c.args["memory_config"] = memory_arg_json(Mem{rng.pick(std::vector<int>{DRAM, L1})}, rng);
    for (int i = 0; i < 4; ++i) c.features.push_back(i < rank ? static_cast<double>(shape[static_cast<std::size_t>(i)]) : 0.0);
    for (int d : {BF8, BF16, FP32, U16, U32}) c.features.push_back(one_if(dtype == d));
    c.features.push_back(one_if(buffer == DRAM));
    c.features.push_back(one_if(buffer != DRAM));
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Case> concatenate_heads_cases(Rng& rng, int n) {
  std::vector<Case> out;
  for (int k = 0; k < n; ++k) {
    const std::vector<std::int64_t> shape = {rng.pick(std::vector<std::int64_t>{1, 2, 8, 16, 32, 64, 100}),
                                             rng.pick(std::vector<std::int64_t>{8, 12, 16, 32, 64, 71}),
                                             32 * rng.in(1, 64), rng.pick(std::vector<std::int64_t>{32, 64, 96, 128})};
    const int dtype = rng.pick(std::vector<int>{BF8, BF16});
    const int in_buffer = rng.pick(std::vector<int>{DRAM, L1});
    int out_buffer = in_buffer;  // tt-metal's default: the input's memory config
    Case c;
    c.args = {{"input_tensor", tensor_json(interleaved(shape, dtype, in_buffer), rng)}};
    if (rng.chance(60)) {
      out_buffer = rng.pick(std::vector<int>{DRAM, L1});
      c.args["memory_config"] = memory_arg_json(Mem{out_buffer}, rng);
    }
    for (auto d : shape) c.features.push_back(static_cast<double>(d));
    c.features.insert(c.features.end(), {one_if(dtype == BF8), one_if(dtype == BF16), one_if(in_buffer == DRAM),
                                         one_if(in_buffer != DRAM), one_if(out_buffer == DRAM), one_if(out_buffer != DRAM)});
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Case> create_qkv_heads_cases(Rng& rng, int n) {
  std::vector<Case> out;
  for (int k = 0; k < n; ++k) {
    const int heads = rng.pick(std::vector<int>{8, 16, 32, 64, 71});
    const bool kv_given = rng.chance(70);
    const int kv_heads = kv_given ? rng.pick(std::vector<int>{1, 2, 4, 8, 16}) : heads;
    const int head_dim = rng.pick(std::vector<int>{32, 64, 128});
    const std::vector<std::int64_t> shape = {rng.in(1, 8), 1, 32 * rng.in(1, 5),
                                             static_cast<std::int64_t>(heads + 2 * kv_heads) * head_dim};
    const int dtype = rng.pick(std::vector<int>{BF8, BF16});
    const int transpose = rng.in(-1, 1);  // -1: not given (default false)
    Case c;
    c.args = {{"input_tensor", tensor_json(interleaved(shape, dtype, rng.pick(std::vector<int>{DRAM, L1})), rng)},
              {"num_heads", heads}};
    if (kv_given) c.args["num_kv_heads"] = kv_heads;
    if (transpose >= 0) c.args["transpose_k_heads"] = rng.chance(50) ? json(transpose == 1) : json(transpose);
    for (auto d : shape) c.features.push_back(static_cast<double>(d));
    c.features.insert(c.features.end(), {one_if(dtype == BF8), one_if(dtype == BF16), static_cast<double>(heads),
                                         static_cast<double>(kv_heads), one_if(transpose == 1)});
    out.push_back(std::move(c));
  }
  return out;
}

/// Paged SDPA decode. Features follow ops/paged_scaled_dot_product_attention_decode.json's notes:
/// K/V as the logical cache [batch, kv_heads, blocks * block_size, head_dim], the mask shape
/// (0s if absent) before the cur_pos shape (-1 if absent), 1/scale (sqrt(head_dim) if absent),
/// LoFi encoded as 1.
std::vector<Case> sdpa_cases(Rng& rng, int n) {
  std::vector<Case> out;
  for (int k = 0; k < n; ++k) {
    const int batch = rng.pick(std::vector<int>{1, 2, 4, 8, 16, 32});
    const int heads = rng.pick(std::vector<int>{8, 16, 32, 64});
    const int kv_heads = rng.pick(std::vector<int>{1, 2, 4, 8});
    const int head_dim = rng.pick(std::vector<int>{64, 128});
    const int block = rng.pick(std::vector<int>{32, 64});
    const int blocks = rng.in(1, 16);
    const int seq = blocks * block;
    const bool logical_kv = rng.chance(20);  // the reference's own form: K/V given unpaged
    const std::vector<std::int64_t> kv_shape =
        logical_kv ? std::vector<std::int64_t>{batch, kv_heads, seq, head_dim}
                   : std::vector<std::int64_t>{batch * blocks, kv_heads, block, head_dim};
    const int q_dtype = rng.pick(std::vector<int>{BF8, BF16});
    const int q_buffer = rng.pick(std::vector<int>{DRAM, L1});
    const int kv_dtype = rng.pick(std::vector<int>{BF8, BF16});
    Case c;
    c.args = {{"input_tensor_q", tensor_json(interleaved({1, batch, heads, head_dim}, q_dtype, q_buffer), rng)},
              {"input_tensor_k", tensor_json(interleaved(kv_shape, kv_dtype, DRAM), rng)},
              {"input_tensor_v", tensor_json(interleaved(kv_shape, kv_dtype, DRAM), rng)},
              {"page_table_tensor", tensor_json(interleaved({batch, blocks}, I32, DRAM), rng)}};
    const bool cur_pos = rng.chance(75);
    if (cur_pos) c.args["cur_pos_tensor"] = tensor_json(interleaved({batch}, I32, DRAM), rng);
    const int causal = rng.in(-1, 1);  // -1: not given (default true)
    if (causal >= 0) c.args["is_causal"] = causal == 1;
    const bool mask = causal == 0;
    const int padded_heads = (heads + 31) / 32 * 32;
    if (mask) c.args["attn_mask"] = tensor_json(interleaved({batch, 1, padded_heads, seq}, BF16, DRAM), rng);
    const int scale_kind = rng.in(0, 2);  // absent, the default 1/sqrt(head_dim), another value
    const double scale = scale_kind == 2 ? rng.pick(std::vector<double>{0.05, 0.1, 0.125, 0.25}) : 1.0 / std::sqrt(head_dim);
    if (scale_kind > 0) c.args["scale"] = scale;
    const bool program = rng.chance(60);
    const int q_chunk = rng.pick(std::vector<int>{32, 64, 128, 256}), k_chunk = rng.pick(std::vector<int>{32, 128, 256, 512});
    const bool exp_approx = rng.chance(50);
    if (program)
      c.args["program_config"] = {{"compute_with_storage_grid_size", {{"x", 8}, {"y", 8}}}, {"sub_core_grids", nullptr},
                                  {"q_chunk_size", q_chunk}, {"k_chunk_size", k_chunk},
                                  {"exp_approx_mode", exp_approx}, {"max_cores_per_head_batch", 16}};
    const bool kernel = rng.chance(60);
    const int fidelity = rng.pick(std::vector<int>{0, 2, 3, 4});
    const bool approx = rng.chance(50), fp32 = rng.chance(50), packer = rng.chance(50);
    if (kernel) {
      static const std::map<int, std::vector<json>> spellings = {
          {0, {0, "LoFi", "MathFidelity.LoFi"}}, {2, {2, "HiFi2"}}, {3, {3, "HiFi3"}}, {4, {4, "HiFi4", "ttnn.MathFidelity.HiFi4"}}};
      c.args["compute_kernel_config"] = {{"math_fidelity", rng.pick(spellings.at(fidelity))}, {"math_approx_mode", approx},
                                         {"fp32_dest_acc_en", fp32}, {"packer_l1_acc", packer}, {"dst_full_sync_en", false}};
    }
    int out_buffer = DRAM;  // tt-metal's default output memory config
    if (rng.chance(50)) {
      out_buffer = rng.pick(std::vector<int>{DRAM, L1});
      c.args["memory_config"] = memory_arg_json(Mem{out_buffer}, rng);
    }
    const double b = batch, kv = kv_heads, d = head_dim, s = seq;
    c.features = {1, b, static_cast<double>(heads), d, b, kv, s, d, b, kv, s, d, b, static_cast<double>(blocks)};
    if (mask) c.features.insert(c.features.end(), {b, 1, static_cast<double>(padded_heads), s});
    else c.features.insert(c.features.end(), {0, 0, 0, 0});
    c.features.push_back(cur_pos ? b : -1.0);
    c.features.insert(c.features.end(), {one_if(q_dtype == BF8), one_if(q_dtype == BF16), one_if(q_buffer == DRAM),
                                         one_if(q_buffer != DRAM), one_if(out_buffer == DRAM), one_if(out_buffer != DRAM),
                                         one_if(causal != 0), scale_kind == 0 ? std::sqrt(d) : 1.0 / scale});
    if (program) c.features.insert(c.features.end(), {static_cast<double>(k_chunk), static_cast<double>(q_chunk), one_if(exp_approx), 1});
    else c.features.insert(c.features.end(), {-1, -1, -1, 0});
    if (kernel)
      c.features.insert(c.features.end(), {fidelity == 0 ? 1.0 : fidelity, one_if(approx), one_if(fp32), one_if(packer), 1});
    else c.features.insert(c.features.end(), {-1, -1, -1, -1, 0});
    out.push_back(std::move(c));
  }
  return out;
}

/// A fixed paged SDPA decode query: 8 users, 32 heads of 128, 8 KV heads, 8 blocks of 64.
json simple_sdpa_args() {
  const auto t = [](std::vector<std::int64_t> shape, int dtype) {
    return json{{"logical_shape", shape}, {"dtype", dtype}, {"memory_config", {{"buffer_type", DRAM}, {"memory_layout", INTERLEAVED}}}};
  };
  return {{"input_tensor_q", t({1, 8, 32, 128}, BF16)}, {"input_tensor_k", t({64, 8, 64, 128}, BF8)},
          {"input_tensor_v", t({64, 8, 64, 128}, BF8)}, {"page_table_tensor", t({8, 8}, I32)},
          {"cur_pos_tensor", t({8}, I32)}};
}

Shard random_shard(Rng& rng) {
  Shard s;
  s.gx = rng.in(1, 8);
  s.gy = rng.in(1, 8);
  s.x0 = rng.in(0, 8 - s.gx);
  s.y0 = rng.in(0, 8 - s.gy);
  s.split = rng.chance(30);
  s.shape = {32 * rng.in(1, 8), 32 * rng.in(1, 8)};
  return s;
}

std::vector<Case> reshard_cases(Rng& rng, int n, int in_layout, int out_layout) {
  std::vector<Case> out;
  for (int k = 0; k < n; ++k) {
    const std::int64_t h = 32 * rng.in(1, 64), w = 32 * rng.in(1, 64);
    const bool rank4 = rng.chance(60);
    const std::vector<std::int64_t> shape = rank4 ? std::vector<std::int64_t>{1, 1, h, w} : std::vector<std::int64_t>{h, w};
    const Shard in_shard = random_shard(rng), out_shard = random_shard(rng);
    Case c;
    c.args = {{"input_tensor", tensor_json(Tensor{shape, BF16, Mem{L1, in_layout, in_shard}}, rng)},
              {"memory_config", memory_arg_json(Mem{L1, out_layout, out_shard}, rng)}};
    c.features = {static_cast<double>(in_shard.gx), static_cast<double>(in_shard.gy), static_cast<double>(out_shard.gx),
                  static_cast<double>(out_shard.gy), static_cast<double>(h * w) / 1024.0};
    out.push_back(std::move(c));
  }
  return out;
}

// ---- the models under test ---------------------------------------------------------------

struct Reference {
  std::string id, op, model_bin, scaler_bin;
  std::vector<int> widths;
  std::vector<Case> cases;
};

const std::vector<std::pair<int, int>> kReshardPairs = {
    {BLOCK, BLOCK}, {HEIGHT, BLOCK}, {HEIGHT, WIDTH}, {WIDTH, BLOCK}, {WIDTH, HEIGHT}};

std::string reshard_name(int in, int out) {
  auto word = [](int l) { return layout_name(l).substr(0, layout_name(l).find('_')); };
  return word(in) + "_ROW_MAJOR_" + word(out) + "_ROW_MAJOR";
}

constexpr int kQueriesPerModel = 40;

std::vector<Reference> references() {
  Rng rng(20251125);
  std::vector<Reference> r = {
      {"reference/exp", "ttnn.exp", "exp_mlp_model.bin", "exp_scaler.bin", {11, 128, 128, 128, 1},
       exp_cases(rng, kQueriesPerModel)},
      {"reference/concatenate_heads", "ttnn.transformer.concatenate_heads", "concatenate_heads_mlp_model.bin",
       "concatenate_heads_scaler.bin", {10, 128, 128, 128, 1}, concatenate_heads_cases(rng, kQueriesPerModel)},
      {"reference/create_qkv_heads", "ttnn.experimental.create_qkv_heads", "create_qkv_heads_mlp_model.bin",
       "create_qkv_heads_scaler.bin", {9, 128, 128, 128, 1}, create_qkv_heads_cases(rng, kQueriesPerModel)},
      {"reference/paged_scaled_dot_product_attention_decode", "ttnn.transformer.paged_scaled_dot_product_attention_decode",
       "paged_sdpa_decode_mlp_model.bin", "paged_sdpa_decode_scaler.bin", {36, 256, 128, 128, 1},
       sdpa_cases(rng, kQueriesPerModel)}};
  for (auto [in, out] : kReshardPairs) {
    const std::string name = reshard_name(in, out);
    r.push_back({"reference/reshard/" + name, "ttnn.reshard", "reshard/model_" + name + ".bin",
                 "reshard/scaler_" + name + ".bin", {5, 100, 50, 1}, reshard_cases(rng, kQueriesPerModel, in, out)});
  }
  return r;
}

class ReferenceModels : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    all_ = std::make_unique<torp::Predictor>(kRepo / "models");
    reference_only_ = std::make_unique<torp::Predictor>(kRepo / "models" / "reference");
  }
  static void TearDownTestSuite() {
    all_.reset();
    reference_only_.reset();
  }
  static std::unique_ptr<torp::Predictor> all_, reference_only_;
};
std::unique_ptr<torp::Predictor> ReferenceModels::all_;
std::unique_ptr<torp::Predictor> ReferenceModels::reference_only_;

/// The features TORP computes for a query (for failure messages only).
std::string torp_features(const std::string& id, const json& args) {
  torp::ModelFile m = torp::load_model(kRepo / "models" / (id + ".json"));
  auto f = torp::Encoder(m.op_spec, m.device).encode(args, m.features);
  return f ? json(f.value()).dump() : f.error().describe();
}

}  // namespace

TEST_F(ReferenceModels, EveryModelEqualsAnIndependentForwardPassOfTheMlpackFiles) {
  for (const Reference& ref : references()) {
    SCOPED_TRACE(ref.id);
    const RawMlp raw = load_raw(ref.model_bin, ref.scaler_bin, ref.widths);
    double max_rel = 0.0;
    int answered = 0;
    for (std::size_t k = 0; k < ref.cases.size(); ++k) {
      const Case& c = ref.cases[k];
      ASSERT_EQ(c.features.size(), static_cast<std::size_t>(ref.widths[0]));
      const double want = raw_predict(raw, c.features);
      const json query = {{"op", ref.op}, {"args", c.args}, {"model", ref.id}};
      auto pinned = all_->predict(query);
      auto chosen = reference_only_->predict(ref.op, c.args);
      if (!(want > 0.0)) {  // the reference itself answers a non-positive runtime here
        ASSERT_FALSE(pinned.ok()) << "query " << k;
        EXPECT_EQ(pinned.error().code, torp::ErrorCode::model_output_invalid);
        continue;
      }
      ASSERT_TRUE(pinned.ok()) << "query " << k << ": " << pinned.error().describe() << "\n" << c.args.dump();
      ASSERT_TRUE(chosen.ok()) << "query " << k << ": " << chosen.error().describe();
      EXPECT_EQ(chosen.value().model_id, ref.id) << "query " << k;
      EXPECT_EQ(chosen.value().runtime_ns, pinned.value().runtime_ns);
      const double rel = std::fabs(pinned.value().runtime_ns - want) / want;
      EXPECT_LE(rel, 1e-9) << "query " << k << ": torp " << pinned.value().runtime_ns << " ns, reference " << want
                           << " ns\nargs " << c.args.dump() << "\nhand features " << json(c.features).dump()
                           << "\ntorp features " << torp_features(ref.id, c.args);
      max_rel = std::max(max_rel, rel);
      ++answered;
    }
    EXPECT_GE(answered, 20) << "too few queries with a positive reference answer";
    std::cout << "[ reference ] " << ref.id << ": " << answered << "/" << ref.cases.size()
              << " queries answered, max relative difference " << max_rel << "\n";
  }
}

TEST_F(ReferenceModels, ReshardPairWithoutAModelIsNoModel) {
  Rng rng(7);
  for (auto [in, out] : std::vector<std::pair<int, int>>{{HEIGHT, HEIGHT}, {BLOCK, HEIGHT}, {BLOCK, WIDTH}, {WIDTH, WIDTH}}) {
    const Case c = reshard_cases(rng, 1, in, out)[0];
    auto r = reference_only_->predict("ttnn.reshard", c.args);
    ASSERT_FALSE(r.ok()) << layout_name(in) << " -> " << layout_name(out);
    EXPECT_EQ(r.error().code, torp::ErrorCode::no_model) << r.error().describe();
  }
}

TEST_F(ReferenceModels, UnsupportedDtypeIsInvalidArgumentAtItsPath) {
  Rng rng(3);
  struct Bad {
    std::string op;
    json args;
    std::string path;
  };
  json sdpa = sdpa_cases(rng, 1)[0].args;
  sdpa["input_tensor_q"] = full_tensor_json(interleaved({1, 8, 32, 128}, FP32, DRAM));
  json reshard = reshard_cases(rng, 1, HEIGHT, WIDTH)[0].args;
  reshard["input_tensor"] = {{"logical_shape", {1, 1, 1024, 1024}},
                             {"tensor_layout", layout_json(Tensor{{1, 1, 1024, 1024}, FP32, Mem{L1, HEIGHT, random_shard(rng)}}, Style::names)}};
  const std::vector<Bad> cases = {
      {"ttnn.exp", {{"input_tensor", {{"logical_shape", {64, 64}}, {"dtype", "INT32"}, {"memory_config", {{"buffer_type", 0}}}}}},
       "/args/input_tensor/dtype"},
      {"ttnn.transformer.concatenate_heads", {{"input_tensor", full_tensor_json(interleaved({8, 16, 256, 64}, FP32, DRAM))}}, "/args/input_tensor/tensor_spec/tensor_layout/dtype"},
      {"ttnn.experimental.create_qkv_heads",
       {{"input_tensor", {{"logical_shape", {1, 1, 32, 3 * 64 * 8}}, {"tensor_layout", layout_json(interleaved({1, 1, 32, 3 * 64 * 8}, U32, L1), Style::names)}}},
        {"num_heads", 8}},
       "/args/input_tensor/tensor_layout/dtype"},
      {"ttnn.transformer.paged_scaled_dot_product_attention_decode", sdpa,
       "/args/input_tensor_q/tensor_spec/tensor_layout/dtype"},
      {"ttnn.reshard", reshard, "/args/input_tensor/tensor_layout/dtype"}};
  for (const Bad& b : cases) {
    auto r = all_->predict(b.op, b.args, "");
    ASSERT_FALSE(r.ok()) << b.op;
    EXPECT_EQ(r.error().code, torp::ErrorCode::invalid_argument) << r.error().describe();
    EXPECT_EQ(r.error().path, b.path) << r.error().describe();
    EXPECT_NE(r.error().message.find("dtype not supported"), std::string::npos) << r.error().describe();
  }
}

TEST_F(ReferenceModels, MathFidelityLoFiAsNameOrIntegerEncodesAsOne) {
  const torp::ModelFile m = torp::load_model(kRepo / "models/reference/paged_scaled_dot_product_attention_decode.json");
  const torp::Encoder enc(m.op_spec, m.device);
  json args = simple_sdpa_args();
  args["compute_kernel_config"] = {{"math_approx_mode", true}, {"fp32_dest_acc_en", true}, {"packer_l1_acc", true}};
  const std::vector<std::string> feature = {"math_fidelity"};
  std::optional<double> lofi_runtime;
  for (const auto& [spelling, encoded] : std::vector<std::pair<json, double>>{
           {"LoFi", 1}, {0, 1}, {"MathFidelity.LoFi", 1}, {"HiFi2", 2}, {2, 2}, {"HiFi3", 3}, {"HiFi4", 4}, {4, 4}}) {
    args["compute_kernel_config"]["math_fidelity"] = spelling;
    auto f = enc.encode(args, feature);
    ASSERT_TRUE(f.ok()) << f.error().describe();
    EXPECT_EQ(f.value()[0], encoded) << spelling.dump();
    auto r = all_->predict(m.op, args, m.id);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    if (encoded == 1) {
      if (!lofi_runtime) lofi_runtime = r.value().runtime_ns;
      EXPECT_EQ(r.value().runtime_ns, *lofi_runtime) << spelling.dump();
    }
  }
  args["compute_kernel_config"]["math_fidelity"] = 1;  // not a tt-metal MathFidelity
  auto r = all_->predict(m.op, args, m.id);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, torp::ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().path, "/args/compute_kernel_config/math_fidelity");
}

TEST_F(ReferenceModels, DefaultsEncodeLikeTheirExplicitValues) {
  Rng rng(5);
  // concatenate_heads: no memory_config means the input's.
  json concat = {{"input_tensor", tensor_json(interleaved({8, 16, 256, 64}, BF16, L1), rng)}};
  auto implicit = all_->predict("ttnn.transformer.concatenate_heads", concat, "reference/concatenate_heads");
  concat["memory_config"] = memory_json(Mem{L1}, Style::names);
  auto explicit_ = all_->predict("ttnn.transformer.concatenate_heads", concat, "reference/concatenate_heads");
  ASSERT_TRUE(implicit.ok() && explicit_.ok());
  EXPECT_EQ(implicit.value().runtime_ns, explicit_.value().runtime_ns);
  // paged SDPA: no scale means 1/sqrt(head_dim); is_causal defaults to true; output to DRAM.
  json sdpa = simple_sdpa_args();
  auto bare = all_->predict("paged_scaled_dot_product_attention_decode", sdpa, "");
  sdpa["scale"] = 1.0 / std::sqrt(128.0);
  sdpa["is_causal"] = true;
  sdpa["memory_config"] = memory_json(Mem{DRAM}, Style::ints);
  auto given = all_->predict("paged_scaled_dot_product_attention_decode", sdpa, "");
  ASSERT_TRUE(bare.ok()) << bare.error().describe();
  ASSERT_TRUE(given.ok()) << given.error().describe();
  EXPECT_EQ(bare.value().runtime_ns, given.value().runtime_ns);
}

TEST_F(ReferenceModels, CreateQkvHeadsWidthMustSplitIntoHeads) {
  json args = {{"input_tensor", {{"logical_shape", {1, 1, 64, 1000}}, {"dtype", "BFLOAT16"}}}, {"num_heads", 8}, {"num_kv_heads", 2}};
  auto r = all_->predict("ttnn.experimental.create_qkv_heads", args, "reference/create_qkv_heads");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, torp::ErrorCode::invalid_argument);
  EXPECT_NE(r.error().message.find("(num_heads + 2 * num_kv_heads) * head_dim"), std::string::npos) << r.error().describe();
}

