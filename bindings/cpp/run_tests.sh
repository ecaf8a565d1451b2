#!/usr/bin/env bash
# Builds the Rust library and everything of the C++ binding, then runs: the two-TU program,
# the GoogleTest suite (C++17, C++20, and C++17 under ASan+UBSan with LeakSanitizer), and
# the example. Exits non-zero on any failure.
#
# Needs: cargo, g++ (C++17), cmake >= 3.16, libgtest-dev.
# Env: BUILD_DIR (default bindings/cpp/build), JOBS (default nproc),
#      CARGO_TARGET_DIR (honoured, as cargo does), GTEST_FILTER (passed to the tests).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${BUILD_DIR:-$here/build}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac

step() { printf '\n== %s\n' "$*"; }

step "cargo build --release"
(cd "$root" && cargo build --release)

step "configure and build (header checks, tests, two-TU program, bench, example)"
cmake -S "$here" -B "$build" -DPMAP_LIB_DIR="$target_dir/release" >/dev/null
cmake --build "$build" -j "$jobs"

step "a mutable lambda is refused at compile time, with a clear message"
cxx="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")"
if "${cxx:-c++}" -std=c++17 -fsyntax-only -I "$here" -I "$root/include" "$here/tests/compile_fail_mutable.cpp" \
    2>"$build/compile_fail.log"; then
  echo "tests/compile_fail_mutable.cpp compiled, but must not"
  exit 1
fi
grep -q "cannot be a mutable lambda" "$build/compile_fail.log" || { cat "$build/compile_fail.log"; exit 1; }
echo "refused as expected"

step "two translation units"
"$build/double_include"

step "gtest (C++17)"
"$build/pmap_cpp_tests"

step "gtest (C++20)"
"$build/pmap_cpp_tests_cxx20"

step "gtest under ASan+UBSan (LeakSanitizer on)"
log="$build/asan.log"
status=0
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  "$build/pmap_cpp_tests_asan" 2>&1 | tee "$log" || status=$?
if [ "$status" -ne 0 ]; then
  echo "sanitizer run failed (exit $status)"
  exit 1
fi
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
  echo "sanitizer reports found in $log"
  exit 1
fi
echo "sanitizers: 0 reports"

step "example"
"$build/word_stats" >/dev/null

step "all C++ binding checks passed"
