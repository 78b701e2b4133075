// SPDX-License-Identifier: Apache-2.0
// Dataset files: load_dataset on any bytes returns a dataset or throws TorpError naming the file.
#include "fuzz_common.hpp"
#include "torp/train/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = torp::fuzz::scratch() / "d.jsonl";
  torp::fuzz::write_file(file, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    torp::Dataset d = torp::load_dataset(file);
    torp::AggregationReport rep;
    (void)torp::aggregate(d, torp::kDefaultRejectFactor, &rep);
  } catch (const torp::TorpError& e) {
    if (std::string_view(e.what()).find("d.jsonl") == std::string_view::npos) torp::fuzz::finding("error without the file name");
  }
  return 0;
}
