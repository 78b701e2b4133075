// SPDX-License-Identifier: Apache-2.0
// Raw file bytes and little-endian reads, for the tests that check the reference's mlpack files
// independently of the library's importer.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace torp::test {

inline std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << p;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::uint64_t le_u64(const std::string& b, std::size_t off) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[off + static_cast<std::size_t>(i)]);
  return v;
}

inline double le_f64(const std::string& b, std::size_t off) {
  std::uint64_t bits = le_u64(b, off);
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

}  // namespace torp::test
