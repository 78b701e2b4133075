// SPDX-License-Identifier: Apache-2.0
// torp dataset: build measurement datasets (reference CSV, tt-metal sweep output), inspect them
// and cut deterministic samples.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include <memory>
#include <optional>
#include <vector>

#include "commands.hpp"
#include "torp/train/dataset.hpp"
#include "torp/encoder.hpp"
#include "torp/log.hpp"
#include "torp/predictor.hpp"
#include "torp/train/sweep.hpp"

namespace torp::cli {
namespace {

using json = nlohmann::json;

std::string fmt_ns(double ns) {
  std::ostringstream o;
  if (ns >= 1e6) o << std::fixed << std::setprecision(3) << ns / 1e6 << " ms";
  else if (ns >= 1e3) o << std::fixed << std::setprecision(2) << ns / 1e3 << " us";
  else o << std::fixed << std::setprecision(0) << ns << " ns";
  return o.str();
}

struct ImportCsvCli {
  std::optional<std::string> layout, tt_metal_commit, source, notes;
  std::string device, op, csv, out;
  bool force = false;
};

int import_csv(const ImportCsvCli& c) {
  const std::string& csv = c.csv;
  const std::string& out = c.out;
  CsvLayout layout = c.layout ? parse_csv_layout(*c.layout) : detect_csv_layout(csv);
  json device = read_json_file(c.device, "device description");
  json prov = {{"op", c.op}, {"tt_metal_commit", c.tt_metal_commit ? json(*c.tt_metal_commit) : json()}};
  if (c.source) prov["source"] = *c.source;
  if (c.notes) prov["notes"] = *c.notes;
  std::cerr << "torp dataset: reading " << csv << " (layout " << to_string(layout) << ")\n";
  Dataset d = import_reference_csv(csv, layout, device, prov);
  AggregationReport rep;
  aggregate(d, kDefaultRejectFactor, &rep);
  save_dataset(d, out, c.force);
  std::cerr << "torp dataset: wrote " << out << ": " << d.rows.size() << " rows, "
            << rep.configurations + rep.dropped_configurations << " configurations (" << rep.rejected_rows
            << " repeats would be rejected at factor " << kDefaultRejectFactor << "), sha256 " << sha256_file(out)
            << "\n";
  return kExitOk;
}

/// An op spec or device description: a JSON file, or a name looked up among the *.json files of
/// `dir` (default: share/torp/<kind> next to the models, else ./<kind>) by their "op" (also its
/// short form and aliases) or "name", or their file name.
/// `file` receives the file it was read from.
json find_description(const std::string& value, const std::string& kind, const std::optional<std::string>& dir,
                      const char* what, std::string& file) {
  namespace fs = std::filesystem;
  file = value;
  if (value.find('/') != std::string::npos || (value.size() > 5 && value.substr(value.size() - 5) == ".json") ||
      fs::is_regular_file(value))
    return read_json_file(value, what);
  fs::path d = dir ? fs::path(*dir) : resolve_models_dir().parent_path() / kind;
  if (!dir && !fs::is_directory(d)) d = kind;
  std::error_code ec;
  if (!fs::is_directory(d, ec))
    throw TorpError(ErrorCode::io, std::string("no ") + what + " '" + value + "': directory " + d.string() +
                                       " not found (give a file, or --" + kind + " DIR)");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(d))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    json j = read_json_file(f.string(), what);
    std::vector<std::string> names = {f.stem().string()};
    if (kind == "ops" && j.contains("op") && j["op"].is_string()) {
      std::string op = j["op"];
      names.push_back(op);
      names.push_back(op.substr(op.rfind('.') + 1));
      for (const json& alias : j.value("aliases", json::array()))
        if (alias.is_string()) names.push_back(alias);
    }
    if (kind == "devices" && j.contains("name") && j["name"].is_string()) names.push_back(j["name"]);
    std::string wanted = kind == "ops" ? canonical_op_name(value) : value;
    for (const std::string& n : names)
      if (n == value || n == wanted) {
        file = f.string();
        return j;
      }
  }
  throw TorpError(ErrorCode::io, std::string("no ") + what + " '" + value + "' in " + d.string() +
                                     " (give a file, or --" + kind + " DIR)");
}

void print_report(std::ostream& o, const SweepImportReport& rep, std::size_t files) {
  auto row = [&](int indent, const std::string& name, std::size_t n, const std::string& note = {}) {
    o << std::string(static_cast<std::size_t>(indent), ' ') << std::left << std::setw(32 - indent) << name << std::right
      << std::setw(9) << n << (note.empty() ? "" : "  " + note) << "\n";
  };
  o << rep.vectors << " vectors, " << rep.records << " result records in " << files << " file(s) -> " << rep.rows
    << " rows of " << rep.configurations << " configurations\n";
  row(0, "records dropped", rep.dropped_total());
  for (std::size_t i = 0; i < kSweepDropReasons; ++i) {
    if (rep.dropped[i] == 0) continue;
    row(2, std::string(to_string(static_cast<SweepDrop>(i))), rep.dropped[i], "e.g. " + rep.example[i]);
    if (static_cast<SweepDrop>(i) == SweepDrop::not_pass)
      for (const auto& [status, n] : rep.not_pass_by_status) row(4, status, n);
  }
  row(0, "vectors without rows", rep.vectors - rep.vectors_with_rows);
  row(2, "invalid", rep.vectors_invalid);
  row(2, "filtered_out", rep.vectors_filtered_out);
  row(2, "without_result", rep.vectors_without_result);
  row(2, "all_records_dropped", rep.vectors_all_dropped);
  o << "outliers: " << rep.outliers.size() << " rows more than " << rep.outlier_mads
    << " scaled MADs from their configuration's median (kept; listed in the report)\n";
  for (std::size_t i = 0; i < rep.outliers.size() && i < 10; ++i) {
    const SweepOutlier& x = rep.outliers[i];
    o << "  " << x.suite << "/" << x.input_hash << ": " << fmt_ns(x.kernel_duration_ns) << ", median "
      << fmt_ns(x.median_ns) << " of " << x.repeats << "\n";
  }
  if (rep.outliers.size() > 10) o << "  ... " << rep.outliers.size() - 10 << " more\n";
}

const char* const kFromSweepDescription =
    "Results are joined to vectors by (suite, input_hash), never by list position. A row is a\n"
    "PASS record with DEVICE KERNEL DURATION [ns] > 0 whose vector maps to valid op arguments;\n"
    "it keeps the vector's suite and input_hash. Every other record is counted by reason\n"
    "(no_matching_vector, filtered_out, vector_mismatch with original_vector_data,\n"
    "invalid_vector, not_pass per status, no_device_perf, zero_device_perf, bad_args,\n"
    "duplicate, superseded), and so is every vector without rows (invalid, filtered out,\n"
    "without result, all records dropped). Exact copies of a record (a file appended twice, a\n"
    "timeout written twice) are duplicates; different records of the same vector and run\n"
    "(start time) keep the newest; separate runs stay as repeated rows. Rows more than 3 scaled\n"
    "MADs from their configuration's median are flagged (not removed).\n"
    "Reads results generations R0..R3 and vector eras A..C; files are streamed (about 70 bytes\n"
    "are kept per result record). The op spec's \"sweep\" block maps sweep\n"
    "parameters to the op's arguments (docs/op-spec.md). Writes DATASET and, next to it,\n"
    "DATASET's name with .report.json (the report printed at the end); both atomically, nothing\n"
    "when the import fails or yields no rows. Progress goes to stderr, the report to stdout.";

struct FromSweepCli {
  std::string op, device, vectors, out;
  std::vector<std::string> results, suites;
  std::optional<std::string> ops, devices, tag, tt_metal_commit, source;
  bool latest_only = false, force = false;
};

int from_sweep(const FromSweepCli& c) {
  const std::string cmd = "dataset from-sweep";
  const std::filesystem::path out = c.out;
  std::filesystem::path report_file = out;
  report_file.replace_extension(".report.json");
  const bool force = c.force;
  for (const auto& f : {out, report_file})
    if (!force && std::filesystem::exists(f)) {
      error(cmd, f.string() + " exists; pass --force to replace it");
      return kExitFailure;
    }
  SweepOptions opt;
  if (c.tag) opt.tag = *c.tag;
  opt.suites = c.suites;
  opt.latest_only = c.latest_only;
  if (c.tt_metal_commit) opt.tt_metal_commit = *c.tt_metal_commit;
  if (c.source) opt.origin = *c.source;
  std::vector<std::filesystem::path> results;
  for (const auto& r : c.results) results.emplace_back(r);
  std::string spec_file, device_file;
  const json spec = find_description(c.op, "ops", c.ops, "op spec", spec_file);
  const json device = find_description(c.device, "devices", c.devices, "device description", device_file);

  set_log_callback([](LogLevel level, std::string_view message) {
    if (level >= LogLevel::info) std::cerr << "torp dataset: " << message << "\n";
  });
  SweepImportReport rep;
  SweepDataset d;
  try {
    d = with_op_spec_file(spec_file, [&] { return import_sweep(c.vectors, results, spec, device, opt, &rep); });
  } catch (...) {
    set_log_callback(nullptr);
    throw;
  }
  set_log_callback(nullptr);
  print_report(std::cout, rep, results.size());
  if (rep.git_hashes.size() > 1 && !opt.tt_metal_commit)
    std::cerr << "torp dataset: warning: records come from " << rep.git_hashes.size()
              << " tt-metal commits; tt_metal_commit left unknown (pass --tt-metal-commit)\n";
  if (d.rows.empty()) {
    error(cmd, "no usable result records; nothing written");
    return kExitFailure;
  }
  nlohmann::ordered_json report = rep.to_json();
  report["dataset"] = out.filename().string();
  AtomicFile rf(report_file, force);
  rf.stream() << report.dump(1) << "\n";
  d.save(out, force, [&] { rf.commit(); });  // report first, dataset last (docs/dataset-format.md)
  std::cerr << "torp dataset: wrote " << out.string() << " (" << d.rows.size() << " rows) and " << report_file.string()
            << "\n";
  return kExitOk;
}

struct InfoCli {
  double reject_factor = kDefaultRejectFactor;
  bool json = false;
  std::string file;
};

int info(const InfoCli& c) {
  const double factor = c.reject_factor;
  const std::string file = c.file;
  Dataset d = load_dataset(file);
  AggregationReport rep;
  std::vector<Configuration> configs = aggregate(d, factor, &rep);
  std::map<std::string, std::size_t> per_config;
  for (const Measurement& m : d.rows) ++per_config[configuration_key(m.args)];
  std::map<std::size_t, std::size_t> repeats;  // repeats -> configurations
  for (const auto& [k, n] : per_config) ++repeats[n];
  double lo = 0, hi = 0;
  if (!d.rows.empty()) {
    auto [mn, mx] = std::minmax_element(d.rows.begin(), d.rows.end(),
                                        [](const Measurement& x, const Measurement& y) { return x.runtime_ns < y.runtime_ns; });
    lo = mn->runtime_ns;
    hi = mx->runtime_ns;
  }
  const std::string sha = sha256_file(file);
  json rj = json::object();
  for (const auto& [n, count] : repeats) rj[std::to_string(n)] = count;
  if (c.json) {
    std::cout << json{{"file", file},
                      {"sha256", sha},
                      {"op", d.op},
                      {"device", d.header.value("device", json())},
                      {"tt_metal_commit", d.header.value("tt_metal_commit", json())},
                      {"rows", d.rows.size()},
                      {"configurations", per_config.size()},
                      {"repeats", rj},
                      {"reject_factor", factor},
                      {"rejected_rows", rep.rejected_rows},
                      {"configurations_with_rejections", rep.configurations_with_rejections},
                      {"dropped_configurations", rep.dropped_configurations},
                      {"runtime_ns", {{"min", lo}, {"max", hi}}}}
                     .dump()
              << "\n";
    return kExitOk;
  }
  auto field = [&](const char* key) {
    auto it = d.header.find(key);
    return it == d.header.end() || it->is_null() ? std::string("-") : it->is_string() ? it->get<std::string>() : it->dump();
  };
  std::string rep_text;
  for (const auto& [n, count] : repeats)
    rep_text += (rep_text.empty() ? "" : ", ") + std::to_string(count) + " x " + std::to_string(n);
  auto line = [](const char* k) -> std::ostream& { return std::cout << std::left << std::setw(17) << k; };
  line("file") << file << "\n";
  line("sha256") << sha << "\n";
  line("op") << d.op << "\n";
  line("device") << field("device") << "\n";
  line("tt-metal commit") << field("tt_metal_commit") << "\n";
  line("rows") << d.rows.size() << "\n";
  line("configurations") << per_config.size() << "\n";
  line("repeats") << rep_text << " (configurations x repeats)\n";
  line("rejected") << rep.rejected_rows << " rows in " << rep.configurations_with_rejections + rep.dropped_configurations
                   << " configurations at factor " << factor << "; " << rep.dropped_configurations
                   << " configurations without consensus dropped\n";
  line("runtime") << fmt_ns(lo) << " .. " << fmt_ns(hi) << "\n";
  return kExitOk;
}

struct SampleCli {
  std::size_t every = 1, offset = 0;
  bool force = false;
  std::string in, out;
};

int sample(const SampleCli& c) {
  if (c.offset >= c.every) throw UsageError("--offset must be below --every");
  const std::size_t n = c.every, k = c.offset;
  const std::string& in = c.in;
  const std::string& out = c.out;
  Dataset d = load_dataset(in);
  std::map<std::string, std::size_t> index;
  for (const Measurement& m : d.rows) index.emplace(configuration_key(m.args), 0);
  std::size_t i = 0;
  for (auto& [key, idx] : index) idx = i++;
  Dataset s;
  s.op = d.op;
  s.header = d.header;
  s.header["sample"] = {{"of", std::filesystem::path(in).filename().string()}, {"sha256", sha256_file(in)},
                        {"every", n}, {"offset", k}};
  for (const Measurement& m : d.rows)
    if (index[configuration_key(m.args)] % n == k) s.rows.push_back(m);
  save_dataset(s, out, c.force);
  std::cerr << "torp dataset: wrote " << out << ": " << s.rows.size() << " rows of " << (index.size() + n - 1 - k) / n
            << " configurations (of " << index.size() << ")\n";
  return kExitOk;
}

/// torp dataset import-csv
void add_import_csv(CLI::App& group) {
  CLI::App* app = add_command(
      group, "import-csv", "Convert one of the reference predictor's CSV files into a TORP dataset (JSON Lines).",
      "Layouts: exp (input_shape_1..4, one-hot dtype and input buffer, kernel_duration) and\n"
      "matmul_height_sharded (m_size, k_size, n_size, num_cores, duration). Rows keep the op's\n"
      "arguments in tt-metal tensor JSON; the header records device, tt-metal commit, the CSV's\n"
      "name and sha256 and what the CSV does not record. Nothing is written if any row is bad.");
  auto ic = std::make_shared<ImportCsvCli>();
  app->add_option("--layout", ic->layout, "exp or matmul_height_sharded (default: detected from the CSV header)")
      ->type_name("L")
      ->check(CLI::IsMember({"exp", "matmul_height_sharded"}));
  app->add_option("--device", ic->device, "device description, e.g. devices/wormhole_n300.json")
      ->type_name("FILE")
      ->required();
  app->add_option("--op", ic->op, "op the CSV measures, e.g. ttnn.exp")->type_name("OP")->required();
  app->add_option("--tt-metal-commit", ic->tt_metal_commit, "tt-metal commit the data was measured at (default: unknown)")
      ->type_name("C");
  app->add_option("--source", ic->source, "where the CSV comes from, e.g. \"<repo> <commit> <path>\"")->type_name("TEXT");
  app->add_option("--notes", ic->notes, "what else a reader must know (prepended to the importer's notes)")->type_name("TEXT");
  app->add_flag("--force", ic->force, "replace OUT if it exists");
  app->add_option("CSV", ic->csv, "the reference CSV file")->required()->check(kNotDirectory);
  app->add_option("OUT", ic->out, "the dataset file to write (.jsonl)")->required()->check(kNotDirectory);
  on_run(app, [ic] { return import_csv(*ic); });
}

/// torp dataset from-sweep
void add_from_sweep(CLI::App& group) {
  CLI::App* app = add_command(group, "from-sweep",
                              "Build a dataset from tt-metal sweep output (vectors_export + results_export JSON).",
                              kFromSweepDescription);
  auto fs = std::make_shared<FromSweepCli>();
  app->add_option("--op", fs->op, "op spec: a file, or an op name (exp, ttnn.exp) looked up in --ops")
      ->type_name("NAME|FILE")
      ->required();
  app->add_option("--device", fs->device,
                  "device the sweep ran on: a file, or a name in --devices, e.g. wormhole_n300")
      ->type_name("NAME|FILE")
      ->required();
  app->add_option("--vectors", fs->vectors, "vectors_export JSON of the sweep module")->type_name("FILE")->required();
  app->add_option("--results", fs->results, "results_export JSON file(s) of runs of those vectors (repeatable)")
      ->type_name("FILE")
      ->required();
  app->add_option("-o,--out", fs->out, "dataset file to write, e.g. data/exp/exp_new.jsonl")
      ->type_name("DATASET")
      ->required();
  app->add_option("--ops", fs->ops, "where op names are looked up (default: the installed ops, else ./ops)")
      ->type_name("DIR");
  app->add_option("--devices", fs->devices,
                  "where device names are looked up (default: the installed devices, else ./devices)")
      ->type_name("DIR");
  app->add_option("--tag", fs->tag, "keep only vectors with this tag")->type_name("T");
  app->add_option("--suite", fs->suites, "keep only this suite (repeatable)")->type_name("S")->allow_extra_args(false);
  app->add_option("--tt-metal-commit", fs->tt_metal_commit,
                  "tt-metal commit (default: the kept records' git_hash if they all agree)")
      ->type_name("C");
  app->add_option("--source", fs->source, "free text recorded as the header's source origin")->type_name("TEXT");
  app->add_flag("--latest-only", fs->latest_only,
                "keep only the newest record of each vector instead of keeping runs as repeats");
  app->add_flag("--force", fs->force, "replace DATASET and its report if they exist");
  on_run(app, [fs] { return from_sweep(*fs); });
}

/// torp dataset info
void add_info(CLI::App& group) {
  CLI::App* app = add_command(group, "info",
                              "Summarize a dataset: rows, configurations, repeats, rejected repeats, runtime range, sha256.");
  auto in = std::make_shared<InfoCli>();
  app->add_option("--reject-factor", in->reject_factor, "repeat rejection factor of the aggregation")
      ->type_name("F")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_flag("--json", in->json, "print one JSON object instead of text");
  app->add_option("FILE", in->file, "dataset file (.jsonl)")->required()->check(kNotDirectory);
  on_run(app, [in] { return info(*in); });
}

/// torp dataset sample
void add_sample(CLI::App& group) {
  CLI::App* app = add_command(group, "sample",
                              "Write a deterministic slice of a dataset: every N-th configuration with all its repeats.",
                              "Configurations are taken in canonical key order (as aggregate() sorts them); the ones whose\n"
                              "index i satisfies i % N == offset are kept, with every row in file order. The header is\n"
                              "copied and records the sample in \"sample\".");
  auto sc = std::make_shared<SampleCli>();
  app->add_option("--every", sc->every, "keep every N-th configuration")
      ->type_name("N")
      ->required()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40));
  app->add_option("--offset", sc->offset, "index of the first kept configuration (below --every)")
      ->type_name("K")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 40))
      ->capture_default_str();
  app->add_flag("--force", sc->force, "replace OUT if it exists");
  app->add_option("IN", sc->in, "dataset file (.jsonl)")->required()->check(kNotDirectory);
  app->add_option("OUT", sc->out, "the slice to write (.jsonl)")->required()->check(kNotDirectory);
  on_run(app, [sc] { return sample(*sc); });
}

}  // namespace

void add_dataset(CLI::App& root) {
  CLI::App* group = add_command(root, "dataset",
                                "Build and inspect per-op measurement datasets: import-csv, from-sweep, info, sample.",
                                "Datasets are JSON Lines: a header line, then {\"args\": {...}, \"kernel_duration_ns\": N}\n"
                                "per measurement. Run 'torp dataset <subcommand> --help' for its options.");
  group->require_subcommand(1);

  add_import_csv(*group);
  add_from_sweep(*group);
  add_info(*group);
  add_sample(*group);
}

}  // namespace torp::cli
