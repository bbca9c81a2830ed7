#include "apps/httpd/metrics.h"

#include <cinttypes>
#include <cstdio>
#include <map>

#include "apps/httpd/handler.h"

namespace kev::httpd {
namespace {

void AppendUint(uint64_t v, std::string* out) { out->append(std::to_string(v)); }

void AppendDouble(double v, std::string* out) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  out->append(buf);
}

struct Family {
  const char* name;
  const char* type;  // counter / gauge
  const char* help;
  uint64_t ShardMetrics::*field;
};

constexpr Family kFamilies[] = {
    {"kev_httpd_bytes_sent_total", "counter", "Response bytes (heads and bodies) sent.",
     &ShardMetrics::bytes_sent},
    {"kev_httpd_body_bytes_sent_total", "counter", "Response body bytes sent.",
     &ShardMetrics::body_bytes_sent},
    {"kev_httpd_connections_open", "gauge", "Connections open now.",
     &ShardMetrics::connections_open},
    {"kev_httpd_connections_accepted_total", "counter", "Connections accepted.",
     &ShardMetrics::connections_accepted},
    {"kev_httpd_connections_rejected_total", "counter",
     "Connections closed at once because the shard was at --max-connections.",
     &ShardMetrics::connections_rejected},
    {"kev_httpd_header_timeouts_total", "counter",
     "Connections closed because a request head took longer than --header-timeout.",
     &ShardMetrics::header_timeouts},
    {"kev_httpd_idle_timeouts_total", "counter",
     "Keep-alive connections closed after --keepalive-timeout of idleness.",
     &ShardMetrics::idle_timeouts},
    {"kev_httpd_client_errors_total", "counter",
     "Connections lost to a peer reset or error mid-request or mid-response.",
     &ShardMetrics::client_errors},
    {"kev_httpd_file_cache_hits_total", "counter", "Small-file cache hits.",
     &ShardMetrics::cache_hits},
    {"kev_httpd_file_cache_misses_total", "counter", "Small-file cache misses.",
     &ShardMetrics::cache_misses},
    {"kev_httpd_file_cache_bytes", "gauge", "Bytes of file content cached.",
     &ShardMetrics::cache_bytes},
    {"kev_httpd_access_log_dropped_total", "counter",
     "Access log lines dropped because the log writer fell behind.",
     &ShardMetrics::access_log_dropped},
};

std::string StatusLabel(size_t i) {
  return i < kTrackedStatuses.size() ? std::to_string(kTrackedStatuses[i]) : "other";
}

}  // namespace

uint64_t ShardMetrics::TotalResponses() const {
  uint64_t n = 0;
  for (uint64_t v : responses) n += v;
  return n;
}

std::string RenderPrometheus(std::span<const ShardMetrics> shards, int64_t uptime_seconds) {
  std::string out;
  out.append("# HELP kev_httpd_uptime_seconds Seconds since the server started.\n");
  out.append("# TYPE kev_httpd_uptime_seconds gauge\nkev_httpd_uptime_seconds ");
  AppendUint(static_cast<uint64_t>(uptime_seconds < 0 ? 0 : uptime_seconds), &out);
  out.append("\n# HELP kev_httpd_shards Shards (reactor threads) serving.\n");
  out.append("# TYPE kev_httpd_shards gauge\nkev_httpd_shards ");
  AppendUint(shards.size(), &out);
  out.append("\n# HELP kev_httpd_responses_total Responses sent, by status code.\n");
  out.append("# TYPE kev_httpd_responses_total counter\n");
  for (const ShardMetrics& m : shards) {
    for (size_t i = 0; i < m.responses.size(); ++i) {
      if (m.responses[i] == 0) continue;
      out.append("kev_httpd_responses_total{shard=\"");
      AppendUint(m.shard, &out);
      out.append("\",code=\"");
      out.append(StatusLabel(i));
      out.append("\"} ");
      AppendUint(m.responses[i], &out);
      out.push_back('\n');
    }
  }
  for (const Family& f : kFamilies) {
    out.append("# HELP ").append(f.name).append(" ").append(f.help).append("\n");
    out.append("# TYPE ").append(f.name).append(" ").append(f.type).append("\n");
    for (const ShardMetrics& m : shards) {
      out.append(f.name).append("{shard=\"");
      AppendUint(m.shard, &out);
      out.append("\"} ");
      AppendUint(m.*f.field, &out);
      out.push_back('\n');
    }
  }
  // Reactor gauges, grouped by name so each family's TYPE line comes once.
  std::map<std::string, std::vector<std::pair<unsigned, double>>> reactor;
  for (const ShardMetrics& m : shards) {
    for (const auto& [name, value] : m.reactor) reactor[name].push_back({m.shard, value});
  }
  for (const auto& [name, values] : reactor) {
    out.append("# TYPE kev_reactor_").append(name).append(" gauge\n");
    for (const auto& [shard, value] : values) {
      out.append("kev_reactor_").append(name).append("{shard=\"");
      AppendUint(shard, &out);
      out.append("\"} ");
      AppendDouble(value, &out);
      out.push_back('\n');
    }
  }
  return out;
}

std::string RenderStatusHtml(std::span<const ShardMetrics> shards, int64_t uptime_seconds,
                             std::string_view root) {
  ShardMetrics total;
  for (const ShardMetrics& m : shards) {
    for (size_t i = 0; i < m.responses.size(); ++i) total.responses[i] += m.responses[i];
    for (const Family& f : kFamilies) total.*f.field += m.*f.field;
  }
  std::string out =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kev httpd status</title>\n"
      "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:right}"
      "th:first-child,td:first-child{text-align:left}</style></head>\n<body>\n"
      "<h1>kev httpd status</h1>\n<p>Serving <code>";
  AppendHtmlEscaped(root, &out);
  out.append("</code> on ");
  AppendUint(shards.size(), &out);
  out.append(" shard(s); up ");
  AppendUint(static_cast<uint64_t>(uptime_seconds < 0 ? 0 : uptime_seconds), &out);
  out.append(" s; ");
  AppendUint(total.TotalResponses(), &out);
  out.append(" responses. <a href=\"/_kev/metrics\">Prometheus metrics</a></p>\n");
  // Per-shard table: one row per counter, one column per shard plus the total.
  out.append("<table>\n<tr><th>metric</th>");
  for (const ShardMetrics& m : shards) {
    out.append("<th>shard ");
    AppendUint(m.shard, &out);
    out.append("</th>");
  }
  out.append("<th>total</th></tr>\n");
  auto row = [&](const std::string& label, auto value_of) {
    out.append("<tr><td>").append(label).append("</td>");
    for (const ShardMetrics& m : shards) {
      out.append("<td>");
      AppendUint(value_of(m), &out);
      out.append("</td>");
    }
    out.append("<td>");
    AppendUint(value_of(total), &out);
    out.append("</td></tr>\n");
  };
  for (size_t i = 0; i < total.responses.size(); ++i) {
    if (total.responses[i] == 0) continue;
    row("responses " + StatusLabel(i), [i](const ShardMetrics& m) { return m.responses[i]; });
  }
  for (const Family& f : kFamilies) {
    std::string label = f.name;
    label.erase(0, sizeof("kev_httpd_") - 1);
    row(label, [&f](const ShardMetrics& m) { return m.*f.field; });
  }
  out.append("</table>\n</body></html>\n");
  return out;
}

}  // namespace kev::httpd
