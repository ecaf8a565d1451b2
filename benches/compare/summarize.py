#!/usr/bin/env python3
"""Summarize a raw-*.tsv of scripts/bench_compare.sh as markdown: one table per group
(medians over the rounds, ratios against that group's serial loop, taken within one run),
then the issue's targets, each with its measured value and whether it is met."""

import statistics
import sys
from collections import OrderedDict, defaultdict

MIB = 1024.0


def load(path):
    meta, loads, runs, order = {}, [], defaultdict(list), OrderedDict()
    failures = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("# "):
                key, _, val = line[2:].partition("\t")
                if key == "load":
                    loads.append(val.split("\t")[-1])
                else:
                    meta[key] = val
                continue
            parts = line.split("\t")
            if len(parts) < 8:
                continue
            label, contender, work, n, wall, cpu, rss, status = parts[:8]
            group, _, name = label.partition("/")
            order.setdefault(group, OrderedDict())[name] = True
            if status != "ok":
                failures.append(f"{label}: {status}")
                continue
            runs[(group, name)].append(
                dict(n=int(n), wall=int(wall), cpu=int(cpu), rss=int(rss), work=work)
            )
    return meta, loads, runs, order, failures


def med(xs):
    return statistics.median(xs) if xs else float("nan")


class Stat:
    def __init__(self, rs):
        self.count = len(rs)
        self.n = rs[0]["n"] if rs else 0
        self.wall = med([r["wall"] for r in rs])
        self.cpu = med([r["cpu"] for r in rs])
        self.rss = med([r["rss"] for r in rs])
        self.best = min((r["wall"] for r in rs), default=float("nan"))
        self.spread = (
            (max(r["wall"] for r in rs) - min(r["wall"] for r in rs)) / self.wall
            if rs and self.wall
            else 0.0
        )

    def per_item(self, x):
        return x / self.n if self.n else float("nan")


def fmt(x, digits=1):
    if x != x:  # nan
        return "–"
    return f"{x:,.{digits}f}"


def main(path):
    meta, loads, runs, order, failures = load(path)
    stats = {k: Stat(v) for k, v in runs.items()}
    out = []
    out.append("| machine | |")
    out.append("|---|---|")
    for k in ("date", "cpu", "kernel", "pmap", "compilers", "calibration", "reps"):
        if k in meta:
            out.append(f"| {k} | {meta[k]} |")
    if loads:
        out.append(f"| load average (1, 5, 15 min) at each round | {'; '.join(loads)} |")
    out.append("")
    if failures:
        out.append("**Failed runs (not counted):**")
        out.extend(f"- {f}" for f in failures)
        out.append("")

    for group, names in order.items():
        ser = stats.get((group, "serial"))
        if group == "idle":
            out.append("### idle: a pool with no items")
            out.append("")
            out.append("| contender | wall s | CPU ms | CPU % of one core | runs |")
            out.append("|---|---:|---:|---:|---:|")
            for name in names:
                s = stats.get((group, name))
                if not s:
                    continue
                out.append(
                    f"| {name} | {fmt(s.wall / 1e9, 2)} | {fmt(s.cpu / 1e6, 2)} | "
                    f"{fmt(100 * s.cpu / s.wall, 3)} | {s.count} |"
                )
            out.append("")
            continue
        work = next((r["work"] for (g, _), rs in runs.items() if g == group for r in rs), "")
        out.append(f"### {group} (work `{work}`)")
        out.append("")
        out.append(
            "| contender | items | median ms | ns/item | best ns/item | speedup vs serial | "
            "CPU ns/item | CPU vs serial | peak RSS MiB | spread | runs |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name in names:
            s = stats.get((group, name))
            if not s:
                out.append(f"| {name} | | failed | | | | | | | | 0 |")
                continue
            speed = ser.wall / s.wall * (s.n / ser.n) if ser else float("nan")
            cpu_ratio = s.per_item(s.cpu) / ser.per_item(ser.cpu) if ser else float("nan")
            out.append(
                f"| {name} | {s.n:,} | {fmt(s.wall / 1e6, 2)} | {fmt(s.per_item(s.wall))} | "
                f"{fmt(s.per_item(s.best))} | "
                f"{fmt(speed, 2)}x | {fmt(s.per_item(s.cpu))} | {fmt(cpu_ratio, 2)} | "
                f"{fmt(s.rss / MIB, 1)} | {fmt(100 * s.spread, 0)}% | {s.count} |"
            )
        out.append("")
    out.append(
        "ns/item = median wall time / items; best = the fastest round. Speedup = serial median / contender median. "
        "CPU = user + system time of the whole process over the timed region (getrusage). "
        "Spread = (max - min) / median of the wall times."
    )
    out.append("")
    out.extend(targets(stats))
    print("\n".join(out))


def targets(stats):
    rows = []

    def get(group, name):
        return stats.get((group, name))

    def ns_item(group, name):
        s = get(group, name)
        return s.per_item(s.wall) if s else float("nan")

    def speedup(group, name):
        s, ser = get(group, name), get(group, "serial")
        if not s or not ser:
            return float("nan")
        return ser.wall / s.wall * (s.n / ser.n)

    def cpu_ratio(group, name):
        s, ser = get(group, name), get(group, "serial")
        if not s or not ser:
            return float("nan")
        return s.per_item(s.cpu) / ser.per_item(ser.cpu)

    def add(target, what, value, unit, goal, ok, digits=2):
        if value != value:  # not measured in this run (--only)
            return
        verdict = "–" if value != value else ("met" if ok(value) else "**missed**")
        rows.append(f"| {target} | {what} | {fmt(value, digits)}{unit} | {goal} | {verdict} |")

    le = lambda b: (lambda v: v <= b)  # noqa: E731
    ge = lambda b: (lambda v: v >= b)  # noqa: E731
    add("1", "trivial, pmap_submit/pmap_next (README pattern)", ns_item("trivial", "single"), " ns/item", "≤ 100", le(100))
    add("1", "trivial, pmap_submit/pmap_next (drain ready)", ns_item("trivial", "single-drain"), " ns/item", "≤ 100", le(100))
    add("1", "trivial, submit_many/next_many (256)", ns_item("trivial", "batch"), " ns/item", "≤ 20", le(20))
    add("1", "trivial, source + pmap_next", ns_item("trivial", "source"), " ns/item", "≤ 20", le(20))
    add("1", "trivial, source + pmap_next_many (256)", ns_item("trivial", "source-batch"), " ns/item", "≤ 20", le(20))
    for style in ("batch", "source-batch"):
        add("1", f"trivial, {style}, capacity 16384 (reported)", ns_item("trivial", f"{style} capacity=16384"), " ns/item", "≤ 20", le(20))
    add("2", "1 µs, single calls", speedup("spin1us", "single"), "x", "≥ 1.8x", ge(1.8))
    add("2", "1 µs, single calls (drain ready)", speedup("spin1us", "single-drain"), "x", "≥ 1.8x", ge(1.8))
    add("2", "1 µs, batch calls", speedup("spin1us", "batch"), "x", "≥ 1.9x", ge(1.9))
    add("2", "1 µs, source + next_many", speedup("spin1us", "source-batch"), "x", "≥ 1.9x", ge(1.9))
    add("2", "1 µs, source + next", speedup("spin1us", "source"), "x", "≥ 1.9x", ge(1.9))
    for style in ("single", "batch", "source-batch"):
        add("3", f"skew, capacity 256, {style}", speedup("skew", f"{style} capacity=256"), "x", "≥ 1.8x", ge(1.8))
    for style in ("single", "batch", "source-batch"):
        add("3", f"skew, default capacity, {style} (reported)", speedup("skew", f"{style} capacity=default"), "x", "≥ 1.8x", ge(1.8))
    for style in ("single", "batch", "source-batch"):
        add("4", f"sleep 1 ms, 64 workers, {style}", speedup("sleep1ms-64", f"{style} workers=64"), "x", "≥ 60x", ge(60))
    for group, label in (("spin1us", "1 µs"), ("spin100us", "100 µs")):
        for style in ("single", "batch", "source-batch"):
            add("5", f"CPU per item vs serial, {label}, {style}", cpu_ratio(group, style), "x", "≤ 1.1x", le(1.1))
    for name in ("idle pool", "idle pool + blocked consumer"):
        s = get("idle", name)
        add("5", name, 100 * s.cpu / s.wall if s else float("nan"), "% of a core", "< 1%", lambda v: v < 1, 3)
    for group in ("trivial", "spin1us", "spin100us"):
        for style in ("single", "batch", "source-batch"):
            o, u = get(group, style), get(group, f"{style} unordered")
            ratio = o.wall / u.wall if o and u else float("nan")
            add("6", f"ordered / unordered time, {group}, {style}", ratio, "x", "≤ 1.10x", le(1.10))
    mem = sorted(
        ((k[1], s) for k, s in stats.items() if k[0] == "memory"), key=lambda kv: kv[1].n
    )
    if len(mem) >= 2:
        small, big = mem[0][1], mem[-1][1]
        add(
            "7",
            f"peak RSS, {big.n:,} minus {small.n:,} items (source)",
            (big.rss - small.rss) / MIB,
            " MiB",
            "≤ 5 MiB",
            le(5),
        )
    head = [
        "### Targets",
        "",
        "| # | what | measured | target | verdict |",
        "|---|---|---:|---|---|",
    ]
    return head + rows + [""]


if __name__ == "__main__":
    main(sys.argv[1])
