"""Tests of bench.py's summaries and bench_report's markdown: the verdict of a headline, the
server-CPU table and the load-bound note (synthetic runs; no server is started)."""
from __future__ import annotations

import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (sibling module, after the path tweak)
import bench_report  # noqa: E402


def wrk_run(rate: float, busy: float, cpu_us: float) -> dict:
    return {"rate": rate, "errors": 0, "p50_us": 100.0, "p99_us": 200.0, "p999_us": 300.0,
            "server_busy": busy, "cpu_us_per_op": cpu_us}


def result_of(bench_def, a_runs, b_runs) -> dict:
    result = {"bench": bench_def, "points": {bench_def.headline: {"A": a_runs, "B": b_runs}},
              "commands": {}, "error": None}
    result["rows"] = bench.summarize(result)
    return result


def markdown(results) -> str:
    machine = bench_report.machine_info([0], [1])
    machine.update(elapsed_s=60.0, loadavg_end=["0", "0", "0"])
    with tempfile.TemporaryDirectory() as d:
        bench_report.write_markdown(Path(d), results, machine, bench.MODES["quick"],
                                    bench.SYSTEMS, bench.ROOT_FILES, "python3 bench.py")
        return (Path(d) / "benchmarks.md").read_text()


class SummaryTest(unittest.TestCase):
    B = bench.Benchmark("t_64k", "kev_httpd", "nginx", "wrk", "/64k.bin", 64 << 10, target=1.1)

    def test_verdict_is_judged_on_the_median_ratio(self):
        r = result_of(self.B, [wrk_run(110, 1.0, 9), wrk_run(120, 1.0, 9), wrk_run(90, 1.0, 9)],
                      [wrk_run(100, 1.0, 10)] * 3)
        row = r["rows"][0]
        self.assertAlmostEqual(row["ratio"][1], 1.1)
        self.assertEqual(row["verdict"], "PASS")
        self.assertEqual(row["A_cpu_us_per_op"], (9, 9, 9))

    def test_cpu_table_and_load_bound_note(self):
        r = result_of(self.B, [wrk_run(70000, 0.70, 10.0)] * 3, [wrk_run(70000, 0.80, 11.0)] * 3)
        self.assertEqual(r["rows"][0]["verdict"], "FAIL")
        md = markdown([r])
        self.assertIn("Load-bound", md)
        self.assertIn("t_64k: A 70% / B 80% busy, CPU µs/op B/A 1.100", md)
        self.assertIn("| 64 | 0.70 (0.70–0.70) | 0.80 (0.80–0.80) | 10.00 (10.00–10.00) | "
                      "11.00 (11.00–11.00) | 1.100 |", md)

    def test_a_saturated_server_is_not_load_bound(self):
        r = result_of(self.B, [wrk_run(70000, 0.99, 10.0)] * 3, [wrk_run(60000, 0.80, 11.0)] * 3)
        self.assertNotIn("Load-bound", markdown([r]))

    def test_load_ceiling_names_the_fastest_server_under_the_same_load(self):
        vs_nginx = bench.Benchmark("t_14b", "kev_httpd", "nginx", "wrk", target=1.5)
        vs_raw = bench.Benchmark("t_raw", "kev_httpd", "raw_epoll_http", "wrk", target=0.9)
        capped = result_of(vs_nginx, [wrk_run(184000, 0.85, 4.6)] * 3,
                           [wrk_run(143000, 0.99, 6.9)] * 3)
        raw = result_of(vs_raw, [wrk_run(183000, 0.86, 4.7)] * 3,
                        [wrk_run(188000, 0.78, 4.1)] * 3)
        md = markdown([capped, raw])
        self.assertIn("t_14b: kev_httpd was 85% busy at 184,000 req/s; the target needed "
                      "214,500, and the most any server reached under the same load (64 "
                      "connections) in this run was 188,000 (raw_epoll_http, 78% busy), so no "
                      "server could have met the target", md)
        self.assertNotIn("t_raw:", md.split("Load ceiling")[1].split("\n")[0])

    def test_load_ceiling_says_when_the_target_was_within_reach(self):
        b = bench.Benchmark("t_14b", "kev_httpd", "nginx", "wrk", target=1.5)
        r = result_of(b, [wrk_run(150000, 0.85, 4.6)] * 3, [wrk_run(143000, 0.99, 6.9)] * 3)
        aa = result_of(bench.Benchmark("t_aa", "nginx", "nginx", "wrk"),
                       [wrk_run(230000, 0.99, 4.0)] * 3, [wrk_run(230000, 0.99, 4.0)] * 3)
        self.assertIn("so the target was within reach", markdown([r, aa]))

    def test_load_ceiling_of_a_saturated_server_is_not_the_load_generators(self):
        b = bench.Benchmark("t_14b", "kev_httpd", "nginx", "wrk", target=1.5)
        r = result_of(b, [wrk_run(150000, 0.85, 4.6)] * 3, [wrk_run(143000, 0.99, 6.9)] * 3)
        aa = result_of(bench.Benchmark("t_aa", "nginx", "nginx", "wrk"),
                       [wrk_run(160000, 0.99, 4.0)] * 3, [wrk_run(160000, 0.99, 4.0)] * 3)
        self.assertIn("(nginx, 99% busy), a saturated server, so the load generator's own limit "
                      "was not measured", markdown([r, aa]))

    def test_a_saturated_candidate_gets_no_load_ceiling(self):
        b = bench.Benchmark("t_14b", "kev_httpd", "nginx", "wrk", target=1.5)
        r = result_of(b, [wrk_run(150000, 0.99, 6.6)] * 3, [wrk_run(143000, 0.99, 6.9)] * 3)
        self.assertNotIn("Load ceiling", markdown([r]))


if __name__ == "__main__":
    unittest.main()
