// SPDX-License-Identifier: Apache-2.0
// The torp command line (CLI11): typed, range-checked options, exit 2 on a bad command line,
// help on every command, error prefixes; torp predict's line-length limit and pipe streaming.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <fstream>
#include <string>

#include "support/fixtures.hpp"

namespace {

struct CliRun {
  int code = -1;
  std::string out, err;
};

/// Run `torp ARGS` through the shell (ARGS may pipe into it: "predict < file"); stdout and
/// stderr captured.
CliRun torp_cli(const std::string& args, const std::string& stdin_pipe = {}) {
  static int n = 0;
  const auto dir = torp::test::temp_dir("cli_" + std::to_string(++n));
  const std::string cmd = (stdin_pipe.empty() ? "" : stdin_pipe + " | ") + std::string(TORP_CLI_PATH) + " " + args +
                          " >" + (dir / "out").string() + " 2>" + (dir / "err").string();
  CliRun r;
  const int status = std::system(cmd.c_str());
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  std::filesystem::remove_all(dir);
  return r;
}

const std::string kModels = "--models " + torp::test::source("models").string() + " ";

}  // namespace

TEST(Cli, BadOptionValuesExitTwoWithTheCommandPrefix) {
  for (const char* bad : {"--threads abc", "--threads -1", "--threads 1.5", "--threads 99999", "--no-such-option",
                          "--threads 1 --threads 2", "--max-line-bytes 0"}) {
    CliRun r = torp_cli("predict " + kModels + bad, "true");
    EXPECT_EQ(r.code, 2) << bad << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("torp predict: error: ", 0), 0u) << bad << "\n" << r.err;
  }
  EXPECT_EQ(torp_cli("dataset info --reject-factor x /dev/null").code, 2);
  EXPECT_EQ(torp_cli("dataset sample --every 0 a b").code, 2);
  EXPECT_EQ(torp_cli("train --seed -3 --dataset a --op-spec b --device c --out d").code, 2);
  EXPECT_EQ(torp_cli("no-such-command").code, 2);
  EXPECT_EQ(torp_cli("").code, 2);
}

TEST(Cli, PredictOnADirectoryIsAnError) {
  CliRun r = torp_cli("predict " + kModels + torp::test::source("models").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("is a directory"), std::string::npos) << r.err;
}

TEST(Cli, HelpOnEveryCommandAndTorpHelpCommand) {
  const std::string commands = torp_cli("--help").out;  // the serving-only build has no training commands
  for (const char* cmd : {"predict", "list", "dataset", "dataset from-sweep", "dataset info", "train", "eval",
                          "import-mlpack"}) {
    if (commands.find(std::string("  ") + std::string(cmd).substr(0, std::string(cmd).find(' ')) + " ") == std::string::npos)
      continue;
    CliRun dash_h = torp_cli(std::string(cmd) + " -h");
    CliRun help = torp_cli(std::string("help ") + cmd);
    EXPECT_EQ(dash_h.code, 0) << cmd << "\n" << dash_h.err;
    EXPECT_NE(dash_h.out.find(std::string("Usage: torp ") + cmd), std::string::npos) << cmd << "\n" << dash_h.out;
    EXPECT_EQ(help.code, 0) << cmd;
    EXPECT_EQ(help.out, dash_h.out) << cmd;
  }
  CliRun top = torp_cli("--help");
  EXPECT_EQ(top.code, 0);
  EXPECT_NE(top.out.find("predict"), std::string::npos);
}

TEST(Cli, MissingModelsDirectoryIsExitOneWithTheIoCode) {
  CliRun r = torp_cli("list --models /nonexistent/torp");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("torp list: error: io: ", 0), 0u) << r.err;
}

TEST(Cli, ModelsRepeatedLoadsEveryDirectory) {
  CliRun one = torp_cli("list --json " + kModels);
  std::string dirs;
  for (const char* d : {"models/wormhole", "models/reference", "models/wormhole_n150", "models/wormhole_n300",
                        "models/blackhole_p150"})
    dirs += " --models " + torp::test::source(d).string();
  CliRun two = torp_cli("list --json" + dirs);
  ASSERT_EQ(one.code, 0) << one.err;
  ASSERT_EQ(two.code, 0) << two.err;
  auto lines = [](const std::string& s) { return std::count(s.begin(), s.end(), '\n'); };
  EXPECT_EQ(lines(two.out), lines(one.out));
  EXPECT_GT(lines(one.out), 5);
}

TEST(Cli, OverlongLineGetsAnErrorAnswerAndTheStreamGoesOn) {
  const auto dir = torp::test::temp_dir("cli_overlong");
  const std::string query = R"({"op": "ttnn.exp", "args": {"input_tensor": {"logical_shape": [1, 1, 64, 128], "dtype": "BFLOAT16", "layout": "TILE", "memory_config": {"buffer_type": "DRAM", "memory_layout": "INTERLEAVED"}}}})";
  {
    std::ofstream f(dir / "q.jsonl");
    f << query << "\n" << std::string(5000, ' ') << "[1]\n" << query << "\n";
  }
  for (const std::string& how : {std::string("< "), std::string("cat ")}) {  // a file, then a pipe
    const std::string file = (dir / "q.jsonl").string();
    CliRun r = how == "cat " ? torp_cli("predict " + kModels + "--max-line-bytes 1000", "cat " + file)
                          : torp_cli("predict " + kModels + "--max-line-bytes 1000 " + file);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto first = r.out.find('\n'), second = r.out.find('\n', first + 1);
    ASSERT_NE(second, std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"status\": \"ok\""), std::string::npos);
    EXPECT_NE(r.out.substr(first, second - first).find("line 2 is longer than the limit of 1000 bytes"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.out.substr(0, first), r.out.substr(second + 1, r.out.size() - second - 2)) << "lines 1 and 3 alike";
  }
  std::filesystem::remove_all(dir);
}

TEST(Cli, UnterminatedHugeLineFromAPipeIsLinearAndBounded) {
  // 200 MB of zeros without a line end in 64 kB pieces: answered with one error, in seconds (the
  // old reader rescanned the pending line on every read, and kept all of it).
  const auto start = std::chrono::steady_clock::now();
  CliRun r = torp_cli("predict " + kModels, "head -c 200000000 /dev/zero");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("line 1 is longer than the limit of 1048576 bytes"), std::string::npos) << r.out.substr(0, 300);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  EXPECT_LT(seconds, 30.0) << "quadratic rescanning took 37 s for this input before";
}
