// Runs the real //apps/echo:echo_server (path in argv[1], backend flag in argv[2]) on a loopback
// port it picks itself, talks to it over plain sockets from 64 client threads, checks every
// echoed byte, then stops it with SIGTERM and expects exit status 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace {

std::string g_binary;
std::string g_backend_flag;

constexpr int kIoTimeoutMs = 20000;  // a hang fails the test instead of blocking it forever

// The server process: started with --port=0, its stdout read until the "listening" line.
class Server {
 public:
  explicit Server(const std::vector<std::string>& extra_args) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      std::vector<std::string> args = {g_binary, "--port=0", g_backend_flag};
      args.insert(args.end(), extra_args.begin(), extra_args.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string text;
    char buf[256];
    while (text.find('\n') == std::string::npos) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, kIoTimeoutMs) <= 0) break;
      ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      text.append(buf, n);
    }
    close(out[0]);
    line_ = text.substr(0, text.find('\n'));
    const std::string prefix = "kev echo listening on 127.0.0.1:";
    if (line_.rfind(prefix, 0) == 0) port_ = std::stoi(line_.substr(prefix.size()));
  }

  ~Server() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  int port() const { return port_; }
  const std::string& line() const { return line_; }

  // Sends SIGTERM and returns the raw wait status (-1 if it did not exit within the timeout).
  int Terminate() {
    kill(pid_, SIGTERM);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int port_ = 0;
  std::string line_;
};

int ConnectTo(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// Sends `out` and reads back exactly as many bytes, both at once (a large message would
// deadlock a client that writes everything before reading). Then, if `half_close`, shuts down
// its output and expects end of stream right after the echo. Returns what came back, or an
// error description prefixed with "ERROR".
std::string Exchange(int fd, const std::string& out, bool half_close) {
  std::string in;
  size_t sent = 0;
  bool shut = false;
  char buf[65536];
  while (true) {
    if (half_close && !shut && sent == out.size()) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    if (in.size() == out.size() && !half_close) return in;
    pollfd p{fd, static_cast<short>(POLLIN | (sent < out.size() ? POLLOUT : 0)), 0};
    if (poll(&p, 1, kIoTimeoutMs) <= 0) return "ERROR timeout";
    if (sent < out.size() && (p.revents & POLLOUT)) {
      ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) return "ERROR send " + std::string(strerror(errno));
      if (n > 0) sent += n;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n < 0 && errno != EAGAIN) return "ERROR recv " + std::string(strerror(errno));
      if (n == 0) {
        if (half_close && shut && in.size() == out.size()) return in;
        return "ERROR early end of stream after " + std::to_string(in.size()) + " bytes";
      }
      if (n > 0) in.append(buf, n);
      if (in.size() > out.size()) return "ERROR more bytes than sent";
    }
  }
}

// Message `i` of client `c`: distinct bytes per client and message, so a cross-connection or
// reordering bug shows up as a mismatch.
std::string Message(int c, int i, size_t size) {
  std::string m(size, '\0');
  uint32_t x = static_cast<uint32_t>(c) * 2654435761u + static_cast<uint32_t>(i) * 40503u + 1;
  for (char& ch : m) {
    x = x * 1664525u + 1013904223u;
    ch = static_cast<char>(x >> 24);
  }
  return m;
}

TEST(EchoServerTest, SixtyFourClientsEchoByteForByteThenSigtermExitsZero) {
  Server server({"--smp=2"});
  ASSERT_GT(server.port(), 0) << "no listening line; got: " << server.line();

  constexpr int kClients = 64;
  constexpr int kMessages = 200;
  std::atomic<int> failures{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      int fd = ConnectTo(server.port());
      if (fd < 0) {
        errors[c] = "connect failed";
        ++failures;
        return;
      }
      for (int i = 0; i < kMessages && errors[c].empty(); ++i) {
        // Mostly the benchmark's 64 bytes; some odd sizes; one client sends 1 MiB now and then
        // (more than the server's input buffer and output high-water mark: backpressure).
        size_t size = i % 10 == 3 ? 1 + (i * 37 + c) % 3000 : 64;
        if (c == 7 && i % 50 == 25) size = 1 << 20;
        std::string out = Message(c, i, size);
        std::string in = Exchange(fd, out, /*half_close=*/false);
        if (in != out)
          errors[c] = in.rfind("ERROR", 0) == 0 ? in : "mismatch at message " + std::to_string(i);
      }
      if (errors[c].empty()) {
        // Half-close: the last echo arrives, then end of stream.
        std::string out = Message(c, -1, 1000);
        std::string in = Exchange(fd, out, /*half_close=*/true);
        if (in != out) errors[c] = "half-close: " + (in.rfind("ERROR", 0) == 0 ? in : "mismatch");
      }
      if (!errors[c].empty()) ++failures;
      close(fd);
    });
  }
  for (std::thread& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(errors[c], "") << "client " << c;

  // Connections still open at SIGTERM (idle, and one with a message in flight) are closed by
  // the server, which then exits 0.
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(ConnectTo(server.port()));
  std::string tail = Message(99, 0, 64);
  ASSERT_EQ(Exchange(idle[0], tail, false), tail);
  int status = server.Terminate();
  ASSERT_NE(status, -1) << "no exit within " << kIoTimeoutMs << " ms of SIGTERM";
  EXPECT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  for (int fd : idle) {
    char c;
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, kIoTimeoutMs), 1);
    EXPECT_LE(recv(fd, &c, 1, 0), 0) << "the server closes open connections";
    close(fd);
  }
  EXPECT_EQ(failures.load(), 0);
}

TEST(EchoServerTest, SigtermWithNoClientsExitsZero) {
  Server server({"--smp=1"});
  ASSERT_GT(server.port(), 0) << "no listening line; got: " << server.line();
  int status = server.Terminate();
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc != 3) {
    fprintf(stderr, "usage: %s ECHO_SERVER_BINARY --backend=NAME\n", argv[0]);
    return 2;
  }
  g_binary = argv[1];
  g_backend_flag = argv[2];
  return RUN_ALL_TESTS();
}
