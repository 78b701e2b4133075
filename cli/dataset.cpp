// SPDX-License-Identifier: Apache-2.0
// torp dataset: build measurement datasets (reference CSV, tt-metal sweep output), inspect them
// and cut deterministic samples.
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "args.hpp"
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

int import_csv(int argc, char** argv) {
  const std::string cmd = "dataset import-csv";
  Args a(cmd, "Convert one of the reference predictor's CSV files into a TORP dataset (JSON Lines).",
         "Layouts: exp (input_shape_1..4, one-hot dtype and input buffer, kernel_duration) and\n"
         "matmul_height_sharded (m_size, k_size, n_size, num_cores, duration). Rows keep the op's\n"
         "arguments in tt-metal tensor JSON; the header records device, tt-metal commit, the CSV's\n"
         "name and sha256 and what the CSV does not record. Nothing is written if any row is bad.");
  a.option("layout", "L", "exp or matmul_height_sharded (default: detected from the CSV header)")
      .option("device", "FILE", "device description, e.g. devices/wormhole_n300.json (required)")
      .option("op", "OP", "op the CSV measures, e.g. ttnn.exp (required)")
      .option("tt-metal-commit", "C", "tt-metal commit the data was measured at (default: unknown)")
      .option("source", "TEXT", "where the CSV comes from, e.g. \"<repo> <commit> <path>\"")
      .option("notes", "TEXT", "what else a reader must know (prepended to the importer's notes)")
      .flag("force", "replace OUT if it exists")
      .positional("CSV", "the reference CSV file")
      .positional("OUT", "the dataset file to write (.jsonl)");
  if (int rc = a.parse(argc, argv); rc >= 0) return rc;
  if (!require(a, cmd, {"device", "op"})) return kExitUsage;
  const std::string csv = *a.pos("CSV"), out = *a.pos("OUT");
  CsvLayout layout = a.has("layout") ? parse_csv_layout(a.get("layout")) : detect_csv_layout(csv);
  json device = read_json_file(a.get("device"), "device description");
  json prov = {{"op", a.get("op")}, {"tt_metal_commit", a.maybe("tt-metal-commit") ? json(a.get("tt-metal-commit")) : json()}};
  if (a.has("source")) prov["source"] = a.get("source");
  if (a.has("notes")) prov["notes"] = a.get("notes");
  std::cerr << "torp dataset: reading " << csv << " (layout " << to_string(layout) << ")\n";
  Dataset d = import_reference_csv(csv, layout, device, prov);
  AggregationReport rep;
  aggregate(d, kDefaultRejectFactor, &rep);
  save_dataset(d, out, a.flag_set("force"));
  std::cerr << "torp dataset: wrote " << out << ": " << d.rows.size() << " rows, "
            << rep.configurations + rep.dropped_configurations << " configurations (" << rep.rejected_rows
            << " repeats would be rejected at factor " << kDefaultRejectFactor << "), sha256 " << sha256_file(out)
            << "\n";
  return kExitOk;
}

/// An op spec or device description: a JSON file, or a name looked up among the *.json files of
/// `dir` (default: share/torp/<kind> next to the models, else ./<kind>) by their "op" (also its
/// short form and aliases) or "name", or their file name.
json find_description(const std::string& value, const std::string& kind, const std::optional<std::string>& dir,
                      const char* what) {
  namespace fs = std::filesystem;
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
      if (n == value || n == wanted) return j;
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

int from_sweep(int argc, char** argv) {
  const std::string cmd = "dataset from-sweep";
  Args a(cmd, "Build a dataset from tt-metal sweep output (vectors_export + results_export JSON).",
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
         "when the import fails or yields no rows. Progress goes to stderr, the report to stdout.");
  a.option("op", "NAME|FILE", "op spec: a file, or an op name (exp, ttnn.exp) looked up in --ops (required)")
      .option("device", "NAME|FILE", "device the sweep ran on: a file, or a name in --devices, e.g. wormhole_n300 (required)")
      .option("vectors", "FILE", "vectors_export JSON of the sweep module (required)")
      .option("results", "FILE", "results_export JSON file(s) of runs of those vectors (required)")
      .greedy("results")
      .option("out", "DATASET", "dataset file to write, e.g. data/exp/exp_new.jsonl (required)")
      .short_name('o', "out")
      .option("ops", "DIR", "where op names are looked up (default: the installed ops, else ./ops)")
      .option("devices", "DIR", "where device names are looked up (default: the installed devices, else ./devices)")
      .option("tag", "T", "keep only vectors with this tag")
      .option("suite", "S", "keep only this suite", std::nullopt, true)
      .option("tt-metal-commit", "C", "tt-metal commit (default: the kept records' git_hash if they all agree)")
      .option("source", "TEXT", "free text recorded as the header's source origin")
      .flag("latest-only", "keep only the newest record of each vector instead of keeping runs as repeats")
      .flag("force", "replace DATASET and its report if they exist");
  if (int rc = a.parse(argc, argv); rc >= 0) return rc;
  if (!require(a, cmd, {"op", "device", "vectors", "results", "out"})) return kExitUsage;
  const std::filesystem::path out = a.get("out");
  std::filesystem::path report_file = out;
  report_file.replace_extension(".report.json");
  const bool force = a.flag_set("force");
  for (const auto& f : {out, report_file})
    if (!force && std::filesystem::exists(f)) {
      error(cmd, f.string() + " exists; pass --force to replace it");
      return kExitFailure;
    }
  SweepOptions opt;
  if (a.has("tag")) opt.tag = a.get("tag");
  opt.suites = a.all("suite");
  opt.latest_only = a.flag_set("latest-only");
  if (a.has("tt-metal-commit")) opt.tt_metal_commit = a.get("tt-metal-commit");
  if (a.has("source")) opt.origin = a.get("source");
  std::vector<std::filesystem::path> results;
  for (const auto& r : a.all("results")) results.emplace_back(r);
  const json spec = find_description(a.get("op"), "ops", a.maybe("ops"), "op spec");
  const json device = find_description(a.get("device"), "devices", a.maybe("devices"), "device description");

  set_log_callback([](LogLevel level, std::string_view message) {
    if (level >= LogLevel::info) std::cerr << "torp dataset: " << message << "\n";
  });
  SweepImportReport rep;
  SweepDataset d;
  try {
    d = import_sweep(a.get("vectors"), results, spec, device, opt, &rep);
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
  d.save(out, force);
  rf.commit();
  std::cerr << "torp dataset: wrote " << out.string() << " (" << d.rows.size() << " rows) and " << report_file.string()
            << "\n";
  return kExitOk;
}

int info(int argc, char** argv) {
  const std::string cmd = "dataset info";
  Args a(cmd, "Summarize a dataset: rows, configurations, repeats, rejected repeats, runtime range, sha256.");
  std::ostringstream default_factor;
  default_factor << kDefaultRejectFactor;
  a.option("reject-factor", "F", "repeat rejection factor of the aggregation", default_factor.str())
      .flag("json", "print one JSON object instead of text")
      .positional("FILE", "dataset file (.jsonl)");
  if (int rc = a.parse(argc, argv); rc >= 0) return rc;
  auto factor = parse_as<double>(a.get("reject-factor"));
  if (!factor) {
    error(cmd, "--reject-factor needs a number, got '" + a.get("reject-factor") + "'");
    return kExitUsage;
  }
  const std::string file = *a.pos("FILE");
  Dataset d = load_dataset(file);
  AggregationReport rep;
  std::vector<Configuration> configs = aggregate(d, *factor, &rep);
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
  for (const auto& [n, c] : repeats) rj[std::to_string(n)] = c;
  if (a.flag_set("json")) {
    std::cout << json{{"file", file},
                      {"sha256", sha},
                      {"op", d.op},
                      {"device", d.header.value("device", json())},
                      {"tt_metal_commit", d.header.value("tt_metal_commit", json())},
                      {"rows", d.rows.size()},
                      {"configurations", per_config.size()},
                      {"repeats", rj},
                      {"reject_factor", *factor},
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
  for (const auto& [n, c] : repeats) rep_text += (rep_text.empty() ? "" : ", ") + std::to_string(c) + " x " + std::to_string(n);
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
                   << " configurations at factor " << *factor << "; " << rep.dropped_configurations
                   << " configurations without consensus dropped\n";
  line("runtime") << fmt_ns(lo) << " .. " << fmt_ns(hi) << "\n";
  return kExitOk;
}

int sample(int argc, char** argv) {
  const std::string cmd = "dataset sample";
  Args a(cmd, "Write a deterministic slice of a dataset: every N-th configuration with all its repeats.",
         "Configurations are taken in canonical key order (as aggregate() sorts them); the ones whose\n"
         "index i satisfies i % N == offset are kept, with every row in file order. The header is\n"
         "copied and records the sample in \"sample\".");
  a.option("every", "N", "keep every N-th configuration (required)")
      .option("offset", "K", "index of the first kept configuration", "0")
      .flag("force", "replace OUT if it exists")
      .positional("IN", "dataset file (.jsonl)")
      .positional("OUT", "the slice to write (.jsonl)");
  if (int rc = a.parse(argc, argv); rc >= 0) return rc;
  if (!require(a, cmd, {"every"})) return kExitUsage;
  auto every = parse_as<double>(a.get("every"));
  auto offset = parse_as<double>(a.get("offset"));
  if (!every || *every < 1 || *every != static_cast<std::size_t>(*every) || !offset || *offset < 0 ||
      *offset >= *every || *offset != static_cast<std::size_t>(*offset)) {
    error(cmd, "--every needs an integer N >= 1 and --offset an integer in [0, N)");
    return kExitUsage;
  }
  const auto n = static_cast<std::size_t>(*every), k = static_cast<std::size_t>(*offset);
  const std::string in = *a.pos("IN"), out = *a.pos("OUT");
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
  save_dataset(s, out, a.flag_set("force"));
  std::cerr << "torp dataset: wrote " << out << ": " << s.rows.size() << " rows of " << (index.size() + n - 1 - k) / n
            << " configurations (of " << index.size() << ")\n";
  return kExitOk;
}

void usage(std::ostream& o) {
  o << "usage: torp dataset <subcommand> [options]\n\n"
       "Build and inspect per-op measurement datasets (JSON Lines: a header line, then\n"
       "{\"args\": {...}, \"kernel_duration_ns\": N} per measurement).\n\nsubcommands:\n"
       "  import-csv      convert a reference predictor CSV (exp, matmul_height_sharded)\n"
       "  from-sweep      build a dataset from tt-metal sweep vectors + results JSON, joined by input_hash\n"
       "  info            rows, configurations, repeats, rejected repeats, runtime range, sha256\n"
       "  sample          deterministic slice: every N-th configuration with all its repeats\n"
       "\nRun 'torp dataset <subcommand> --help' for its options.\n";
}

}  // namespace

int cmd_dataset(int argc, char** argv) {
  if (argc < 1) {
    usage(std::cerr);
    return kExitUsage;
  }
  const std::string sub = argv[0];
  if (sub == "--help" || sub == "-h" || sub == "help") {
    usage(std::cout);
    return kExitOk;
  }
  if (sub == "import-csv") return import_csv(argc - 1, argv + 1);
  if (sub == "from-sweep") return from_sweep(argc - 1, argv + 1);
  if (sub == "info") return info(argc - 1, argv + 1);
  if (sub == "sample") return sample(argc - 1, argv + 1);
  error("dataset", "unknown subcommand '" + sub + "'");
  usage(std::cerr);
  return kExitUsage;
}

}  // namespace torp::cli
