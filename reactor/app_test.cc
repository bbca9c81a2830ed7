// Runs reactor/app_test_main as a child process: exit codes, flag errors, signals.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace {

struct Child {
  pid_t pid = -1;
  int out = -1;  // the child's stdout
};

Child Spawn(std::vector<std::string> args, bool leaks_expected = false) {
  args.insert(args.begin(), "reactor/app_test_main");
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // A forced stop abandons main's pending coroutine on purpose.
    if (leaks_expected) setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  c.out = fds[0];
  return c;
}

// Reads the child's stdout until `needle` shows up or the pipe closes.
std::string ReadUntil(int fd, const std::string& needle) {
  std::string text;
  char buf[256];
  while (text.find(needle) == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

int Wait(Child& c, std::string* output = nullptr) {
  std::string rest = ReadUntil(c.out, "\x01never");
  if (output != nullptr) *output += rest;
  close(c.out);
  int status = 0;
  EXPECT_EQ(waitpid(c.pid, &status, 0), c.pid);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int RunToEnd(std::vector<std::string> args, std::string* output = nullptr) {
  Child c = Spawn(std::move(args));
  return Wait(c, output);
}

TEST(AppTest, ExitCodeOfMainIsPropagated) {
  std::string out;
  EXPECT_EQ(RunToEnd({"--smp=2", "--exit_code=7", "pos1", "pos2"}, &out), 7);
  EXPECT_NE(out.find("shards 2 args 3"), std::string::npos) << out;
  EXPECT_EQ(RunToEnd({"--smp", "1", "--backend=epoll"}), 0);
  EXPECT_EQ(RunToEnd({"--smp=2", "--backend=io_uring", "--exit_code", "3"}), 3);
}

TEST(AppTest, CpusetAndDefaultShardCount) {
  std::string out;
  EXPECT_EQ(RunToEnd({"--cpuset=0", "--smp=1"}, &out), 0);
  EXPECT_NE(out.find("shards 1 "), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(RunToEnd({"--cpuset", "0-1"}, &out), 0);  // --smp 0: one shard per listed CPU
  EXPECT_NE(out.find("shards 2 "), std::string::npos) << out;
}

TEST(AppTest, RequestStopFromAnotherShard) {
  std::string out;
  EXPECT_EQ(RunToEnd({"--smp=2", "--stop_from_shard1"}, &out), 0);
  EXPECT_NE(out.find("stopped by shard 1: 1"), std::string::npos) << out;
}

TEST(AppTest, SecondSignalStopsEveryShardWithOne) {
  Child c = Spawn({"--smp=2", "--ignore_stop"}, /*leaks_expected=*/true);
  std::string out = ReadUntil(c.out, "ready");
  ASSERT_NE(out.find("ready"), std::string::npos) << out;
  ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  // The first signal fires the stop source, which this main ignores; once it has been seen
  // (so the two cannot coalesce), a second one forces the shards down.
  out += ReadUntil(c.out, "stop seen");
  ASSERT_NE(out.find("stop seen"), std::string::npos) << out;
  ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(c.pid, &status, 0), c.pid);
  close(c.out);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
}

TEST(AppTest, MainThrowingExitsWithOne) { EXPECT_EQ(RunToEnd({"--smp=2", "--throw_in_main"}), 1); }

// Hyphens and underscores name the same flag (--access-log is --access_log).
TEST(AppTest, HyphenatedFlagNamesAreAccepted) {
  EXPECT_EQ(RunToEnd({"--smp=1", "--throw-in-main"}), 1);
  EXPECT_EQ(RunToEnd({"--smp=1", "--throw-in-main=false"}), 0);
  EXPECT_EQ(RunToEnd({"--smp=2", "--idle-poll-us=200"}), 0);
}

TEST(AppTest, BadCommandLinesAreRejectedWithTwo) {
  EXPECT_EQ(RunToEnd({"--no_such_flag"}), 2);
  EXPECT_EQ(RunToEnd({"--smp=lots"}), 2);
  EXPECT_EQ(RunToEnd({"--backend=kqueue"}), 2);
  EXPECT_EQ(RunToEnd({"--idle_poll_us=1000001"}), 2);
  EXPECT_EQ(RunToEnd({"--idle_poll_us=-1"}), 2);
  EXPECT_EQ(RunToEnd({"--cpuset=1-0"}), 2);
  EXPECT_EQ(RunToEnd({"--cpuset=8000"}), 2);  // a CPU this machine does not have
  EXPECT_EQ(RunToEnd({"--smp=4096"}), 2);     // more shards than CPUs
  EXPECT_EQ(RunToEnd({"--exit_code"}), 2);    // missing value
  EXPECT_EQ(RunToEnd({"--help"}), 2);
  EXPECT_EQ(RunToEnd({"-h"}), 2);
}

class AppSignalTest : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(AppSignalTest, FirstSignalStopsMainWhichExitsZero) {
  const auto [signo, backend] = GetParam();
  Child c = Spawn({"--smp=2", "--backend=" + backend, "--wait_for_stop"});
  std::string out = ReadUntil(c.out, "ready");
  ASSERT_NE(out.find("ready"), std::string::npos) << out;
  ASSERT_EQ(kill(c.pid, signo), 0);
  EXPECT_EQ(Wait(c, &out), 0);
  EXPECT_NE(out.find("stopping with 2 shards"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(Signals, AppSignalTest,
                         ::testing::Combine(::testing::Values(SIGTERM, SIGINT),
                                            ::testing::Values("io_uring", "epoll")),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == SIGTERM ? "SIGTERM"
                                                                                 : "SIGINT") +
                                  "_" + std::get<1>(info.param);
                         });

}  // namespace
