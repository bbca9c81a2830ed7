#include "apps/httpd/path.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace kev::httpd {
namespace {

// Normalises `target`; returns the path, or "<400>" on rejection.
std::string Norm(std::string_view target, bool is_options = false) {
  std::string out = "junk from a previous request";
  TargetPath t = NormalizeTarget(target, is_options, &out);
  if (t.status != 0) {
    EXPECT_EQ(t.status, 400) << target;
    EXPECT_STRNE(t.reason, "") << target;
    return "<" + std::to_string(t.status) + ">";
  }
  EXPECT_LE(out.size(), target.size());
  return out;
}

TEST(NormalizeTargetTest, OriginForm) {
  EXPECT_EQ(Norm("/"), "");
  EXPECT_EQ(Norm("/index.html"), "index.html");
  EXPECT_EQ(Norm("/a/b/c.txt"), "a/b/c.txt");
  EXPECT_EQ(Norm("/a%20b/%41%62"), "a b/Ab");
  EXPECT_EQ(Norm("/caf%C3%A9"), "caf\xc3\xa9");
  EXPECT_EQ(Norm("/a+b"), "a+b");  // '+' is not a space in paths
  EXPECT_EQ(Norm("/~user/.well-known/x"), "~user/.well-known/x");
  EXPECT_EQ(Norm("/..."), "...");
  EXPECT_EQ(Norm("/..a/a.."), "..a/a..");
}

TEST(NormalizeTargetTest, QueryAndFragment) {
  std::string out;
  TargetPath t = NormalizeTarget("/a/b?x=1&y=%2F#frag", false, &out);
  ASSERT_EQ(t.status, 0);
  EXPECT_EQ(out, "a/b");
  EXPECT_EQ(t.query, "x=1&y=%2F");
  EXPECT_EQ(Norm("/a#b?c"), "a");
  EXPECT_EQ(Norm("/a?../../etc/passwd"), "a");
  EXPECT_EQ(Norm("/a?%zz"), "a");  // the query is not decoded here
  t = NormalizeTarget("/p", false, &out);
  EXPECT_EQ(t.query, "");
}

TEST(NormalizeTargetTest, DotSegmentsAndSlashes) {
  EXPECT_EQ(Norm("/a/./b"), "a/b");
  EXPECT_EQ(Norm("/a//b///c"), "a/b/c");
  EXPECT_EQ(Norm("//a"), "a");
  EXPECT_EQ(Norm("/a/b/../c"), "a/c");
  EXPECT_EQ(Norm("/a/b/../../c"), "c");
  EXPECT_EQ(Norm("/a/.."), "");
  EXPECT_EQ(Norm("/a/%2e%2e/b"), "b");
  EXPECT_EQ(Norm("/a/%2E%2e/b"), "b");
  EXPECT_EQ(Norm("/a/.%2e/b"), "b");
  EXPECT_EQ(Norm("/a/%2e/b"), "a/b");
}

TEST(NormalizeTargetTest, TraversalTricksAreRejected) {
  for (const char* t :
       {"/..", "/../etc/passwd", "/a/../../etc/passwd", "/%2e%2e/etc/passwd", "/%2E%2e/", "/.%2E/x",
        "/%2e./x", "/a/%2e%2e/%2e%2e/x", "/./../x", "//../x", "/a/b/../../../x", "http://h/../x"}) {
    EXPECT_EQ(Norm(t), "<400>") << t;
  }
}

TEST(NormalizeTargetTest, EncodedSeparatorsAndBadBytesAreRejected) {
  for (const char* t :
       {"/a%2fb", "/a%2Fb", "/..%2f..%2fetc%2fpasswd", "/..%2F", "/%2f", "/a\\b", "/..\\..\\etc",
        "/a%5cb", "/a%5C..%5Cb", "/a%00", "/a%00.html", "/%0a", "/a%0d%0aSet-Cookie:x", "/%7f",
        "/%1f", "/a b", "/a\tb", "/caf\xc3\xa9", "/a\x7f"}) {
    EXPECT_EQ(Norm(t), "<400>") << t;
  }
  EXPECT_EQ(Norm(std::string_view("/a\0b", 4)), "<400>");
}

TEST(NormalizeTargetTest, BadEscapesAreRejected) {
  for (const char* t : {"/%", "/a%", "/a%2", "/%zz", "/%g0", "/%0g", "/%%41", "/% 41", "/%-1"}) {
    EXPECT_EQ(Norm(t), "<400>") << t;
  }
}

TEST(NormalizeTargetTest, AbsoluteForm) {
  EXPECT_EQ(Norm("http://example.com/a/b"), "a/b");
  EXPECT_EQ(Norm("HTTPS://example.com:8443/a/../b"), "b");
  EXPECT_EQ(Norm("http://example.com"), "");
  EXPECT_EQ(Norm("http://example.com?q"), "");
  EXPECT_EQ(Norm("http://[::1]:80/x"), "x");
  EXPECT_EQ(Norm("http:///x"), "<400>");       // no host
  EXPECT_EQ(Norm("http://u:p@h/x"), "<400>");  // userinfo
  EXPECT_EQ(Norm("ftp://h/x"), "<400>");
  EXPECT_EQ(Norm("http:/x"), "<400>");
  EXPECT_EQ(Norm("http://h/a%2fb"), "<400>");
}

TEST(NormalizeTargetTest, OtherFormsAreRejected) {
  EXPECT_EQ(Norm(""), "<400>");
  EXPECT_EQ(Norm("example.com:443"), "<400>");  // authority-form (CONNECT)
  EXPECT_EQ(Norm("index.html"), "<400>");
  EXPECT_EQ(Norm("../x"), "<400>");
  EXPECT_EQ(Norm("\\x"), "<400>");
  EXPECT_EQ(Norm("*"), "<400>");
  EXPECT_EQ(Norm("*x", true), "<400>");
  EXPECT_EQ(Norm("/*"), "*");  // just a file named "*"
}

TEST(NormalizeTargetTest, AsteriskOnlyForOptions) {
  std::string out;
  TargetPath t = NormalizeTarget("*", true, &out);
  EXPECT_EQ(t.status, 0);
  EXPECT_TRUE(t.asterisk);
  EXPECT_EQ(out, "");
  t = NormalizeTarget("/", true, &out);
  EXPECT_FALSE(t.asterisk);
}

TEST(NormalizeTargetTest, TrailingSlash) {
  auto slash = [](std::string_view target) {
    std::string out;
    TargetPath t = NormalizeTarget(target, false, &out);
    EXPECT_EQ(t.status, 0) << target;
    return t.trailing_slash;
  };
  EXPECT_TRUE(slash("/"));
  EXPECT_TRUE(slash("/a/"));
  EXPECT_TRUE(slash("/a//"));
  EXPECT_TRUE(slash("/a/."));
  EXPECT_TRUE(slash("/a/b/.."));
  EXPECT_TRUE(slash("/a/?q"));
  EXPECT_TRUE(slash("http://h"));
  EXPECT_FALSE(slash("/a"));
  EXPECT_FALSE(slash("/a/b?q=/"));
}

TEST(StatusForOpenErrorTest, Mapping) {
  EXPECT_EQ(StatusForOpenError(ENOENT), 404);
  EXPECT_EQ(StatusForOpenError(ENOTDIR), 404);
  EXPECT_EQ(StatusForOpenError(EXDEV), 403);
  EXPECT_EQ(StatusForOpenError(ELOOP), 403);
  EXPECT_EQ(StatusForOpenError(EACCES), 403);
  EXPECT_EQ(StatusForOpenError(ENAMETOOLONG), 414);
  EXPECT_EQ(StatusForOpenError(EMFILE), 503);
  EXPECT_EQ(StatusForOpenError(EIO), 500);
}

// A real tree:
//   <tmp>/outside.txt                      "outside"
//   <tmp>/root/index.html                  "index"
//   <tmp>/root/dir/file.txt                "file"
//   <tmp>/root/dir/sub/deep.txt            "deep"
//   root/link_in        -> dir/file.txt          (inside: followed)
//   root/link_dir       -> dir                   (inside: followed)
//   root/chain          -> link_in               (inside, two hops)
//   root/dir/up_inside  -> ../index.html         (climbs, stays inside)
//   root/dir/sub/up2    -> ../../dir/file.txt
//   root/link_out       -> ../outside.txt        (escapes)
//   root/dir/deep_out   -> ../../outside.txt     (escapes from a subdirectory)
//   root/link_dir_out   -> ..                    (the root's parent)
//   root/link_etc       -> /etc/passwd           (absolute)
//   root/link_etc_dir   -> /etc                  (absolute directory)
//   root/link_abs_in    -> <tmp>/root/index.html (absolute, even though inside)
//   root/loop1 -> loop2, root/loop2 -> loop1
//   root/dangling       -> nothing
//   root/proc_self      -> /proc/self/root       (a magic-link chain, absolute)
class OpenBeneathTest : public ::testing::TestWithParam<Resolver> {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string base = std::string(tmp ? tmp : "/tmp") + "/kev_path_test_XXXXXX";
    ASSERT_NE(mkdtemp(base.data()), nullptr);
    top_ = base;
    namespace fs = std::filesystem;
    const fs::path root = top_ / "root";
    fs::create_directories(root / "dir" / "sub");
    Write(top_ / "outside.txt", "outside");
    Write(root / "index.html", "index");
    Write(root / "dir" / "file.txt", "file");
    Write(root / "dir" / "sub" / "deep.txt", "deep");
    fs::create_symlink("dir/file.txt", root / "link_in");
    fs::create_symlink("dir", root / "link_dir");
    fs::create_symlink("link_in", root / "chain");
    fs::create_symlink("../index.html", root / "dir" / "up_inside");
    fs::create_symlink("../../dir/file.txt", root / "dir" / "sub" / "up2");
    fs::create_symlink("../outside.txt", root / "link_out");
    fs::create_symlink("../../outside.txt", root / "dir" / "deep_out");
    fs::create_symlink("..", root / "link_dir_out");
    fs::create_symlink("/etc/passwd", root / "link_etc");
    fs::create_symlink("/etc", root / "link_etc_dir");
    fs::create_symlink(root / "index.html", root / "link_abs_in");
    fs::create_symlink("loop2", root / "loop1");
    fs::create_symlink("loop1", root / "loop2");
    fs::create_symlink("nothing", root / "dangling");
    fs::create_symlink("/proc/self/root", root / "proc_self");
    root_fd_ = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
  }
  void TearDown() override {
    if (root_fd_ >= 0) close(root_fd_);
    std::error_code ec;
    std::filesystem::remove_all(top_, ec);
  }
  static void Write(const std::filesystem::path& p, const std::string& s) { std::ofstream(p) << s; }

  // Opens `rel` and returns the file's contents, "<dir>" for a directory, or "-errno name".
  std::string Open(std::string_view rel) {
    const int fd = OpenBeneath(root_fd_, rel, O_RDONLY, GetParam());
    if (fd < 0) return std::string("-") + strerrorname_np(-fd);
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct stat st;
    EXPECT_EQ(fstat(fd, &st), 0);
    std::string out;
    if (S_ISDIR(st.st_mode)) {
      out = "<dir>";
    } else {
      char buf[256];
      const ssize_t n = read(fd, buf, sizeof(buf));
      EXPECT_GE(n, 0);
      out.assign(buf, static_cast<size_t>(n > 0 ? n : 0));
    }
    close(fd);
    return out;
  }

  std::filesystem::path top_;
  int root_fd_ = -1;
};

TEST_P(OpenBeneathTest, PlainFilesAndDirectories) {
  EXPECT_EQ(Open("index.html"), "index");
  EXPECT_EQ(Open("dir/file.txt"), "file");
  EXPECT_EQ(Open("dir/sub/deep.txt"), "deep");
  EXPECT_EQ(Open(""), "<dir>");
  EXPECT_EQ(Open("dir"), "<dir>");
  EXPECT_EQ(Open("missing"), "-ENOENT");
  EXPECT_EQ(Open("dir/missing/x"), "-ENOENT");
  EXPECT_EQ(Open("index.html/x"), "-ENOTDIR");
  EXPECT_EQ(Open(std::string(300, 'a')), "-ENAMETOOLONG");
}

TEST_P(OpenBeneathTest, SymlinksInsideTheRootAreFollowed) {
  EXPECT_EQ(Open("link_in"), "file");
  EXPECT_EQ(Open("link_dir/file.txt"), "file");
  EXPECT_EQ(Open("link_dir/sub/deep.txt"), "deep");
  EXPECT_EQ(Open("link_dir"), "<dir>");
  EXPECT_EQ(Open("chain"), "file");
  EXPECT_EQ(Open("dir/up_inside"), "index");
  EXPECT_EQ(Open("link_dir/up_inside"), "index");
  EXPECT_EQ(Open("dir/sub/up2"), "file");
}

TEST_P(OpenBeneathTest, SymlinksLeavingTheRootAreRefused) {
  EXPECT_EQ(Open("link_out"), "-EXDEV");
  EXPECT_EQ(Open("dir/deep_out"), "-EXDEV");
  EXPECT_EQ(Open("link_dir/deep_out"), "-EXDEV");
  EXPECT_EQ(Open("link_dir_out"), "-EXDEV");
  EXPECT_EQ(Open("link_dir_out/outside.txt"), "-EXDEV");
  EXPECT_EQ(Open("link_etc"), "-EXDEV");
  EXPECT_EQ(Open("link_etc_dir/passwd"), "-EXDEV");
  EXPECT_EQ(Open("link_abs_in"), "-EXDEV");
  EXPECT_EQ(Open("proc_self/etc/passwd"), "-EXDEV");
  EXPECT_EQ(StatusForOpenError(EXDEV), 403);
}

TEST_P(OpenBeneathTest, LoopsAndDanglingLinks) {
  EXPECT_EQ(Open("loop1"), "-ELOOP");
  EXPECT_EQ(Open("loop1/x"), "-ELOOP");
  EXPECT_EQ(Open("dangling"), "-ENOENT");
}

TEST_P(OpenBeneathTest, UnnormalisedPathsAreStillConfined) {
  // OpenBeneath does not trust its input: raw ".." and absolute paths cannot escape either.
  EXPECT_EQ(Open("../outside.txt"), "-EXDEV");
  EXPECT_EQ(Open("dir/../../outside.txt"), "-EXDEV");
  EXPECT_EQ(Open("/etc/passwd"), "-EXDEV");
  EXPECT_EQ(Open("dir/../index.html"), "index");
  EXPECT_EQ(Open("dir//./file.txt"), "file");
  EXPECT_EQ(Open(std::string_view("index.html\0x", 12)), "-EINVAL");
}

TEST_P(OpenBeneathTest, RefusesCreation) {
  EXPECT_EQ(OpenBeneath(root_fd_, "new", O_WRONLY | O_CREAT, GetParam()), -EINVAL);
  EXPECT_FALSE(std::filesystem::exists(top_ / "root" / "new"));
}

TEST_P(OpenBeneathTest, NormalisedTargetsEndToEnd) {
  // The full pipeline a server runs: every trick ends in 400 (normaliser) or 403/404 (open).
  auto status = [this](std::string_view target) {
    std::string rel;
    TargetPath t = NormalizeTarget(target, false, &rel);
    if (t.status != 0) return t.status;
    const int fd = OpenBeneath(root_fd_, rel, O_RDONLY, GetParam());
    if (fd < 0) return StatusForOpenError(-fd);
    close(fd);
    return 200;
  };
  EXPECT_EQ(status("/index.html"), 200);
  EXPECT_EQ(status("/link_dir/%66ile.txt"), 200);
  EXPECT_EQ(status("/../outside.txt"), 400);
  EXPECT_EQ(status("/%2e%2e/outside.txt"), 400);
  EXPECT_EQ(status("/..%2foutside.txt"), 400);
  EXPECT_EQ(status("/link_out"), 403);
  EXPECT_EQ(status("/link_etc"), 403);
  EXPECT_EQ(status("/link_etc_dir/passwd"), 403);
  EXPECT_EQ(status("/link_dir_out/outside.txt"), 403);
  EXPECT_EQ(status("http://h/link_dir_out/root/index.html"), 403);
  EXPECT_EQ(status("/nothing-here"), 404);
}

INSTANTIATE_TEST_SUITE_P(Resolvers, OpenBeneathTest,
                         ::testing::Values(Resolver::kAuto, Resolver::kOpenat2, Resolver::kWalk),
                         [](const ::testing::TestParamInfo<Resolver>& info) {
                           switch (info.param) {
                             case Resolver::kAuto:
                               return "Auto";
                             case Resolver::kOpenat2:
                               return "Openat2";
                             case Resolver::kWalk:
                               return "Walk";
                           }
                           return "Unknown";
                         });

}  // namespace
}  // namespace kev::httpd
