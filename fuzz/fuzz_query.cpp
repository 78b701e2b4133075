// SPDX-License-Identifier: Apache-2.0
// Query text -> Predictor (all shipped models): every line gets an answer, nothing throws, every
// answer is valid JSON, and the batch call answers like single calls.
#include <string>

#include "fuzz_common.hpp"
#include "torp/json_lines.hpp"
#include "torp/json_text.hpp"
#include "torp/predictor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const torp::Predictor predictor(torp::fuzz::source("models"));
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json query = torp::parse_json(text);
  if (query.is_discarded()) return 0;
  const torp::PredictResult single = predictor.predict(query);
  const std::vector<torp::PredictResult> batch = predictor.predict_batch(std::span<const nlohmann::json>(&query, 1));
  if (batch.size() != 1 || batch[0].ok() != single.ok()) torp::fuzz::finding("batch and single answers differ");
  if (single.ok() && !(batch[0].value().runtime_ns == single.value().runtime_ns))
    torp::fuzz::finding("batch and single runtimes differ");
  if (single.ok() && !(single.value().runtime_ns > 0)) torp::fuzz::finding("non-positive runtime answered");
  std::string out;
  torp::append_json_answer(out, single);
  if (nlohmann::json::parse(out, nullptr, false).is_discarded()) torp::fuzz::finding("answer is not valid JSON");
  return 0;
}
