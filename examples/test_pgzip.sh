#!/usr/bin/env bash
# Round-trip tests for pgzip: every case is compressed with pgzip and checked with the
# standard `gunzip -c | cmp`, plus the error paths (exit status, no hang, no leak).
#
#   examples/test_pgzip.sh          builds the library and pgzip, then runs every case
#   PGZIP=/path/to/pgzip GENTEXT=/path/to/gentext examples/test_pgzip.sh   (no build)
#
# Exits 0 when every case passes. Under valgrind (when installed) a few cases also check
# that no memory leaks, the error paths included. Set PGZIP_NO_VALGRIND=1 to skip those.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

if [[ -z "${PGZIP:-}" ]]; then
    (cd "$root" && cargo build --release --quiet)
    make -s -C "$here"
    PGZIP=$root/build/examples/pgzip
    GENTEXT=$root/build/examples/gentext
fi
: "${GENTEXT:=$(dirname "$PGZIP")/gentext}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pgzip-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); printf 'ok   %s\n' "$1"; }
ko() { fail=$((fail + 1)); printf 'FAIL %s\n' "$1"; }

# roundtrip NAME INPUT [PGZIP OPTIONS...]: compress INPUT from stdin and require that
# pgzip succeeds and gunzip gives back INPUT byte for byte.
roundtrip() {
    local name=$1 input=$2
    shift 2
    if "$PGZIP" -q "$@" < "$input" > "$tmp/out.gz" 2> "$tmp/err" &&
        gunzip -c "$tmp/out.gz" | cmp -s - "$input"; then
        ok "$name"
    else
        ko "$name"
        cat "$tmp/err"
    fi
}

# expect_fail NAME COMMAND...: the command must exit with status 1 within 20 s and say
# "pgzip:" on stderr.
expect_fail() {
    local name=$1 rc=0
    shift
    timeout 20 "$@" > /dev/null 2> "$tmp/err" || rc=$?
    if [[ $rc -eq 1 ]] && grep -q '^pgzip:' "$tmp/err"; then
        ok "$name"
    else
        ko "$name (exit $rc)"
        cat "$tmp/err"
    fi
}

mib=$((1024 * 1024))
: > "$tmp/empty"
printf 'x' > "$tmp/one"
"$GENTEXT" "$mib" > "$tmp/block"
"$GENTEXT" $((mib + 1)) > "$tmp/block+1"
"$GENTEXT" $((mib - 1)) > "$tmp/block-1"
"$GENTEXT" 5M > "$tmp/text"
"$GENTEXT" -r 3M > "$tmp/random"

echo "# round trips (pgzip | gunzip -c | cmp)"
roundtrip "empty input" "$tmp/empty"
roundtrip "1 byte" "$tmp/one"
roundtrip "exactly one block (1 MiB)" "$tmp/block"
roundtrip "one block + 1 byte" "$tmp/block+1"
roundtrip "one block - 1 byte" "$tmp/block-1"
roundtrip "5 MiB in 4 KiB blocks (1280 members)" "$tmp/text" -b 4096
roundtrip "5 MiB in 1 KiB blocks" "$tmp/text" -b 1K
roundtrip "incompressible random data" "$tmp/random"
roundtrip "incompressible random data, 64 KiB blocks" "$tmp/random" -b 64K
roundtrip "level 1" "$tmp/text" -1
roundtrip "level 9" "$tmp/text" -9
roundtrip "1 worker" "$tmp/text" -p 1 -b 256K
roundtrip "8 workers (more than CPUs)" "$tmp/text" -p 8 -b 64K
roundtrip "capacity 1 (one block in flight)" "$tmp/text" -C 1 -b 256K
roundtrip "block larger than the input" "$tmp/text" -b 64M

# Input from a pipe (reads return short counts and the poll path is taken), and from a
# file argument (the file is opened by pgzip).
if "$GENTEXT" 3M | "$PGZIP" -q -b 100000 > "$tmp/out.gz" &&
    gunzip -c "$tmp/out.gz" | cmp -s - <(head -c 3M "$tmp/text"); then
    ok "input from a pipe, block size not a power of two"
else
    ko "input from a pipe, block size not a power of two"
fi
if "$PGZIP" -q "$tmp/text" > "$tmp/out.gz" && gunzip -c "$tmp/out.gz" | cmp -s - "$tmp/text"; then
    ok "input from a file argument"
else
    ko "input from a file argument"
fi

# The output depends on the input and options only, never on scheduling: blocks are
# independent and written in order.
"$PGZIP" -q -p 1 -b 64K < "$tmp/text" > "$tmp/p1.gz"
"$PGZIP" -q -p 4 -b 64K < "$tmp/text" > "$tmp/p4.gz"
if cmp -s "$tmp/p1.gz" "$tmp/p4.gz"; then
    ok "same bytes with 1 and 4 workers"
else
    ko "same bytes with 1 and 4 workers"
fi

# Concatenated members are standard: gzip -t accepts them, and gunzip of pgzip output
# concatenated with gzip output gives both inputs.
if gzip -t "$tmp/p4.gz" && { cat "$tmp/p4.gz"; gzip -c < "$tmp/one"; } | gunzip -c |
    cmp -s - <(cat "$tmp/text" "$tmp/one"); then
    ok "members mix with gzip's"
else
    ko "members mix with gzip's"
fi

echo "# errors"
expect_fail "missing input file" "$PGZIP" -q "$tmp/does-not-exist"
expect_fail "read error (a directory) becomes a source error" "$PGZIP" -q "$tmp"
expect_fail "write error (disk full)" sh -c "exec '$PGZIP' -q -b 64K < '$tmp/text' > /dev/full"

# A reader that goes away: pgzip gets EPIPE (SIGPIPE is ignored), cancels and exits 1.
set +e
"$GENTEXT" 20M | timeout 20 "$PGZIP" -q -b 16K 2> "$tmp/err" | head -c 100 > /dev/null
rc=${PIPESTATUS[1]}
set -e
if [[ $rc -eq 1 ]] && grep -q 'Broken pipe' "$tmp/err"; then
    ok "closed output pipe (EPIPE) exits 1"
else
    ko "closed output pipe (EPIPE) exits 1 (exit $rc)"
    cat "$tmp/err"
fi

# The same, with an input that stays open but goes idle: pgzip must not wait for more
# input before exiting (its source polls a stop flag). Four incompressible 64 KiB blocks
# fit in the window, so the feeder has read them all and waits on the idle pipe by the
# time the reader, after a second, takes 100 bytes and goes away; the first write (64 KiB
# plus the gzip wrapper, a bit more than a pipe buffer) waits for it meanwhile.
head -c 256K "$tmp/random" > "$tmp/idle-input"
mkfifo "$tmp/fifo"
exec 3<> "$tmp/fifo" # a writer that never closes: the reader never sees end of input
cat "$tmp/idle-input" >&3 &
writer=$!
start=$(date +%s%N)
set +e
timeout 20 "$PGZIP" -q -b 64K -C 8 < "$tmp/fifo" 2> "$tmp/err" |
    { sleep 1; head -c 100 > /dev/null; }
rc=${PIPESTATUS[0]}
set -e
secs=$(( ($(date +%s%N) - start) / 1000000000 ))
kill "$writer" 2> /dev/null || true
wait "$writer" 2> /dev/null || true
exec 3>&-
if [[ $rc -eq 1 ]] && ((secs < 5)); then
    ok "closed output while the input pipe is idle: exits 1 promptly (${secs}s)"
else
    ko "closed output while the input pipe is idle (exit $rc after ${secs}s)"
    cat "$tmp/err"
fi

echo "# usage"
expect_usage() {
    local name=$1 rc=0
    shift
    "$PGZIP" "$@" < /dev/null > /dev/null 2>&1 || rc=$?
    if [[ $rc -eq 2 ]]; then ok "$name"; else ko "$name (exit $rc)"; fi
}
expect_usage "bad block size" -b 0
expect_usage "block size with a bad suffix" -b 12X
expect_usage "negative workers" -p -1
expect_usage "two input files" a b
expect_usage "unknown option" -z

if [[ -z "${PGZIP_NO_VALGRIND:-}" ]] && command -v valgrind > /dev/null; then
    echo "# valgrind (no leak, no invalid access), success and error paths"
    vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)
    # Success: every block recycled and freed at exit.
    rc=0
    "${vg[@]}" "$PGZIP" -q -p 2 -b 8K < "$tmp/block" > "$tmp/out.gz" 2> "$tmp/err" || rc=$?
    if [[ $rc -eq 0 ]] && gunzip -c "$tmp/out.gz" | cmp -s - "$tmp/block"; then
        ok "valgrind: round trip"
    else
        ko "valgrind: round trip (exit $rc)"
        cat "$tmp/err"
    fi
    # Write error mid-stream: blocks in flight come back through on_drop and are freed.
    rc=0
    "${vg[@]}" "$PGZIP" -q -p 2 -b 4K < "$tmp/block" > /dev/full 2> "$tmp/err" || rc=$?
    if [[ $rc -eq 1 ]]; then
        ok "valgrind: write error frees every block"
    else
        ko "valgrind: write error frees every block (exit $rc)"
        cat "$tmp/err"
    fi
    # Read error: the source fails, the error arrives in order.
    rc=0
    "${vg[@]}" "$PGZIP" -q "$tmp" > /dev/null 2> "$tmp/err" || rc=$?
    if [[ $rc -eq 1 ]]; then
        ok "valgrind: read error"
    else
        ko "valgrind: read error (exit $rc)"
        cat "$tmp/err"
    fi
else
    echo "# valgrind not run (not installed, or PGZIP_NO_VALGRIND set)"
fi

echo "# $pass passed, $fail failed"
[[ $fail -eq 0 ]]
