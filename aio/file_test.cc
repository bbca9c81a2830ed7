// aio::File and directory listing on both backends.
#include "aio/file.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <system_error>

#include "net/internal/test_loop.h"

namespace kev::aio {
namespace {

using net::internal::TestLoop;

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

class FileTest : public testing::TestWithParam<PollerBackend> {
 protected:
  TestLoop loop_{GetParam()};
  std::string dir_ = TempDir() + "/file_test_" + std::to_string(static_cast<int>(GetParam()));
  void SetUp() override { mkdir(dir_.c_str(), 0755); }
};

INSTANTIATE_TEST_SUITE_P(Backends, FileTest,
                         testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         net::internal::BackendName);

Future<std::string> WriteReadBack(std::string path) {
  File f = co_await File::Open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  std::string a = "hello", b = "world";
  size_t n = co_await f.Write(0, std::as_bytes(std::span<const char>(a.data(), a.size())));
  n += co_await f.Write(10, std::as_bytes(std::span<const char>(b.data(), b.size())));
  if (n != 10) throw std::runtime_error("short write");
  co_await f.Fsync(/*datasync=*/true);
  struct statx st = co_await f.Stat();
  if (st.stx_size != 15) throw std::runtime_error("size " + std::to_string(st.stx_size));
  std::string back(20, '?');
  size_t got =
      co_await f.Read(3, std::as_writable_bytes(std::span<char>(back.data(), back.size())));
  back.resize(got);
  co_await f.Close();
  co_return back;
}

TEST_P(FileTest, WriteAtOffsetsStatReadBack) {
  std::string back = loop_.Run(WriteReadBack(dir_ + "/a.bin"));
  EXPECT_EQ(back, std::string("lo\0\0\0\0\0world", 12));
}

TEST_P(FileTest, OpenMissingFails) {
  try {
    loop_.Run(File::Open(dir_ + "/missing", O_RDONLY));
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
  }
  EXPECT_THROW(loop_.Run(Stat(dir_ + "/missing")), std::system_error);
}

TEST_P(FileTest, StatPathAndListDirectory) {
  mkdir((dir_ + "/list").c_str(), 0755);
  for (const char* name : {"c", "a", "b"}) {
    File f = loop_.Run(File::Open(dir_ + "/list/" + name, O_WRONLY | O_CREAT));
    EXPECT_TRUE(f.valid());
  }
  mkdir((dir_ + "/list/sub").c_str(), 0755);
  std::vector<DirectoryEntry> entries = loop_.Run(ListDirectory(dir_ + "/list"));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].name, "a");
  EXPECT_EQ(entries[3].name, "sub");
  EXPECT_EQ(entries[3].type, DT_DIR);
  struct statx st = loop_.Run(Stat(dir_ + "/list/sub"));
  EXPECT_TRUE(S_ISDIR(st.stx_mode));
  EXPECT_THROW(loop_.Run(ListDirectory(dir_ + "/nope")), std::system_error);
}

TEST_P(FileTest, ClosedFileFailsWithEbadf) {
  File f;
  try {
    loop_.Run(f.Stat());
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
}

}  // namespace
}  // namespace kev::aio
