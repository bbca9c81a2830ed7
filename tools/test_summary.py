#!/usr/bin/env python3
"""Totals the GoogleTest cases of the last `bazel test` run from bazel-testlogs/**/test.xml.

Usage: test_summary.py LABEL [TARGETS_FILE]. With TARGETS_FILE (the test labels of the run, one
per line, e.g. from `bazel query 'tests(//...)'`), only those targets' logs count: a config's
bazel-testlogs keeps the test.xml of every target it ever ran, so a renamed or deleted test
would otherwise still be counted.

Prints one line per config, e.g. `asan: 412 passed, 0 failed` (the plain closing line CI reads),
and lists failing cases. Exit status 1 when any case failed or no case ran.
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


# A log of one run among several: run_K_of_N/ (--runs_per_test), shard_K_of_N/ (a sharded test)
# or shard_K_of_N_run_J_of_M/ (both).
RUN_DIR = re.compile(r"^(shard|run)_\d+_of_\d+(_run_\d+_of_\d+)?$")


def last_runs(paths: list[str]) -> list[str]:
    """Keeps, of each target's logs, those of its last run. A run writes either the target's own
    test.xml or one test.xml per run_K_of_N/ (shard_K_of_N/) below it, and deletes neither kind
    left by an earlier run of the other kind (nor run_K_of_N/ of an earlier N): the newest of
    these sets is the last run, whichever kind it is."""
    runs = {}  # (target dir, which kind of run) -> its logs
    for path in paths:
        parent = os.path.dirname(path)
        name = os.path.basename(parent)
        if RUN_DIR.match(name):
            key = (os.path.dirname(parent), re.sub(r"_\d+_of_", "_of_", name))
        else:
            key = (parent, "")
        runs.setdefault(key, []).append(path)
    newest = {}  # target dir -> (mtime, logs)
    for (target, _), logs in runs.items():
        mtime = max(os.path.getmtime(p) for p in logs)
        if target not in newest or mtime > newest[target][0]:
            newest[target] = (mtime, logs)
    return [p for _, logs in newest.values() for p in logs]


def main() -> int:
    label = sys.argv[1] if len(sys.argv) > 1 else "tests"
    root = os.path.realpath("bazel-testlogs")
    dirs = [root]
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:  # //pkg/sub:name -> pkg/sub/name (shards live below it)
            dirs = [os.path.join(root, *line.strip().lstrip("/").replace(":", "/").split("/"))
                    for line in f if line.strip().startswith("//")]
    passed = failed = skipped = 0
    failures = []
    # A set: a target's directory may lie below another's (//a:b and //a/b:c).
    found = {p for d in dirs for p in glob.glob(os.path.join(d, "**", "test.xml"), recursive=True)}
    paths = last_runs(sorted(found))
    for path in paths:
        try:
            tree = ET.parse(path)
        except ET.ParseError:
            failed += 1
            failures.append(os.path.relpath(path, root) + " (unreadable test.xml)")
            continue
        for case in tree.iter("testcase"):
            status = case.get("status", "run")
            result = case.get("result", "completed")
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                failures.append(f"{case.get('classname')}.{case.get('name')}")
            elif status == "notrun" or result == "skipped" or case.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
    for name in failures:
        print(f"  FAILED: {name}")
    tail = f", {skipped} skipped" if skipped else ""
    print(f"{label}: {passed} passed, {failed} failed{tail}")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
