// SPDX-License-Identifier: Apache-2.0
#include "serve/model_dir.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "torp/json_text.hpp"
#include "torp/log.hpp"

namespace torp {
namespace fs = std::filesystem;

namespace {

TorpError scan_error(const fs::path& p, const std::error_code& ec) {
  return TorpError(ErrorCode::io, "cannot read this models directory entry: " + ec.message(), "", p.string());
}

/// The *.json files below `dir`, sorted; filesystem errors (a symlink loop, a permission) as TorpError.
std::vector<fs::path> json_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw TorpError(ErrorCode::io, "the models directory does not exist (set --models DIR or TORP_MODELS)", "",
                    dir.string());
  std::vector<fs::path> files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) throw scan_error(dir, ec);
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw scan_error(dir, ec);
    const fs::path& p = it->path();
    if (p.extension() != ".json") continue;
    const bool regular = it->is_regular_file(ec);  // follows a symlink: ELOOP for a loop
    if (ec) throw scan_error(p, ec);
    if (regular) files.push_back(p);
  }
  if (ec) throw scan_error(dir, ec);
  std::sort(files.begin(), files.end());
  return files;
}

bool is_torp_model(const nlohmann::json& doc) {
  if (!doc.is_object()) return false;
  auto f = doc.find("format");
  return f != doc.end() && f->is_string() && f->get_ref<const std::string&>() == kModelFormat;
}

}  // namespace

std::vector<std::pair<fs::path, ModelFile>> load_model_dirs(const std::vector<fs::path>& dirs) {
  std::vector<std::pair<fs::path, ModelFile>> out;
  std::string where;  // the directories as TORP_MODELS lists them
  for (const fs::path& dir : dirs) {
    where += (where.empty() ? "" : ":") + dir.string();
    for (const fs::path& f : json_files(dir)) {
      std::ifstream in(f, std::ios::binary);
      if (!in) throw TorpError(ErrorCode::io, "cannot open the model file", "", f.string());
      std::ostringstream text;
      text << in.rdbuf();
      const nlohmann::json doc = parse_json(std::move(text).str());
      if (doc.is_discarded()) {
        out.emplace_back(f, load_model(f));  // throws with the reader's account of the bad text
        continue;
      }
      if (!is_torp_model(doc)) {
        log(LogLevel::info, "skipping " + f.string() + ": not a TORP model (no \"format\": \"torp-model\")");
        continue;
      }
      try {
        out.emplace_back(f, parse_model(doc, f.string()));
      } catch (const nlohmann::json::exception& e) {  // a member of the wrong JSON type
        throw TorpError(ErrorCode::model_format, e.what(), "", f.string());
      }
    }
  }
  if (out.empty())
    throw TorpError(ErrorCode::io, where.empty() ? "no models directory given" : "no TORP model in the models directory",
                    "", where);
  return out;
}

}  // namespace torp
