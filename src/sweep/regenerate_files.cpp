// SPDX-License-Identifier: Apache-2.0
// regenerate_files(): files in, files out, around regenerate() (include/torp/train/regenerate.hpp).
#include "torp/atomic_file.hpp"
#include "torp/train/regenerate.hpp"
#include "torp/train/sweep.hpp"

namespace torp {

namespace fs = std::filesystem;

RegenerateResult regenerate_files(const RegenerateInputs& in, const nlohmann::json& op_spec, const nlohmann::json& device,
                                  RegenerateOptions o) {
  if (in.dataset.has_value() == in.vectors.has_value() || in.vectors.has_value() == in.results.empty())
    throw TorpError(ErrorCode::invalid_argument, "give either a dataset or sweep vectors with results");
  fs::create_directories(in.work);
  for (const char* f : {"comparison.json", "comparison.html"})
    if (!in.force && fs::exists(in.work / f))
      throw TorpError(ErrorCode::io, (in.work / f).string() + " exists; allow overwriting it (--force)");
  o.overwrite_previous = o.overwrite_previous || in.force;
  fs::path dataset_file = in.dataset.value_or(in.work / "dataset.jsonl");
  if (in.vectors) {
    SweepImportReport rep;
    const SweepDataset d = import_sweep(*in.vectors, in.results, op_spec, device, SweepOptions{}, &rep);
    if (d.rows.empty()) throw TorpError(ErrorCode::dataset, "no usable result records in the sweep output");
    AtomicFile rf(in.work / "dataset.report.json", in.force);
    rf.stream() << rep.to_json().dump(1) << "\n";
    d.save(dataset_file, in.force, [&rf] { rf.commit(); });  // report first, dataset last
    if (o.train.progress) o.train.progress("imported " + std::to_string(d.rows.size()) + " rows to " + dataset_file.string());
  }
  o.train.dataset_file = dataset_file.string();
  const Dataset data = load_dataset(dataset_file);
  RegenerateResult r = regenerate(data, sha256_file(dataset_file), op_spec, device, o);
  AtomicFile jf(in.work / "comparison.json", in.force);
  jf.stream() << r.comparison.dump(2) << "\n";
  jf.commit();
  AtomicFile hf(in.work / "comparison.html", in.force);
  hf.stream() << comparison_html(r.comparison);
  hf.commit();
  return r;
}

}  // namespace torp
