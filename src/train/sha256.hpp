// SPDX-License-Identifier: Apache-2.0
// SHA-256 through OpenSSL's EVP interface, incremental: dataset provenance hashes files, and the
// sweep reader hashes a results file while it streams it (one pass over a 1 GB file, not two).
// Only the training layers hash; serving does not link OpenSSL.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace torp {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  /// Hash more bytes.
  void update(const unsigned char* p, std::size_t n);
  /// The digest as 64 hex digits (ends the hash).
  std::string hex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace torp
