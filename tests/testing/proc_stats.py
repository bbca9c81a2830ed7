"""Resources of a running server read from /proc: one process, or every process of a session.

The benchmark scripts start each server (and its shell wrapper, nginx's master and workers) as
the leader of a session of its own (start_new_session=True), so "the server" is every process
whose session id is the leader's pid; the reliability tests watch one process. Python 3
standard library only.
"""
from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after comm (proc(5), from field 3), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def process_rss_kib(pid: int) -> int | None:
    """VmRSS (KiB) of process pid, or None if it is gone (or has no VmRSS: a zombie)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time (s) process pid has used so far (utime + stime, fields 14 and 15
    of /proc/<pid>/stat; 1/CLK_TCK resolution), or None if it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _session_pids(sid: int) -> list[int]:
    """The live processes whose session id is sid."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[3]) == sid:
                pids.append(int(entry.name))
    return pids


def session_rss_kb(sid: int) -> int:
    """Sum of VmRSS (KiB) over the processes of session sid; 0 if there are none."""
    return sum(process_rss_kib(pid) or 0 for pid in _session_pids(sid))


def session_cpu_seconds(sid: int) -> float:
    """User + system CPU time (s) the live processes of session sid have used so far."""
    return sum(process_cpu_seconds(pid) or 0.0 for pid in _session_pids(sid))
