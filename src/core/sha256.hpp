// SPDX-License-Identifier: Apache-2.0
// SHA-256 (FIPS 180-4), incremental: dataset provenance hashes files, and the sweep reader hashes
// a results file while it streams it (one pass over a 1 GB file, not two). Uses the x86 SHA
// extensions when the CPU has them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace torp {

class Sha256 {
 public:
  /// Hash more bytes.
  void update(const unsigned char* p, std::size_t n);
  /// The digest as 64 hex digits (ends the hash).
  std::string hex();
  /// Use the portable code even where the CPU has SHA extensions (tests check both give the
  /// same digests).
  static inline bool portable_only = false;

 private:
  void blocks(const unsigned char* p, std::size_t count);

  std::array<std::uint32_t, 8> h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> buf_{};
  std::size_t used_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace torp
