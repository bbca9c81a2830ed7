// Keeps the benchmark peers honest: starts raw_epoll_http and raw_epoll_echo on ephemeral ports
// and talks to them over raw sockets (single, keep-alive, pipelined, split, large, backpressured),
// and runs echo_load briefly against raw_epoll_echo. No wrk or nginx needed.
//
// The binaries come as arguments (see BUILD): raw_epoll_http raw_epoll_echo echo_load.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/perf/epoll_peer.h"

extern char** environ;

namespace kev::perf {
namespace {

std::string g_http_bin, g_echo_bin, g_load_bin;

constexpr char kHello[] = "Hello, world!\n";

// A child process with its stdout on a pipe. Stop() sends SIGTERM and returns the exit status.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) Die("pipe2");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out_ = fds[0];
    if (rc != 0) {
      errno = rc;
      Die("posix_spawn");
    }
  }
  ~Child() {
    if (pid_ > 0) Stop();
    close(out_);
  }

  // Reads stdout until EOF or 10 s pass; returns all of it.
  std::string ReadAll() {
    std::string text;
    char buf[4096];
    pollfd p{out_, POLLIN, 0};
    while (poll(&p, 1, 10000) > 0) {
      const ssize_t n = read(out_, buf, sizeof(buf));
      if (n <= 0) break;
      text.append(buf, n);
    }
    return text;
  }

  // Reads the first line of stdout (10 s at most).
  std::string ReadLine() {
    std::string line;
    char c;
    pollfd p{out_, POLLIN, 0};
    while (poll(&p, 1, 10000) > 0 && read(out_, &c, 1) == 1 && c != '\n') line += c;
    return line;
  }

  // Waits for the child to exit on its own; returns its wait status.
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  int Stop() {
    kill(pid_, SIGTERM);
    return Wait();
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

// A started peer server: parses "listening on PORT".
class Peer {
 public:
  explicit Peer(std::vector<std::string> argv) : child_(std::move(argv)) {
    const std::string line = child_.ReadLine();
    EXPECT_EQ(line.rfind("listening on ", 0), 0u) << line;
    port_ = static_cast<uint16_t>(std::atoi(line.c_str() + 13));
  }
  ~Peer() {
    const int status = child_.Stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  uint16_t port() const { return port_; }

 private:
  Child child_;
  uint16_t port_ = 0;
};

// A blocking client socket with 5 s timeouts, so a broken server fails the test, not hangs it.
int Connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  SetNoDelay(fd);
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << std::strerror(errno);
    off += n;
  }
}

std::string RecvExactly(int fd, size_t size) {
  std::string data(size, '\0');
  size_t off = 0;
  while (off < size) {
    const ssize_t n = recv(fd, data.data() + off, size - off, 0);
    if (n <= 0) break;
    off += n;
  }
  data.resize(off);
  return data;
}

// True if fd has bytes to read (or EOF) within timeout_ms.
bool ReadableWithin(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) > 0;
}

std::string ExpectedResponse(size_t body_bytes) {
  std::string body;
  while (body.size() < body_bytes) body += kHello;
  body.resize(body_bytes);
  return "HTTP/1.1 200 OK\r\nServer: raw_epoll_http\r\nContent-Type: text/plain\r\n"
         "Content-Length: " +
         std::to_string(body_bytes) + "\r\n\r\n" + body;
}

const std::string kGet = "GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

TEST(RawEpollHttp, AnswersOneRequestWithFixedResponse) {
  Peer http({g_http_bin, "--port=0"});
  const int fd = Connect(http.port());
  SendAll(fd, kGet);
  const std::string want = ExpectedResponse(14);
  EXPECT_EQ(RecvExactly(fd, want.size()), want);
  EXPECT_NE(want.find("\r\n\r\nHello, world!\n"), std::string::npos);
  close(fd);
}

TEST(RawEpollHttp, KeepsConnectionAliveAcrossRequests) {
  Peer http({g_http_bin, "--port", "0"});
  const int fd = Connect(http.port());
  const std::string want = ExpectedResponse(14);
  for (int i = 0; i < 5; ++i) {
    SendAll(fd, kGet);
    ASSERT_EQ(RecvExactly(fd, want.size()), want) << "request " << i;
  }
  close(fd);
}

TEST(RawEpollHttp, AnswersEachPipelinedRequestExactlyOnce) {
  Peer http({g_http_bin, "--port=0"});
  const int fd = Connect(http.port());
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += kGet;
  SendAll(fd, batch);
  std::string want;
  for (int i = 0; i < 100; ++i) want += ExpectedResponse(14);
  EXPECT_EQ(RecvExactly(fd, want.size()), want);
  EXPECT_FALSE(ReadableWithin(fd, 100)) << "more responses than requests";
  close(fd);
}

TEST(RawEpollHttp, CountsTerminatorsSplitAcrossWrites) {
  Peer http({g_http_bin, "--port=0"});
  const int fd = Connect(http.port());
  const std::string want = ExpectedResponse(14);
  // Split inside the terminator at every position; the pause makes separate reads likely
  // (the assertions hold whether or not TCP coalesces the pieces).
  for (size_t cut = kGet.size() - 4; cut < kGet.size(); ++cut) {
    SendAll(fd, kGet.substr(0, cut));
    EXPECT_FALSE(ReadableWithin(fd, 30)) << "answered an incomplete request, cut " << cut;
    SendAll(fd, kGet.substr(cut));
    ASSERT_EQ(RecvExactly(fd, want.size()), want) << "cut " << cut;
  }
  // "\r\n\r" + "\r\n\r\n": a stray '\r' must not hide the terminator that follows.
  SendAll(fd, "GET / HTTP/1.1\r\nX: y\r\n\r\r\n\r\n");
  EXPECT_EQ(RecvExactly(fd, want.size()), want);
  close(fd);
}

TEST(RawEpollHttp, BodyBytesFlagSizesTheBody) {
  Peer http({g_http_bin, "--port=0", "--body-bytes=100000"});
  const int fd = Connect(http.port());
  SendAll(fd, kGet + kGet);
  const std::string want = ExpectedResponse(100000);
  EXPECT_EQ(RecvExactly(fd, want.size()), want);
  EXPECT_EQ(RecvExactly(fd, want.size()), want);
  close(fd);
}

TEST(RawEpollHttp, ServesManyConnectionsOnSeveralShards) {
  Peer http({g_http_bin, "--port=0", "--threads=2"});
  std::vector<int> fds;
  for (int i = 0; i < 40; ++i) fds.push_back(Connect(http.port()));
  for (int fd : fds) SendAll(fd, kGet);
  const std::string want = ExpectedResponse(14);
  for (int fd : fds) {
    EXPECT_EQ(RecvExactly(fd, want.size()), want);
    close(fd);
  }
}

// Writes `out` while reading everything that comes back, writing first (so the peer's
// backpressure path runs); returns what was read once `expect` bytes arrived or 10 s passed.
std::string Exchange(int fd, const std::string& out, size_t expect) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string in;
  std::vector<char> buf(1 << 16);
  size_t off = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (in.size() < expect && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, static_cast<short>(POLLIN | (off < out.size() ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    if (p.revents & POLLOUT) {
      const ssize_t n = send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n > 0) off += n;
      continue;  // Keep writing until the socket pushes back.
    }
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n == 0) break;
    if (n > 0) in.append(buf.data(), n);
  }
  return in;
}

TEST(RawEpollHttp, SurvivesDeepPipelineFromSlowReader) {
  Peer http({g_http_bin, "--port=0"});
  const int fd = Connect(http.port());
  constexpr int kRequests = 150000;  // ~14 MB of responses: beyond the 8 MiB owed cap.
  std::string out;
  out.reserve(kRequests * kGet.size());
  for (int i = 0; i < kRequests; ++i) out += kGet;
  const size_t one = ExpectedResponse(14).size();
  const std::string in = Exchange(fd, out, kRequests * one);
  ASSERT_EQ(in.size(), kRequests * one);
  EXPECT_EQ(in.substr(in.size() - one), ExpectedResponse(14));
  close(fd);
}

TEST(RawEpollEcho, EchoesMessagesOnSeveralConnections) {
  Peer echo({g_echo_bin, "--port=0", "--threads=2"});
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) fds.push_back(Connect(echo.port()));
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < fds.size(); ++i) {
      const std::string msg = "ping " + std::to_string(i) + " " + std::to_string(round);
      SendAll(fds[i], msg);
      EXPECT_EQ(RecvExactly(fds[i], msg.size()), msg);
    }
  }
  for (int fd : fds) close(fd);
}

TEST(RawEpollEcho, EchoesLargeStreamInOrderUnderBackpressure) {
  Peer echo({g_echo_bin, "--port=0"});
  const int fd = Connect(echo.port());
  std::string out(8 << 20, '\0');
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(i * 131 + (i >> 12));
  const std::string in = Exchange(fd, out, out.size());
  ASSERT_EQ(in.size(), out.size());
  EXPECT_TRUE(in == out) << "echo differs from what was sent";
  close(fd);
}

class EchoLoadEngine : public testing::TestWithParam<std::string> {};

TEST_P(EchoLoadEngine, ReportsVerifiedMessagesAsJson) {
  Peer echo({g_echo_bin, "--port=0"});
  Child load({g_load_bin, "--port=" + std::to_string(echo.port()), "--connections=4",
              "--message-bytes=100", "--seconds=0.3", "--threads=2", "--verify",
              "--engine=" + GetParam()});
  const std::string json = load.ReadAll();
  const int status = load.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << json;
  EXPECT_EQ(json.rfind("{\"tool\":\"echo_load\",\"engine\":\"" + GetParam() +
                           "\",\"connections\":4,\"message_bytes\":100,",
                       0),
            0u)
      << json;
  EXPECT_NE(json.find("\"errors\":0}"), std::string::npos) << json;
  const size_t at = json.find("\"messages\":");
  ASSERT_NE(at, std::string::npos) << json;
  EXPECT_GT(std::atoll(json.c_str() + at + 11), 0) << json;
  EXPECT_NE(json.find("\"p99_us\":"), std::string::npos) << json;
}

// Messages bigger than one receive buffer (64 KiB) arrive in several reads and are still
// verified byte for byte.
TEST_P(EchoLoadEngine, VerifiesMessagesLargerThanOneRead) {
  Peer echo({g_echo_bin, "--port=0"});
  Child load({g_load_bin, "--port=" + std::to_string(echo.port()), "--connections=2",
              "--message-bytes=300000", "--seconds=0.3", "--verify", "--engine=" + GetParam()});
  const std::string json = load.ReadAll();
  const int status = load.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << json;
  EXPECT_NE(json.find("\"errors\":0}"), std::string::npos) << json;
}

INSTANTIATE_TEST_SUITE_P(Engines, EchoLoadEngine, testing::Values("epoll", "io_uring"));

TEST(EchoLoad, RejectsUnknownEngine) {
  Child load({g_load_bin, "--port=1", "--engine=kqueue"});
  const std::string out = load.ReadAll();
  const int status = load.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status << out;
}

TEST(EchoLoad, FailsWhenNothingListens) {
  uint16_t port;
  {
    const int fd = Listen(0);  // Reserve, learn and release a port that then has no listener.
    port = LocalPort(fd);
    close(fd);
  }
  Child load({g_load_bin, "--port=" + std::to_string(port), "--seconds=0.1"});
  load.ReadAll();
  const int status = load.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
}

}  // namespace
}  // namespace kev::perf

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s RAW_EPOLL_HTTP RAW_EPOLL_ECHO ECHO_LOAD\n", argv[0]);
    return 2;
  }
  kev::perf::g_http_bin = argv[1];
  kev::perf::g_echo_bin = argv[2];
  kev::perf::g_load_bin = argv[3];
  signal(SIGPIPE, SIG_IGN);
  return RUN_ALL_TESTS();
}
