// SPDX-License-Identifier: Apache-2.0
// The library never prints: diagnostics go to a process-wide callback (default: discard).
#pragma once

#include <functional>
#include <string_view>

namespace torp {

enum class LogLevel { debug, info, warning, error };

using LogCallback = std::function<void(LogLevel, std::string_view)>;

/// Install the callback (nullptr restores the default, which discards everything). Thread-safe.
void set_log_callback(LogCallback callback);

/// Send one message to the installed callback.
void log(LogLevel level, std::string_view message);

}  // namespace torp
