// SPDX-License-Identifier: Apache-2.0
// The analytical op specs (ops/*.json with an "analytical" recipe) on every device: each op of
// a family compiles, answers a doubling sweep of sizes with a positive runtime that never drops
// by more than 5% as the tensor grows, and grows x1.3-2.6 per doubling once the op is bound by
// bandwidth or compute: runtime well above the fixed launch overhead, and the grid full (at
// least two tile rows per core).
#include <gtest/gtest.h>

#include <map>

#include "support/fixtures.hpp"
#include "support/op_sweep.hpp"
#include "torp/encoder.hpp"
#include "torp/predictor.hpp"

namespace {

using nlohmann::json;
using torp::Encoder;

const char* const kFamilies[] = {"unary", "binary", "typecast", "matmul_linear", "softmax", "norm", "reduction",
                                 "transpose", "concat", "to_memory_config", "reshard_any", "to_layout", "embedding"};
const char* const kDevices[] = {"wormhole_n150", "wormhole_n300", "blackhole_p150"};

/// Every analytical spec, expanded per op.
std::map<std::string, json> analytical_specs() {
  std::map<std::string, json> specs;
  for (const char* f : kFamilies)
    for (const json& s : torp::expand_op_family(torp::test::read_json(torp::test::source(std::string("ops/") + f + ".json"))))
      specs[s.at("op").get<std::string>()] = s;
  return specs;
}

TEST(AnalyticalSpecs, EveryOpHasOneSpec) {
  const auto specs = analytical_specs();
  for (const auto& op : torp::test::analytical_ops()) EXPECT_EQ(specs.count(op), 1u) << op;
  EXPECT_EQ(specs.size(), torp::test::analytical_ops().size());
}

TEST(AnalyticalSpecs, DoublingSweepGrowsLikeTheWork) {
  const auto specs = analytical_specs();
  for (const char* device_name : kDevices) {
    const json device = torp::test::read_json(torp::test::source(std::string("devices/") + device_name + ".json"));
    const double launch = device.at("launch_overhead_ns").get<double>();
    const auto cores = device.at("cores").get<std::int64_t>();
    for (const auto& [op, spec] : specs) {
      SCOPED_TRACE(op + " on " + device_name);
      const Encoder enc(spec, device);
      const std::vector<std::string> feature = {"analytical_ns"};
      double previous = 0.0;
      for (std::int64_t elements = 1024; elements <= (std::int64_t{32} << 20); elements *= 2) {
        SCOPED_TRACE("elements " + std::to_string(elements));
        auto r = enc.encode(torp::test::sweep_args(op, elements), feature);
        ASSERT_TRUE(r.ok()) << r.error().describe();
        const double ns = r.value()[0];
        EXPECT_GT(ns, 0.0);
        if (previous > 0.0) {
          EXPECT_GE(ns, 0.95 * previous);
          if (previous > 10.0 * launch && torp::test::sweep_tile_rows(elements / 2) >= 2 * cores) {
            EXPECT_GE(ns / previous, 1.3);
            EXPECT_LE(ns / previous, 2.6);
          }
        }
        previous = ns;
      }
    }
  }
}

TEST(AnalyticalSpecs, FamilyMembersDifferOnlyWhereDeclared) {
  const json family = torp::test::read_json(torp::test::source("ops/unary.json"));
  const auto members = torp::expand_op_family(family);
  ASSERT_EQ(members.size(), family.at("members").size());
  for (const json& m : members) {
    EXPECT_FALSE(m.contains("members"));
    EXPECT_EQ(m.at("args"), family.at("args"));
  }
  EXPECT_THROW(torp::expand_op_family(json{{"members", json::array()}}), torp::TorpError);
}

}  // namespace

namespace {

/// The shipped analytical models answer the same sweep through the predictor on their device, each
/// pinned by its id, with the spec's own value (the law is the answer: no network), domain
/// "analytical" and an interval around the answer.
TEST(AnalyticalModels, ShippedModelsAnswerEveryOpOnEveryDevice) {
  const torp::Predictor p(torp::test::source_dir() / "models");
  const auto specs = analytical_specs();
  for (const char* device_name : kDevices) {
    const json device = torp::test::read_json(torp::test::source(std::string("devices/") + device_name + ".json"));
    for (const auto& op : torp::test::analytical_ops()) {
      const std::string id = std::string(device_name) + "/analytical/" + op.substr(5);
      SCOPED_TRACE(id);
      const Encoder enc(specs.at(op), device);
      double previous = 0.0;
      for (std::int64_t elements = 1024; elements <= (std::int64_t{32} << 20); elements *= 4) {
        const json args = torp::test::sweep_args(op, elements);
        // The query names the device; the analytical model is the only one of most ops there.
        auto r = p.predict(op, args, torp::PredictOptions{device_name, id});
        ASSERT_TRUE(r.ok()) << r.error().describe();
        EXPECT_EQ(r.value().model_id, id);
        EXPECT_EQ(r.value().domain, torp::Domain::analytical);
        ASSERT_TRUE(r.value().interval_ns.has_value());
        EXPECT_LT((*r.value().interval_ns)[0], r.value().runtime_ns);
        EXPECT_GT((*r.value().interval_ns)[1], r.value().runtime_ns);
        const auto law = enc.encode(args, std::vector<std::string>{"analytical_ns"});
        ASSERT_TRUE(law.ok());
        EXPECT_DOUBLE_EQ(r.value().runtime_ns, law.value()[0]);
        EXPECT_GE(r.value().runtime_ns, 0.95 * previous);
        previous = r.value().runtime_ns;
      }
    }
  }
}

}  // namespace
