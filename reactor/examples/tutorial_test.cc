// Runs the tutorial program on both backends with 2 shards and checks what it prints.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace {

std::string RunTutorial(const std::string& flags, int* status) {
  const std::string cmd = "reactor/examples/tutorial " + flags + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[256];
  while (p != nullptr && fgets(buf, sizeof buf, p) != nullptr) out += buf;
  *status = p != nullptr ? pclose(p) : -1;
  return out;
}

class TutorialTest : public ::testing::TestWithParam<const char*> {};

TEST_P(TutorialTest, RunsTheTour) {
  int status = 0;
  std::string out = RunTutorial(std::string("--smp=2 --ticks=3 --backend=") + GetParam(), &status);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("tick 1\ntick 2\ntick 3\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("tick 4"), std::string::npos) << out;
  EXPECT_NE(out.find("shard 0 answered from shard 1"), std::string::npos) << out;
  EXPECT_NE(out.find("sum over 2 shards: 3"), std::string::npos) << out;
  EXPECT_NE(out.find("fiber says 42"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(Backends, TutorialTest, ::testing::Values("io_uring", "epoll"));

TEST(TutorialFlagsTest, UnknownFlagIsRejected) {
  int status = 0;
  std::string out = RunTutorial("--tickz=3", &status);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("unknown flag --tickz"), std::string::npos) << out;
}

}  // namespace
