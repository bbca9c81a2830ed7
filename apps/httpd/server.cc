#include "apps/httpd/server.h"

#include <time.h>

#include <algorithm>
#include <exception>
#include <string_view>
#include <system_error>
#include <utility>

#include "aio/sendfile.h"
#include "reactor/reactor.h"

namespace kev::httpd {
namespace {

using std::chrono::duration_cast;
using std::chrono::nanoseconds;

// A file body goes out in chunks of this size, so a client that stops reading is caught by
// --send-timeout per chunk instead of holding a transfer forever.
constexpr size_t kSendFileChunk = 1 << 20;
// Bounds on the lingering close after an error response.
constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr size_t kLingerBytes = 1 << 20;
// Batched in-memory responses are written once they reach this many bytes.
constexpr size_t kMaxBatchBytes = 64 << 10;

std::string_view AsView(std::span<const std::byte> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

// "1.2.3.4:5678" → "1.2.3.4", "[::1]:80" → "::1".
std::string HostOnly(std::string s) {
  if (!s.empty() && s.front() == '[') {
    size_t end = s.find(']');
    return end == std::string::npos ? s : s.substr(1, end - 1);
  }
  size_t colon = s.rfind(':');
  return colon == std::string::npos ? s : s.substr(0, colon);
}

int64_t Ns(std::chrono::milliseconds d) { return duration_cast<nanoseconds>(d).count(); }

}  // namespace

int64_t MonotonicCoarseNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // vDSO: no syscall
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t RealtimeSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);  // vDSO: no syscall
  return ts.tv_sec;
}

ShardServer::ShardServer(ServerOptions options, int root_fd, std::shared_ptr<AccessLogSink> sink,
                         Sharded<ShardServer>* all)
    : options_(std::move(options)),
      root_fd_(root_fd),
      all_(all),
      started_ns_(MonotonicCoarseNs()),
      cache_(options_.file_cache),
      handler_(HandlerOptions{.root_fd = root_fd_,
                              .autoindex = options_.autoindex,
                              .metrics = options_.metrics,
                              .status_page = options_.status_page},
               options_.file_cache.capacity_bytes > 0 ? &cache_ : nullptr),
      sweep_timer_([this] { Sweep(); }),
      log_timer_([this] {
        if (log_) log_->Flush();
      }) {
  metrics_.shard = this_shard_id();
  if (sink != nullptr) {
    log_ = std::make_unique<AccessLog>(std::move(sink));
    log_timer_.ArmPeriodic(std::chrono::seconds(1));
  }
  // Sweep often enough that a timeout fires at most ~1/8 of itself late.
  auto period =
      std::min({options_.header_timeout, options_.keepalive_timeout, options_.send_timeout}) / 8;
  period = std::clamp(period, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  sweep_timer_.ArmPeriodic(period);
}

ShardServer::~ShardServer() {
  if (log_) log_->Flush();
}

uint16_t ShardServer::Listen(uint16_t port) {
  auto address = net::SocketAddress::Parse(options_.address, port);
  if (!address) {
    throw std::system_error(EINVAL, std::system_category(), "bad --address " + options_.address);
  }
  net::ListenOptions lo;
  lo.reuse_port = true;
  lo.max_queued = 1024;
  lo.backlog = 4096;
  listener_ = net::Listen(*address, lo);
  return listener_.local_address().port();
}

void ShardServer::StartAccepting() {
  accepting_ = true;
  accept_loop_ = AcceptLoop();
}

Future<void> ShardServer::AcceptLoop() {
  while (accepting_) {
    net::Connection conn;
    bool failed = false;
    try {
      conn = co_await listener_.Accept();
    } catch (...) {
      failed = true;  // closed by Drain(), or a broken listening socket
    }
    if (failed || !accepting_) break;
    ++metrics_.connections_accepted;
    if (metrics_.connections_open >= options_.max_connections) {
      ++metrics_.connections_rejected;
      continue;  // ~Connection closes it at once
    }
    // One allocation per connection; the session ends (and frees itself) in Finish, which
    // Drain() waits for.
    Session* s = log_ ? new LoggedSession : new Session;
    s->logged = log_ != nullptr;
    s->conn = std::move(conn);
    s->deadline_ns = MonotonicCoarseNs() + Ns(options_.header_timeout);
    Link(s);
    bool broken = false;
    try {
      if (s->logged) {
        static_cast<LoggedSession*>(s)->peer = HostOnly(s->conn.peer_address().ToString());
      }
    } catch (...) {
      broken = true;  // e.g. ENOTCONN: the client already reset it
    }
    if (broken) {
      Finish(s, /*broken=*/true);
    } else {
      AwaitRequest(s);
    }
  }
}

void ShardServer::Link(Session* s) {
  static_assert(sizeof(Session) <= 40, "what an idle connection costs: a 48-byte malloc chunk");
  if (sessions_ == nullptr) lease_ = handler_.Lease();  // the first connection
  s->next = sessions_;
  if (sessions_ != nullptr) sessions_->prev = s;
  sessions_ = s;
  ++metrics_.connections_open;
}

void ShardServer::Unlink(Session* s) {
  if (s->prev != nullptr) s->prev->next = s->next;
  if (s->next != nullptr) s->next->prev = s->prev;
  if (sessions_ == s) sessions_ = s->next;
  --metrics_.connections_open;
  if (sessions_ == nullptr) lease_ = PlanLease();  // the last one: open files may close
}

void ShardServer::Expire(Session& s) {
  if (s.expired) return;
  s.expired = true;
  // Cancels the pending read/send; the session sees it fail and ends.
  (void)s.conn.Close();
}

void ShardServer::Sweep() {
  const int64_t now = MonotonicCoarseNs();
  for (Session* s = sessions_; s != nullptr;) {
    Session* next = s->next;  // Expire() does not unlink, but stay safe if it ever does
    if (!s->expired && now >= s->deadline_ns) {
      if (s->phase == Phase::kLinger) {
        // The error response is out; the client just did not close. Nothing to count.
      } else if (s->phase == Phase::kIdle) {
        ++metrics_.idle_timeouts;
      } else if (s->phase == Phase::kResponse) {
        ++metrics_.client_errors;  // stalled reader
      } else {
        ++metrics_.header_timeouts;
      }
      Expire(*s);
    }
    s = next;
  }
}

void ShardServer::AwaitRequest(Session* s) {
  if (!s->conn.buffered().empty()) {  // (Converse leaves nothing; stay correct if it ever does)
    (void)Converse(s);
    return;
  }
  if (draining_) return Finish(s, /*broken=*/false);  // idle between requests: nothing to finish
  if (s->phase != Phase::kIdle) {
    s->phase = Phase::kIdle;
    s->deadline_ns = MonotonicCoarseNs() + Ns(options_.keepalive_timeout);
  }
  // No coroutine frame while idle: the pending read's continuation (one allocation per idle
  // wait, 112 bytes with its future state) is all that waits. It runs on this shard when the
  // first bytes arrive, the client closes, or the sweep or the drain closes the connection.
  (void)s->conn.ReadSome().ThenWrapped([this, s](Future<std::span<const std::byte>> got) {
    bool data = false;
    try {
      data = !got.Get().empty();
    } catch (...) {
      return Finish(s, /*broken=*/true);  // reset, or closed by a timeout or the drain
    }
    if (!data) return Finish(s, /*broken=*/false);  // the client closed between requests
    // One frame allocation per burst of requests (not per request): the price of holding no
    // parser while idle, small against the burst's syscalls.
    (void)Converse(s);
  });
}

void ShardServer::Finish(Session* s, bool broken) {
  if (broken && !s->expired) ++metrics_.client_errors;
  // Detached; the session stays linked until its socket is closed, so Drain() waits for it.
  (void)CloseConnection(s, /*flush=*/!broken && !s->expired);
}

Future<void> ShardServer::CloseConnection(Session* s, bool flush) {
  if (flush) {
    try {
      co_await s->conn.Flush();  // Close() would drop unsent output
    } catch (...) {
    }
  }
  try {
    co_await s->conn.Close();
  } catch (...) {
  }
  Unlink(s);
  if (s->logged) {
    delete static_cast<LoggedSession*>(s);
  } else {
    delete s;
  }
  MaybeFinishDrain();
}

// The requests of one burst (see server.h). Entered with at least one byte buffered; ends with
// AwaitRequest (idle again: nothing buffered, every response handed over) or Finish.
Future<void> ShardServer::Converse(Session* s) {
  net::Connection& conn = s->conn;
  Session& slot = *s;
  const std::string* const peer = s->logged ? &static_cast<const LoggedSession*>(s)->peer : nullptr;
  RequestParser parser(options_.limits);
  std::string out;
  ResponsePlan plan;
  uint32_t batched = 0;
  bool idle = false;    // the burst is over and the connection stays open
  bool broken = false;  // reset, EOF mid-request, timeout or drain close
  try {
    for (bool done = false; !done;) {
      // ---- Read one request head. ----
      parser.Reset();
      RequestParser::Status status = RequestParser::Status::kIncomplete;
      for (;;) {
        std::span<const std::byte> buf = conn.buffered();
        if (buf.empty()) {
          // Idle again: hand the batched responses over and wait without this frame (Write
          // copies them, so `out` dies with it).
          if (!out.empty()) co_await conn.Write(out);
          idle = true;
          break;
        }
        status = parser.Parse(AsView(buf));
        if (status != RequestParser::Status::kIncomplete) break;
        if (slot.phase != Phase::kHead) {
          slot.phase = Phase::kHead;
          slot.deadline_ns = MonotonicCoarseNs() + Ns(options_.header_timeout);
        }
        // Blocking for input: send the batched responses first.
        if (!out.empty()) {
          co_await conn.Write(out);
          out.clear();
          batched = 0;
        }
        co_await conn.ReadExactly(buf.size() + 1);  // EndOfStream mid-head → broken
      }
      if (idle) break;

      // ---- Answer it. ----
      slot.phase = Phase::kResponse;
      slot.deadline_ns = MonotonicCoarseNs() + Ns(options_.send_timeout);
      const int64_t now = RealtimeSeconds();
      const size_t before = out.size();
      if (status == RequestParser::Status::kError) {
        handler_.HandleParseError(parser.error_status(), now, &out, &plan);
      } else {
        handler_.Handle(parser, now, !draining_, &out, &plan);
        if (plan.special != Special::kNone) {
          // Rendering needs every shard's counters; copy what the log needs first, since the
          // parser's views may move while we wait.
          std::vector<ShardMetrics> all = co_await GatherMetrics();
          const int64_t uptime = (MonotonicCoarseNs() - started_ns_) / 1000000000;
          if (plan.special == Special::kMetrics) {
            handler_.AppendPage(kPrometheusContentType, RenderPrometheus(all, uptime), now, &out,
                                &plan);
          } else {
            handler_.AppendPage("text/html; charset=utf-8",
                                RenderStatusHtml(all, uptime, options_.root), now, &out, &plan);
          }
          // No read ran meanwhile, so the buffer is unchanged; rebinding the parser's views to
          // it is free (Parse() on a complete head only rebinds) and keeps them exact.
          status = parser.Parse(AsView(conn.buffered()));
        }
      }
      metrics_.CountResponse(plan.status, out.size() - before + plan.file_length);
      metrics_.body_bytes_sent += plan.body_bytes;
      if (log_) {
        AccessLogEntry e;
        if (peer != nullptr) e.peer = *peer;
        e.time = now;
        e.status = plan.status;
        e.body_bytes = plan.body_bytes;
        if (status == RequestParser::Status::kComplete) {
          e.method = parser.method_name();
          e.target = parser.target();
          e.version_minor = parser.version_minor();
          e.referer = parser.Find("Referer");
          e.user_agent = parser.Find("User-Agent");
        } else {
          e.version_minor = -1;
        }
        log_->Append(e);
      }
      if (status == RequestParser::Status::kError) {
        // Lingering close: closing with unread request bytes would make the kernel send a
        // RST that can destroy the error response before the client reads it. So: send the
        // response and a FIN, then read and discard (bounded in bytes and time) until the
        // client closes too.
        co_await conn.Write(out);
        co_await conn.ShutdownOutput();
        slot.phase = Phase::kLinger;
        slot.deadline_ns = MonotonicCoarseNs() + Ns(std::min<std::chrono::milliseconds>(
                                                     options_.header_timeout, kLingerTime));
        size_t discarded = 0;
        while (discarded < kLingerBytes) {
          std::span<const std::byte> got = co_await conn.ReadSome();
          if (got.empty()) break;
          discarded += got.size();
          conn.Consume(got.size());
        }
        break;  // close
      }

      // ---- Consume the head and drain any request body. ----
      conn.Consume(parser.consumed());
      uint64_t body = parser.content_length();
      while (body > 0) {
        slot.phase = Phase::kBody;
        slot.deadline_ns = MonotonicCoarseNs() + Ns(options_.header_timeout);
        std::span<const std::byte> got = conn.buffered();
        if (got.empty()) {
          got = co_await conn.ReadSome();
          if (got.empty()) throw net::EndOfStream();
        }
        const size_t take = static_cast<size_t>(std::min<uint64_t>(body, got.size()));
        conn.Consume(take);
        body -= take;
      }
      slot.phase = Phase::kResponse;

      // ---- Send. ----
      if (plan.file.valid()) {
        // The head (and any batched responses before it) rides with the file's first bytes:
        // SendFile with a head sends it with send(MSG_MORE) and starts the sendfile in the same
        // call (aio/sendfile.h), so they share TCP segments and cost no extra loop turn. The
        // Handler sets a file only for a non-empty body; the first call runs regardless, so the
        // head always goes out (SendFile of 0 bytes is just the head's Write).
        std::string_view head = out;
        uint64_t offset = plan.file_offset;
        uint64_t left = plan.file_length;
        do {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kSendFileChunk));
          slot.deadline_ns = MonotonicCoarseNs() + Ns(options_.send_timeout);
          co_await aio::SendFile(conn, head, plan.file.get(), static_cast<off_t>(offset), n);
          head = {};
          offset += n;
          left -= n;
        } while (left > 0);
        out.clear();
        batched = 0;
        plan.file.Reset();
      } else if (++batched >= options_.max_pipelined || out.size() >= kMaxBatchBytes) {
        co_await conn.Write(out);
        out.clear();
        batched = 0;
      }
      if (!plan.keep_alive) {
        if (!out.empty()) co_await conn.Write(out);
        done = true;  // close
      }
    }
  } catch (...) {
    broken = true;
  }
  if (idle && !broken) {
    AwaitRequest(s);
  } else {
    Finish(s, broken);
  }
}

Future<std::vector<ShardMetrics>> ShardServer::GatherMetrics() {
  std::vector<Future<ShardMetrics>> parts;
  for (unsigned s = 0; s < smp_count(); ++s) {
    parts.push_back(all_->InvokeOn(s, [](ShardServer& server) { return server.Snapshot(); }));
  }
  std::vector<ShardMetrics> result;
  for (auto& part : parts) result.push_back(co_await std::move(part));
  co_return result;
}

ShardMetrics ShardServer::Snapshot() const {
  ShardMetrics m = metrics_;
  m.cache_hits = cache_.hits();
  m.cache_misses = cache_.misses();
  m.cache_bytes = cache_.bytes();
  if (log_) m.access_log_dropped = log_->dropped_lines();
  if (Reactor* r = Reactor::CurrentOrNull()) {
    const ReactorMetrics rm = r->metrics();
    m.reactor = {
        {"turns_total", static_cast<double>(rm.turns)},
        {"tasks_run_total", static_cast<double>(rm.tasks_run)},
        {"polls_total", static_cast<double>(rm.polls)},
        {"sleeps_total", static_cast<double>(rm.sleeps)},
        {"completions_total", static_cast<double>(rm.completions)},
        {"events_delivered_total", static_cast<double>(rm.events_delivered)},
        {"idle_seconds_total", std::chrono::duration<double>(rm.idle_time).count()},
        {"smp_messages_sent_total", static_cast<double>(rm.smp_messages_sent)},
        {"smp_messages_received_total", static_cast<double>(rm.smp_messages_received)},
    };
  }
  return m;
}

void ShardServer::MaybeFinishDrain() {
  if (draining_ && sessions_ == nullptr && drained_ != nullptr) {
    drained_->SetValue();
    drained_.reset();
  }
}

Future<void> ShardServer::Drain() {
  if (draining_) co_return;
  draining_ = true;
  accepting_ = false;
  if (listener_.valid()) {
    try {
      co_await listener_.Close();
    } catch (...) {
    }
  }
  // Idle connections have nothing to finish: close them now.
  for (Session* s = sessions_; s != nullptr; s = s->next) {
    if (s->phase == Phase::kIdle && s->conn.buffered().empty()) Expire(*s);
  }
  if (sessions_ != nullptr) {
    drained_ = std::make_unique<Promise<void>>();
    Future<void> done = drained_->GetFuture();
    bool timed_out = false;
    try {
      co_await WithTimeout(options_.drain_timeout, std::move(done));
    } catch (...) {
      timed_out = true;
    }
    if (timed_out) {
      // Whatever is still running is cut off; wait for the coroutines to see it.
      for (Session* s = sessions_; s != nullptr; s = s->next) Expire(*s);
      while (sessions_ != nullptr) co_await Sleep(std::chrono::milliseconds(1));
    }
  }
  sweep_timer_.Cancel();
  log_timer_.Cancel();
  if (log_) log_->Flush();
}

Future<void> ShardServer::Stop() {
  if (!draining_) {
    co_await Drain();
  }
  // Wait for the accept loop to notice the closed listener.
  if (accept_loop_.Valid()) co_await std::move(accept_loop_);
}

}  // namespace kev::httpd
