// SPDX-License-Identifier: Apache-2.0
// AtomicFile: whole or nothing, nothing visible after an abandoned write or a SIGKILL, stale
// temporary files of dead processes cleaned by the next writer (issue 13, item 8).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "support/fixtures.hpp"
#include "torp/atomic_file.hpp"
#include "torp/error.hpp"

namespace fs = std::filesystem;

namespace {

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The pid of a process that has exited (and been reaped).
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

}  // namespace

TEST(AtomicFile, CommitPublishesWholeAndOverwriteIsExplicit) {
  const auto dir = torp::test::temp_dir("atomic_commit");
  {
    torp::AtomicFile f(dir / "a.json", false);
    f.stream() << std::string(200000, 'x') << "end\n";
    EXPECT_EQ(entries(dir), std::vector<std::string>{}) << "nothing visible before commit";
    f.commit();
  }
  EXPECT_EQ(entries(dir), std::vector<std::string>{"a.json"});
  EXPECT_EQ(text(dir / "a.json"), std::string(200000, 'x') + "end\n");
  EXPECT_THROW(torp::AtomicFile(dir / "a.json", false), torp::TorpError);
  {
    torp::AtomicFile f(dir / "a.json", true);
    f.stream() << "new\n";
    f.commit();
  }
  EXPECT_EQ(text(dir / "a.json"), "new\n");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"a.json"});
  fs::remove_all(dir);
}

TEST(AtomicFile, AbandonedOrKilledWritesLeaveNothing) {
  const auto dir = torp::test::temp_dir("atomic_killed");
  {
    torp::AtomicFile f(dir / "d.jsonl", false);
    f.stream() << "partial";
  }
  EXPECT_EQ(entries(dir), std::vector<std::string>{});
  const pid_t child = ::fork();
  if (child == 0) {
    torp::AtomicFile f(dir / "d.jsonl", false);
    f.stream() << std::string(100000, 'y');
    f.stream().flush();
    ::raise(SIGKILL);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  torp::AtomicFile next(dir / "d.jsonl", false);  // cleans what a writer without O_TMPFILE left
  EXPECT_EQ(entries(dir), std::vector<std::string>{});
  fs::remove_all(dir);
}

TEST(AtomicFile, StaleTemporariesOfDeadProcessesAreRemoved) {
  const auto dir = torp::test::temp_dir("atomic_stale");
  const std::string stale = "m.json.tmp." + std::to_string(dead_pid()) + ".3";
  const std::string live = "m.json.tmp." + std::to_string(::getpid()) + ".999";
  std::ofstream(dir / stale) << "left by a crash";
  std::ofstream(dir / live) << "another writer of this process";
  std::ofstream(dir / "other.json.tmp.1.1") << "not ours";
  torp::AtomicFile f(dir / "m.json", false);
  EXPECT_EQ(entries(dir), (std::vector<std::string>{live, "other.json.tmp.1.1"}));
  fs::remove_all(dir);
}
