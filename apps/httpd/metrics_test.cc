#include "apps/httpd/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace kev::httpd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<ShardMetrics> TwoShards() {
  std::vector<ShardMetrics> shards(2);
  shards[0].shard = 0;
  shards[1].shard = 1;
  shards[0].CountResponse(200, 100);
  shards[0].CountResponse(200, 50);
  shards[0].CountResponse(404, 10);
  shards[1].CountResponse(299, 1);  // untracked → "other"
  shards[1].connections_open = 3;
  shards[1].reactor = {{"tasks_run_total", 42}};
  return shards;
}

TEST(MetricsTest, CountsByStatus) {
  auto shards = TwoShards();
  EXPECT_EQ(shards[0].TotalResponses(), 3u);
  EXPECT_EQ(shards[0].bytes_sent, 160u);
  EXPECT_EQ(shards[1].responses.back(), 1u);
}

TEST(MetricsTest, PrometheusText) {
  auto shards = TwoShards();
  const std::string text = RenderPrometheus(shards, 12);
  EXPECT_THAT(text, HasSubstr("# TYPE kev_httpd_responses_total counter\n"));
  EXPECT_THAT(text, HasSubstr("kev_httpd_responses_total{shard=\"0\",code=\"200\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("kev_httpd_responses_total{shard=\"0\",code=\"404\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("kev_httpd_responses_total{shard=\"1\",code=\"other\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("code=\"500\"")));  // zero series are omitted
  EXPECT_THAT(text, HasSubstr("kev_httpd_bytes_sent_total{shard=\"0\"} 160\n"));
  EXPECT_THAT(text, HasSubstr("kev_httpd_connections_open{shard=\"1\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("kev_httpd_uptime_seconds 12\n"));
  EXPECT_THAT(text, HasSubstr("kev_httpd_shards 2\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE kev_reactor_tasks_run_total gauge\n"
                              "kev_reactor_tasks_run_total{shard=\"1\"} 42\n"));
  // Every non-comment line is "name{labels} value" or "name value".
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.starts_with("#")) continue;
    ASSERT_EQ(std::count(line.begin(), line.end(), ' '), 1) << line;
  }
}

TEST(MetricsTest, StatusPageEscapesAndTotals) {
  auto shards = TwoShards();
  const std::string html = RenderStatusHtml(shards, 5, "/srv/<www>");
  EXPECT_THAT(html, HasSubstr("/srv/&lt;www&gt;"));
  EXPECT_THAT(html, HasSubstr("<th>shard 1</th>"));
  EXPECT_THAT(html, HasSubstr("4 responses"));
  EXPECT_THAT(html, HasSubstr("<tr><td>responses 200</td><td>2</td><td>0</td><td>2</td></tr>"));
  EXPECT_THAT(html, HasSubstr("<tr><td>connections_open</td><td>0</td><td>3</td><td>3</td></tr>"));
}

}  // namespace
}  // namespace kev::httpd
