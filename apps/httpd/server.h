// The httpd server: one ShardServer per shard, each with its own SO_REUSEPORT listener, file
// cache, metrics and access-log buffer. A burst of requests is served by a coroutine; an idle
// keep-alive connection between bursts is a small Session waiting on its next read.
//
// A connection's life: wait idle for the first byte of a request (bounded by
// --keepalive-timeout; --header-timeout before the first request), then serve the burst of
// requests that follows (Converse): read until the parser has a complete request head (bounded
// by --header-timeout from the first byte), answer it with the Handler, drain any request body,
// and go on with the next (pipelined) request already buffered. A burst ends once nothing is
// buffered and every response is written, and the connection waits idle again. An idle
// keep-alive connection runs no coroutine: it is its Session (40 bytes: the connection handle
// and its timeout slot) plus the one continuation of its pending read (Future::ThenWrapped)
// and its net::Connection state. The parser, the response
// buffer and the plan live in Converse's frame, which exists only while a burst is being
// served. Responses held in memory are batched into one write (up to --max-pipelined of them);
// a file body is sent with aio::SendFile with its head. A client that vanishes fails only its
// own session. Timeouts are enforced by one periodic sweep per shard over the shard's sessions
// (a per-connection deadline store per request, no timer per read), which closes an expired
// connection: its pending read or send fails and its session ends.
//
// Shutdown (Drain): the listener is closed, idle connections are closed at once, busy ones
// finish their current response with "Connection: close"; whatever is left after the drain
// timeout is closed.
//
// Example (what main.cc does, on shard 0 inside App::Run):
//   kev::Sharded<ShardServer> servers;
//   co_await servers.Start(options, root_fd, sink, &servers);
//   uint16_t port = co_await servers.InvokeOn(0, [](ShardServer& s) { return s.Listen(0); });
//   co_await servers.InvokeOnAll([port](ShardServer& s) { s.Listen(port); s.StartAccepting(); });
//   ... wait for SIGTERM ...
//   co_await servers.InvokeOnAll([](ShardServer& s) { return s.Drain(); });
//   co_await servers.Stop();
//
// Threading: a ShardServer lives on, and is only touched by, its own shard.

#ifndef KEV_APPS_HTTPD_SERVER_H_
#define KEV_APPS_HTTPD_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/httpd/access_log.h"
#include "apps/httpd/file_cache.h"
#include "apps/httpd/handler.h"
#include "apps/httpd/metrics.h"
#include "apps/httpd/request_parser.h"
#include "net/connection.h"
#include "net/listener.h"
#include "reactor/future.h"
#include "reactor/smp.h"
#include "reactor/timer.h"

namespace kev::httpd {

// Everything the flags configure (see docs/httpd.md for each).
struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;
  std::string root;  // absolute, resolved
  bool autoindex = false;
  std::string access_log;  // "" off, "-" stdout, else a file
  ParserLimits limits;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds keepalive_timeout{60000};
  std::chrono::milliseconds send_timeout{60000};
  std::chrono::milliseconds drain_timeout{10000};
  uint32_t max_connections = 10000;  // per shard
  uint32_t max_pipelined = 16;
  bool metrics = true;
  bool status_page = true;
  FileCacheOptions file_cache;
};

class ShardServer {
 public:
  // `root_fd` (a directory, not owned) and `sink` (may be null) are shared by all shards;
  // `all` is the Sharded container, for gathering every shard's metrics.
  ShardServer(ServerOptions options, int root_fd, std::shared_ptr<AccessLogSink> sink,
              Sharded<ShardServer>* all);
  ~ShardServer();
  ShardServer(const ShardServer&) = delete;
  ShardServer& operator=(const ShardServer&) = delete;

  // Binds this shard's listener to options.address:`port` (0: any free port). Returns the
  // bound port. Throws std::system_error (EADDRINUSE...).
  uint16_t Listen(uint16_t port);
  // Starts the accept loop (runs until Drain() or Stop()).
  void StartAccepting();
  // Graceful shutdown of this shard (see the file comment). Resolves when every connection is
  // closed; never fails.
  Future<void> Drain();
  // For Sharded::Stop(): drains with a zero timeout if Drain() was not called.
  Future<void> Stop();

  // A copy of this shard's counters, with the reactor's numbers filled in.
  ShardMetrics Snapshot() const;

 private:
  enum class Phase : uint8_t { kIdle, kHead, kBody, kResponse, kLinger };
  // One per live connection, on the heap (a stable address), linked into sessions_ from accept
  // until its socket is closed. Between bursts this is all the server holds for a connection
  // (see the file comment), so it is kept to 40 bytes: a 48-byte malloc chunk.
  struct Session {
    net::Connection conn;
    int64_t deadline_ns = 0;  // CLOCK_MONOTONIC_COARSE
    Session* prev = nullptr;
    Session* next = nullptr;
    Phase phase = Phase::kIdle;
    bool expired = false;  // closed by the sweep (a timeout) or by the drain
    bool logged = false;   // a LoggedSession (allocated and freed as one)
  };
  // A session of a server with an access log: the client's host, computed once per connection.
  struct LoggedSession : Session {
    std::string peer;
  };

  Future<void> AcceptLoop();
  // Waits, without a coroutine frame, for the next request's first bytes, then serves the burst
  // (Converse); closes the session when the client leaves, on an error, or while draining.
  void AwaitRequest(Session* s);
  // Serves the requests of one burst (see the file comment), then goes back to AwaitRequest or
  // ends the session.
  Future<void> Converse(Session* s);
  // Ends a session: counts a broken one, flushes (unless broken or expired) and closes the
  // socket, then unlinks and frees the session.
  void Finish(Session* s, bool broken);
  Future<void> CloseConnection(Session* s, bool flush);
  Future<std::vector<ShardMetrics>> GatherMetrics();
  void Sweep();
  void Expire(Session& s);
  void Link(Session* s);
  void Unlink(Session* s);
  void MaybeFinishDrain();

  const ServerOptions options_;
  const int root_fd_;
  Sharded<ShardServer>* const all_;
  const int64_t started_ns_;
  FileCache cache_;
  Handler handler_;
  std::unique_ptr<AccessLog> log_;
  ShardMetrics metrics_;
  net::Listener listener_;
  Future<void> accept_loop_;
  Timer sweep_timer_;
  Timer log_timer_;
  Session* sessions_ = nullptr;  // intrusive list head
  // Held while any session lives (Link/Unlink): plans live per burst (in Converse), and this
  // keeps the file cache's open files open between bursts while connections are open; the
  // last session's end closes them (see Handler::Lease).
  PlanLease lease_;
  bool accepting_ = false;
  bool draining_ = false;
  std::unique_ptr<Promise<void>> drained_;  // resolved when the last connection leaves
};

// Current time helpers (vDSO clock reads, no syscall).
int64_t MonotonicCoarseNs();
int64_t RealtimeSeconds();

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_SERVER_H_
