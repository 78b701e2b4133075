// SPDX-License-Identifier: Apache-2.0
// Model files: any bytes as the only file of a models directory either load (and then answer a
// query without crashing) or give a TorpError; no other exception, no memory error.
#include "fuzz_common.hpp"
#include "torp/predictor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto dir = torp::fuzz::scratch() / "models";
  std::filesystem::create_directories(dir);
  torp::fuzz::write_file(dir / "m.json", std::string_view(reinterpret_cast<const char*>(data), size));
  static const nlohmann::json query = torp::fuzz::read_json(torp::fuzz::source("fuzz/corpus/fuzz_query/exp_full.json"));
  try {
    torp::Predictor p(dir);
    (void)p.predict(query);
    for (const auto& m : p.models()) (void)p.predict(query["op"].get<std::string>(), query["args"], m.id);
  } catch (const torp::TorpError&) {
  }
  return 0;
}
