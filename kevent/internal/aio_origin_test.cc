// AIO origin (the StartAio hook) through the C API, on both backends.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "kevent/internal/aio_origin.h"
#include "kevent/internal/fd_origin_fixture.h"
#include "kevent/kevent.h"

namespace kev::kevent_internal::test {
namespace {

using AioTest = OriginTest;

ukevent AioKey(long cookie) {
  ukevent uk{};
  uk.type = KEVENT_AIO;
  uk.event = KEVENT_AIO_BIO;
  uk.id.raw_u64 = static_cast<uint64_t>(cookie);
  uk.ptr = reinterpret_cast<void*>(cookie);
  return uk;
}

TEST_P(AioTest, ReadCompletesAsAnEventCarryingTheCookie) {
  int p[2];
  Pipe(p);
  Write(p[1], "twelve bytes");
  char buf[64];
  const long cookie = StartAio(kfd_, MakeAioRead(p[0], buf, sizeof(buf), -1));
  ASSERT_GT(cookie, 0);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, static_cast<uint32_t>(KEVENT_AIO));
  EXPECT_EQ(ev[0].event, static_cast<uint32_t>(KEVENT_AIO_BIO));
  EXPECT_EQ(ev[0].id.raw_u64, static_cast<uint64_t>(cookie));
  EXPECT_EQ(reinterpret_cast<long>(ev[0].ptr), cookie);
  EXPECT_EQ(ev[0].ret_flags, kDone);
  EXPECT_EQ(ev[0].ret_data[0], 12u);
  EXPECT_EQ(ev[0].ret_data[1], 0u);
  EXPECT_EQ(std::string(buf, 12), "twelve bytes");
  // ONESHOT: gone after delivery.
  EXPECT_EQ(Ctl(KEVENT_CTL_REMOVE, AioKey(cookie)).ret_flags, kBrokenDone);
}

TEST_P(AioTest, ReadWaitsForDataAndWriteAtOffset) {
  int p[2];
  Pipe(p);
  char buf[16];
  const long rc = StartAio(kfd_, MakeAioRead(p[0], buf, sizeof(buf), -1));
  ASSERT_GT(rc, 0);
  EXPECT_TRUE(Get(1, kBrief).empty());
  Write(p[1], "late");
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[0], 4u);

  FILE* f = tmpfile();
  ASSERT_NE(f, nullptr);
  static const char kText[] = "at offset";
  const long wc = StartAio(kfd_, MakeAioWrite(fileno(f), kText, 9, 100));
  ASSERT_GT(wc, rc);  // fresh, increasing cookies
  ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].id.raw_u64, static_cast<uint64_t>(wc));
  EXPECT_EQ(ev[0].ret_data[0], 9u);
  char back[9];
  ASSERT_EQ(pread(fileno(f), back, 9, 100), 9);
  EXPECT_EQ(std::string(back, 9), "at offset");
  fclose(f);
}

TEST_P(AioTest, FailureIsBrokenWithTheErrnoInEvent) {
  int p[2];
  Pipe(p);
  char buf[8];
  const long cookie = StartAio(kfd_, MakeAioRead(p[1], buf, sizeof(buf), -1));  // write end
  ASSERT_GT(cookie, 0);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_flags, kBrokenDone);
  EXPECT_EQ(ev[0].event, static_cast<uint32_t>(EBADF));
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(EBADF));
  EXPECT_EQ(ev[0].id.raw_u64, static_cast<uint64_t>(cookie));
}

TEST_P(AioTest, RemovingARequestInFlightCancelsIt) {
  int p[2];
  Pipe(p);
  char buf[8];
  const long cookie = StartAio(kfd_, MakeAioRead(p[0], buf, sizeof(buf), -1));
  ASSERT_GT(cookie, 0);
  EXPECT_TRUE(Get(1, kZero).empty());  // submitted
  EXPECT_EQ(Ctl(KEVENT_CTL_REMOVE, AioKey(cookie)).ret_flags, kDone);
  EXPECT_TRUE(Get(1, kBrief).empty());  // the cancellation completes; nothing is reported
  Write(p[1], "kept");
  EXPECT_EQ(Drain(p[0]), "kept");  // the cancelled read took nothing
  EXPECT_TRUE(Get(1, kBrief).empty());
}

TEST_P(AioTest, ClosingTheQueueWithOperationsInFlight) {
  int p[2];
  Pipe(p);
  static char buf[4][8];
  for (auto& b : buf) ASSERT_GT(StartAio(kfd_, MakeAioRead(p[0], b, sizeof(b), -1)), 0);
  EXPECT_TRUE(Get(1, kZero).empty());
  EXPECT_EQ(kevent_close(kfd_), 0);
  kfd_ = -1;
  EXPECT_EQ(StartAio(12345678, MakeAioRead(p[0], buf[0], 8, -1)), -EBADF);
}

TEST_P(AioTest, CtlCannotAddAioRequests) {
  ukevent uk = AioKey(5);
  EXPECT_EQ(Add(uk).ret_flags, kBrokenDone);
  EXPECT_EQ(uk.ret_data[0], 0u);  // the copy passed by value is untouched
  EXPECT_EQ(Add(AioKey(5)).ret_data[0], static_cast<uint32_t>(EINVAL));
}

INSTANTIATE_TEST_SUITE_P(Backends, AioTest, ::testing::Values("io_uring", "epoll"));

}  // namespace
}  // namespace kev::kevent_internal::test
