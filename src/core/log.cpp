// SPDX-License-Identifier: Apache-2.0
#include "torp/log.hpp"

#include <memory>
#include <mutex>

namespace torp {
namespace {
std::mutex g_mutex;
std::shared_ptr<const LogCallback> g_callback;
}  // namespace

void set_log_callback(LogCallback callback) {
  std::lock_guard lock(g_mutex);
  g_callback = callback ? std::make_shared<const LogCallback>(std::move(callback)) : nullptr;
}

void log(LogLevel level, std::string_view message) {
  std::shared_ptr<const LogCallback> cb;
  {
    std::lock_guard lock(g_mutex);
    cb = g_callback;
  }
  if (cb) (*cb)(level, message);
}

}  // namespace torp
