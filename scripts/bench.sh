#!/usr/bin/env bash
# The criterion suite (benches/pmap.rs): pmap's call styles, ordered vs unordered,
# worker counts, the capacity sweep and skewed work, each beside the serial loop and the
# Rust peers (rayon par_bridge, pariter) in the same process. Prints markdown tables of
# the medians of the groups it ran (also saved in target/criterion/report-<time>.md).
#
#   scripts/bench.sh                  # every group (about 10 minutes on 2 cores)
#   scripts/bench.sh overhead         # groups matching a criterion filter
#
# The C-level peers (oneTBB, OpenMP) and the issue's targets: scripts/bench_compare.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$TARGET_DIR/criterion"
START=$(date +%s)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cargo bench --bench pmap -- "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
REPORT=$TARGET_DIR/criterion/report-$(date +%Y%m%d-%H%M%S).md
python3 benches/criterion_table.py "$TARGET_DIR/criterion" "$START" | tee "$REPORT"
echo "report: $REPORT" >&2
