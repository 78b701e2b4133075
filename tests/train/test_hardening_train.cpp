// SPDX-License-Identifier: Apache-2.0
// Regression tests of issue 13 for the training side: datasets and the sweep's Python-literal
// reader give TorpErrors / syntax errors for inputs that escaped or crashed before.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "support/fixtures.hpp"
#include "sweep/py_expr.hpp"
#include "torp/train/dataset.hpp"
#include "torp/train/sweep.hpp"

namespace fs = std::filesystem;

namespace {

std::string dataset_error(const std::string& text) {
  const auto dir = torp::test::temp_dir("hardening_dataset");
  const auto file = dir / "d.jsonl";
  std::ofstream(file, std::ios::binary) << text;
  std::string what;
  try {
    torp::load_dataset(file);
    ADD_FAILURE() << "accepted: " << text.substr(0, 100);
  } catch (const torp::TorpError& e) {
    EXPECT_EQ(e.error().code, torp::ErrorCode::dataset) << e.what();
    what = e.what();
  }
  fs::remove_all(dir);
  return what;
}

const std::string kHeader =
    R"({"format": "torp-dataset", "format_version": 1, "op": "ttnn.exp", "device": "wormhole_n300"})";

}  // namespace

TEST(HardeningDataset, NumberBeyondDoubleNamesFileAndLine) {
  // 691e308 gave nlohmann's out_of_range.406 without file or line.
  EXPECT_NE(dataset_error("691e308").find("d.jsonl:1:"), std::string::npos);
  const std::string e = dataset_error(kHeader + "\n" + R"({"args": {}, "runtime_ns": 691e308})" + "\n");
  EXPECT_NE(e.find("d.jsonl:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("number overflow"), std::string::npos) << e;
}

TEST(HardeningDataset, DeepLinesAndHugeVersionsAreErrors) {
  const std::string deep = R"({"args": {"x": )" + std::string(50000, '[') + std::string(50000, ']') +
                           R"(}, "runtime_ns": 5})";
  EXPECT_NE(dataset_error(kHeader + "\n" + deep + "\n").find("d.jsonl:2:1: JSON nested deeper than 256"),
            std::string::npos);
  std::string header = kHeader;
  header.replace(header.find("\"format_version\": 1"), 19, "\"format_version\": 4294967297");  // 2^32 + 1
  EXPECT_NE(dataset_error(header + "\n").find("unsupported format_version 4294967297"), std::string::npos);
}

TEST(HardeningPyExpr, DeepNestingIsASyntaxErrorNotAStackOverflow) {
  for (bool literal : {true, false}) {
    std::string error;
    EXPECT_FALSE(torp::py::parse(std::string(2000, '[') + std::string(2000, ']'), literal, &error));
    EXPECT_NE(error.find("nested deeper than"), std::string::npos) << error;
    EXPECT_FALSE(torp::py::parse(std::string(5000, '-') + "1", literal, &error));
    EXPECT_FALSE(torp::py::parse(std::string(3000, '(') + "1" + std::string(3000, ')'), literal, &error));
    EXPECT_TRUE(torp::py::parse(std::string(50, '[') + std::string(50, ']'), literal, &error)) << error;
  }
  {  // a sweep parameter nested 2,000 deep stays undecoded
    const nlohmann::json v = std::string(2000, '[') + std::string(2000, ']');
    EXPECT_EQ(torp::decode_sweep_value(v), v);
  }
}

TEST(HardeningPyExpr, InvalidUtf8InAnErrorMessageIsARuntimeError) {
  // Found by fuzz_py_literal: the message of a type error printed the operand with dump(), which
  // threw nlohmann's type_error.316 for a string with invalid UTF-8.
  auto node = torp::py::parse("-'\x88\x9ei'", false);
  ASSERT_TRUE(node);
  try {
    (void)torp::py::eval(*node, nullptr);
    ADD_FAILURE() << "-str evaluated";
  } catch (const nlohmann::json::exception& e) {
    ADD_FAILURE() << "nlohmann exception escaped: " << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("\xEF\xBF\xBD"), std::string::npos) << e.what();  // U+FFFD
  }
}

TEST(HardeningPyExpr, IntegerOverflowIsAnErrorNotUndefinedBehaviour) {
  // Found by fuzz_py_literal under UBSan: 377777777777777777 * 777 overflowed int64 (UB).
  for (const char* text : {"377777777777777777 * 777", "9223372036854775807 + 1", "-9223372036854775807 - 2",
                           "(-9223372036854775807 - 1) // -1", "-(-9223372036854775807 - 1)"}) {
    auto node = torp::py::parse(text, false);
    ASSERT_TRUE(node) << text;
    EXPECT_THROW((void)torp::py::eval(*node, nullptr), std::runtime_error) << text;
  }
  auto ok = torp::py::parse("9223372036854775806 + 1", false);
  EXPECT_EQ(torp::py::eval(*ok, nullptr), nlohmann::json(INT64_MAX));
  std::string error;
  EXPECT_FALSE(torp::py::parse("-18446744073709551615", true, &error));
}
