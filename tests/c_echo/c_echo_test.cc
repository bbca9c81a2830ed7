// Drives tests/c_echo (a C program on the kevent C API) as a child process on both backends:
// concurrent loopback clients must get back exactly what they sent; "quit" on stdin and SIGTERM
// both stop it cleanly.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace {

const char* g_binary = nullptr;

class EchoServer {
 public:
  explicit EchoServer(const char* backend) {
    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      setenv("KEV_BACKEND", backend, 1);
      execl(g_binary, g_binary, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = fdopen(out[0], "r");
    char line[64] = {};
    if (fgets(line, sizeof(line), stdout_) != nullptr) sscanf(line, "port %d", &port_);
  }
  ~EchoServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdin_ >= 0) close(stdin_);
    if (stdout_ != nullptr) fclose(stdout_);
  }

  int port() const { return port_; }
  void Say(const char* text) { ASSERT_EQ(write(stdin_, text, strlen(text)), ssize_t(strlen(text))); }
  void Signal(int signo) { kill(pid_, signo); }
  // Waits for the exit; returns the status and the rest of stdout.
  int Wait(std::string* rest) {
    char buf[256];
    while (fgets(buf, sizeof(buf), stdout_) != nullptr) *rest += buf;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  FILE* stdout_ = nullptr;
  int port_ = 0;
};

// One client: sends `size` pseudo-random bytes while reading the echo; returns what came back.
std::string RunClient(int port, size_t size, unsigned seed, std::string* sent) {
  std::mt19937 rng(seed);
  sent->resize(size);
  for (char& c : *sent) c = static_cast<char>(rng());
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return "connect failed";
  fcntl(fd, F_SETFL, O_NONBLOCK);
  std::string got;
  size_t off = 0;
  while (got.size() < size) {
    pollfd p{fd, static_cast<short>(POLLIN | (off < size ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 20000) <= 0) break;  // a stuck server fails the comparison below
    if ((p.revents & POLLOUT) != 0 && off < size) {
      // Uneven chunks so the server sees partial reads and writes.
      const size_t chunk = std::min<size_t>(size - off, 1 + rng() % 70000);
      ssize_t n = send(fd, sent->data() + off, chunk, MSG_NOSIGNAL);
      if (n > 0) off += static_cast<size_t>(n);
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[65536];
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n == 0) break;
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return got;
}

class CEchoTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CEchoTest, ConcurrentClientsGetTheirBytesBackAndQuitStopsIt) {
  EchoServer server(GetParam());
  ASSERT_GT(server.port(), 0);
  constexpr int kClients = 8;
  std::vector<std::string> sent(kClients), got(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    // Sizes from 1 byte to ~1 MiB: more than the socket buffers hold, so the server must switch
    // to SEND interest and back.
    const size_t size = i == 0 ? 1 : (size_t{1} << (6 + 2 * (i % 8))) + 13 * i;
    clients.emplace_back([&, i, size] { got[i] = RunClient(server.port(), size, 1234 + i, &sent[i]); });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(got[i].size(), sent[i].size()) << "client " << i;
    EXPECT_TRUE(got[i] == sent[i]) << "client " << i << ": echo differs";
  }
  server.Say("quit\n");
  std::string rest;
  const int status = server.Wait(&rest);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(rest, "bye\n");
}

TEST_P(CEchoTest, SigtermStopsItWithClientsConnected) {
  EchoServer server(GetParam());
  ASSERT_GT(server.port(), 0);
  std::string sent;
  EXPECT_EQ(RunClient(server.port(), 1000, 7, &sent), sent);
  int idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(server.port()));
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  server.Signal(SIGTERM);
  std::string rest;
  const int status = server.Wait(&rest);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(rest, "bye\n");
  close(idle);
}

INSTANTIATE_TEST_SUITE_P(Backends, CEchoTest, ::testing::Values("io_uring", "epoll"));

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <path to c_echo>\n", argv[0]);
    return 2;
  }
  g_binary = argv[1];
  return RUN_ALL_TESTS();
}
