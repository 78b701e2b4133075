// SPDX-License-Identifier: Apache-2.0
// torp::parse_json gives exactly what nlohmann::json::parse(text, nullptr, false) gives: the same
// values with the same number types, or a discarded value for invalid text.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "support/fixtures.hpp"
#include "torp/json_text.hpp"

using nlohmann::json;

namespace {

/// Equal values and equal types all the way down (json's == compares 1 and 1.0 as equal).
bool same(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_number_float()) {
    const double x = a.get<double>(), y = b.get<double>();
    return std::memcmp(&x, &y, sizeof x) == 0;  // bit-identical, -0.0 included
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(), jt = b.begin(); it != a.end(); ++it, ++jt)
      if (it.key() != jt.key() || !same(*it, *jt)) return false;
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!same(a[i], b[i])) return false;
    return true;
  }
  return a == b;
}

void expect_like_nlohmann(const std::string& text) {
  const json reference = json::parse(text, nullptr, false);
  const json fast = torp::parse_json(text);
  EXPECT_EQ(fast.is_discarded(), reference.is_discarded()) << text;
  if (!reference.is_discarded()) EXPECT_TRUE(same(fast, reference)) << text << "\nfast: " << fast.dump();
}

}  // namespace

TEST(JsonText, QueryFilesParseAsNlohmannParsesThem) {
  std::size_t lines = 0;
  for (const char* file : {"examples/queries.jsonl", "tests/data/exp_slice.jsonl"}) {
    std::ifstream in(torp::test::source(file));
    for (std::string line; std::getline(in, line); ++lines) expect_like_nlohmann(line);
  }
  EXPECT_GT(lines, 100u);
  for (const char* file : {"tests/data/sweep/vectors_era_a.json", "tests/data/sweep/results_r1.json", "ops/exp.json"}) {
    std::ifstream in(torp::test::source(file));
    std::stringstream ss;
    ss << in.rdbuf();
    expect_like_nlohmann(ss.str());
  }
}

TEST(JsonText, NumbersKeepTheirTypeAndBits) {
  for (const char* t : {"0", "-0", "7", "-7", "18446744073709551615", "18446744073709551616", "-9223372036854775808",
                        "-9223372036854775809", "1.0", "-0.0", "0.1", "1e2", "1E+2", "1e-2", "2.5e-308", "4.9e-324",
                        "1e-400", "1e400", "-1e400", "123456789012345678901234567890", "3.141592653589793238462643",
                        "01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "NaN", "Infinity", "--1", "1.5.2"})
    expect_like_nlohmann(t);
}

TEST(JsonText, StringsEscapesAndUnicode) {
  for (const char* t : {R"("")", R"("plain")", R"("a\"b\\c\/d\b\f\n\r\t")", R"("\u0041\u00e9")", R"("\ud83d\ude00")",
                        "\"caf\xc3\xa9\"", "\"bad \xff utf8\"", "\"tab\there\"", R"("unterminated)", R"("bad \x escape")",
                        R"({"k\"ey": "v"})"})
    expect_like_nlohmann(t);
}

TEST(JsonText, StructureWhitespaceLiteralsAndErrors) {
  for (const char* t : {"{}", "[]", " { \"a\" : [ 1 , 2 , { } ] } \r\n", "[true,false,null]", R"({"a":1,"a":2})",
                        "", "   ", "{", "}", "[1,]", "[1 2]", R"({"a" 1})", R"({"a":1,})", R"({a:1})", "tru", "nul",
                        "[1] x", "{\"a\":1}{}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"})
    expect_like_nlohmann(t);
  std::string deep(200, '[');
  deep += std::string(200, ']');
  expect_like_nlohmann(deep);  // deeper than the direct reader goes: nlohmann's answer
}

TEST(JsonText, DocumentsDeeperThanTheLimitAreRefused) {
  // Issue 13: a 50,000-deep value crashed whatever copied or printed it (recursion).
  for (std::size_t depth : {torp::kMaxJsonDepth + 1, std::size_t{50000}}) {
    std::string deep = std::string(depth, '[') + std::string(depth, ']');
    EXPECT_TRUE(torp::parse_json(deep).is_discarded()) << depth;
    EXPECT_EQ(torp::json_nesting_depth(deep), depth);
  }
  std::string ok;
  for (std::size_t i = 0; i < torp::kMaxJsonDepth; ++i) ok += "[";
  ok += std::string(torp::kMaxJsonDepth, ']');
  EXPECT_FALSE(torp::parse_json(ok).is_discarded());
  EXPECT_EQ(torp::json_nesting_depth(R"({"a": "[[[[", "b": ["\"[["]})"), 2u) << "brackets in strings do not count";
}

TEST(JsonText, RandomDocumentsRoundTrip) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> pick(0, 9);
  std::function<json(int)> make = [&](int depth) -> json {
    switch (depth > 3 ? pick(rng) % 6 : pick(rng)) {
      case 0: return static_cast<std::uint64_t>(rng());
      case 1: return -static_cast<std::int64_t>(rng() >> 2);
      case 2: return std::ldexp(static_cast<double>(rng() >> 11), static_cast<int>(rng() % 200) - 100);
      case 3: return std::string(1 + rng() % 20, static_cast<char>('a' + rng() % 26)) + "\"\\\n";
      case 4: return rng() % 2 == 0;
      case 5: return nullptr;
      case 6:
      case 7: {
        json o = json::object();
        for (int i = 0, n = static_cast<int>(rng() % 5); i < n; ++i) o["k" + std::to_string(rng() % 7)] = make(depth + 1);
        return o;
      }
      default: {
        json a = json::array();
        for (int i = 0, n = static_cast<int>(rng() % 5); i < n; ++i) a.push_back(make(depth + 1));
        return a;
      }
    }
  };
  for (int i = 0; i < 2000; ++i) {
    const json doc = make(0);
    const std::string text = doc.dump(i % 2 == 0 ? -1 : 2);
    expect_like_nlohmann(text);
    if (HasFailure()) break;
  }
}
