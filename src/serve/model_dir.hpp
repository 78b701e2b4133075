// SPDX-License-Identifier: Apache-2.0
// Models directories: which files of one or more directories are TORP models.
#pragma once

#include <filesystem>
#include <utility>
#include <vector>

#include "torp/model.hpp"

namespace torp {

/// Every TORP model below `dirs` (recursively; directory symlinks are not followed), sorted by
/// path within each directory, directories in the given order. A *.json file that is valid JSON
/// but not a TORP model (no "format": "torp-model", e.g. a *.report.json) is skipped with an info
/// log line. Throws TorpError: io (a directory missing or unreadable, a symlink loop, no model at
/// all), or the model file's own error (invalid JSON, invalid model).
std::vector<std::pair<std::filesystem::path, ModelFile>> load_model_dirs(const std::vector<std::filesystem::path>& dirs);

}  // namespace torp
