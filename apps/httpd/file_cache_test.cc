#include "apps/httpd/file_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <utility>

namespace kev::httpd {
namespace {

class FileCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = getenv("TEST_TMPDIR");
    dir_ = std::string(base ? base : "/tmp") + "/file_cache_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_.data()), nullptr);
    fd_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    close(fd_);
    ASSERT_EQ(system(("rm -rf '" + dir_ + "'").c_str()), 0);
  }
  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name, std::ios::binary | std::ios::trunc) << content;
  }
  std::unique_ptr<CachedFile> Entry(const std::string& name) {
    struct stat st;
    EXPECT_EQ(fstatat(fd_, name.c_str(), &st, 0), 0);
    auto f = std::make_unique<CachedFile>();
    SetIdentity(st, f.get());
    f->resolved = name;
    f->content.resize(st.st_size);
    std::ifstream(dir_ + "/" + name, std::ios::binary).read(f->content.data(), st.st_size);
    return f;
  }

  std::string dir_;
  int fd_ = -1;
};

TEST_F(FileCacheTest, HitsUntilTheFileChanges) {
  FileCache cache({.capacity_bytes = 1000, .max_file_bytes = 100});
  Write("a", "one");
  EXPECT_EQ(cache.Lookup(fd_, "a"), nullptr);
  ASSERT_NE(cache.Insert("a", Entry("a")), nullptr);
  const CachedFile* f = cache.Lookup(fd_, "a");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->content, "one");
  EXPECT_EQ(cache.hits(), 1u);
  Write("a", "three");
  EXPECT_EQ(cache.Lookup(fd_, "a"), nullptr);  // size changed → dropped
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  ASSERT_NE(cache.Insert("a", Entry("a")), nullptr);
  ASSERT_EQ(unlink((dir_ + "/a").c_str()), 0);
  EXPECT_EQ(cache.Lookup(fd_, "a"), nullptr);  // gone
  EXPECT_EQ(cache.misses(), 3u);
}

TEST_F(FileCacheTest, WithinTheWindowHitsSkipTheCheck) {
  FileCache cache({.capacity_bytes = 1000,
                   .max_file_bytes = 100,
                   .revalidate_after = std::chrono::hours(1)});
  Write("a", "one");
  ASSERT_NE(cache.Insert("a", Entry("a")), nullptr);
  Write("a", "three");
  // Inside the window the change is not looked for: the old bytes are served.
  const CachedFile* f = cache.Lookup(fd_, "a");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->content, "one");
  ASSERT_EQ(unlink((dir_ + "/a").c_str()), 0);
  EXPECT_NE(cache.Lookup(fd_, "a"), nullptr);
  EXPECT_EQ(cache.hits(), 2u);
}

TEST_F(FileCacheTest, AfterTheWindowTheFileIsCheckedAgain) {
  FileCache cache({.capacity_bytes = 1000,
                   .max_file_bytes = 100,
                   .revalidate_after = std::chrono::milliseconds(1)});
  Write("a", "one");
  ASSERT_NE(cache.Insert("a", Entry("a")), nullptr);
  // Unchanged: still a hit after the window, and the check restarts it.
  usleep(50000);  // >> the window plus a coarse-clock tick
  EXPECT_NE(cache.Lookup(fd_, "a"), nullptr);
  Write("a", "three");
  usleep(50000);
  EXPECT_EQ(cache.Lookup(fd_, "a"), nullptr);  // size changed → dropped
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.hits(), 1u);
}

TEST_F(FileCacheTest, KeysAreIndependentOfResolvedPaths) {
  FileCache cache({.capacity_bytes = 1000, .max_file_bytes = 100});
  ASSERT_EQ(mkdir((dir_ + "/d").c_str(), 0755), 0);
  Write("d/index.html", "idx");
  ASSERT_NE(cache.Insert("d/", Entry("d/index.html")), nullptr);
  EXPECT_NE(cache.Lookup(fd_, "d/"), nullptr);
  EXPECT_EQ(cache.Lookup(fd_, "d"), nullptr);
  // Replacing the file by a symlink to itself is a different inode → miss.
  ASSERT_EQ(rename((dir_ + "/d/index.html").c_str(), (dir_ + "/d/real.html").c_str()), 0);
  ASSERT_EQ(symlink("real.html", (dir_ + "/d/index.html").c_str()), 0);
  EXPECT_EQ(cache.Lookup(fd_, "d/"), nullptr);
}

TEST_F(FileCacheTest, BoundsAndLruEviction) {
  FileCache cache({.capacity_bytes = 10, .max_file_bytes = 6});
  Write("big", "1234567");
  EXPECT_FALSE(cache.Eligible(7));
  EXPECT_EQ(cache.Insert("big", Entry("big")), nullptr);
  Write("a", "aaaa");
  Write("b", "bbbb");
  Write("c", "cccc");
  ASSERT_NE(cache.Insert("a", Entry("a")), nullptr);
  ASSERT_NE(cache.Insert("b", Entry("b")), nullptr);
  ASSERT_NE(cache.Lookup(fd_, "a"), nullptr);  // a is now most recent
  ASSERT_NE(cache.Insert("c", Entry("c")), nullptr);
  EXPECT_EQ(cache.bytes(), 8u);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_NE(cache.Lookup(fd_, "a"), nullptr);
  EXPECT_EQ(cache.Lookup(fd_, "b"), nullptr);  // evicted
  EXPECT_NE(cache.Lookup(fd_, "c"), nullptr);
  // Re-inserting a key replaces it without double counting.
  ASSERT_NE(cache.Insert("c", Entry("c")), nullptr);
  EXPECT_EQ(cache.bytes(), 8u);
  EXPECT_EQ(cache.entries(), 2u);
  cache.Clear();
  EXPECT_EQ(cache.bytes(), 0u);
}

// An open-file entry: content empty, the descriptor shared.
std::unique_ptr<CachedFile> FdEntry(int dir_fd, const std::string& name) {
  struct stat st;
  EXPECT_EQ(fstatat(dir_fd, name.c_str(), &st, 0), 0);
  auto f = std::make_unique<CachedFile>();
  SetIdentity(st, f.get());
  f->resolved = name;
  const int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  f->fd = SharedFd::Adopt(fd);
  return f;
}

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) >= 0; }

TEST_F(FileCacheTest, OpenFileEntriesHitWithoutReopening) {
  FileCache cache({.capacity_bytes = 1000, .max_file_bytes = 2});
  Write("big", "bigger than two bytes");
  EXPECT_TRUE(cache.KeepsFilesOpen());
  const CachedFile* f = cache.Insert("big", FdEntry(fd_, "big"));
  ASSERT_NE(f, nullptr);
  const int fd = f->fd.get();
  const CachedFile* hit = cache.Lookup(fd_, "big");
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->fd.get(), fd);
  EXPECT_EQ(cache.open_files(), 1u);
  EXPECT_EQ(cache.bytes(), 0u);  // descriptors do not count against capacity_bytes
  // A rewrite is seen (without a window: at once), and the entry's descriptor is closed.
  Write("big", "changed, and longer than before");
  EXPECT_EQ(cache.Lookup(fd_, "big"), nullptr);
  EXPECT_EQ(cache.open_files(), 0u);
  EXPECT_FALSE(IsOpen(fd));
}

TEST_F(FileCacheTest, ReplacedFileIsSeenAfterTheWindow) {
  FileCache cache({.capacity_bytes = 1000,
                   .max_file_bytes = 2,
                   .revalidate_after = std::chrono::milliseconds(1)});
  Write("big", "old contents");
  ASSERT_NE(cache.Insert("big", FdEntry(fd_, "big")), nullptr);
  // Atomic replacement (same size, new inode): the old descriptor still reads the old file.
  Write("new", "NEW contents");
  ASSERT_EQ(rename((dir_ + "/new").c_str(), (dir_ + "/big").c_str()), 0);
  usleep(50000);  // >> the window plus a coarse-clock tick
  EXPECT_EQ(cache.Lookup(fd_, "big"), nullptr);
  ASSERT_NE(cache.Insert("big", FdEntry(fd_, "big")), nullptr);
  const CachedFile* f = cache.Lookup(fd_, "big");
  ASSERT_NE(f, nullptr);
  char buf[12];
  ASSERT_EQ(pread(f->fd.get(), buf, sizeof(buf), 0), 12);
  EXPECT_EQ(std::string(buf, 12), "NEW contents");
}

TEST_F(FileCacheTest, EvictionNeverClosesADescriptorStillInUse) {
  FileCache cache({.capacity_bytes = 1000, .max_file_bytes = 2, .max_open_files = 2});
  Write("a", "aaaa");
  Write("b", "bbbb");
  Write("c", "cccc");
  Write("s", "s");  // small: a content entry, not bounded by max_open_files
  ASSERT_NE(cache.Insert("s", Entry("s")), nullptr);
  SharedFd in_use = cache.Insert("a", FdEntry(fd_, "a"))->fd;  // a response holds it
  EXPECT_EQ(in_use.owners(), 2u);
  ASSERT_NE(cache.Insert("b", FdEntry(fd_, "b")), nullptr);
  ASSERT_NE(cache.Insert("c", FdEntry(fd_, "c")), nullptr);  // evicts a, the LRU file
  EXPECT_EQ(cache.open_files(), 2u);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_EQ(cache.Lookup(fd_, "a"), nullptr);
  EXPECT_NE(cache.Lookup(fd_, "s"), nullptr);  // content entries are not touched
  // Evicted, but the response's share keeps the descriptor open and readable.
  EXPECT_EQ(in_use.owners(), 1u);
  char buf[4];
  ASSERT_EQ(pread(in_use.get(), buf, sizeof(buf), 0), 4);
  EXPECT_EQ(std::string(buf, 4), "aaaa");
  const int fd = in_use.get();
  in_use.Reset();  // the last owner closes it
  EXPECT_FALSE(IsOpen(fd));
  // Clear releases the rest.
  const int b_fd = cache.Lookup(fd_, "b")->fd.get();
  cache.Clear();
  EXPECT_FALSE(IsOpen(b_fd));
}

TEST_F(FileCacheTest, CloseOpenFilesKeepsContentEntries) {
  FileCache cache({.capacity_bytes = 1000, .max_file_bytes = 2});
  Write("big", "bigger");
  Write("s", "s");
  ASSERT_NE(cache.Insert("s", Entry("s")), nullptr);
  SharedFd held = cache.Insert("big", FdEntry(fd_, "big"))->fd;
  cache.CloseOpenFiles();
  EXPECT_EQ(cache.open_files(), 0u);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_NE(cache.Lookup(fd_, "s"), nullptr);
  EXPECT_EQ(cache.Lookup(fd_, "big"), nullptr);
  EXPECT_TRUE(IsOpen(held.get()));  // a response still holds it
  const int fd = held.get();
  held.Reset();
  EXPECT_FALSE(IsOpen(fd));
}

TEST_F(FileCacheTest, NoOpenFilesWhenMaxOpenFilesIsZero) {
  FileCache cache({.capacity_bytes = 1000, .max_file_bytes = 2, .max_open_files = 0});
  Write("big", "bigger");
  EXPECT_FALSE(cache.KeepsFilesOpen());
  auto entry = FdEntry(fd_, "big");
  SharedFd fd = entry->fd;
  EXPECT_EQ(cache.Insert("big", std::move(entry)), nullptr);
  EXPECT_EQ(fd.owners(), 1u);  // the refused entry let go of it
}

TEST(SharedFdTest, CopiesShareMovesTransfer) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[1]);
  SharedFd a = SharedFd::Adopt(fds[0]);
  SharedFd b = a;
  EXPECT_EQ(a.owners(), 2u);
  SharedFd c = std::move(b);
  EXPECT_FALSE(b.valid());  // NOLINT: moved-from is empty by contract
  EXPECT_EQ(c.get(), fds[0]);
  EXPECT_EQ(a.owners(), 2u);
  a = c;  // same descriptor: still two owners
  EXPECT_EQ(a.owners(), 2u);
  a.Reset();
  EXPECT_TRUE(IsOpen(fds[0]));
  c.Reset();
  EXPECT_FALSE(IsOpen(fds[0]));
  EXPECT_EQ(c.get(), -1);
}

TEST_F(FileCacheTest, ZeroCapacityCachesNothing) {
  FileCache cache({.capacity_bytes = 0, .max_file_bytes = 100});
  Write("a", "x");
  EXPECT_FALSE(cache.Eligible(1));
  EXPECT_EQ(cache.Insert("a", Entry("a")), nullptr);
}

}  // namespace
}  // namespace kev::httpd
