// Backend selection: ParsePollerBackend, KEV_BACKEND, and kDefault's fallback to epoll (forced
// through PollerOptions::io_uring_setup_error_for_testing).
#include <cerrno>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "kevent/poller.h"

namespace kev {
namespace {

TEST(PollerBackendTest, ParsesNames) {
  EXPECT_EQ(ParsePollerBackend("io_uring"), PollerBackend::kIoUring);
  EXPECT_EQ(ParsePollerBackend("epoll"), PollerBackend::kEpoll);
  EXPECT_EQ(ParsePollerBackend("default"), PollerBackend::kDefault);
  EXPECT_EQ(ParsePollerBackend(""), std::nullopt);
  EXPECT_EQ(ParsePollerBackend("EPOLL"), std::nullopt);
  EXPECT_EQ(ParsePollerBackend("uring"), std::nullopt);
}

TEST(PollerBackendTest, ReadsEnvironment) {
  unsetenv("KEV_BACKEND");
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kDefault);
  setenv("KEV_BACKEND", "epoll", 1);
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kEpoll);
  setenv("KEV_BACKEND", "io_uring", 1);
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kIoUring);
  ::testing::internal::CaptureStderr();
  setenv("KEV_BACKEND", "kqueue", 1);
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kDefault);
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kDefault);
  std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_LE(std::count(said.begin(), said.end(), '\n'), 1) << said;  // once per process
  unsetenv("KEV_BACKEND");
}

TEST(PollerBackendTest, ExplicitIoUringReportsSetupFailure) {
  int error = 0;
  auto poller = Poller::Create(PollerBackend::kIoUring,
                               PollerOptions{.io_uring_setup_error_for_testing = -ENOSYS}, &error);
  EXPECT_EQ(poller, nullptr);
  EXPECT_EQ(error, -ENOSYS);
}

// In a child process, so "once per process" is observable: two fallbacks, one line.
TEST(PollerBackendDeathTest, DefaultFallsBackToEpollSayingSoOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        for (int i = 0; i < 2; ++i) {
          int error = 1;
          auto poller =
              Poller::Create(PollerBackend::kDefault,
                             PollerOptions{.io_uring_setup_error_for_testing = -EPERM}, &error);
          if (poller == nullptr || poller->backend() != PollerBackend::kEpoll || error != 0) {
            std::_Exit(1);
          }
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0),
      "^kev: io_uring unavailable \\([^\n]*\\); using the epoll backend\n$");
}

}  // namespace
}  // namespace kev
