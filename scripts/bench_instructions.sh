#!/usr/bin/env bash
# Instructions per item under callgrind, for call styles of the comparison harness: the
# measure behind BENCHMARKS.md run 12. Instruction counts do not drift with the host as
# wall times do, so they show a change of a few percent in the straight-line paths (the
# calling thread's calls, a worker's per-item work) in one run. Valgrind runs one thread
# at a time, so how often threads sleep, and the task sizes the pool measures, are not
# those of a real run: read the counts of code paths, and time the rest with
# scripts/bench_ab.sh.
#
#   scripts/bench_instructions.sh [--lib path/to/libpmap.so] [STYLE[,N]] ...
#   (default: single,200000 single-drain,200000 batch,500000; work is always trivial)
#
# Prints, per style, instructions per item (the n items plus the n/10 warm-up) of the
# whole process, the calling thread (run_pmap: the harness's loop and check included),
# the pmap calls it makes (inclusive), and the worker threads. Needs valgrind
# (apt-get install -y valgrind) and what scripts/bench_compare.sh needs to build the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/harness.sh

LIB=""
if [ "${1:-}" = "--lib" ]; then LIB=$2; shift 2; fi
STYLES=("$@")
[ ${#STYLES[@]} -gt 0 ] || STYLES=(single,200000 single-drain,200000 batch,500000)
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind" >&2; exit 2; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
build_harness "$TMP/h" "$LIB"

for spec in "${STYLES[@]}"; do
    IFS=, read -r style n <<<"$spec"
    n=${n:-200000}
    out=$TMP/cg-$style.out
    # A fixed spin rate: the trivial work never spins, and calibrating under valgrind
    # would take minutes.
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$TMP/h/bench_compare" run --contender "pmap-$style" --work trivial --n "$n" \
        --cal 956 >/dev/null 2>"$TMP/valgrind.log" || { cat "$TMP/valgrind.log" >&2; exit 1; }
    callgrind_annotate --inclusive=yes "$out" 2>/dev/null | sed -E 's/ \[[^]]*\]$//' > "$out.txt"
    python3 - "$out.txt" "$style" "$n" <<'PY'
import re, sys
path, style, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
items = n + n // 10
best = {}
for line in open(path):
    m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)$", line)
    if not m:
        continue
    count, name = int(m.group(1).replace(",", "")), m.group(2)
    # Inclusive counts appear under more than one file name; keep the largest.
    best[name] = max(best.get(name, 0), count)
def ends(suffix):
    return max((c for k, c in best.items() if k.endswith(suffix)), default=0)
cols = [("process", "PROGRAM TOTALS"), ("calling thread", ":run_pmap"),
        ("pmap_submit", ":pmap_submit"), ("pmap_submit_many", ":pmap_submit_many"),
        ("pmap_next", ":pmap_next"), ("pmap_next_many", ":pmap_next_many"),
        ("workers", "pmap::worker::run"), ("feeder", "pmap::feeder::run")]
cells = [f"{label} {ends(key) / items:.0f}" for label, key in cols if ends(key)]
print(f"{style} (n {n} + {n // 10} warm-up), instructions per item: " + ", ".join(cells))
PY
done
