// aio/internal/pattern_file.h: test files whose every byte is predictable from its offset.
//
// The content is a pseudo-random table with a prime period, so every offset is distinct (a
// misplaced or repeated range cannot match by accident) and a file or an expected range is built
// with a few memcpy calls (fast under tsan too). Shared by the SendFile and aio_sendfile tests.
//
// Example:
//   kev::aio::test_pattern::PatternFile file(64 << 20);          // 64 MiB on disk
//   ... send [offset, offset + count) of file.fd() ...
//   EXPECT_EQ(received, kev::aio::test_pattern::Expected(offset, count));
//
// Test-only (testonly target); not thread-safe beyond the static table's initialisation.
#ifndef KEV_AIO_INTERNAL_PATTERN_FILE_H_
#define KEV_AIO_INTERNAL_PATTERN_FILE_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace kev::aio::test_pattern {

inline constexpr size_t kPatternPeriod = 1000003;

// Two periods back to back, so any range of up to one period is one contiguous substring.
inline const std::string& PatternTable() {
  static const std::string table = [] {
    std::string t(2 * kPatternPeriod, '\0');
    uint32_t x = 12345;
    for (size_t i = 0; i < kPatternPeriod; ++i) {
      x = x * 1103515245u + 12345u;
      t[i] = static_cast<char>(x >> 24);
    }
    t.replace(kPatternPeriod, kPatternPeriod, t, 0, kPatternPeriod);
    return t;
  }();
  return table;
}

// Appends `count` pattern bytes starting at file offset `offset`.
inline void AppendPattern(std::string* out, size_t offset, size_t count) {
  while (count > 0) {
    size_t n = std::min(count, kPatternPeriod);
    out->append(PatternTable(), offset % kPatternPeriod, n);
    offset += n;
    count -= n;
  }
}

// The pattern bytes of [offset, offset + count).
inline std::string Expected(size_t offset, size_t count) {
  std::string s;
  s.reserve(count);
  AppendPattern(&s, offset, count);
  return s;
}

// Writes `size` pattern bytes at the start of `fd`, 1 MiB at a time.
inline void WritePattern(int fd, size_t size) {
  std::string chunk;
  chunk.reserve(1 << 20);
  for (size_t off = 0; off < size; off += chunk.size()) {
    size_t n = std::min(size_t{1} << 20, size - off);
    chunk.clear();
    AppendPattern(&chunk, off, n);
    ASSERT_EQ(pwrite(fd, chunk.data(), n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
  }
}

// A temporary file (in TEST_TMPDIR) of `size` pattern bytes, opened read-write; removed by the
// destructor.
class PatternFile {
 public:
  explicit PatternFile(size_t size, const char* name = "pattern") {
    const char* dir = std::getenv("TEST_TMPDIR");
    path_ = std::string(dir != nullptr ? dir : "/tmp") + "/" + name + "_XXXXXX";
    fd_ = mkstemp(path_.data());
    EXPECT_GE(fd_, 0);
    if (fd_ >= 0) WritePattern(fd_, size);
  }
  ~PatternFile() {
    close(fd_);
    unlink(path_.c_str());
  }
  PatternFile(const PatternFile&) = delete;
  PatternFile& operator=(const PatternFile&) = delete;
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace kev::aio::test_pattern

#endif  // KEV_AIO_INTERNAL_PATTERN_FILE_H_
