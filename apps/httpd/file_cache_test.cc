#include "apps/httpd/file_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

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

TEST_F(FileCacheTest, ZeroCapacityCachesNothing) {
  FileCache cache({.capacity_bytes = 0, .max_file_bytes = 100});
  Write("a", "x");
  EXPECT_FALSE(cache.Eligible(1));
  EXPECT_EQ(cache.Insert("a", Entry("a")), nullptr);
}

}  // namespace
}  // namespace kev::httpd
