#!/usr/bin/env bash
# The pgzip demo, from a fresh checkout: build pmap and pgzip, compress 64 MiB of
# generated text in parallel, check that standard gunzip restores it exactly.
#
#   scripts/demo.sh            (SIZE=256M scripts/demo.sh for a bigger input)
#
# Needs a Rust toolchain (cargo) and a C compiler; installs zlib headers if missing.
# Everything it writes goes to build/demo/ (gitignored).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
size=${SIZE:-64M}
out=build/demo

# apt-get needs root; use sudo only when we are not root already.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if ! echo '#include <zlib.h>' | cc -E -x c - > /dev/null 2>&1; then
    echo "== zlib headers missing: installing zlib1g-dev"
    as_root apt-get update
    as_root apt-get install -y zlib1g-dev
fi

echo "== building the pmap library (cargo build --release)"
cargo build --release
echo "== building pgzip (examples/Makefile)"
make -s -C examples

pgzip=build/examples/pgzip
mkdir -p "$out"
echo "== generating $size of deterministic text-like input"
build/examples/gentext "$size" > "$out/input.txt"

echo "== compressing with pgzip (all CPUs: $(nproc))"
"$pgzip" < "$out/input.txt" > "$out/input.txt.gz"

echo "== verifying: gunzip -c | cmp"
gunzip -c "$out/input.txt.gz" | cmp - "$out/input.txt"

in_bytes=$(stat -c %s "$out/input.txt")
gz_bytes=$(stat -c %s "$out/input.txt.gz")
echo
echo "input:  $out/input.txt     $in_bytes bytes"
echo "output: $out/input.txt.gz  $gz_bytes bytes ($(awk -v a="$gz_bytes" -v b="$in_bytes" \
    'BEGIN { printf "%.1f%% of the input", 100 * a / b }'))"
echo "gunzip restores the input exactly: OK"
