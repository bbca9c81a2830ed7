// A quick micro-benchmark of SendFile on one shard: N files to a client reading them, on each
// backend, each file either as a header Write + SendFile ("write+sf") or as one SendFile with
// the head ("head-sf"). A sanity check of the per-transfer cost, not a test.
// Usage: bazel run //aio:sendfile_bench -- [files] [file_size]
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "aio/sendfile.h"
#include "net/internal/test_loop.h"
#include "net/listener.h"

namespace kev::aio {
namespace {

Future<void> Reader(net::Connection* c, size_t total) {
  size_t got = 0;
  while (got < total) {
    std::span<const std::byte> data = co_await c->ReadSome();
    if (data.empty()) break;
    got += data.size();
    c->Consume(data.size());
  }
}

constexpr std::string_view kHead = "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n";  // 41 B

Future<void> Sender(net::Connection* c, int fd, int files, size_t size, bool with_head) {
  for (int i = 0; i < files; ++i) {
    if (with_head) {
      co_await SendFile(*c, kHead, fd, 0, size);
    } else {
      co_await c->Write(kHead);
      co_await SendFile(*c, fd, 0, size);
    }
  }
}

void Run(PollerBackend backend, const char* name, int files, size_t size, int fd, bool with_head) {
  net::internal::TestLoop loop(backend);
  net::Listener listener = net::Listen(net::SocketAddress::Loopback4(0));
  Future<net::Connection> accepted = listener.Accept();
  net::Connection client = loop.Run(net::Connect(listener.local_address()));
  net::Connection server = loop.Run(std::move(accepted));
  Future<void> reader = Reader(&client, static_cast<size_t>(files) * (size + 41));
  auto start = std::chrono::steady_clock::now();
  loop.Run(Sender(&server, fd, files, size, with_head));
  loop.Run(std::move(reader));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-9s %-8s %d x %zu B in %.3f s: %.1f us per file\n", name,
              with_head ? "head-sf" : "write+sf", files, size, seconds, seconds * 1e6 / files);
}

}  // namespace
}  // namespace kev::aio

int main(int argc, char** argv) {
  int files = argc > 1 ? std::atoi(argv[1]) : 20000;
  size_t size = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 4096;
  char path[] = "/tmp/sendfile_bench_XXXXXX";
  int fd = mkstemp(path);
  std::string data(size, 'x');
  if (fd < 0 || write(fd, data.data(), size) != static_cast<ssize_t>(size)) return 1;
  unlink(path);
  for (bool with_head : {false, true, false, true}) {  // alternating: A/B on a noisy machine
    kev::aio::Run(kev::PollerBackend::kIoUring, "io_uring", files, size, fd, with_head);
    kev::aio::Run(kev::PollerBackend::kEpoll, "epoll", files, size, fd, with_head);
  }
  close(fd);
}
