// SPDX-License-Identifier: Apache-2.0
// Sweep records: the first byte picks which file of an exp sweep import the rest replaces (the
// vectors export or a results export); import_sweep returns or throws TorpError.
#include "fuzz_common.hpp"
#include "torp/train/sweep.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const nlohmann::json spec = torp::fuzz::read_json(torp::fuzz::source("ops/exp.json"));
  static const nlohmann::json device = torp::fuzz::read_json(torp::fuzz::source("devices/wormhole_n300.json"));
  const auto fuzzed = torp::fuzz::scratch() / "fuzzed.json";
  torp::fuzz::write_file(fuzzed, std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  const bool vectors = (data[0] & 1) != 0;
  const auto fixture = [](const char* f) { return torp::fuzz::source(std::string("tests/data/sweep/") + f); };
  try {
    torp::SweepImportReport report;
    (void)torp::import_sweep(vectors ? fuzzed : fixture("vectors_era_a.json"),
                             {vectors ? fixture("results_r1.json") : fuzzed}, spec, device, {}, &report);
    (void)report.to_json().dump();
  } catch (const torp::TorpError&) {
  }
  return 0;
}
