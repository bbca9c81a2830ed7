// KEVENT_INODE through the queue core, on io_uring and on epoll: real files and directories
// created, removed and renamed in temporary directories.
#include "kevent/internal/inode_origin.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "kevent/internal/os_origin_fixture.h"

namespace kev::kevent_internal::test {
namespace {

constexpr uint32_t kCreate = KEVENT_INODE_CREATE;
constexpr uint32_t kRemove = KEVENT_INODE_REMOVE;

// A temporary directory (mkdtemp) and an O_RDONLY fd of it; removed with what is left in it.
struct TempDir {
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    path = std::string(base != nullptr ? base : "/tmp") + "/inode_test_XXXXXX";
    if (mkdtemp(path.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << strerror(errno);
    fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  ~TempDir() {
    if (fd >= 0) close(fd);
    std::string cmd = "rm -rf '" + path + "'";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << cmd;
  }
  std::string Path(const std::string& name) const { return path + "/" + name; }
  void Touch(const std::string& name) const {
    const int f = open(Path(name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(f, 0) << strerror(errno);
    close(f);
  }
  void Remove(const std::string& name) const {
    ASSERT_EQ(unlink(Path(name).c_str()), 0) << strerror(errno);
  }
  std::string path;
  int fd = -1;
};

ukevent InodeRequest(int fd, uint32_t event, uint32_t flags = 0, uint32_t user = 0) {
  ukevent uk{};
  uk.type = KEVENT_INODE;
  uk.event = event;
  uk.id.raw[0] = static_cast<uint32_t>(fd);
  uk.req_flags = flags;
  uk.user[0] = user;
  return uk;
}

uint32_t Changes(const std::vector<ukevent>& events) {
  uint32_t n = 0;
  for (const ukevent& uk : events) n += uk.ret_data[0];
  return n;
}

using InodeOriginTest = OsOriginTest;

TEST_P(InodeOriginTest, CreateThenRemove) {
  TempDir dir;
  ukevent uk = InodeRequest(dir.fd, kCreate | kRemove, 0, 5);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  dir.Touch("a");
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_flags, kDone);
  EXPECT_EQ(events[0].ret_data[0], 1u);
  EXPECT_EQ(events[0].ret_data[1], kCreate);
  EXPECT_EQ(events[0].user[0], 5u);
  dir.Remove("a");
  events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_data[0], 1u);
  EXPECT_EQ(events[0].ret_data[1], kRemove) << "kinds are since the last delivery";
  EXPECT_TRUE(Settle().empty());
}

TEST_P(InodeOriginTest, ChangesCoalesceWithACount) {
  TempDir dir;
  ukevent uk = InodeRequest(dir.fd, kCreate | kRemove);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  dir.Touch("a");
  dir.Touch("b");
  ASSERT_EQ(mkdir(dir.Path("sub").c_str(), 0700), 0);  // directories count too
  dir.Remove("a");
  std::vector<ukevent> events =
      DriveUntil({&primary_}, [](const auto& e) { return Changes(e[0]) >= 4; })[0];
  EXPECT_EQ(Changes(events), 4u);
  uint32_t kinds = 0;
  for (const ukevent& e : events) kinds |= e.ret_data[1];
  EXPECT_EQ(kinds, kCreate | kRemove);
}

TEST_P(InodeOriginTest, RenameInsideIsOneOfEachAndAcrossMovesOutAndIn) {
  TempDir from, to;
  from.Touch("a");
  ukevent src = InodeRequest(from.fd, kCreate | kRemove, 0, 1);
  ukevent dst = InodeRequest(to.fd, kCreate, 0, 2);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, src), 0u);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, dst), 0u);
  ASSERT_EQ(rename(from.Path("a").c_str(), from.Path("b").c_str()), 0);
  std::vector<ukevent> events =
      DriveUntil({&primary_}, [](const auto& e) { return Changes(e[0]) >= 2; })[0];
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(Changes(events), 2u) << "moved out of a, moved in as b";
  EXPECT_EQ(events.back().user[0], 1u);
  EXPECT_EQ(events.back().ret_data[1], kCreate | kRemove);

  ASSERT_EQ(rename(from.Path("b").c_str(), to.Path("c").c_str()), 0);
  events = DriveUntil({&primary_}, [](const auto& e) { return e[0].size() >= 2; })[0];
  ASSERT_EQ(events.size(), 2u);
  for (const ukevent& e : events) {
    EXPECT_EQ(e.ret_data[0], 1u);
    EXPECT_EQ(e.ret_data[1], e.user[0] == 1 ? kRemove : kCreate) << e.user[0];
  }
}

TEST_P(InodeOriginTest, OnlyRequestedKindsReady) {
  TempDir dir;
  dir.Touch("old");
  ukevent uk = InodeRequest(dir.fd, kCreate);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  dir.Remove("old");
  EXPECT_TRUE(Settle().empty()) << "a removal does not ready a CREATE request";
  dir.Touch("new");
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_data[0], 1u);
  EXPECT_EQ(events[0].ret_data[1], kCreate);
}

TEST_P(InodeOriginTest, TwoFdsOfOneDirectoryShareItsChanges) {
  TempDir dir;
  const int second_fd = open(dir.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(second_fd, 0);
  ukevent a = InodeRequest(dir.fd, kCreate, 0, 1);
  ukevent b = InodeRequest(second_fd, kCreate, 0, 2);
  ukevent c = InodeRequest(second_fd, kCreate, KEVENT_REQ_WAKEUP_ALL, 3);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, a), 0u);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, b), 0u);
  close(second_fd);  // the watch is on the directory, not on the fd
  dir.Touch("x");
  std::vector<ukevent> events = WaitEvents(1);
  std::vector<ukevent> more = Settle();
  events.insert(events.end(), more.begin(), more.end());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].user[0], 1u) << "the first request takes the change";

  const int third_fd = open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  c.id.raw[0] = static_cast<uint32_t>(third_fd);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, c), 0u);
  dir.Touch("y");
  events = WaitEvents(2);
  more = Settle();
  events.insert(events.end(), more.begin(), more.end());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].user[0], 1u);
  EXPECT_EQ(events[1].user[0], 3u) << "WAKEUP_ALL gets it too; b does not";
  close(third_fd);
}

TEST_P(InodeOriginTest, DeletedDirectoryBreaksItsRequests) {
  auto dir = std::make_unique<TempDir>();
  ukevent uk = InodeRequest(dir->fd, kCreate | kRemove, 0, 9);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  // The kernel reports the deletion when the directory's inode goes, i.e. once no fd holds it.
  close(dir->fd);
  dir->fd = -1;
  ASSERT_EQ(rmdir(dir->path.c_str()), 0);
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_flags, kBroken);
  EXPECT_EQ(events[0].ret_data[0], static_cast<uint32_t>(ENOENT));
  EXPECT_EQ(events[0].user[0], 9u);
  EXPECT_EQ(queue().size(), 0u) << "a broken request is removed after delivery";
  ASSERT_EQ(mkdir(dir->path.c_str(), 0700), 0);  // for TempDir's cleanup
}

TEST_P(InodeOriginTest, RemovedRequestStopsWatchingAndCanComeBack) {
  TempDir dir;
  ukevent uk = InodeRequest(dir.fd, kCreate, KEVENT_REQ_ONESHOT);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  dir.Touch("a");
  dir.Touch("b");
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(queue().size(), 0u) << "ONESHOT";
  dir.Touch("c");
  EXPECT_TRUE(Settle().empty());
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  EXPECT_TRUE(Settle().empty()) << "changes before the ADD are not reported";
  dir.Touch("d");
  events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_data[0], 1u);
}

TEST_P(InodeOriginTest, BadRequestsAreRejected) {
  TempDir dir;
  dir.Touch("file");
  const int file_fd = open(dir.Path("file").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(file_fd, 0);
  const int closed_fd = dup(file_fd);
  close(closed_fd);
  struct Case {
    ukevent uk;
    uint32_t err;
  };
  ukevent bad_id = InodeRequest(dir.fd, kCreate);
  bad_id.id.raw[1] = 1;
  std::vector<Case> cases = {
      {InodeRequest(closed_fd, kCreate), EBADF}, {InodeRequest(-1, kCreate), EBADF},
      {InodeRequest(file_fd, kCreate), ENOTDIR}, {InodeRequest(dir.fd, 0), EINVAL},
      {InodeRequest(dir.fd, 0x4), EINVAL},       {bad_id, EINVAL},
  };
  for (Case& c : cases) {
    EXPECT_EQ(Ctl(KEVENT_CTL_ADD, c.uk), kBroken) << c.uk.id.raw[0] << " " << c.uk.event;
    EXPECT_EQ(c.uk.ret_data[0], c.err) << c.uk.id.raw[0] << " " << c.uk.event;
  }
  EXPECT_EQ(queue().size(), 0u);
  close(file_fd);

  Queue no_poller({});
  ukevent uk = InodeRequest(dir.fd, kCreate);
  no_poller.Ctl(KEVENT_CTL_ADD, uk);
  EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(EOPNOTSUPP));
}

TEST_P(InodeOriginTest, KernelQueueOverflowTellsEveryRequest) {
  int max_events = 0;
  if (FILE* f = std::fopen("/proc/sys/fs/inotify/max_queued_events", "r")) {
    if (std::fscanf(f, "%d", &max_events) != 1) max_events = 0;
    std::fclose(f);
  }
  if (max_events <= 0 || max_events > 100'000) GTEST_SKIP() << "max_queued_events " << max_events;
  TempDir busy, quiet;
  ukevent a = InodeRequest(busy.fd, kCreate | kRemove, 0, 1);
  ukevent b = InodeRequest(quiet.fd, kCreate | kRemove, 0, 2);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, a), 0u);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, b), 0u);
  // More changes than the kernel queues, without polling in between.
  const int files = max_events / 2 + 8;
  for (int i = 0; i < files; ++i) busy.Touch(std::to_string(i));
  for (int i = 0; i < files; ++i) busy.Remove(std::to_string(i));
  std::vector<ukevent> events = DriveUntil({&primary_}, [&](const auto& e) {
    return Changes(e[0]) > static_cast<uint32_t>(max_events);
  })[0];
  uint32_t busy_changes = 0, quiet_changes = 0;
  for (const ukevent& e : events) {
    (e.user[0] == 1 ? busy_changes : quiet_changes) += e.ret_data[0];
    if (e.user[0] == 2) EXPECT_EQ(e.ret_data[1], kCreate | kRemove);
  }
  EXPECT_EQ(busy_changes, static_cast<uint32_t>(max_events) + 1) << "what was queued, + overflow";
  EXPECT_EQ(quiet_changes, 1u) << "the overflow reaches every request";
}

TEST_P(InodeOriginTest, PollerDestroyedBeforeTheQueue) {
  TempDir dir;
  ukevent uk = InodeRequest(dir.fd, kCreate);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  dir.Touch("a");
  primary_.poller.reset();
  primary_.queue.reset();
}

INSTANTIATE_TEST_SUITE_P(Backends, InodeOriginTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         BackendName);

}  // namespace
}  // namespace kev::kevent_internal::test
