"""Resources of a server measured from /proc: every process of its session together.

The benchmark scripts start each server (and its shell wrapper, nginx's master and workers) as
the leader of a session of its own (start_new_session=True), so "the server" is every process
whose session id is the leader's pid. Python 3 standard library only.
"""
from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _session_stats(sid: int):
    """Yields (stat fields after comm, /proc/<pid> path) of each live process in session sid."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # Fields after the ")" of comm: state ppid pgrp session ... (proc(5), from field 3).
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid:
            yield fields, entry


def session_rss_kb(sid: int) -> int:
    """Sum of VmRSS (KiB) over the processes of session sid; 0 if there are none."""
    total = 0
    for _, entry in _session_stats(sid):
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue  # exited meanwhile
    return total


def session_cpu_seconds(sid: int) -> float:
    """User + system CPU time (s) the live processes of session sid have used so far
    (utime + stime, fields 14 and 15 of /proc/<pid>/stat; 1/CLK_TCK resolution)."""
    ticks = sum(int(fields[11]) + int(fields[12]) for fields, _ in _session_stats(sid))
    return ticks / CLOCK_TICKS
