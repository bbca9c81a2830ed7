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
import sys
import xml.etree.ElementTree as ET


def superseded(path: str) -> bool:
    """A run_K_of_N/ or shard_K_of_N/ log beside the target's own test.xml is left from an
    earlier `--runs_per_test` or sharded run: the target's last run wrote the test.xml."""
    parent = os.path.dirname(path)
    name = os.path.basename(parent)
    return ((name.startswith("run_") or name.startswith("shard_")) and "_of_" in name
            and os.path.exists(os.path.join(os.path.dirname(parent), "test.xml")))


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
    paths = [p for d in dirs for p in glob.glob(os.path.join(d, "**", "test.xml"), recursive=True)
             if not superseded(p)]
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
