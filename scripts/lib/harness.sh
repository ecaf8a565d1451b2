# Sourced by the benchmark scripts (run from the repository root).
#
# build_harness DIR [LIB]: build the comparison harness (benches/compare) into DIR,
# linked against a copy of LIB, or of a fresh target/release/libpmap.so when LIB is empty.
build_harness() {
    local dir=$1 lib=${2:-}
    if [ -z "$lib" ]; then
        cargo build --release --lib --quiet
        lib=target/release/libpmap.so
    fi
    make -s -C benches/compare OUT="$dir" PMAP_SO="$(realpath "$lib")"
}
