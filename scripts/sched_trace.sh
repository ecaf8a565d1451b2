#!/usr/bin/env bash
# How the CPUs spent one harness run: each CPU's idle time, how long pool threads sat
# runnable but not running while a CPU was idle (the scheduler's share of a loss), how
# long each kind of thread waited from its wake-up to running, and how long each thread
# ran (benches/compare/sched_idle.py). For telling a slow build from a slow machine:
# BENCHMARKS.md, run 18.
#
#   scripts/sched_trace.sh [--lib path/to/libpmap.so] [--threads PREFIX] HARNESS-RUN-ARGUMENTS...
#   scripts/sched_trace.sh --contender pmap-single --work skew --n 20000 --capacity 256
#   scripts/sched_trace.sh --threads bench_compare --contender tbb --work skew --n 20000 --tokens 256
#
# --threads: the name prefix of the threads that do the work (default pmap: pmap's
# workers and feeder; oneTBB's and OpenMP's threads carry the harness's name).
#
# Records sched:sched_switch and sched:sched_wakeup on every CPU with perf (root, or
# perf_event_paranoid <= -1; Debian: apt-get install -y linux-perf), then prints the
# harness's line and the summary.
# Needs what scripts/bench_compare.sh needs to build the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/harness.sh

LIB=""
THREADS=pmap
while [ $# -gt 0 ]; do
    case "$1" in
        --lib) LIB=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        *) break ;;
    esac
done
if [ $# -eq 0 ]; then sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
command -v perf >/dev/null || { echo "perf is missing (Debian: apt-get install -y linux-perf)" >&2; exit 2; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
build_harness "$TMP/h" "$LIB"
B=$TMP/h/bench_compare
CAL=$("$B" calibrate)
perf record -q -e sched:sched_switch -e sched:sched_wakeup -a -o "$TMP/perf.data" -- "$B" run --cal "$CAL" "$@"
perf script -i "$TMP/perf.data" -F cpu,time,event,trace 2>/dev/null >"$TMP/switches.txt"
python3 benches/compare/sched_idle.py "$TMP/switches.txt" "$THREADS"
