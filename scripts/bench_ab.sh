#!/usr/bin/env bash
# Interleaved A/B of two or more builds of libpmap.so through the comparison harness
# (benches/compare). Each build gets its own harness, linked against its own copy of the
# library. Every round runs each spec once per build, the builds alternating, each run
# in its own process. Prints the median ns/item and CPU ns/item of every build per spec.
# On this host wall times drift by a third between phases, so only builds run
# interleaved in the same rounds are compared.
#
#   scripts/bench_ab.sh [--rounds N] [--cal R] NAME=LIB.so NAME=LIB.so ... -- SPEC ...
#   SPEC: style,work,n[,extra harness arguments], for example
#     single,trivial,2000000   batch,spin:1000,300000   "single,skew,20000,--capacity 256"
#   (style: single, single-drain, batch, source, source-batch, threads, threads-batch)
#
# Building another commit beside the current one:
#   git worktree add /tmp/old REV && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target \
#       cargo build --release --lib)
#   cargo build --release --lib
#   scripts/bench_ab.sh --rounds 9 old=/tmp/old-target/release/libpmap.so \
#       new=target/release/libpmap.so -- single,trivial,2000000 batch,trivial,5000000
#
# Needs what scripts/bench_compare.sh needs (gcc/g++ with OpenMP, libtbb-dev, python3).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=7
CAL=""
BUILDS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --cal) CAL=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *=*) BUILDS+=("$1"); shift ;;
        *) echo "unknown argument: $1 (a build is NAME=path/to/libpmap.so)" >&2; exit 2 ;;
    esac
done
SPECS=("$@")
if [ ${#BUILDS[@]} -lt 1 ] || [ ${#SPECS[@]} -lt 1 ]; then
    echo "usage: scripts/bench_ab.sh [--rounds N] NAME=LIB.so ... -- SPEC ... (see --help)" >&2
    exit 2
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
NAMES=()
for b in "${BUILDS[@]}"; do
    name=${b%%=*} so=${b#*=}
    [ -f "$so" ] || { echo "$name: no such library: $so" >&2; exit 2; }
    # A fresh harness directory per build: the harness loads the copy made here, so a
    # rebuild of the original during the run cannot change what is measured.
    make -s -C benches/compare OUT="$TMP/$name" PMAP_SO="$(realpath "$so")"
    NAMES+=("$name")
done
if [ -z "$CAL" ]; then
    # One spin rate for every run (the fastest of three calibrations).
    CAL=$(for _ in 1 2 3; do "$TMP/${NAMES[0]}/bench_compare" calibrate; done | sort -g | tail -n 1)
fi

RAW=$TMP/raw.tsv
for spec in "${SPECS[@]}"; do
    IFS=, read -r style work n extra <<<"$spec"
    for _ in $(seq "$ROUNDS"); do
        for name in "${NAMES[@]}"; do
            # shellcheck disable=SC2086 # extra holds harness arguments, split on purpose
            line=$(timeout 120 "$TMP/$name/bench_compare" run --contender "pmap-$style" \
                --work "$work" --n "$n" --cal "$CAL" $extra) || line=""
            printf '%s\t%s\t%s\n' "$name" "$spec" "$line" >> "$RAW"
        done
    done
done

echo "calibration $CAL, $ROUNDS rounds; ns/item (CPU ns/item), medians"
python3 - "$RAW" "${NAMES[@]}" <<'PY'
import collections, statistics, sys
raw, names = sys.argv[1], sys.argv[2:]
runs = collections.defaultdict(list)
failed = collections.Counter()
order = []
for line in open(raw):
    name, spec, *fields = line.rstrip("\n").split("\t")
    if spec not in order:
        order.append(spec)
    # label contender work n wall_ns cpu_ns maxrss_kib status
    if len(fields) < 8 or fields[7] != "ok":
        failed[(spec, name)] += 1
        continue
    n, wall, cpu = int(fields[3]), int(fields[4]), int(fields[5])
    runs[(spec, name)].append((wall / n, cpu / n))
for spec in order:
    cells = []
    for name in names:
        got = runs[(spec, name)]
        if not got:
            cells.append(f"{name}: no run")
            continue
        wall = statistics.median(r[0] for r in got)
        cpu = statistics.median(r[1] for r in got)
        bad = f", {failed[(spec, name)]} failed" if failed[(spec, name)] else ""
        cells.append(f"{name}: {wall:.1f} ({cpu:.1f}){bad}")
    print(f"{spec}:  " + "  ".join(cells))
PY
