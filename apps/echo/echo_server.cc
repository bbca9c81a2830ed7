// kev echo: a TCP echo server, one shard per core, the kev side of the echo benchmark
// (issue 7: 64-byte ping-pong on 64 connections against tests/perf/raw_epoll_echo).
//
// Every shard binds its own SO_REUSEPORT listener on --address:--port and runs one coroutine per
// connection: ReadSome() what the socket has, Write() it back (one copy, into the connection's
// reused output buffer), Consume(), repeat. No Flush() per message: Write() starts the send at
// once and its high-water backpressure bounds what a client that does not read can make us hold,
// so a waiting flush would only add a pending future (an allocation) per message.
//
//   bazel run -c opt //apps/echo:echo_server -- --port=7000 --smp=1 --backend=epoll
//   kev echo listening on 127.0.0.1:7000
//
// Flags: --address (127.0.0.1), --port (0 picks a free one; the line above, flushed, says which),
// and App's --smp, --cpuset, --backend. SIGINT/SIGTERM: stop accepting, close every connection,
// exit 0.

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "absl/flags/flag.h"
#include "net/connection.h"
#include "net/listener.h"
#include "net/socket_address.h"
#include "reactor/app.h"
#include "reactor/future.h"
#include "reactor/smp.h"
#include "reactor/timer.h"

ABSL_FLAG(std::string, address, "127.0.0.1", "Address to listen on (IPv4 or IPv6 literal).");
ABSL_FLAG(int, port, 0, "TCP port; 0 picks a free one (printed at start).");

namespace kev::echo {
namespace {

// One shard's listener and connections. Lives on its shard (Sharded<EchoShard>).
class EchoShard {
 public:
  explicit EchoShard(std::string address) : address_(std::move(address)) {}

  // Binds this shard's listener; returns the bound port (the real one for port 0).
  uint16_t Listen(uint16_t port) {
    std::optional<net::SocketAddress> address = net::SocketAddress::Parse(address_, port);
    if (!address) {
      throw std::system_error(EINVAL, std::system_category(), "bad --address " + address_);
    }
    net::ListenOptions options;
    options.reuse_port = true;
    options.backlog = 4096;
    listener_ = net::Listen(*address, options);
    return listener_.local_address().port();
  }

  void StartAccepting() { accept_loop_.emplace(AcceptLoop()); }

  // Stops accepting, closes every connection (their pending reads fail with ECANCELED) and
  // resolves when every connection coroutine has finished. Called once, by Sharded::Stop().
  Future<void> Stop() {
    stopping_ = true;
    if (listener_.valid()) {
      try {
        co_await listener_.Close();
      } catch (...) {
      }
    }
    if (accept_loop_) {
      co_await std::move(*accept_loop_);  // AcceptLoop catches everything
      accept_loop_.reset();
    }
    for (Slot* s = slots_; s != nullptr; s = s->next) (void)s->conn->Close();
    // Each coroutine unlinks itself after its Close() has resolved; poll for the last one (a
    // shutdown-only path, so 1 ms steps cost nothing that matters).
    while (slots_ != nullptr) co_await Sleep(std::chrono::milliseconds(1));
  }

 private:
  // A live connection, linked into slots_ from its coroutine's frame (no allocation).
  struct Slot {
    net::Connection* conn = nullptr;
    Slot* prev = nullptr;
    Slot* next = nullptr;
  };

  Future<void> AcceptLoop() {
    while (!stopping_) {
      net::Connection conn;
      try {
        conn = co_await listener_.Accept();
      } catch (...) {
        break;  // closed by Stop(), or the listening socket broke
      }
      if (stopping_) break;          // ~Connection closes it
      (void)Serve(std::move(conn));  // detached; Stop() waits for it through slots_
    }
  }

  // The echo loop of one connection. Hot path per message: a ReadSome() that waits (one pending
  // future; on io_uring the connection's multishot recv stays armed, so nothing is submitted;
  // on epoll one recv(2) when the socket is reported), a Write() below the high-water mark
  // (memcpy into a cached output buffer, one send: an SQE on io_uring, send(2) on epoll; ready
  // future), Consume().
  Future<void> Serve(net::Connection conn) {
    Slot slot;
    slot.conn = &conn;
    Link(&slot);
    try {
      while (true) {
        std::span<const std::byte> data = co_await conn.ReadSome();
        if (data.empty()) break;  // the peer shut down its output
        // Write copies, so the input buffer is free again right after it.
        Future<void> written = conn.Write(data);
        conn.Consume(data.size());
        co_await std::move(written);  // ready unless over the high-water mark
      }
      co_await conn.Flush();  // the last echoes, before the close drops them
    } catch (...) {
      // ECONNRESET / EPIPE from the peer, ECANCELED from Stop(): the connection is done.
    }
    try {
      co_await conn.Close();
    } catch (...) {
    }
    Unlink(&slot);
  }

  void Link(Slot* slot) noexcept {
    slot->next = slots_;
    if (slots_ != nullptr) slots_->prev = slot;
    slots_ = slot;
  }

  void Unlink(Slot* slot) noexcept {
    if (slot->prev != nullptr) slot->prev->next = slot->next;
    if (slot->next != nullptr) slot->next->prev = slot->prev;
    if (slots_ == slot) slots_ = slot->next;
  }

  const std::string address_;
  net::Listener listener_;
  std::optional<Future<void>> accept_loop_;
  bool stopping_ = false;
  Slot* slots_ = nullptr;
};

Future<int> Main() {
  const std::string address = absl::GetFlag(FLAGS_address);
  const int flag_port = absl::GetFlag(FLAGS_port);
  if (flag_port < 0 || flag_port > 65535) throw std::invalid_argument("--port out of range");

  auto shards = std::make_unique<Sharded<EchoShard>>();
  co_await shards->Start(address);
  std::exception_ptr error;
  try {
    // Shard 0 binds first so that --port=0 resolves to one port every shard then shares.
    const uint16_t port = co_await shards->InvokeOn(
        0, [p = static_cast<uint16_t>(flag_port)](EchoShard& s) { return s.Listen(p); });
    co_await shards->InvokeOnAll([port](EchoShard& s) {
      if (this_shard_id() != 0) s.Listen(port);
      s.StartAccepting();
    });
    const std::string host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
    std::printf("kev echo listening on %s:%u\n", host.c_str(), port);
    std::fflush(stdout);
    co_await App::WaitForStop();
  } catch (...) {
    error = std::current_exception();
  }
  co_await shards->Stop();
  if (error) std::rethrow_exception(error);
  co_return 0;
}

}  // namespace
}  // namespace kev::echo

int main(int argc, char** argv) {
  kev::net::RaiseOpenFileLimit();  // one descriptor per connection
  return kev::App::Run(argc, argv, [] { return kev::echo::Main(); });
}
