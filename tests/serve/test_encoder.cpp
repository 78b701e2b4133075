// SPDX-License-Identifier: Apache-2.0
// The expression language of op specs (docs/op-spec.md): values, laziness of if / select / && /
// || / dim_or, shared sub-expressions, argument defaults and the errors with their JSON paths.
#include <gtest/gtest.h>

#include <cmath>

#include "support/fixtures.hpp"
#include "spec/bindings.hpp"
#include "torp/encoder.hpp"

using nlohmann::json;
using torp::Bindings;
using torp::Encoder;
using torp::ErrorCode;

namespace {

json device() { return {{"cores", 56}, {"grid_x", 8}}; }

/// A spec with a tensor, an optional tensor, scalars with defaults and an object argument.
json spec(const json& features, const json& validate = json::array()) {
  return {{"op", "ttnn.test_op"},
          {"args",
           {{"a", {{"type", "tensor"}, {"rank", {1, 4}}}},
            {"b", {{"type", "tensor"}, {"optional", true}}},
            {"heads", {{"type", "int"}, {"min", 1}}},
            {"kv_heads", {{"type", "int"}, {"default", "heads"}}},
            {"scale", {{"type", "float"}, {"default", 1.5}}},
            {"cfg", {{"type", "object"}, {"optional", true},
                     {"fields", {{"chunk", {{"type", "int"}}}, {"approx", {{"type", "bool"}, {"default", false}}}}}}}}},
          {"features", features},
          {"validate", validate}};
}

json tensor(std::vector<int> shape, int dtype = 0, int buffer = 0) {
  return {{"logical_shape", shape}, {"dtype", dtype}, {"memory_config", {{"buffer_type", buffer}, {"memory_layout", 0}}}};
}

/// Bind `args` and evaluate one expression compiled into the encoder.
torp::Result<double> value(Encoder& enc, const std::string& expr, const json& args) {
  const torp::ExprId id = enc.compile(expr);
  Bindings b;
  if (auto e = enc.bind(args, b)) return *e;
  return enc.eval(id, b);
}

double ok(Encoder& enc, const std::string& expr, const json& args) {
  auto r = value(enc, expr, args);
  EXPECT_TRUE(r.ok()) << expr << ": " << (r.ok() ? "" : r.error().describe());
  return r.ok() ? r.value() : std::nan("");
}

const json kArgs = {{"a", tensor({2, 3, 40, 70}, 0, 1)}, {"heads", 8}};

}  // namespace

TEST(Expressions, ArithmeticPrecedenceFunctionsAndConstants) {
  Encoder enc(spec(json::object()), device());
  EXPECT_EQ(ok(enc, "1 + 2 * 3 - 4 / 2", kArgs), 5.0);
  EXPECT_EQ(ok(enc, "(1 + 2) * 3 % 4", kArgs), 1.0);
  EXPECT_EQ(ok(enc, "-2 * -3", kArgs), 6.0);
  EXPECT_EQ(ok(enc, "!0 + !5 + (2 < 3) + (3 <= 3) + (2 > 3) + (2 >= 3) + (1 == 1) + (1 != 1)", kArgs), 4.0);
  EXPECT_EQ(ok(enc, "ceil(2.1) + floor(2.9) + round(2.5) + abs(-4) + sqrt(9) + pow(2, 10)", kArgs), 3 + 2 + 3 + 4 + 3 + 1024.0);
  EXPECT_DOUBLE_EQ(ok(enc, "log(exp(2)) + log2(8)", kArgs), 5.0);
  EXPECT_EQ(ok(enc, "min(4, 2, 7) * 10 + max(4, 2, 7)", kArgs), 27.0);
  EXPECT_EQ(ok(enc, "ceil_div(100, device.cores)", kArgs), 2.0);
  EXPECT_EQ(ok(enc, "in(3, 1, 2, 3) * 10 + in(4, 1, 2, 3)", kArgs), 10.0);
  EXPECT_EQ(ok(enc, "select(0, 10, 1, 20, 30) + select(0, 1, 0, 2, 3)", kArgs), 23.0);
  EXPECT_EQ(ok(enc, "if(1, 2, 3) * 10 + if(0, 2, 3)", kArgs), 23.0);
  EXPECT_EQ(ok(enc, "dtype_bytes(BFLOAT8_B)", kArgs), 1088.0 / 1024.0);
  EXPECT_EQ(ok(enc, "HEIGHT_SHARDED + L1 + FLOAT32 + HiFi4 + true", kArgs), 2 + 1 + 1 + 4 + 1.0);
}

TEST(Expressions, TensorPropertiesAndDims) {
  Encoder enc(spec(json::object()), device());
  EXPECT_EQ(ok(enc, "a.rank", kArgs), 4.0);
  EXPECT_EQ(ok(enc, "a.volume", kArgs), 2.0 * 3 * 40 * 70);
  EXPECT_EQ(ok(enc, "a.tiles", kArgs), 2.0 * 3 * 2 * 3);  // ceil(40/32) * ceil(70/32)
  EXPECT_EQ(ok(enc, "a.height", kArgs), 2.0 * 3 * 40);
  EXPECT_EQ(ok(enc, "a.width + a.dim(-1) + a.dim(0)", kArgs), 70.0 + 70 + 2);
  EXPECT_EQ(ok(enc, "a.dim_or(7, -1) + a.dim_or(-5, -2)", kArgs), -3.0);
  EXPECT_EQ(ok(enc, "a.buffer_type * 10 + a.dtype + a.sharded", kArgs), 10.0);
  EXPECT_EQ(ok(enc, "a.present + b.present * 10 + cfg.present * 100", kArgs), 1.0);
}

TEST(Expressions, IfSelectAndOrOnlyDependOnTheOperandsTheyChoose) {
  Encoder enc(spec(json::object()), device());
  // b is absent: its properties have no value, but only the unchosen operands read them.
  EXPECT_EQ(ok(enc, "if(b.present, b.dim(0), 5)", kArgs), 5.0);
  EXPECT_EQ(ok(enc, "select(b.present, b.tiles, a.rank == 4, 7, b.rank)", kArgs), 7.0);
  EXPECT_EQ(ok(enc, "b.present && b.rank > 1", kArgs), 0.0);
  EXPECT_EQ(ok(enc, "!b.present || b.rank > 1", kArgs), 1.0);
  EXPECT_EQ(ok(enc, "in(4, 4, b.rank)", kArgs), 1.0);  // stops at the first match
  EXPECT_EQ(ok(enc, "a.dim_or(0, b.rank)", kArgs), 2.0);  // in range: the default is not used
  EXPECT_FALSE(value(enc, "a.dim_or(9, b.rank)", kArgs).ok());
}

TEST(Expressions, AnErrorInTheChosenOperandIsReportedWithItsPath) {
  Encoder enc(spec(json::object()), device());
  auto r = value(enc, "if(a.present, b.dim(0), 5)", kArgs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().path, "/args/b");
  EXPECT_NE(r.error().message.find("'b' is required here but absent"), std::string::npos);

  r = value(enc, "a.dim(4)", kArgs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().path, "/args/a/logical_shape");
  EXPECT_NE(r.error().message.find("rank 4, dimension 4 does not exist"), std::string::npos);

  r = value(enc, "1 + a.shard_cores", kArgs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().path, "/args/a/memory_config/shard_spec");

  r = value(enc, "dtype_bytes(a.dtype + 40)", kArgs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "unsupported dtype 40");
  EXPECT_EQ(r.error().path, "/args/a/dtype");

  r = value(enc, "a.dim(0.5)", kArgs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::op_spec);

  // The first error in reading order wins: the left operand of +.
  r = value(enc, "b.rank + a.shard_cores", kArgs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().path, "/args/b");

  json no_buffer = {{"a", {{"logical_shape", {32, 32}}}}, {"heads", 1}};
  r = value(enc, "a.buffer_type", no_buffer);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "buffer_type of 'a' is not given");
  EXPECT_EQ(r.error().path, "/args/a/tensor_layout/memory_config/buffer_type");  // where a TensorSpec keeps it
}

TEST(Expressions, DefaultsAndObjectFields) {
  Encoder enc(spec(json::object()), device());
  EXPECT_EQ(ok(enc, "kv_heads * 100 + scale * 2", kArgs), 803.0);
  json given = kArgs;
  given["kv_heads"] = 2;
  given["scale"] = 0.25;
  given["cfg"] = {{"index", 0}, {"value", {{"chunk", 64}}}};  // tt-metal's variant form
  EXPECT_EQ(ok(enc, "kv_heads * 100 + scale * 4 + cfg.chunk + cfg.approx", given), 265.0);
  EXPECT_EQ(ok(enc, "kv_heads.present", kArgs), 1.0);  // a defaulted argument is present

  json no_chunk = kArgs;
  no_chunk["cfg"] = json::object();
  auto r = value(enc, "cfg.chunk", no_chunk);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "field 'chunk' is missing");
  EXPECT_EQ(r.error().path, "/args/cfg/chunk");
  json bad_chunk = kArgs;
  bad_chunk["cfg"] = {{"chunk", "big"}};
  r = value(enc, "cfg.chunk", bad_chunk);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().path, "/args/cfg/chunk");
  EXPECT_NE(r.error().message.find("must be an integer"), std::string::npos);
}

TEST(Expressions, FeaturesShareSubExpressionsAndGiveTheSameValuesAsAlone) {
  json features = {{"t", "a.tiles"},
                   {"per_core", "ceil(t / device.cores)"},
                   {"log_per_core", "log(per_core)"},
                   {"mix", "per_core * a.dtype + log(per_core) + ceil(a.tiles / device.cores)"}};
  Encoder shared(spec(features), device());
  Bindings b;
  ASSERT_FALSE(shared.bind(kArgs, b));
  const double per_core = std::ceil(36.0 / 56.0);
  EXPECT_EQ(shared.eval(shared.feature("t"), b).value(), 36.0);
  EXPECT_EQ(shared.eval(shared.feature("per_core"), b).value(), per_core);
  EXPECT_EQ(shared.eval(shared.feature("log_per_core"), b).value(), std::log(per_core));
  EXPECT_EQ(shared.eval(shared.feature("mix"), b).value(), 0.0 + std::log(per_core) + per_core);
  // The same sub-expression written twice is one value slot.
  EXPECT_EQ(expr_slot(shared, shared.compile("ceil(a.tiles / device.cores)")),
            expr_slot(shared, shared.feature("per_core")));
}

TEST(Expressions, ValidateRulesAndCyclesAndUnknownNames) {
  Encoder enc(spec(json::object(), json::array({{{"expr", "kv_heads <= heads"}, {"message", "more kv heads than heads"}}})),
              device());
  Bindings b;
  json args = kArgs;
  args["kv_heads"] = 9;
  auto e = enc.bind(args, b);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message, "more kv heads than heads");
  EXPECT_EQ(e->path, "/args/kv_heads");
  args["kv_heads"] = 8;
  EXPECT_FALSE(enc.bind(args, b));

  EXPECT_THROW(Encoder(spec({{"x", "y + 1"}, {"y", "x * 2"}}), device()), torp::TorpError);
  try {
    Encoder(spec({{"x", "a.rank + nope"}}), device());
    FAIL();
  } catch (const torp::TorpError& err) {
    EXPECT_EQ(err.error().code, ErrorCode::op_spec);
    EXPECT_EQ(err.error().path, "/features/x");
  }
}

TEST(Expressions, ConstantsFoldWithoutChangingValues) {
  Encoder enc(spec(json::object()), device());
  EXPECT_EQ(ok(enc, "1024 * 4 / 2 + device.cores", kArgs), 2104.0);
  EXPECT_TRUE(std::isinf(ok(enc, "1 / 0", kArgs)));
  EXPECT_EQ(ok(enc, "dtype_bytes(FLOAT32) * a.rank", kArgs), 16.0);
  auto r = value(enc, "dtype_bytes(99)", kArgs);  // an invalid constant call stays an error
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "unsupported dtype 99");
}

namespace {

/// An op with a tensor-or-number operand, a list of tensors and a memory config.
json mixed_spec() {
  return {{"op", "ttnn.test_mixed"},
          {"args",
           {{"a", {{"type", "tensor"}}},
            {"b", {{"type", "tensor_or_number"}}},
            {"parts", {{"type", "tensor_list"}, {"optional", true}, {"rank", {2, 4}}}},
            {"memory_config", {{"type", "memory_config"}, {"optional", true}}}}},
          {"features", json::object()}};
}

}  // namespace

TEST(Expressions, TensorOrNumberArgument) {
  Encoder enc(mixed_spec(), device());
  const json with_tensor = {{"a", tensor({64, 64})}, {"b", tensor({1, 64}, 1)}};
  const json with_number = {{"a", tensor({64, 64})}, {"b", 2.5}};
  EXPECT_EQ(ok(enc, "b.is_tensor", with_tensor), 1.0);
  EXPECT_EQ(ok(enc, "b.is_tensor", with_number), 0.0);
  EXPECT_EQ(ok(enc, "b.tiles", with_tensor), 2.0);
  EXPECT_EQ(ok(enc, "b.dtype", with_tensor), 1.0);
  EXPECT_EQ(ok(enc, "b", with_number), 2.5);
  EXPECT_EQ(ok(enc, "if(b.is_tensor, b.tiles, b)", with_number), 2.5);
  auto as_number = value(enc, "b * 2", with_tensor);
  ASSERT_FALSE(as_number.ok());
  EXPECT_EQ(as_number.error().path, "/args/b");
  EXPECT_NE(as_number.error().message.find("number"), std::string::npos);
  auto as_tensor = value(enc, "b.tiles", with_number);
  ASSERT_FALSE(as_tensor.ok());
  EXPECT_EQ(as_tensor.error().path, "/args/b");
  auto bad = value(enc, "b.is_tensor", json{{"a", tensor({64, 64})}, {"b", "two"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().path, "/args/b");
}

TEST(Expressions, TensorListArgument) {
  Encoder enc(mixed_spec(), device());
  const json args = {{"a", tensor({32, 32})}, {"b", 1}, {"parts", {tensor({64, 64}, 3), tensor({64, 32, 32})}}};
  EXPECT_EQ(ok(enc, "parts.count", args), 2.0);
  EXPECT_EQ(ok(enc, "parts.total_tiles", args), 4.0 + 64.0);
  EXPECT_EQ(ok(enc, "parts.total_volume", args), 64.0 * 64 + 64.0 * 32 * 32);
  EXPECT_EQ(ok(enc, "parts.dtype", args), 3.0);  // the first tensor's
  EXPECT_EQ(ok(enc, "parts.present", args), 1.0);
  auto rank = value(enc, "parts.count", json{{"a", tensor({32, 32})}, {"b", 1}, {"parts", {tensor({64, 64}), tensor({64})}}});
  ASSERT_FALSE(rank.ok());
  EXPECT_EQ(rank.error().path, "/args/parts/1/logical_shape");
  auto empty = value(enc, "parts.count", json{{"a", tensor({32, 32})}, {"b", 1}, {"parts", json::array()}});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().path, "/args/parts");
  EXPECT_THROW(Encoder(json{{"op", "x"}, {"args", {{"t", {{"type", "tensor"}}}}}, {"features", {{"f", "t.count"}}}}, device()),
               torp::TorpError);
}

TEST(Expressions, ValueOrAndEmptyMemoryConfig) {
  Encoder enc(mixed_spec(), device());
  const json base = {{"a", {{"logical_shape", {32, 32}}}}, {"b", 1}};
  EXPECT_EQ(ok(enc, "value_or(a.dtype, 7)", base), 7.0);
  EXPECT_EQ(ok(enc, "value_or(a.volume, 7)", base), 1024.0);
  EXPECT_EQ(ok(enc, "value_or(memory_config.buffer_type, 5)", base), 5.0);
  json empty_config = base;
  empty_config["memory_config"] = json::object();  // tt-metal's "no memory config"
  EXPECT_EQ(ok(enc, "memory_config.present", empty_config), 0.0);
  EXPECT_EQ(ok(enc, "value_or(memory_config.buffer_type, 5)", empty_config), 5.0);
}
