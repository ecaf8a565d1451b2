#!/usr/bin/env bash
# Benchmark: pgzip against pigz and gzip at level 6, same input, same machine.
#
#   scripts/bench_pgzip.sh
#   SIZE=256M ROUNDS=5 GZIP_ROUNDS=3 scripts/bench_pgzip.sh     (the defaults)
#
# Installs pigz if missing, builds pmap and pgzip, generates a deterministic text-like
# input of SIZE bytes (examples/gentext.c), checks that every tool's output gunzips to
# the input, then times ROUNDS interleaved rounds (pgzip -p 1, pgzip -p 2, pigz -p 1,
# pigz -p 2, gzip -6, then again, so slow drifts in machine load hit every tool alike;
# gzip only in the first GZIP_ROUNDS rounds because it is the slowest). Input comes
# from the page cache, output goes to /dev/null. Prints a markdown table of medians.
# Files go to build/bench/ (gitignored).
#
# On a shared machine other processes steal CPU from the run being timed. So before each
# run the script waits (up to QUIET_MAX seconds, default 300) until the machine was at
# least QUIET_IDLE idle (default 0.90) over the last second, and it records for each run
# the CPU seconds used by *other* processes during it (all CPU time from /proc/stat minus
# the run's own user+sys), reported as the "others' CPU" column. A run during which
# others used less than CLEAN_FRAC (default 0.05) of the machine's CPU time is "clean";
# after ROUNDS rounds, more rounds (up to MAX_ROUNDS, default 15) run the tools that
# still have fewer than MIN_CLEAN (default 3) clean runs. The table gives medians over
# all runs and over clean runs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
size=${SIZE:-256M}
rounds=${ROUNDS:-5}
gzip_rounds=${GZIP_ROUNDS:-3}
max_rounds=${MAX_ROUNDS:-15}
min_clean=${MIN_CLEAN:-3}
dir=${BENCH_DIR:-build/bench}
quiet_idle=${QUIET_IDLE:-0.90}
quiet_max=${QUIET_MAX:-300}
hz=$(getconf CLK_TCK)

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}
if ! command -v pigz > /dev/null; then
    echo "== installing pigz" >&2
    as_root apt-get update >&2
    as_root apt-get install -y pigz >&2
fi
if ! echo '#include <zlib.h>' | cc -E -x c - > /dev/null 2>&1; then
    as_root apt-get update >&2
    as_root apt-get install -y zlib1g-dev >&2
fi

echo "== building" >&2
cargo build --release --quiet >&2
make -s -C examples >&2
pgzip=$root/build/examples/pgzip

mkdir -p "$dir"
input=$dir/input.txt
echo "== generating $size of input" >&2
build/examples/gentext "$size" > "$input"
in_bytes=$(stat -c %s "$input")
cat "$input" > /dev/null # into the page cache, so no run pays for the disk

tools=(pgzip-p1 pgzip-p2 pigz-p1 pigz-p2 gzip)
command_of() {
    case $1 in
    pgzip-p1) echo "pgzip -6 -p 1" ;;
    pgzip-p2) echo "pgzip -6 -p 2" ;;
    pigz-p1) echo "pigz -6 -p 1" ;;
    pigz-p2) echo "pigz -6 -p 2" ;;
    gzip) echo "gzip -6" ;;
    esac
}
# Every tool reads the input file on stdin and writes gzip to stdout.
run_tool() {
    case $1 in
    pgzip-p1) "$pgzip" -q -6 -p 1 < "$input" ;;
    pgzip-p2) "$pgzip" -q -6 -p 2 < "$input" ;;
    pigz-p1) pigz -6 -p 1 -c < "$input" ;;
    pigz-p2) pigz -6 -p 2 -c < "$input" ;;
    gzip) gzip -6 -c < "$input" ;;
    esac
}

# Sizes and correctness, untimed.
declare -A gz_bytes
for t in "${tools[@]}"; do
    echo "== checking $(command_of "$t")" >&2
    run_tool "$t" > "$dir/out.gz"
    gunzip -c "$dir/out.gz" | cmp - "$input"
    gz_bytes[$t]=$(stat -c %s "$dir/out.gz")
done
rm -f "$dir/out.gz"

# Busy and total CPU time of the whole machine since boot, in clock ticks (/proc/stat:
# user nice system idle iowait irq softirq steal).
cpu_ticks() {
    awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6; exit }' /proc/stat
}

# Wait until the machine was at least $quiet_idle idle over one second, for at most
# $quiet_max seconds.
wait_quiet() {
    local waited=0 b1 t1 b2 t2
    while :; do
        read -r b1 t1 < <(cpu_ticks)
        sleep 1
        read -r b2 t2 < <(cpu_ticks)
        if awk -v b=$((b2 - b1)) -v t=$((t2 - t1)) -v q="$quiet_idle" \
            'BEGIN { exit !(t == 0 || 1 - b / t >= q) }'; then
            return
        fi
        waited=$((waited + 1))
        if ((waited >= quiet_max)); then
            echo "   (machine still busy after ${quiet_max}s; running anyway)" >&2
            return
        fi
    done
}

# Runs where other processes used less than this share of the machine's CPU time count
# as clean; the table shows medians over every run and over clean runs only.
clean_frac=${CLEAN_FRAC:-0.05}
ncpu=$(nproc)
declare -A runs

# runstat KIND TOOL FIELD SET: KIND median or min; FIELD 1 = wall, 4 = others' CPU, 5 =
# user+sys; SET all or clean. Prints "-" when SET is empty.
runstat() {
    printf '%s' "${runs[$2]}" |
        awk -v f="$3" -v set="$4" -v frac="$clean_frac" -v ncpu="$ncpu" '
            NF && (set == "all" || $4 <= frac * $1 * ncpu) { print (f == 5 ? $2 + $3 : $f) }' |
        sort -g | awk -v kind="$1" '{ v[NR] = $1 }
            END {
                if (NR == 0) print "-"
                else if (kind == "min") print v[1]
                else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)
            }'
}
count() {
    printf '%s' "${runs[$1]}" |
        awk -v set="$2" -v frac="$clean_frac" -v ncpu="$ncpu" '
            NF && (set == "all" || $4 <= frac * $1 * ncpu) { n++ } END { print n + 0 }'
}
# ratio A B: A / B to 3 decimals, or "-" when either is missing.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f", a / b }'
}

# Timed rounds. bash's `time` gives wall, user and system seconds of the whole command;
# a fourth field is the CPU seconds other processes used meanwhile.
TIMEFORMAT='%R %U %S'
loads=()
loads+=("$(cut -d' ' -f1-3 /proc/loadavg)")
# Rounds go on past $rounds (up to $max_rounds) while a tool has fewer than
# $min_clean clean runs; gzip takes part in the first $gzip_rounds rounds and then only
# while it lacks clean runs.
needs_more() {
    local t
    for t in "${tools[@]}"; do
        if (($(count "$t" clean) < min_clean)); then
            return 0
        fi
    done
    return 1
}
r=0
while :; do
    r=$((r + 1))
    if ((r > rounds)) && { ((r > max_rounds)) || ! needs_more; }; then
        break
    fi
    for t in "${tools[@]}"; do
        if [[ $t == gzip && $r -gt $gzip_rounds ]] && (($(count gzip clean) >= min_clean)); then
            continue
        fi
        if ((r > rounds)) && (($(count "$t" clean) >= min_clean)); then
            continue
        fi
        wait_quiet
        read -r b1 _ < <(cpu_ticks)
        line=$( { time run_tool "$t" > /dev/null 2> /dev/null; } 2>&1 )
        read -r b2 _ < <(cpu_ticks)
        others=$(awk -v d=$((b2 - b1)) -v hz="$hz" -v l="$line" \
            'BEGIN { split(l, f, " "); o = d / hz - f[2] - f[3]; printf "%.2f", (o > 0 ? o : 0) }')
        line="$line $others"
        runs[$t]+="$line"$'\n'
        echo "round $r $(command_of "$t"): wall/user/sys/others $line" >&2
    done
    loads+=("$(cut -d' ' -f1-3 /proc/loadavg)")
done

declare -A all clean
for t in "${tools[@]}"; do
    all[$t]=$(runstat median "$t" 1 all)
    clean[$t]=$(runstat median "$t" 1 clean)
done

echo
echo "Input: $in_bytes bytes of \`gentext $size\` (deterministic text and code-like data)," \
    "level 6, output to /dev/null. MB = 10^6 bytes. $ncpu CPUs. A clean run is one during" \
    "which other processes used less than $clean_frac of the machine's CPU time."
echo
echo "| command | runs (clean) | median wall s | median wall s, clean runs | min wall s | MB/s (clean median) | CPU s (user+sys, median) | others' CPU s (median) | compressed bytes | size % | wall / pigz same -p: clean (all) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for t in pgzip-p1 pigz-p1 pgzip-p2 pigz-p2 gzip; do
    case $t in
    pgzip-p1) ref=pigz-p1 ;;
    pgzip-p2) ref=pigz-p2 ;;
    *) ref= ;;
    esac
    vs="-"
    if [[ -n $ref ]]; then
        vs="$(ratio "${clean[$t]}" "${clean[$ref]}") ($(ratio "${all[$t]}" "${all[$ref]}"))"
    fi
    awk -v cmd="$(command_of "$t")" -v n="$(count "$t" all)" -v nc="$(count "$t" clean)" \
        -v m="${all[$t]}" -v mc="${clean[$t]}" -v lo="$(runstat min "$t" 1 all)" \
        -v cpu="$(runstat median "$t" 5 all)" -v oth="$(runstat median "$t" 4 all)" \
        -v out="${gz_bytes[$t]}" -v inb="$in_bytes" -v vs="$vs" '
        BEGIN {
            speed = (mc == "-" ? "-" : sprintf("%.1f", inb / mc / 1e6))
            mcs = (mc == "-" ? "-" : sprintf("%.3f", mc))
            printf "| `%s` | %d (%d) | %.3f | %s | %.3f | %s | %.2f | %.2f | %d | %.2f | %s |\n",
                   cmd, n, nc, m, mcs, lo, speed, cpu, oth, out, 100 * out / inb, vs
        }'
done
echo
for set in clean all; do
    declare -n m=$set
    echo "- medians over $set runs: pgzip -p 2 is $(ratio "${m[gzip]}" "${m[pgzip-p2]}")x" \
        "as fast as gzip -6 (target: at least 1.7x); pgzip / pigz wall time:" \
        "-p 1 $(ratio "${m[pgzip-p1]}" "${m[pigz-p1]}"), -p 2 $(ratio "${m[pgzip-p2]}" "${m[pigz-p2]}")" \
        "(target: at most 1.10)"
    unset -n m
done
echo "- load average (1/5/15 min) before each round and at the end: $(IFS=';'; echo "${loads[*]}")"
echo
echo "Raw seconds per run, in run order (wall/user/sys/others' CPU):"
echo
for t in "${tools[@]}"; do
    echo "- \`$(command_of "$t")\`: $(printf '%s' "${runs[$t]}" |
        awk 'NF { printf "%s%s/%s/%s/%s", (NR > 1 ? ", " : ""), $1, $2, $3, $4 }')"
done
