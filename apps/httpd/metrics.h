// httpd's counters: one plain struct per shard, rendered as Prometheus text (/_kev/metrics)
// or as a small HTML page (/_kev/status).
//
// Each shard increments its own ShardMetrics with ordinary (non-atomic) arithmetic: no
// cache-line bouncing, no locks. To render, the server copies every shard's struct on its
// owning shard (SubmitTo) and passes the copies here; the copies are consistent per shard.
//
// Example:
//   ShardMetrics m;                      // per shard
//   m.CountResponse(200, 14);
//   std::vector<ShardMetrics> all = ...;  // copies gathered from every shard
//   std::string text = RenderPrometheus(all, uptime_seconds);
//
// Threading: a ShardMetrics belongs to its shard; the render functions are pure.

#ifndef KEV_APPS_HTTPD_METRICS_H_
#define KEV_APPS_HTTPD_METRICS_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kev::httpd {

// Status codes counted individually; everything else is counted as "other".
inline constexpr std::array<int, 18> kTrackedStatuses = {
    200, 206, 301, 304, 400, 403, 404, 405, 408, 411, 413, 414, 416, 431, 500, 501, 503, 505};

struct ShardMetrics {
  unsigned shard = 0;
  // Responses by status: index i counts kTrackedStatuses[i]; the last slot counts the rest.
  std::array<uint64_t, kTrackedStatuses.size() + 1> responses{};
  uint64_t bytes_sent = 0;            // response bytes (heads and bodies) handed to sockets
  uint64_t body_bytes_sent = 0;       // of which body bytes
  uint64_t connections_open = 0;      // gauge
  uint64_t connections_accepted = 0;  // total accepted (including rejected ones)
  uint64_t connections_rejected = 0;  // closed at once: over --max-connections
  uint64_t header_timeouts = 0;       // closed: the head did not arrive within --header-timeout
  uint64_t idle_timeouts = 0;         // closed: keep-alive idle past --keepalive-timeout
  uint64_t client_errors = 0;         // closed: the peer reset / vanished mid-response
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  uint64_t cache_bytes = 0;         // gauge
  uint64_t access_log_dropped = 0;  // lines dropped because the writer fell behind
  // Reactor numbers for this shard, (metric name without prefix, value), filled in by the
  // server when the reactor exposes them; rendered as kev_reactor_<name>{shard=...}.
  std::vector<std::pair<std::string, double>> reactor;

  void CountResponse(int status, uint64_t bytes) {
    size_t i = 0;
    while (i < kTrackedStatuses.size() && kTrackedStatuses[i] != status) ++i;
    ++responses[i];
    bytes_sent += bytes;
  }
  uint64_t TotalResponses() const;
};

// Prometheus text exposition format 0.0.4: kev_httpd_* families with a `shard` label (and
// `code` for responses), plus kev_httpd_uptime_seconds and the reactor gauges.
std::string RenderPrometheus(std::span<const ShardMetrics> shards, int64_t uptime_seconds);

// A small self-contained HTML page with the same numbers: totals and a per-shard table.
// `root` (the served directory) is shown HTML-escaped.
std::string RenderStatusHtml(std::span<const ShardMetrics> shards, int64_t uptime_seconds,
                             std::string_view root);

// The Content-Type of RenderPrometheus() output.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_METRICS_H_
