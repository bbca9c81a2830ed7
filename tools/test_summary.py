#!/usr/bin/env python3
"""Totals the GoogleTest cases of the last `bazel test` run from bazel-testlogs/**/test.xml.

Prints one line per config, e.g. `asan: 412 passed, 0 failed` (the plain closing line CI reads),
and lists failing cases. Exit status 1 when any case failed or no case ran.
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    label = sys.argv[1] if len(sys.argv) > 1 else "tests"
    root = os.path.realpath("bazel-testlogs")
    passed = failed = skipped = 0
    failures = []
    for path in glob.glob(os.path.join(root, "**", "test.xml"), recursive=True):
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
