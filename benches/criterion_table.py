#!/usr/bin/env python3
"""Markdown tables from criterion's saved estimates (target/criterion/**/new/*.json):
one table per group, the median time per iteration, ns per item, and the ratio to the
group's serial loop. Used by scripts/bench.sh; only benchmarks measured in the last run
(newer than the --since file) are shown."""

import json
import os
import re
import sys
from collections import OrderedDict


def natural(name):
    """Sort key that puts c-batch/8 before c-batch/128."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)]


def main(root, since):
    rows = OrderedDict()
    for dirpath, _dirs, files in os.walk(root):
        if not dirpath.endswith(os.sep + "new") or "benchmark.json" not in files:
            continue
        est_path = os.path.join(dirpath, "estimates.json")
        if since and os.path.getmtime(est_path) < since:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(est_path) as f:
            est = json.load(f)
        group = bench["group_id"]
        name = bench.get("function_id") or ""
        if bench.get("value_str"):
            name = f"{name}/{bench['value_str']}" if name else bench["value_str"]
        thr = bench.get("throughput") or {}
        items = thr.get("Elements") or 0
        median = est["median"]["point_estimate"]
        lo = est["median"]["confidence_interval"]["lower_bound"]
        hi = est["median"]["confidence_interval"]["upper_bound"]
        rows.setdefault(group, []).append((name, median, lo, hi, items))
    out = []
    for group in sorted(rows):
        entries = sorted(rows[group], key=lambda r: (r[0] != "serial", natural(r[0])))
        serial = next((r for r in entries if r[0] == "serial"), None)
        out.append(f"#### {group}")
        out.append("")
        out.append("| benchmark | median ms | 95% CI ms | ns/item | speedup vs serial |")
        out.append("|---|---:|---:|---:|---:|")
        for name, med, lo, hi, items in entries:
            per = f"{med / items:,.1f}" if items else "–"
            sp = f"{serial[1] / med:.2f}x" if serial else "–"
            out.append(
                f"| {name} | {med / 1e6:,.3f} | {lo / 1e6:,.3f}–{hi / 1e6:,.3f} | {per} | {sp} |"
            )
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
    since = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    main(root, since)
