// A quick ping-pong micro-benchmark of net/ on one shard (client and server in the same loop):
// round trips per second for small messages, on each backend. Not a test; a sanity check of
// the per-operation cost. Usage: bazel run -c opt //net:echo_bench -- [round_trips]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "net/connection.h"
#include "net/internal/test_loop.h"
#include "net/listener.h"

namespace kev::net {
namespace {

Future<void> Server(Listener* listener) {
  Connection c = co_await listener->Accept();
  while (true) {
    std::span<const std::byte> data = co_await c.ReadSome();
    if (data.empty()) break;
    co_await c.Write(data);
    c.Consume(data.size());
    co_await c.Flush();
  }
}

Future<void> Client(SocketAddress address, int round_trips) {
  Connection c = co_await Connect(address);
  std::string message(64, 'm');
  for (int i = 0; i < round_trips; ++i) {
    co_await c.Write(message);
    co_await c.Flush();
    std::span<const std::byte> back = co_await c.ReadExactly(message.size());
    c.Consume(back.size());
  }
  co_await c.Close();
}

void Run(PollerBackend backend, const char* name, int round_trips) {
  internal::TestLoop loop(backend);
  Listener listener = Listen(SocketAddress::Loopback4(0));
  Future<void> server = Server(&listener);
  auto start = std::chrono::steady_clock::now();
  loop.Run(Client(listener.local_address(), round_trips));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  loop.Run(std::move(server));
  std::printf("%-9s %d round trips in %.3f s: %.1f us each\n", name, round_trips, seconds,
              seconds * 1e6 / round_trips);
}

}  // namespace
}  // namespace kev::net

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  kev::net::Run(kev::PollerBackend::kIoUring, "io_uring", n);
  kev::net::Run(kev::PollerBackend::kEpoll, "epoll", n);
}
