#include "apps/httpd/handler.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "apps/httpd/http_headers.h"

namespace kev::httpd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int64_t kNow = 1750000000;

std::string TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/handler_test.XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
}

struct Result {
  std::string out;
  ResponsePlan plan;
  std::string Body() const { return out.substr(out.find("\r\n\r\n") + 4); }
  std::string FileBody() const {
    std::string s(plan.file_length, '\0');
    EXPECT_EQ(pread(plan.file.get(), s.data(), s.size(), plan.file_offset),
              static_cast<ssize_t>(s.size()));
    return s;
  }
};

// A document root with a few files; parameterised on whether the file cache is on, so every
// response is checked through both the cached and the sendfile path.
class HandlerTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    outer_ = TempDir();
    root_ = outer_ + "/root";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    WriteFile(outer_ + "/secret.txt", "top secret\n");
    WriteFile(root_ + "/hello.txt", "Hello, world!\n");  // 14 bytes
    WriteFile(root_ + "/page.html", "<p>hi</p>");
    ASSERT_EQ(mkdir((root_ + "/docs").c_str(), 0755), 0);
    WriteFile(root_ + "/docs/index.html", "docs index");
    ASSERT_EQ(mkdir((root_ + "/empty").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/list").c_str(), 0755), 0);
    WriteFile(root_ + "/list/b<&>.txt", "x");
    WriteFile(root_ + "/list/a b.txt", "yy");
    WriteFile(root_ + "/list/.hidden", "h");
    ASSERT_EQ(mkdir((root_ + "/list/sub").c_str(), 0755), 0);
    ASSERT_EQ(symlink("../secret.txt", (root_ + "/escape.txt").c_str()), 0);
    ASSERT_EQ(symlink((outer_ + "/secret.txt").c_str(), (root_ + "/abs.txt").c_str()), 0);
    ASSERT_EQ(symlink("hello.txt", (root_ + "/alias.txt").c_str()), 0);
    ASSERT_EQ(mkfifo((root_ + "/fifo").c_str(), 0644), 0);
    root_fd_ = open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
    Reset();
  }
  void TearDown() override {
    close(root_fd_);
    std::string cmd = "rm -rf '" + outer_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  void Reset() {
    cache_ = std::make_unique<FileCache>(
        FileCacheOptions{.capacity_bytes = 1 << 20, .max_file_bytes = 1024});
    handler_ =
        std::make_unique<Handler>(HandlerOptions{.root_fd = root_fd_, .autoindex = autoindex_},
                                  GetParam() ? cache_.get() : nullptr);
  }

  Result Get(const std::string& request, int64_t now = kNow) {
    RequestParser parser;
    Result r;
    if (parser.Parse(request) != RequestParser::Status::kComplete) {
      handler_->HandleParseError(parser.error_status(), now, &r.out, &r.plan);
    } else {
      handler_->Handle(parser, now, /*allow_keep_alive=*/true, &r.out, &r.plan);
    }
    return r;
  }
  Result Get11(const std::string& target, const std::string& extra = "",
               const std::string& method = "GET") {
    return Get(method + " " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n");
  }
  // The body whichever path served it.
  static std::string AnyBody(const Result& r) {
    return r.plan.file.valid() ? r.FileBody() : r.Body();
  }

  std::string outer_, root_;
  int root_fd_ = -1;
  bool autoindex_ = false;
  std::unique_ptr<FileCache> cache_;
  std::unique_ptr<Handler> handler_;
};

TEST_P(HandlerTest, ServesSmallFileWithAllHeaders) {
  Result r = Get11("/hello.txt");
  EXPECT_EQ(r.plan.status, 200);
  EXPECT_TRUE(r.plan.keep_alive);
  EXPECT_THAT(r.out, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r.out, HasSubstr("\r\nServer: kev\r\n"));
  EXPECT_THAT(r.out, HasSubstr("\r\nDate: Sun, 15 Jun 2025 15:06:40 GMT\r\n"));
  EXPECT_THAT(r.out, HasSubstr("\r\nContent-Type: text/plain; charset=utf-8\r\n"));
  EXPECT_THAT(r.out, HasSubstr("\r\nContent-Length: 14\r\n"));
  EXPECT_THAT(r.out, HasSubstr("\r\nLast-Modified: "));
  EXPECT_THAT(r.out, HasSubstr("\r\nETag: \""));
  EXPECT_THAT(r.out, HasSubstr("\r\nAccept-Ranges: bytes\r\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("Connection:")));
  EXPECT_EQ(AnyBody(r), "Hello, world!\n");
  EXPECT_EQ(r.plan.body_bytes, 14u);
  // With the cache the whole response is one buffer: no second write.
  EXPECT_EQ(r.plan.file.valid(), !GetParam());
  // A second request is a cache hit and identical except for nothing.
  Result again = Get11("/hello.txt");
  EXPECT_EQ(again.out, r.out);
  EXPECT_EQ(again.plan.cache_hit, GetParam());
}

TEST_P(HandlerTest, HeadHasTheHeadersButNoBody) {
  Result get = Get11("/hello.txt");
  Result head = Get11("/hello.txt", "", "HEAD");
  EXPECT_EQ(head.plan.status, 200);
  EXPECT_TRUE(head.plan.head_only);
  EXPECT_FALSE(head.plan.file.valid());
  EXPECT_EQ(head.plan.body_bytes, 0u);
  EXPECT_THAT(head.out, HasSubstr("Content-Length: 14\r\n"));
  EXPECT_EQ(head.Body(), "");
  EXPECT_EQ(head.out, get.out.substr(0, get.out.find("\r\n\r\n") + 4));
}

TEST_P(HandlerTest, LargeFilesGoThroughTheFilePlan) {
  std::string big(5000, 'z');
  big[4321] = 'Q';
  WriteFile(root_ + "/big.bin", big);
  Result r = Get11("/big.bin");
  EXPECT_EQ(r.plan.status, 200);
  ASSERT_TRUE(r.plan.file.valid());
  EXPECT_EQ(r.plan.file_offset, 0u);
  EXPECT_EQ(r.plan.file_length, 5000u);
  EXPECT_EQ(r.Body(), "");
  EXPECT_THAT(r.out, HasSubstr("Content-Type: application/octet-stream\r\n"));
  EXPECT_EQ(r.FileBody(), big);
  Result range = Get11("/big.bin", "Range: bytes=4320-4322\r\n");
  EXPECT_EQ(range.plan.status, 206);
  EXPECT_THAT(range.out, HasSubstr("Content-Range: bytes 4320-4322/5000\r\n"));
  EXPECT_EQ(range.FileBody(), "zQz");
}

TEST_P(HandlerTest, LargeFileHitsShareTheOpenFileAndSeeReplacements) {
  std::string big(5000, 'z');
  WriteFile(root_ + "/big.bin", big);
  Result first = Get11("/big.bin");
  Result second = Get11("/big.bin");
  ASSERT_TRUE(first.plan.file.valid());
  ASSERT_TRUE(second.plan.file.valid());
  EXPECT_EQ(second.plan.cache_hit, GetParam());
  // With the cache both responses send from the one descriptor it keeps open (no open per
  // request); without it each has its own.
  EXPECT_EQ(first.plan.file.get() == second.plan.file.get(), GetParam());
  EXPECT_EQ(second.out, first.out);  // same head either way
  EXPECT_EQ(second.FileBody(), big);
  EXPECT_EQ(Get11("/big.bin", "", "HEAD").plan.file.valid(), false);
  // Replaced on disk (a new inode of the same size): the next request sees it (the test's
  // cache has no validity window), while a response already planned keeps the old file.
  std::string fresh(5000, 'y');
  WriteFile(root_ + "/big.new", fresh);
  ASSERT_EQ(rename((root_ + "/big.new").c_str(), (root_ + "/big.bin").c_str()), 0);
  Result third = Get11("/big.bin");
  EXPECT_FALSE(third.plan.cache_hit);
  EXPECT_EQ(third.FileBody(), fresh);
  EXPECT_EQ(second.FileBody(), big);
  // Ranges and conditionals from the open-file entry.
  Result range = Get11("/big.bin", "Range: bytes=10-19\r\n");
  EXPECT_EQ(range.plan.status, 206);
  EXPECT_EQ(range.FileBody(), std::string(10, 'y'));
  const size_t at = third.out.find("ETag: ") + 6;
  const std::string etag = third.out.substr(at, third.out.find("\r\n", at) - at);
  Result inm = Get11("/big.bin", "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(inm.plan.status, 304);
  EXPECT_FALSE(inm.plan.file.valid());
}

// Open files stay cached while the shard has connections (plans), and close with the last.
TEST_P(HandlerTest, OpenFilesCloseWhenTheLastPlanGoes) {
  if (!GetParam()) GTEST_SKIP() << "no cache";
  WriteFile(root_ + "/big.bin", std::string(5000, 'z'));
  auto connection = std::make_unique<Result>(Get11("/big.bin"));
  const int fd = connection->plan.file.get();
  connection->plan.file.Reset();  // the transfer ended; the connection stays
  EXPECT_EQ(cache_->open_files(), 1u);
  EXPECT_TRUE(fcntl(fd, F_GETFD) >= 0);
  EXPECT_TRUE(Get11("/big.bin").plan.cache_hit);  // another connection, come and gone
  EXPECT_EQ(cache_->open_files(), 1u);
  connection.reset();  // the last connection ends
  EXPECT_EQ(cache_->open_files(), 0u);
  EXPECT_FALSE(fcntl(fd, F_GETFD) >= 0);
  EXPECT_EQ(cache_->entries(), 0u);
  // A connection's lease keeps them across its bursts (plans that come and go).
  {
    PlanLease lease = handler_->Lease();
    EXPECT_TRUE(Get11("/big.bin").plan.file.valid());
    EXPECT_EQ(cache_->open_files(), 1u);
    EXPECT_TRUE(Get11("/big.bin").plan.cache_hit);
  }
  EXPECT_EQ(cache_->open_files(), 0u);
  // A plan may outlive its handler (and then touches no cache).
  Result late = Get11("/big.bin");
  ASSERT_TRUE(late.plan.file.valid());
  Reset();  // destroys the handler (and the cache) while `late` lives
  EXPECT_EQ(late.FileBody(), std::string(5000, 'z'));
}

TEST_P(HandlerTest, ConditionalRequests) {
  Result r = Get11("/hello.txt");
  const size_t at = r.out.find("ETag: ") + 6;
  const std::string etag = r.out.substr(at, r.out.find("\r\n", at) - at);
  const size_t lm_at = r.out.find("Last-Modified: ") + 15;
  const std::string lm = r.out.substr(lm_at, 29);

  Result inm = Get11("/hello.txt", "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(inm.plan.status, 304);
  EXPECT_THAT(inm.out, StartsWith("HTTP/1.1 304 Not Modified\r\n"));
  EXPECT_THAT(inm.out, HasSubstr("ETag: " + etag));
  EXPECT_THAT(inm.out, Not(HasSubstr("Content-Length")));
  EXPECT_EQ(inm.Body(), "");
  EXPECT_FALSE(inm.plan.file.valid());

  EXPECT_EQ(Get11("/hello.txt", "If-None-Match: \"nope\"\r\n").plan.status, 200);
  EXPECT_EQ(Get11("/hello.txt", "If-None-Match: W/" + etag + "\r\n").plan.status, 304);
  EXPECT_EQ(Get11("/hello.txt", "If-Modified-Since: " + lm + "\r\n").plan.status, 304);
  EXPECT_EQ(Get11("/hello.txt", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n").plan.status,
            200);
  // If-None-Match decides alone.
  EXPECT_EQ(
      Get11("/hello.txt", "If-None-Match: \"x\"\r\nIf-Modified-Since: " + lm + "\r\n").plan.status,
      200);
}

TEST_P(HandlerTest, Ranges) {
  Result r = Get11("/hello.txt", "Range: bytes=7-11\r\n");
  EXPECT_EQ(r.plan.status, 206);
  EXPECT_THAT(r.out, StartsWith("HTTP/1.1 206 Partial Content\r\n"));
  EXPECT_THAT(r.out, HasSubstr("Content-Range: bytes 7-11/14\r\n"));
  EXPECT_THAT(r.out, HasSubstr("Content-Length: 5\r\n"));
  EXPECT_EQ(AnyBody(r), "world");
  EXPECT_EQ(AnyBody(Get11("/hello.txt", "Range: bytes=-7\r\n")), "world!\n");
  Result bad = Get11("/hello.txt", "Range: bytes=14-\r\n");
  EXPECT_EQ(bad.plan.status, 416);
  EXPECT_THAT(bad.out, HasSubstr("Content-Range: bytes */14\r\n"));
  EXPECT_TRUE(bad.plan.keep_alive);
  // Multiple ranges and HEAD ignore Range.
  EXPECT_EQ(Get11("/hello.txt", "Range: bytes=0-1,3-4\r\n").plan.status, 200);
  EXPECT_EQ(Get11("/hello.txt", "Range: bytes=0-1\r\n", "HEAD").plan.status, 200);
  // If-Range with a different validator → the whole file.
  EXPECT_EQ(Get11("/hello.txt", "Range: bytes=0-1\r\nIf-Range: \"other\"\r\n").plan.status, 200);
  Result full = Get11("/hello.txt");
  const size_t at = full.out.find("ETag: ") + 6;
  const std::string etag = full.out.substr(at, full.out.find("\r\n", at) - at);
  EXPECT_EQ(Get11("/hello.txt", "Range: bytes=0-1\r\nIf-Range: " + etag + "\r\n").plan.status, 206);
}

TEST_P(HandlerTest, Methods) {
  Result post = Get("POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.plan.status, 405);
  EXPECT_THAT(post.out, HasSubstr("\r\nAllow: GET, HEAD\r\n"));
  EXPECT_THAT(post.Body(), HasSubstr("405 Method Not Allowed"));
  EXPECT_EQ(Get11("/hello.txt", "", "DELETE").plan.status, 405);
  EXPECT_EQ(Get11("/hello.txt", "", "BREW").plan.status, 501);
  EXPECT_EQ(Get11("/hello.txt", "", "get").plan.status, 501);  // methods are case-sensitive
}

TEST_P(HandlerTest, TraversalNeverReachesOutsideTheRoot) {
  for (const char* target :
       {"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2e/secret.txt", "/docs/../../secret.txt",
        "/..%2fsecret.txt", "/%2f..%2fsecret.txt", "/..\\secret.txt", "/%5c..%5csecret.txt",
        "/hello.txt%00", "/%00", "http://x/../secret.txt", "secret.txt", "//../secret.txt"}) {
    Result r = Get11(target);
    EXPECT_EQ(r.plan.status, 400) << target;
    EXPECT_THAT(r.out, Not(HasSubstr("top secret"))) << target;
    EXPECT_FALSE(r.plan.file.valid()) << target;
  }
  for (const char* target : {"/escape.txt", "/abs.txt"}) {
    Result r = Get11(target);
    EXPECT_EQ(r.plan.status, 403) << target;
    EXPECT_FALSE(r.plan.file.valid()) << target;
    EXPECT_THAT(r.out, Not(HasSubstr("top secret"))) << target;
  }
  // A relative symlink inside the root is fine.
  EXPECT_EQ(AnyBody(Get11("/alias.txt")), "Hello, world!\n");
  // Absolute-form and dot segments that stay inside are fine too.
  EXPECT_EQ(AnyBody(Get11("http://x/docs/../hello.txt")), "Hello, world!\n");
  EXPECT_EQ(Get11("/fifo").plan.status, 403);
}

TEST_P(HandlerTest, NotFoundAndQueries) {
  Result r = Get11("/missing.txt");
  EXPECT_EQ(r.plan.status, 404);
  EXPECT_TRUE(r.plan.keep_alive);
  EXPECT_THAT(r.Body(), HasSubstr("404 Not Found"));
  EXPECT_EQ(Get11("/hello.txt/").plan.status, 404);
  EXPECT_EQ(Get11("/hello.txt/x").plan.status, 404);
  EXPECT_EQ(AnyBody(Get11("/hello.txt?v=1&x=%00")), "Hello, world!\n");
  EXPECT_EQ(AnyBody(Get11("/hell%6F.txt")), "Hello, world!\n");
}

TEST_P(HandlerTest, Directories) {
  Result idx = Get11("/docs/");
  EXPECT_EQ(idx.plan.status, 200);
  EXPECT_THAT(idx.out, HasSubstr("Content-Type: text/html; charset=utf-8"));
  EXPECT_EQ(AnyBody(idx), "docs index");
  Result redirect = Get11("/docs?a=b");
  EXPECT_EQ(redirect.plan.status, 301);
  EXPECT_THAT(redirect.out, HasSubstr("\r\nLocation: /docs/?a=b\r\n"));
  EXPECT_EQ(Get11("/empty/").plan.status, 403);
  EXPECT_EQ(Get11("/list/").plan.status, 403);
  // The file cache keys directories apart from files.
  EXPECT_EQ(Get11("/docs").plan.status, 301);
}

TEST_P(HandlerTest, AutoindexListsEscapedNames) {
  autoindex_ = true;
  Reset();
  Result r = Get11("/list/");
  EXPECT_EQ(r.plan.status, 200);
  const std::string body = r.Body();
  EXPECT_THAT(body, HasSubstr("Index of /list/"));
  EXPECT_THAT(body, HasSubstr("href=\"./a%20b.txt\">a b.txt</a>"));
  EXPECT_THAT(body, HasSubstr("href=\"./b%3C%26%3E.txt\">b&lt;&amp;&gt;.txt</a>"));
  EXPECT_THAT(body, HasSubstr("href=\"./sub/\">sub/</a>"));
  EXPECT_THAT(body, Not(HasSubstr("hidden")));
  EXPECT_LT(body.find("sub/"), body.find("a b.txt"));  // directories first
  EXPECT_EQ(AnyBody(Get11("/docs/")), "docs index");   // an index still wins
}

TEST_P(HandlerTest, ConnectionHandling) {
  Result close = Get("GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(close.plan.keep_alive);
  EXPECT_THAT(close.out, HasSubstr("\r\nConnection: close\r\n\r\n"));
  Result http10 = Get("GET /hello.txt HTTP/1.0\r\n\r\n");
  EXPECT_FALSE(http10.plan.keep_alive);
  EXPECT_THAT(http10.out, HasSubstr("Connection: close"));
  Result ka10 = Get("GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_TRUE(ka10.plan.keep_alive);
  EXPECT_THAT(ka10.out, HasSubstr("\r\nConnection: keep-alive\r\n\r\n"));
  // A server that is draining closes even persistent connections.
  RequestParser p;
  ASSERT_EQ(p.Parse("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"),
            RequestParser::Status::kComplete);
  Result draining;
  handler_->Handle(p, kNow, /*allow_keep_alive=*/false, &draining.out, &draining.plan);
  EXPECT_FALSE(draining.plan.keep_alive);
  EXPECT_THAT(draining.out, HasSubstr("Connection: close"));
}

TEST_P(HandlerTest, ParseErrorsCloseTheConnection) {
  Result r = Get("GET /hello.txt HTTP/1.1\r\n\r\n");  // no Host
  EXPECT_EQ(r.plan.status, 400);
  EXPECT_FALSE(r.plan.keep_alive);
  EXPECT_THAT(r.out, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(r.out, HasSubstr("Connection: close"));
  EXPECT_EQ(Get("GET /x HTTP/2.0\r\n\r\n").plan.status, 505);
  EXPECT_EQ(Get("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n").plan.status, 414);
  EXPECT_EQ(
      Get("GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(17000, 'a') + "\r\n\r\n").plan.status,
      431);
  // The error body's Content-Length is exact.
  const std::string body = r.Body();
  EXPECT_THAT(r.out, HasSubstr("Content-Length: " + std::to_string(body.size()) + "\r\n"));
}

TEST_P(HandlerTest, SpecialPages) {
  Result m = Get11("/_kev/metrics?x");
  EXPECT_EQ(m.plan.special, Special::kMetrics);
  EXPECT_EQ(m.out, "");
  handler_->AppendPage("text/plain; version=0.0.4", "a 1\n", kNow, &m.out, &m.plan);
  EXPECT_EQ(m.plan.status, 200);
  EXPECT_THAT(m.out, HasSubstr("Content-Length: 4\r\n"));
  EXPECT_THAT(m.out, HasSubstr("Cache-Control: no-store"));
  EXPECT_EQ(m.Body(), "a 1\n");
  EXPECT_EQ(Get11("/_kev/status").plan.special, Special::kStatus);
  // Switched off, they are ordinary (missing) paths.
  handler_ = std::make_unique<Handler>(
      HandlerOptions{.root_fd = root_fd_, .metrics = false, .status_page = false}, nullptr);
  EXPECT_EQ(Get11("/_kev/metrics").plan.status, 404);
  EXPECT_EQ(Get11("/_kev/status").plan.status, 404);
}

TEST_P(HandlerTest, DateFollowsTheClock) {
  Result a = Get("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", kNow);
  Result b = Get("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", kNow + 1);
  EXPECT_THAT(a.out, HasSubstr("Date: Sun, 15 Jun 2025 15:06:40 GMT"));
  EXPECT_THAT(b.out, HasSubstr("Date: Sun, 15 Jun 2025 15:06:41 GMT"));
}

TEST_P(HandlerTest, ChangedFilesAreServedFresh) {
  EXPECT_EQ(AnyBody(Get11("/page.html")), "<p>hi</p>");
  WriteFile(root_ + "/page.html", "<p>changed</p>");  // new size
  EXPECT_EQ(AnyBody(Get11("/page.html")), "<p>changed</p>");
  // Atomic replacement (new inode, same size).
  WriteFile(root_ + "/page.new", "<p>CHANGED</p>");
  ASSERT_EQ(rename((root_ + "/page.new").c_str(), (root_ + "/page.html").c_str()), 0);
  EXPECT_EQ(AnyBody(Get11("/page.html")), "<p>CHANGED</p>");
  ASSERT_EQ(unlink((root_ + "/page.html").c_str()), 0);
  EXPECT_EQ(Get11("/page.html").plan.status, 404);
  // A file replaced by a symlink out of the root is not served from the cache.
  EXPECT_EQ(AnyBody(Get11("/hello.txt")), "Hello, world!\n");
  ASSERT_EQ(unlink((root_ + "/hello.txt").c_str()), 0);
  ASSERT_EQ(symlink("../secret.txt", (root_ + "/hello.txt").c_str()), 0);
  EXPECT_EQ(Get11("/hello.txt").plan.status, 403);
  // And an index that disappears is noticed.
  EXPECT_EQ(Get11("/docs/").plan.status, 200);
  ASSERT_EQ(unlink((root_ + "/docs/index.html").c_str()), 0);
  EXPECT_EQ(Get11("/docs/").plan.status, 403);
}

INSTANTIATE_TEST_SUITE_P(CacheOnOff, HandlerTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Cached" : "Uncached"; });

TEST(UrlAndHtmlTest, Escaping) {
  std::string s;
  AppendUrlPath("a b/%?#é", &s);
  EXPECT_EQ(s, "a%20b/%25%3F%23%C3%A9");
  s.clear();
  AppendHtmlEscaped("<a href='x'>&\"", &s);
  EXPECT_EQ(s, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;");
}

}  // namespace
}  // namespace kev::httpd
