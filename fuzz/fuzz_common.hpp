// SPDX-License-Identifier: Apache-2.0
// Shared by the libFuzzer targets: repository paths and a scratch directory per process.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace torp::fuzz {

inline std::filesystem::path source(const std::string& relative) {
  return std::filesystem::path(TORP_SOURCE_DIR) / relative;
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

/// A scratch directory for this fuzzing process (removed at exit).
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("torp_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] { std::filesystem::remove_all(std::filesystem::temp_directory_path() / ("torp_fuzz_" + std::to_string(::getpid()))); });
    return d;
  }();
  return dir;
}

inline void write_file(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A failure the fuzzer must report (an escaped exception is reported by libFuzzer as a crash too).
[[noreturn]] inline void finding(const char* what) {
  std::fprintf(stderr, "FINDING: %s\n", what);
  std::abort();
}

}  // namespace torp::fuzz
