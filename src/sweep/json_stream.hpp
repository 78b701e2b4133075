// SPDX-License-Identifier: Apache-2.0
// Streaming reader for large JSON files that are one container of items (a results_export list
// of records, a vectors_export {suite: {id: vector}} object): each item is handed over as a DOM
// on its own, so memory holds one item at a time. Python's bare NaN / Infinity / -Infinity
// (json.dump writes them) are read as null. Errors name the file and line:column (bad JSON) or
// the JSON pointer of the offending value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace torp {

/// Where an item sits: the keys / indices of its containers, outermost first.
struct JsonItemPath {
  std::vector<std::string> keys;       ///< object keys ("" where the container is an array)
  std::vector<std::int64_t> indices;   ///< array indices (-1 where the container is an object)
  /// JSON pointer ("/12", "/suite/id").
  [[nodiscard]] std::string pointer() const;
};

struct JsonItemReader {
  /// The top-level value must be an array (results) or an object (vectors); `expect` describes
  /// the expected layout in the error for any other type.
  bool root_is_array = true;
  std::string expect;
  /// Items are the values at this many containers deep (1: elements of the root; 2: values of
  /// the root's values). Items and the containers between them and the root must be objects.
  int item_depth = 1;
  /// Build only these keys of an item (empty: all keys). Skipped values still count in the hash.
  std::vector<std::string> capture;
  /// A key of the items whose value gets its own content hash (Item::key_hash).
  std::string hash_key;
  struct Item {
    nlohmann::json& value;
    std::uint64_t hash;      ///< of the item's full content: identical text gives the same hash
    std::uint64_t key_hash;  ///< of the value of hash_key (0 if the item has none)
    const JsonItemPath& where;
  };
  /// Called with each item. Exceptions propagate out of read().
  std::function<void(const Item& item)> on_item;
  /// Called about once a second with the bytes read so far (for progress output).
  std::function<void(std::uint64_t bytes)> on_progress;

  /// Read `file`; returns the SHA-256 of its bytes. Throws TorpError(io) if it cannot be read,
  /// TorpError(dataset) with "<file>:<line>:<column>: invalid JSON: ..." or "<file>: <pointer>:
  /// ..." if it is malformed.
  std::string read(const std::filesystem::path& file) const;
};

/// XXH3 64-bit hash (xxhash) of a byte string, for duplicate detection and keys; not cryptographic.
std::uint64_t hash_bytes(std::string_view bytes, std::uint64_t seed = 0);

}  // namespace torp
