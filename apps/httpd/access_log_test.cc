#include "apps/httpd/access_log.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace kev::httpd {
namespace {

std::string Line(const AccessLogEntry& e) {
  std::string s;
  AppendAccessLogLine(e, &s);
  return s;
}

TEST(AccessLogTest, CombinedLogFormat) {
  EXPECT_EQ(Line({.peer = "127.0.0.1",
                  .time = 1750000000,
                  .method = "GET",
                  .target = "/index.html",
                  .version_minor = 1,
                  .status = 200,
                  .body_bytes = 1399,
                  .user_agent = "curl/8.0"}),
            "127.0.0.1 - - [15/Jun/2025:15:06:40 +0000] \"GET /index.html HTTP/1.1\" 200 1399 "
            "\"-\" \"curl/8.0\"\n");
  EXPECT_EQ(Line({.peer = "::1", .time = 951782400, .version_minor = -1, .status = 400}),
            "::1 - - [29/Feb/2000:00:00:00 +0000] \"-\" 400 0 \"-\" \"-\"\n");
}

TEST(AccessLogTest, DatesAgreeWithGmtime) {
  for (int64_t t = 0; t < 4102444800; t += 86400 * 37 + 3607) {
    time_t tt = t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char expect[64];
    strftime(expect, sizeof(expect), "[%d/%b/%Y:%H:%M:%S +0000]", &tm);
    const std::string line = Line({.peer = "p", .time = t, .version_minor = -1});
    ASSERT_EQ(line.substr(6, 28), expect) << t;
  }
}

TEST(AccessLogTest, ClientBytesCannotForgeLines) {
  const std::string line = Line({.peer = "1.2.3.4",
                                 .method = "GET",
                                 .target = "/a\"b\\c\n\x1b[31m\xc3\xa9",
                                 .status = 404,
                                 .referer = "x\" 200 \"y",
                                 .user_agent = "\r\nfake"});
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  EXPECT_NE(line.find("/a\\x22b\\x5cc\\x0a\\x1b[31m\\xc3\\xa9"), std::string::npos) << line;
  EXPECT_NE(line.find("\"x\\x22 200 \\x22y\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"\\x0d\\x0afake\""), std::string::npos) << line;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(AccessLogTest, ShardsWriteWholeLinesThroughTheSink) {
  const char* base = getenv("TEST_TMPDIR");
  const std::string path = std::string(base ? base : "/tmp") + "/access_log_test.log";
  unlink(path.c_str());
  auto sink = AccessLogSink::Open(path);
  constexpr int kThreads = 4, kLines = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AccessLog log(sink, /*flush_bytes=*/4096);
      for (int i = 0; i < kLines; ++i) {
        log.Append({.peer = "10.0.0." + std::to_string(t),
                    .time = 1750000000,
                    .method = "GET",
                    .target = "/f" + std::to_string(i),
                    .status = 200});
      }
      EXPECT_EQ(log.dropped_lines(), 0u);
    });  // ~AccessLog flushes the tail
  }
  for (auto& t : threads) t.join();
  sink->Sync();
  const std::string text = ReadAll(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), kThreads * kLines);
  // Every line is whole.
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    ASSERT_TRUE(l.starts_with("10.0.0.")) << l;
    ASSERT_TRUE(l.ends_with("\"-\" \"-\"")) << l;
  }
  EXPECT_EQ(sink->write_errors(), 0u);
}

TEST(AccessLogTest, DropsInsteadOfBlockingWhenTheWriterFallsBehind) {
  // A sink that can hold almost nothing pending: some submissions are refused and counted.
  signal(SIGPIPE, SIG_IGN);  // the writer's last write hits a closed pipe
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  {
    auto sink = std::make_shared<AccessLogSink>(fds[1], false, /*max_pending_bytes=*/100);
    AccessLog log(sink, /*flush_bytes=*/1);
    // The pipe has 64 KiB of room, then the writer blocks and pending fills up.
    for (int i = 0; i < 5000; ++i) {
      log.Append({.peer = "p", .method = "GET", .target = "/x", .status = 200});
    }
    EXPECT_GT(log.dropped_lines(), 0u);
    close(fds[0]);  // unblock the writer (EPIPE: counted as a write error)
  }
  close(fds[1]);
}

}  // namespace
}  // namespace kev::httpd
