"""Reporting for tests/perf/bench.py: machine facts, the console table, docs/benchmarks.md and
its gnuplot PNGs. Standard library only; gnuplot (Debian gnuplot-nox) draws the plots.

Inputs are bench.py's per-benchmark result dicts, each with "bench" (a Benchmark), "rows" (from
bench.summarize: one per connection count, figures as (min, median, max) triples), "points"
(the raw runs), "commands" and "error".
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path


# Below this many busy cores (medians at the headline) for both servers, a benchmark is
# reported as load-bound: the server had idle time the load generator did not fill.
LOAD_BOUND_BUSY = 0.9


def _run(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(server_cpus: list[int], load_cpus: list[int]) -> dict:
    lscpu = {}
    for line in _run(["lscpu"]).splitlines():
        key, _, value = line.partition(":")
        lscpu[key.strip()] = value.strip()
    mem_kb = next((int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                   if l.startswith("MemTotal:")), 0)
    wrk = _run(["wrk", "-v"]).splitlines()
    return {
        "cpu_model": lscpu.get("Model name", "unknown"),
        "cpus": os.cpu_count(),
        "allowed_cpus": len(os.sched_getaffinity(0)),
        "threads_per_core": lscpu.get("Thread(s) per core", "?"),
        "server_cpus": server_cpus,
        "load_cpus": load_cpus,
        "kernel": platform.release(),
        "memory_gib": round(mem_kb / (1 << 20), 1),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short",
                        "HEAD"]) or "unknown",
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "tools": "; ".join(t for t in (wrk[0] if wrk else "",
                                       _run(["/usr/sbin/nginx", "-v"]),
                                       _run(["gnuplot", "--version"])) if t),
    }


def _side(result: dict, side: str) -> str:
    bench = result["bench"]
    name = bench.candidate if side == "A" else bench.baseline
    return f"{name} ({side})" if bench.candidate == bench.baseline else name


def _unit(result: dict) -> str:
    return {"wrk": "req/s", "idle": "resident bytes per connection"}.get(result["bench"].load,
                                                                      "msg/s")


def _target(bench) -> str:
    if bench.target is None:
        return "–"
    return f"{'≤' if bench.lower_is_better else '≥'} {bench.target:.2f}"


def _rate(v: float) -> str:
    return f"{v:,.0f}"


def _triple(t, fmt=_rate) -> str:
    return f"{fmt(t[1])} ({fmt(t[0])}–{fmt(t[2])})"


def _ratio(t) -> str:
    return f"{t[1]:.3f} [{t[0]:.3f}..{t[2]:.3f}]" if t else "n/a"


def text_table(results: list[dict]) -> str:
    head = (f"{'benchmark':22} {'conns':>5}  {'A':>26}  {'B':>26}  {'A/B median [min..max]':>25}"
            f"  {'target':>6}  verdict")
    lines = [head, "-" * len(head)]
    for r in results:
        b = r["bench"]
        for row in r["rows"]:
            a = f"{_side(r, 'A')[:12]} {_rate(row['A_rate'][1])}"
            bb = f"{_side(r, 'B')[:12]} {_rate(row['B_rate'][1])}"
            target = (_target(b) if b.target is not None and row["verdict"] != "-" else "")
            lines.append(f"{b.name:22} {row['conns']:>5}  {a:>26}  {bb:>26}  "
                         f"{_ratio(row['ratio']):>25}  {target:>6}  {row['verdict']}")
        if r["error"]:
            lines.append(f"{b.name:22} ERROR: {r['error'].splitlines()[0]}")
    return "\n".join(lines)


def micro_table(micro_results: list[dict]) -> str:
    head = (f"{'micro':20} {'ratio':34} {'A ns/item':>10} {'B ns/item':>10} "
            f"{'A/B median [min..max]':>25}  {'target':>6}  verdict")
    lines = [head, "-" * len(head)]
    for m in micro_results:
        for r in m["ratios"]:
            target = f"{r['target']:.2f}" if r["target"] is not None else ""
            lines.append(f"{m['micro'].name:20} {r['micro']:34} {1e9 / r['a_rate']:>10.1f} "
                         f"{1e9 / r['b_rate']:>10.1f} "
                         f"{_ratio((r['min'], r['ratio'], r['max'])):>25}  {target:>6}  "
                         f"{r['verdict']}")
        if m["error"]:
            lines.append(f"{m['micro'].name:20} ERROR: {m['error'].splitlines()[0]}")
    return "\n".join(lines)


def _micro_markdown(micro_results: list[dict]) -> list[str]:
    md = ["", "## Microbenchmarks", "",
          "Google Benchmark binaries (`tests/perf/*_bench.cc`), pinned to the server cores. Each "
          "runs kev's way (A) and the baseline (B) as interleaved repetitions in one process and "
          "reports the median over repetitions of rate(A)/rate(B), with min and max (above 1: "
          "kev is faster). ns/item are medians.", "",
          "| binary | ratio | A | B | A ns/item | B ns/item | A/B median | min | max | target | "
          "verdict |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for m in micro_results:
        for r in m["ratios"]:
            target = f"≥ {r['target']:g}" if r["target"] is not None else "–"
            md.append(f"| {m['micro'].name} | {r['micro']} | `{r['a']}` | `{r['b']}` | "
                      f"{1e9 / r['a_rate']:.1f} | {1e9 / r['b_rate']:.1f} | {r['ratio']:.2f} | "
                      f"{r['min']:.2f} | {r['max']:.2f} | {target} | {r['verdict']} |")
        if m["error"]:
            md.append(f"| {m['micro'].name} | ERROR | | | | | | | | | "
                      f"{m['error'].splitlines()[0][:200]} |")
    md += ["", "Commands:", "", "```"]
    md += [_argv(m["command"]) for m in micro_results]
    md += ["```", ""]
    for m in micro_results:
        if m["micro"].note:
            md.append(f"- `{m['micro'].name}`: {m['micro'].note}.")
    return md


def _gnuplot(script: str, png: Path) -> bool:
    """Renders with pngcairo, falling back to libgd's png terminal. Returns success."""
    for terminal in ("pngcairo size 900,520 font 'sans,10'", "png size 900,520"):
        p = subprocess.run(["gnuplot"], input=f"set terminal {terminal}\nset output '{png}'\n"
                           + script, capture_output=True, text=True)
        if p.returncode == 0 and png.exists() and png.stat().st_size > 0:
            return True
    return False


def _plots(result: dict, plot_dir: Path) -> list[str]:
    """Writes <bench>_throughput.png and <bench>_latency.png; returns their names."""
    rows = result["rows"]
    if len(rows) < 2 or result["bench"].load == "idle":
        return []  # one connection count: the tables say it all
    name = result["bench"].name
    data = plot_dir / f"{name}.dat"
    with open(data, "w") as f:
        f.write("# conns A_min A_med A_max B_min B_med B_max A_p50 A_p99 A_p999 B_p50 B_p99 "
                "B_p999\n")
        for row in rows:
            cols = [row["conns"], *row["A_rate"], *row["B_rate"]]
            cols += [row[f"{s}_{k}"][1] for s in "AB" for k in ("p50_us", "p99_us", "p999_us")]
            f.write(" ".join(str(c) for c in cols) + "\n")
    a, b = _side(result, "A"), _side(result, "B")
    xtics = ", ".join(str(row["conns"]) for row in rows)
    # noenhanced: names like raw_epoll_http must not turn into subscripts.
    common = ("set termoption noenhanced\nset logscale x 2\nset grid\nset key top left\n"
              f"set xlabel 'connections'\nset xtics ({xtics})\n"
              f"set xrange [{rows[0]['conns'] / 1.5}:{rows[-1]['conns'] * 1.5}]\n")
    made = []
    tput = plot_dir / f"{name}_throughput.png"
    if _gnuplot(common + f"set title '{name}: throughput (median, min-max bars)'\n"
                f"set ylabel '{_unit(result)}'\nset yrange [0:*]\n"
                f"plot '{data}' u 1:3:2:4 w yerrorlines lw 2 t '{a}', "
                f"'' u 1:6:5:7 w yerrorlines lw 2 t '{b}'\n", tput):
        made.append(tput.name)
    lat = plot_dir / f"{name}_latency.png"
    if _gnuplot(common + f"set title '{name}: latency percentiles (median of rounds)'\n"
                "set ylabel 'microseconds'\nset logscale y 10\nset format y '%.0f'\n"
                f"plot '{data}' u 1:8 w lp lw 2 dt 1 lc 1 t '{a} p50', "
                f"'' u 1:9 w lp lw 2 dt 2 lc 1 t '{a} p99', "
                f"'' u 1:10 w lp lw 2 dt 3 lc 1 t '{a} p99.9', "
                f"'' u 1:11 w lp lw 2 dt 1 lc 2 t '{b} p50', "
                f"'' u 1:12 w lp lw 2 dt 2 lc 2 t '{b} p99', "
                f"'' u 1:13 w lp lw 2 dt 3 lc 2 t '{b} p99.9'\n", lat):
        made.append(lat.name)
    data.unlink()
    return made


def _group_plots(results: list[dict], plot_dir: Path) -> list[tuple[str, list[str]]]:
    """One throughput and one latency chart per plot_group with every system of the group's
    benchmarks (kev, nginx, raw epoll). A system in several benchmarks of the group (kev) is
    plotted over all its rounds there. Returns [(group, [png names])]."""
    import statistics
    groups: dict[str, list[dict]] = {}
    for r in results:
        if r["bench"].plot_group and r["rows"]:
            groups.setdefault(r["bench"].plot_group, []).append(r)
    out = []
    for group, members in groups.items():
        runs: dict[str, dict[int, list[dict]]] = {}  # system -> conns -> runs
        for r in members:
            for conns, point in r["points"].items():
                for side, name in (("A", r["bench"].candidate), ("B", r["bench"].baseline)):
                    runs.setdefault(name, {}).setdefault(conns, []).extend(point[side])
        systems = list(runs)
        counts = sorted({c for per in runs.values() for c in per})
        if len(counts) < 2:
            continue
        data = plot_dir / f"{group}.dat"
        with open(data, "w") as f:
            f.write("# conns then per system: min med max p50 p99 p999\n")
            for c in counts:
                cols = [str(c)]
                for name in systems:
                    rs = runs[name].get(c, [])
                    if not rs:
                        cols += ["NaN"] * 6
                        continue
                    rates = [x["rate"] for x in rs]
                    cols += [str(min(rates)), str(statistics.median(rates)), str(max(rates))]
                    cols += [str(statistics.median(x[k] for x in rs))
                             for k in ("p50_us", "p99_us", "p999_us")]
                f.write(" ".join(cols) + "\n")
        xtics = ", ".join(str(c) for c in counts)
        common = ("set termoption noenhanced\nset logscale x 2\nset grid\nset key top left\n"
                  f"set xlabel 'connections'\nset xtics ({xtics})\n"
                  f"set xrange [{counts[0] / 1.5}:{counts[-1] * 1.5}]\n")
        unit = _unit(members[0])
        tput_plots = ", ".join(
            f"'{data}' u 1:{3 + 6 * i}:{2 + 6 * i}:{4 + 6 * i} w yerrorlines lw 2 lc {i + 1} "
            f"t '{name}'" for i, name in enumerate(systems))
        lat_plots = ", ".join(
            f"'{data}' u 1:{5 + 6 * i + j} w lp lw 2 dt {j + 1} lc {i + 1} t '{name} {pct}'"
            for i, name in enumerate(systems) for j, pct in enumerate(("p50", "p99", "p99.9")))
        made = []
        tput = plot_dir / f"{group}_all_throughput.png"
        if _gnuplot(common + f"set title '{group}: throughput of every system (median, min-max "
                    f"bars)'\nset ylabel '{unit}'\nset yrange [0:*]\nplot {tput_plots}\n", tput):
            made.append(tput.name)
        lat = plot_dir / f"{group}_all_latency.png"
        if _gnuplot(common + f"set title '{group}: latency percentiles of every system (median "
                    "of rounds)'\nset ylabel 'microseconds'\nset logscale y 10\n"
                    f"set format y '%.0f'\nplot {lat_plots}\n", lat):
            made.append(lat.name)
        data.unlink()
        out.append((group, made))
    return out


def _argv(argv: list[str]) -> str:
    return " ".join(a if a and all(c.isalnum() or c in "-_=./:,@%+{}$" for c in a) else repr(a)
                    for a in argv)


def _load_key(bench) -> tuple:
    """Benchmarks with equal keys put the same load on their servers."""
    return (bench.load, bench.path if bench.load == "wrk" else bench.message_bytes)


def _load_ceiling_notes(results: list[dict]) -> list[str]:
    """For each failed headline whose candidate was not saturated: the rate the target needed
    against the most any server reached under the same load in this run. The candidate's rate
    was then set by the load generator, and when even the fastest server stayed below the
    needed rate, no server could have met the target with this machine's load generator."""
    best: dict[tuple, tuple[float, str, float]] = {}  # (load key, conns) -> (rate, system, busy)
    for r in results:
        for row in r["rows"]:
            for side, system in (("A", r["bench"].candidate), ("B", r["bench"].baseline)):
                key = (_load_key(r["bench"]), row["conns"])
                rate = row[f"{side}_rate"][1]
                if rate > best.get(key, (0.0,))[0]:
                    best[key] = (rate, system, row[f"{side}_server_busy"][1])
    notes = []
    for r in results:
        b = r["bench"]
        head = next((row for row in r["rows"] if row["verdict"] == "FAIL"), None)
        if (head is None or b.load == "idle" or b.lower_is_better or b.target is None
                or head["A_server_busy"][1] >= LOAD_BOUND_BUSY):
            continue
        needed = b.target * head["B_rate"][1]
        ceiling, system, busy = best[(_load_key(b), head["conns"])]
        if ceiling >= needed:
            reach = "so the target was within reach"
        elif busy < LOAD_BOUND_BUSY:  # that server too was capped by the load generator
            reach = ("so no server could have met the target with this load generator on this "
                     "machine")
        else:
            reach = "a saturated server, so the load generator's own limit was not measured"
        notes.append(f"{b.name}: {b.candidate} was {head['A_server_busy'][1]:.0%} busy at "
                     f"{_rate(head['A_rate'][1])} {_unit(r)}; the target needed "
                     f"{_rate(needed)}, and the most any server reached under the same load "
                     f"({head['conns']} connections) in this run was {_rate(ceiling)} "
                     f"({system}, {busy:.0%} busy), {reach}")
    if not notes:
        return []
    return ["", "Load ceiling (failed targets whose candidate's cores were not "
            f"{LOAD_BOUND_BUSY:.0%} busy, so the load generator capped its rate): " +
            "; ".join(notes) + "."]


def write_markdown(out: Path, results: list[dict], machine: dict, mode, systems: dict,
                   root_files: dict, invocation: str, micro_results: list[dict] = ()) -> None:
    """Writes out/benchmarks.md, out/benchmarks/*.png and out/benchmarks/results.json."""
    plot_dir = out / "benchmarks"
    plot_dir.mkdir(parents=True, exist_ok=True)
    for old in list(plot_dir.glob("*_throughput.png")) + list(plot_dir.glob("*_latency.png")):
        old.unlink()
    m = machine
    md = [
        "# kev benchmarks",
        "",
        "<!-- Written by tests/perf/bench.py; do not edit by hand. -->",
        f"Written by `tests/perf/bench.py` on {m['date']} (commit {m['commit']}); reproduce with "
        f"`{invocation.strip()}`. Mode **{mode.name}**: {mode.seconds} s per run, "
        f"{mode.rounds} A/B pairs per point ({mode.headline_rounds} at the headline "
        f"connection count), warm-up {mode.warmup_seconds} s per server; run took "
        f"{m['elapsed_s'] / 60:.1f} min.",
        "",
        "Every comparison runs both systems in the same invocation, pinned to the same server "
        "cores, in alternating rounds (A, B, A, B, ...). The figure that counts is the **median "
        "of the per-round ratios A/B** with its min and max; absolute figures are median "
        "(min–max) over rounds. Targets apply to the median ratio at the headline connection "
        "count. The machine is shared, so absolute numbers drift between runs; ratios much less.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu_model']} ({m['threads_per_core']} thread(s) per core) |",
        f"| cores | {m['cpus']} online, {m['allowed_cpus']} allowed; servers on "
        f"`taskset -c {','.join(map(str, m['server_cpus']))}`, load on "
        f"`taskset -c {','.join(map(str, m['load_cpus']))}` |",
        f"| kernel | {m['kernel']} |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| load average (1/5/15 min) | start {' '.join(m['loadavg_start'])}, end "
        f"{' '.join(m['loadavg_end'])} |",
        f"| tools | {m['tools']} |",
        "",
        "## Summary",
        "",
        "| benchmark | A (candidate) | B (baseline) | connections | A/B median | min | max | "
        "target | verdict |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        b = r["bench"]
        head = next((row for row in r["rows"] if row["verdict"] != "-"), None)
        if head is None:
            md.append(f"| {b.name} | {_side(r, 'A')} | {_side(r, 'B')} | {b.headline} | – | – | "
                      f"– | {_target(b)} | ERROR |")
            continue
        ratio = head["ratio"] or (0, 0, 0)
        md.append(f"| {b.name} | {_side(r, 'A')} | {_side(r, 'B')} | {head['conns']} | "
                  f"{ratio[1]:.3f} | {ratio[0]:.3f} | {ratio[2]:.3f} | "
                  f"{_target(b)} | "
                  f"{head['verdict']} |")
    load_bound = [(r["bench"], head) for r in results for head in r["rows"]
                  if head["verdict"] != "-" and r["bench"].load != "idle"
                  and max(head["A_server_busy"][1], head["B_server_busy"][1]) < LOAD_BOUND_BUSY]
    if load_bound:
        md += ["", f"Load-bound (neither server's cores were {LOAD_BOUND_BUSY:.0%} busy at the "
               "headline, so the load generator set the rate and the throughput ratio cannot "
               "separate the servers; CPU per operation still does, B/A > 1 favouring A): " +
               "; ".join(f"{b.name}: A {h['A_server_busy'][1]:.0%} / B "
                         f"{h['B_server_busy'][1]:.0%} busy, CPU µs/op B/A "
                         f"{h['B_cpu_us_per_op'][1] / max(h['A_cpu_us_per_op'][1], 1e-9):.3f}"
                         for b, h in load_bound) + "."]
    md += _load_ceiling_notes(results)
    group_plots = _group_plots(results, plot_dir)
    if group_plots:
        md += ["", "## Plots: kev, nginx and raw epoll", "",
               "Every system of the benchmarks sharing a plot group, on one chart (wrk "
               "`--latency` percentiles). kev appears in both 14-byte benchmarks: its curve "
               "is the median over all its rounds.", ""]
        for group, pngs in group_plots:
            md += [f"![{png[:-4]}](benchmarks/{png})" for png in pngs] + [""]
    if micro_results:
        md += _micro_markdown(micro_results)
    for r in results:
        b = r["bench"]
        a_name, b_name, unit = _side(r, "A"), _side(r, "B"), _unit(r)
        load = {"wrk": f"wrk GET `{b.path}` ({b.body_bytes} bytes)",
                "idle": f"idle_conns.py, {b.headline:,} keep-alive connections after one GET "
                        f"`{b.path}` each"}.get(
                    b.load, f"echo_load ping-pong, {b.message_bytes}-byte messages")
        md += ["", f"## {b.name}", "", f"A = {a_name}, B = {b_name}; load: {load}."]
        if b.note:
            md += ["", b.note[0].upper() + b.note[1:] + "."]
        if r["error"]:
            md += ["", "**Error:**", "", "```", r["error"][-3000:], "```"]
        if r["rows"]:
            md += ["", f"Throughput, {unit}: median (min–max).", "",
                   f"| connections | pairs | {a_name} | {b_name} | A/B median | A/B min | "
                   "A/B max | verdict |",
                   "|---:|---:|---:|---:|---:|---:|---:|---|"]
            for row in r["rows"]:
                ratio = row["ratio"] or (0, 0, 0)
                md.append(f"| {row['conns']} | {row['rounds']} | {_triple(row['A_rate'])} | "
                          f"{_triple(row['B_rate'])} | {ratio[1]:.3f} | {ratio[0]:.3f} | "
                          f"{ratio[2]:.3f} | {row['verdict']} |")
            us = lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.1f}"  # noqa: E731
            if b.load == "idle":
                md += ["", "RSS of the server's processes, KiB, per round (A, B): " + "; ".join(
                    f"{side} {run['rss_before_kb']:,} → {run['rss_after_kb']:,}"
                    for runs in r["points"].values() for pair in zip(runs["A"], runs["B"])
                    for side, run in zip("AB", pair)) + "."]
            if b.load != "idle":
                md += ["", "Latency, µs: median (min–max) over rounds.", "",
                       "| connections | system | p50 | p99 | p99.9 |", "|---:|---|---:|---:|---:|"]
                for row in r["rows"]:
                    for side, name in (("A", a_name), ("B", b_name)):
                        md.append(f"| {row['conns']} | {name} | "
                                  f"{_triple(row[side + '_p50_us'], us)} | "
                                  f"{_triple(row[side + '_p99_us'], us)} | "
                                  f"{_triple(row[side + '_p999_us'], us)} |")
            if b.load != "idle":
                md += ["", "Server CPU: share of the server's cores busy during the load (1.00 = saturated) "
                       "and CPU µs per operation, median (min–max) over rounds; B/A > 1 means A "
                       "spends less CPU per operation.", "",
                       f"| connections | {a_name} busy | {b_name} busy | {a_name} µs/op | "
                       f"{b_name} µs/op | B/A µs/op |", "|---:|---:|---:|---:|---:|---:|"]
                two = lambda v: f"{v:.2f}"  # noqa: E731
                for row in r["rows"]:
                    a_us, b_us = row["A_cpu_us_per_op"][1], row["B_cpu_us_per_op"][1]
                    md.append(f"| {row['conns']} | {_triple(row['A_server_busy'], two)} | "
                              f"{_triple(row['B_server_busy'], two)} | "
                              f"{_triple(row['A_cpu_us_per_op'], two)} | "
                              f"{_triple(row['B_cpu_us_per_op'], two)} | "
                              f"{(b_us / a_us if a_us > 0 else 0):.3f} |")
            errors = sum(row["errors"] for row in r["rows"])
            if errors:
                md += ["", f"**{errors} load errors** (socket errors, timeouts or non-2xx)."]
            md.append("")
            for png in _plots(r, plot_dir):
                md.append(f"![{png[:-4]}](benchmarks/{png})")
        if r["commands"]:
            md += ["", "Commands (port chosen per run; `-c`/`--connections` varies per point):", "",
                   "```"]
            md += [f"{k}: {_argv(v)}" for k, v in r["commands"].items()]
            md.append("```")
    md += ["", "## Systems", "", "| system | kind | command (template) | what |", "|---|---|---|---|"]
    for s in systems.values():
        md.append(f"| {s.name} | {s.kind} | `{_argv(list(s.command))}` | {s.description} |")
    files = ", ".join(f"`{name}` ({size:,} bytes)" for name, size in root_files.items())
    md += ["", "`bazel-bin` in the commands is a snapshot of the optimised peers taken at the start "
           "of the run; `$ROOT` (`{root}`) is a generated document root holding " + files +
           ", each repeating `Hello, world!\\n` like raw_epoll_http's body of the same size. "
           "`{cpus}` is the server core list and `{shards}` its length.", ""]
    (out / "benchmarks.md").write_text("\n".join(md))

    raw = [{"benchmark": r["bench"].name, "candidate": r["bench"].candidate,
            "baseline": r["bench"].baseline, "error": r["error"], "commands": r["commands"],
            "points": {str(c): runs for c, runs in r["points"].items()}} for r in results]
    micro_raw = [{"micro": m["micro"].name, "command": m["command"], "error": m["error"],
                  "ratios": m["ratios"]} for m in micro_results]
    (plot_dir / "results.json").write_text(json.dumps(
        {"machine": machine, "results": raw, "micro": micro_raw}, indent=1, default=str) + "\n")
