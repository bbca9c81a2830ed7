"""Tests of test_summary.py: what it counts from a config's bazel-testlogs."""
import contextlib
import io
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_summary  # noqa: E402  (sibling module, after the path tweak)


def xml(passed: int, failed: int = 0) -> str:
    cases = [f'<testcase name="p{i}" status="run" result="completed"/>' for i in range(passed)]
    cases += [f'<testcase name="f{i}"><failure message="x"/></testcase>' for i in range(failed)]
    return f'<testsuites><testsuite name="s">{"".join(cases)}</testsuite></testsuites>'


class SummaryTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.cwd = os.getcwd()
        os.chdir(self.dir.name)

    def tearDown(self):
        os.chdir(self.cwd)
        self.dir.cleanup()

    def write(self, rel: str, text: str, age: int = 0) -> None:
        """Writes a log `age` seconds old (runs of a target are told apart by their times)."""
        path = Path("bazel-testlogs", rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        mtime = path.stat().st_mtime - age
        os.utime(path, (mtime, mtime))

    def summary(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        sys.argv = ["test_summary.py", *args]
        with contextlib.redirect_stdout(out):
            status = test_summary.main()
        return status, out.getvalue().strip()

    def test_counts_the_last_run_not_logs_of_an_earlier_runs_per_test(self):
        self.write("reactor/smp_test/test.xml", xml(5))
        for k in (1, 2, 3):  # left by an earlier --runs_per_test=3
            self.write(f"reactor/smp_test/run_{k}_of_3/test.xml", xml(5), age=600)
        self.assertEqual(self.summary("tsan"), (0, "tsan: 5 passed, 0 failed"))

    def test_counts_a_last_runs_per_test_not_the_test_xml_of_an_earlier_run(self):
        # Regression: the stale test.xml was counted and the last run's failure hidden.
        self.write("reactor/smp_test/test.xml", xml(5), age=600)
        self.write("reactor/smp_test/run_1_of_3/test.xml", xml(5))
        self.write("reactor/smp_test/run_2_of_3/test.xml", xml(4, failed=1))
        self.write("reactor/smp_test/run_3_of_3/test.xml", xml(5))
        status, text = self.summary("tsan")
        self.assertEqual(status, 1)
        self.assertIn("tsan: 14 passed, 1 failed", text)

    def test_counts_only_the_last_of_two_runs_per_test(self):
        for k in (1, 2, 3, 4, 5, 6):  # an earlier --runs_per_test=6
            self.write(f"a/t/run_{k}_of_6/test.xml", xml(2), age=600)
        for k in (1, 2):
            self.write(f"a/t/run_{k}_of_2/test.xml", xml(2))
        self.assertEqual(self.summary("default"), (0, "default: 4 passed, 0 failed"))

    def test_shards_without_a_test_xml_of_their_own_all_count(self):
        self.write("a/t/shard_1_of_2/test.xml", xml(2))
        self.write("a/t/shard_2_of_2/test.xml", xml(3))
        self.assertEqual(self.summary("default"), (0, "default: 5 passed, 0 failed"))

    def test_targets_file_leaves_out_tests_no_longer_in_the_tree(self):
        self.write("net/connection_test/test.xml", xml(4))
        self.write("net/removed_test/test.xml", xml(7, failed=1))
        Path("targets").write_text("//net:connection_test\n")
        self.assertEqual(self.summary("asan", "targets"), (0, "asan: 4 passed, 0 failed"))
        status, text = self.summary("asan")
        self.assertEqual(status, 1)
        self.assertIn("asan: 11 passed, 1 failed", text)

    def test_no_case_run_is_a_failure(self):
        Path("bazel-testlogs").mkdir()
        self.assertEqual(self.summary("default")[0], 1)


if __name__ == "__main__":
    unittest.main()
