#!/usr/bin/env bash
# pmap against its C-level peers: the serial loop, oneTBB parallel_pipeline and OpenMP
# schedule(dynamic), all calling the same work functions (benches/compare/work.c) through
# one function pointer. Every (contender, work) pair runs in its own process, the pairs
# interleaved (A B C A B C ...) for --reps rounds; each run checks that every output came
# back, in order for the ordered contenders. Prints markdown tables of medians and ratios
# and the issue's targets, met or not.
#
#   scripts/bench_compare.sh                 # everything, 7 rounds (about 10 minutes)
#   scripts/bench_compare.sh --quick         # smaller inputs, 3 rounds (a smoke test)
#   scripts/bench_compare.sh --reps 9 --only trivial,spin1us
#   scripts/bench_compare.sh --wait-quiet    # first wait (up to 20 min) for load < 0.7
#   PMAP_SO=/tmp/variant/libpmap.so scripts/bench_compare.sh   # measure another build of
#                                            # the library (A/B of core changes)
#
# Output: target/bench-compare/report-<time>.md (also printed) and raw-<time>.tsv.
# Needs: cargo, gcc/g++ with OpenMP, python3, and oneTBB (apt-get install -y libtbb-dev;
# the script installs it when missing and it can).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REPS=7
QUICK=0
WAIT_QUIET=0
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=$2; shift 2 ;;
        --quick) QUICK=1; REPS=3; shift ;;
        --wait-quiet) WAIT_QUIET=1; shift ;;
        --only) ONLY=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [ ! -e /usr/include/tbb/parallel_pipeline.h ] && [ ! -e /usr/include/oneapi/tbb/parallel_pipeline.h ]; then
    echo "oneTBB headers missing: installing libtbb-dev" >&2
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq libtbb-dev >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq libtbb-dev >/dev/null; fi
fi

OUT=$ROOT/target/bench-compare
if [ -n "${PMAP_SO:-}" ]; then
    OUT=$ROOT/target/bench-compare-$(basename "$(dirname "$PMAP_SO")")
    make -s -C benches/compare OUT="$OUT" PMAP_SO="$PMAP_SO"
else
    cargo build --release --lib --quiet
    make -s -C benches/compare OUT="$OUT"
fi
B=$OUT/bench_compare

load1() { cut -d' ' -f1 /proc/loadavg; }
if [ "$WAIT_QUIET" = 1 ]; then
    for _ in $(seq 40); do
        awk -v l="$(load1)" 'BEGIN { exit !(l < 0.7) }' && break
        echo "load $(load1): waiting for < 0.7" >&2
        sleep 30
    done
fi

# Calibrate the spin loop once (fastest of three) and pass the rate to every run.
CAL=$(for _ in 1 2 3; do "$B" calibrate; done | sort -g | tail -n 1)

# group|name|contender|work|n|extra arguments
# Names: the pmap call style (single, single-drain, batch, source, source-batch), then the
# settings that differ from the defaults (ordered, default workers and capacity).
specs() {
    local q=$QUICK
    # Trivial runs are long enough (tens of ms at ~10 ns/item) that thread start-up and
    # one preemption do not decide the median.
    local nt=5000000 n1=200000 nsk=20000 n100=4000 nsl=1280
    if [ "$q" = 1 ]; then nt=1000000 n1=40000 nsk=5000 n100=1000 nsl=320; fi
    local P="pmap-single pmap-single-drain pmap-batch pmap-source pmap-source-batch pmap-threads pmap-threads-batch"
    for g in "trivial trivial $nt" "spin1us spin:1000 $n1" "spin100us spin:100000 $n100"; do
        set -- $g
        echo "$1|serial|serial|$2|$3|"
        for c in $P; do echo "$1|${c#pmap-}|$c|$2|$3|"; done
        for c in pmap-single pmap-batch pmap-source-batch; do
            echo "$1|${c#pmap-} unordered|$c|$2|$3|--ordered 0"
        done
        echo "$1|tbb tokens=8 (4x threads)|tbb|$2|$3|"
        echo "$1|tbb tokens=128|tbb|$2|$3|--tokens 128"
        echo "$1|tbb unordered tokens=8|tbb|$2|$3|--ordered 0"
        echo "$1|omp dynamic|omp|$2|$3|"
        echo "$1|omp dynamic,256|omp|$2|$3|--chunk 256"
    done
    # Cheap items: a wider window means fewer sleeps and wake-ups per item (1024 was the
    # default before run 9).
    for cap in 1024 16384; do
        for c in pmap-batch pmap-source-batch; do
            echo "trivial|${c#pmap-} capacity=$cap|$c|trivial|$nt|--capacity $cap"
        done
    done
    echo "skew|serial|serial|skew|$nsk|"
    for cap in 256 0; do
        local cn=$cap; [ "$cap" = 0 ] && cn=default
        for c in pmap-single pmap-batch pmap-source-batch; do
            echo "skew|${c#pmap-} capacity=$cn|$c|skew|$nsk|--capacity $cap"
        done
    done
    echo "skew|batch unordered capacity=256|pmap-batch|skew|$nsk|--capacity 256 --ordered 0"
    for t in 8 128 256; do echo "skew|tbb tokens=$t|tbb|skew|$nsk|--tokens $t"; done
    echo "skew|omp dynamic|omp|skew|$nsk|"
    for cap in 8 32 128 256 1024 4096; do
        echo "skew-capacity|batch capacity=$cap|pmap-batch|skew|$nsk|--capacity $cap"
    done
    echo "sleep1ms-64|serial|serial|sleep:1000000|$nsl|"
    for c in pmap-single pmap-batch pmap-source-batch; do
        echo "sleep1ms-64|${c#pmap-} workers=64|$c|sleep:1000000|$nsl|--workers 64"
    done
    echo "sleep1ms-64|tbb 64 threads tokens=256|tbb|sleep:1000000|$nsl|--workers 64"
    echo "sleep1ms-64|omp dynamic 64 threads|omp|sleep:1000000|$nsl|--workers 64"
    local small=1000000 big=100000000
    [ "$q" = 1 ] && big=10000000
    echo "memory|source-batch n=$small|pmap-source-batch|trivial|$small|--warmup 0"
    echo "memory|source-batch n=$big|pmap-source-batch|trivial|$big|--warmup 0"
    echo "idle|idle pool|idle||0|--consumer 0"
    echo "idle|idle pool + blocked consumer|idle||0|--consumer 1"
}

mapfile -t SPECS < <(specs | { if [ -n "$ONLY" ]; then grep -E "^(${ONLY//,/|})\|"; else cat; fi; })
[ "${#SPECS[@]}" -gt 0 ] || { echo "no benchmark matches --only $ONLY" >&2; exit 2; }

STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$OUT/raw-$STAMP.tsv
REPORT=$OUT/report-$STAMP.md
{
    echo "# date	$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# cpu	$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) x $(nproc)"
    echo "# kernel	$(uname -sr)"
    echo "# pmap	${PMAP_SO:-$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes in src/')}"
    echo "# compilers	$(cc --version | head -n 1); oneTBB $(dpkg-query -W -f '${Version}' libtbb-dev 2>/dev/null || echo '?')"
    echo "# calibration	$CAL spin iterations per us"
    echo "# reps	$REPS"
} > "$RAW"

echo "running ${#SPECS[@]} benchmarks x $REPS rounds; raw results in $RAW" >&2
for rep in $(seq "$REPS"); do
    echo "# load	$rep	$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW"
    printf 'round %s/%s (load %s)\n' "$rep" "$REPS" "$(load1)" >&2
    for spec in "${SPECS[@]}"; do
        IFS='|' read -r group name contender work n extra <<< "$spec"
        # The long, single-number groups run in the first three rounds only.
        case "$group" in memory|idle) [ "$rep" -le 3 ] || continue ;; esac
        # shellcheck disable=SC2086  # $extra is a list of arguments
        if [ "$contender" = idle ]; then
            "$B" idle --label "$group/$name" $extra >> "$RAW" || true
        else
            "$B" run --label "$group/$name" --contender "$contender" --work "$work" --n "$n" \
                --cal "$CAL" $extra >> "$RAW" || true
        fi
    done
done
echo "# load	end	$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW"

python3 benches/compare/summarize.py "$RAW" | tee "$REPORT"
echo "report: $REPORT" >&2
