#!/usr/bin/env bash
# The reliability suite: what it guarantees and how each piece is tested is in RELIABILITY.md.
#
#   scripts/reliability.sh            required tier, then the nightly tier (skipped, with a
#                                     message, when no nightly toolchain is installed)
#   scripts/reliability.sh --required only the required tier (stable toolchain)
#   scripts/reliability.sh --nightly  only the nightly tier (TSan, Miri, cargo-fuzz)
#   scripts/reliability.sh --long     the long mode: 10^8-item soak and longer everything
#
# Env: PMAP_REL_SEED  seed for every seeded driver (default: a fresh one, printed at the end)
#      PMAP_REL_SKIP  comma-separated step names to skip, e.g. valgrind-ctests,bindings-cpp
#                     when the caller (scripts/test.sh) already ran those
#      PMAP_REL_OUT   binaries, logs and summary.txt (default target/reliability)
#
# Every step runs under `timeout`, so a hang fails that step instead of stalling CI. All
# steps run even after a failure; the exit status is 1 when any failed. Each step's output
# is in $PMAP_REL_OUT/logs/<step>.log; the drivers' summary lines are copied to summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

tier=all
long=0
for arg in "$@"; do
  case "$arg" in
    --required) tier=required ;;
    --nightly) tier=nightly ;;
    --long) long=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "reliability.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

out="${PMAP_REL_OUT:-target/reliability}"
case "$out" in /*) ;; *) out="$root/$out" ;; esac
logs="$out/logs"
mkdir -p "$logs" "$out/plain" "$out/asan" "$out/neg" "$out/tsan"
summary="$out/summary.txt"
: > "$summary"
seed="${PMAP_REL_SEED:-$(( ($(date +%s%N) / 1000) % 1000000000000 ))}"
skip=",${PMAP_REL_SKIP:-},"
failures=()
suite_t0=$(date +%s)

# Sizes: CI (default) and --long.
if [ "$long" = 1 ]; then
  soak_items=1e8 soak_runs=10000 soak_limit=10800
  cancels=10000 forks=2000 signal_items=1e7
  asan_items=1e7 vg_items=1e6 tsan_items=1e7
  fuzz_secs=1800 miri_seeds=0..16
else
  soak_items=1e7 soak_runs=1000 soak_limit=300
  cancels=1000 forks=200 signal_items=1e6
  asan_items=1e6 vg_items=1e5 tsan_items=1e6
  fuzz_secs=120 miri_seeds=0..4
fi

triple=x86_64-unknown-linux-gnu
plain_lib="$root/target/release"
fault_lib="$root/target/fault/release"
tsan_lib="$root/target/tsan/$triple/release"
cflags="-std=c11 -Wall -Wextra -Werror -pthread -g -Iinclude -Ic-tests"
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
vg="valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect --fair-sched=yes"
drivers="soak cancel process fork_storm"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export out seed plain_lib fault_lib tsan_lib cflags san vg drivers triple
export soak_items soak_runs cancels forks signal_items asan_items vg_items tsan_items fuzz_secs miri_seeds

banner() { printf '\n== %s\n' "$*"; }

# Whether `nm`/`readelf` output of FILE matches PATTERN. (Not `nm | grep -q`: with pipefail,
# grep -q exiting early kills nm with SIGPIPE and the pipeline reads as a failure.)
has() { # has FILE PATTERN TOOL [ARGS...]
  local f=$1 pat=$2 o
  shift 2
  o=$("$@" "$f" 2>/dev/null) || return 1
  grep -q -- "$pat" <<<"$o"
}

# Inside a step: run one part, note a failure, go on with the next part.
part() {
  local name=$1
  shift
  echo "-- part: $name"
  if "$@"; then
    echo "-- part ok: $name"
  else
    local rc=$?
    echo "-- part FAILED (exit $rc): $name"
    part_failures+=("$name")
  fi
}
# Inside a step: the command must fail and print the pattern (the tool or check fired).
expect_report() {
  local pat=$1
  shift
  local o rc
  o=$("$@" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$pat" <<<"$o"; then
    return 0
  fi
  echo "NOT reported (exit $rc, wanted '$pat'); output:"
  tail -n 20 <<<"$o"
  return 1
}

# run_step NAME LIMIT_S FUNCTION: runs FUNCTION in a fresh bash under timeout, logs it,
# records its status and wall time, and copies the drivers' summary lines.
run_step() {
  local name=$1 limit=$2 fn=$3
  if [[ "$skip" == *",$name,"* ]]; then
    printf '%-18s SKIPPED (PMAP_REL_SKIP)\n' "$name" | tee -a "$summary"
    return 0
  fi
  local log="$logs/$name.log" t0 t1 rc secs status=ok
  t0=$(date +%s.%N)
  timeout -k 10 "$limit" bash -c "set -uo pipefail; cd '$root'; part_failures=();
    $(declare -f has part expect_report "$fn")
    $fn; rc=\$?
    if [ \${#part_failures[@]} -gt 0 ]; then echo \"failed parts: \${part_failures[*]}\"; exit 1; fi
    exit \$rc" > "$log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if [ $rc -ne 0 ]; then
    status="FAIL (exit $rc$([ $rc -eq 124 ] && echo ", timed out after ${limit} s"))"
    failures+=("$name")
  fi
  printf '%-18s %-8s %7s s\n' "$name" "$status" "$secs" | tee -a "$summary"
  grep -E '^(soak summary|soak signals|soak canary|cancel (deterministic|random)|fork_storm:|process: [0-9]|fault_panic: [0-9]|negative:|sanitizer runtime:|miri:|fuzz:|tsan:|test result:|Done [0-9]+ runs|failed parts:|-- part FAILED)' "$log" \
    | sed 's/^/    /' | tee -a "$summary" || true
  if [ $rc -ne 0 ]; then
    echo "---- last 40 lines of $log ----"
    tail -n 40 "$log"
    echo "----"
  fi
}

skipped() { printf '%-18s SKIPPED (%s)\n' "$1" "$2" | tee -a "$summary"; }

# ---------------------------------------------------------------------------------------
# Required tier
# ---------------------------------------------------------------------------------------

step_setup() { scripts/setup.sh; }

step_build() {
  set -e
  cargo build --release
  CARGO_TARGET_DIR=target/fault cargo build --release --features fault-injection
}

step_compile() {
  set -e
  for d in $drivers; do
    gcc $cflags -O2 "reliability/$d.c" -o "$out/plain/$d" -L"$plain_lib" -Wl,-rpath,"$plain_lib" -lpmap
    gcc $cflags -O1 $san "reliability/$d.c" -o "$out/asan/$d" -L"$plain_lib" -Wl,-rpath,"$plain_lib" -lpmap
  done
  # No rpath: each child it starts gets LD_LIBRARY_PATH=<the library under test>.
  gcc $cflags -O2 reliability/fault_panic.c -o "$out/plain/fault_panic" -L"$fault_lib" -lpmap
  for t in double_free leak; do
    gcc -g -O0 "reliability/negative/$t.c" -o "$out/neg/$t"
    gcc -g -O0 $san "reliability/negative/$t.c" -o "$out/neg/$t.asan"
  done
  gcc -g -O0 $san reliability/negative/ub.c -o "$out/neg/ub.asan"
  gcc -g -O0 -Iinclude reliability/negative/pmap_double_free.c -o "$out/neg/pmap_double_free" \
    -L"$plain_lib" -Wl,-rpath,"$plain_lib" -lpmap
  # The sanitizer builds really carry the runtimes.
  for d in $drivers; do
    local b="$out/asan/$d"
    has "$b" '__asan_init' nm || { echo "$b: no __asan_init"; exit 1; }
    has "$b" '__ubsan_handle_' nm || { echo "$b: no UBSan handlers"; exit 1; }
    has "$b" 'NEEDED.*libasan' readelf -d || { echo "$b: not linked to libasan"; exit 1; }
  done
  echo "sanitizer runtime: the ASan builds of reliability/{${drivers// /,}} reference __asan_init and __ubsan_handle_* and load libasan"
}

step_negative() {
  neg() { # neg DESCRIPTION PATTERN COMMAND...
    local what=$1
    shift
    if expect_report "$@"; then
      echo "negative: $what: reported, as it must be"
    else
      echo "negative: $what: NOT REPORTED"
      return 1
    fi
  }
  part vg-double-free neg 'valgrind sees a double free' 'Invalid free' $vg "$out/neg/double_free"
  part vg-leak neg 'valgrind sees a definite leak' 'definitely lost' $vg "$out/neg/leak"
  part vg-pmap-free-twice neg 'valgrind sees pmap_free twice, inside libpmap' 'Invalid read' $vg "$out/neg/pmap_double_free"
  part asan-double-free neg 'ASan sees a double free' 'attempting double-free' "$out/neg/double_free.asan"
  part lsan-leak neg 'LeakSanitizer sees a leak' 'detected memory leaks' "$out/neg/leak.asan"
  part ubsan neg 'UBSan sees signed overflow' 'runtime error' "$out/neg/ub.asan"
  part ledger-lost neg 'the soak ledger sees a lost item' 'came back 0 times' "$out/plain/soak" --selftest-ledger=lost --seed "$seed"
  part ledger-dup neg 'the soak ledger sees a duplicate' 'came back 2 times' "$out/plain/soak" --selftest-ledger=dup --seed "$seed"
}

step_soak() { "$out/plain/soak" --items "$soak_items" --runs "$soak_runs" --seed "$seed"; }
step_cancel() { "$out/plain/cancel" --cancels "$cancels" --seed "$seed"; }
step_process() {
  part process "$out/plain/process"
  part fault-panic env LD_LIBRARY_PATH="$fault_lib" "$out/plain/fault_panic" --fault-lib "$fault_lib" --plain-lib "$plain_lib"
}
step_fork_storm() { "$out/plain/fork_storm" --forks "$forks" --seed "$seed"; }
step_signal_storm() { "$out/plain/soak" --signals --items "$signal_items" --runs 100 --seed "$seed"; }

step_asan_ctests() {
  set -e
  # fork: skipped under ASan only, for the libasan fork() hazard described in step_asan_drivers
  # (it runs plain in every `cargo test` and under valgrind below).
  PMAP_C_TEST_SKIP=fork PMAP_C_TEST_CFLAGS="$san" cargo test --release --test c_programs
  local n=0
  for b in target/release/c-tests/*; do
    [ -x "$b" ] && [ "${b##*/}" != fork ] || continue
    has "$b" '__asan_init' nm || { echo "$b: no __asan_init"; exit 1; }
    has "$b" '__ubsan_handle_' nm || { echo "$b: no UBSan handlers"; exit 1; }
    n=$((n + 1))
  done
  echo "sanitizer runtime: all $n c-tests binaries reference __asan_init and __ubsan_handle_*"
}

step_asan_drivers() {
  part soak "$out/asan/soak" --items "$asan_items" --runs 200 --seed "$seed"
  part cancel "$out/asan/cancel" --cancels 300 --seed "$seed"
  part process "$out/asan/process"
  part signal-storm "$out/asan/soak" --signals --items 100000 --runs 20 --seed "$seed"
  # Not fork_storm: gcc 12's libasan does not hold its allocator locks across fork(), so a
  # child can inherit a locked size-class mutex from a parent thread and hang in malloc
  # (seen: every child thread parked in SizeClassAllocator64::GetFromAllocator). The fork
  # storm runs plain; c-tests/fork.c runs under ASan and valgrind. See RELIABILITY.md.
}

step_valgrind_ctests() {
  PMAP_C_TEST_WRAPPER="valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect" \
    cargo test --release --test c_programs
}

step_valgrind_drivers() {
  export PMAP_WATCHDOG_SCALE=10
  part soak $vg "$out/plain/soak" --items "$vg_items" --runs 40 --seed "$seed"
  part cancel $vg "$out/plain/cancel" --cancels 100 --seed "$seed"
  part process $vg "$out/plain/process" --skip stats_consistent
}

step_header() { cargo test --release --test header; }
step_bindings_cpp() { bindings/cpp/run_tests.sh; }
step_bindings_go() { bindings/go/run_tests.sh; }

required_tier() {
  banner "required tier (stable): build"
  run_step setup 900 step_setup
  run_step build 1200 step_build
  if [[ " ${failures[*]-} " == *" build "* ]]; then
    echo "the library did not build: stopping the required tier" >&2
    return
  fi
  run_step compile 600 step_compile

  banner "required tier: negative tests (the tools and the ledger can fail)"
  run_step negative 300 step_negative

  banner "required tier: soak, cancel, process-level, fork and signal storms"
  run_step soak "$soak_limit" step_soak
  run_step cancel 600 step_cancel
  run_step process 300 step_process
  run_step fork-storm 600 step_fork_storm
  run_step signal-storm 600 step_signal_storm

  banner "required tier: AddressSanitizer + UBSan + LeakSanitizer (C side, release library)"
  run_step asan-ctests 1200 step_asan_ctests
  run_step asan-drivers 1200 step_asan_drivers

  banner "required tier: valgrind memcheck"
  run_step valgrind-ctests 1800 step_valgrind_ctests
  run_step valgrind-drivers 1800 step_valgrind_drivers

  banner "required tier: header and ABI checks (tests/header.rs), bindings"
  run_step header 900 step_header
  if [ -x bindings/cpp/run_tests.sh ]; then
    run_step bindings-cpp 1800 step_bindings_cpp
  else
    skipped bindings-cpp "bindings/cpp/run_tests.sh not present"
  fi
  if [ -x bindings/go/run_tests.sh ]; then
    run_step bindings-go 1800 step_bindings_go
  else
    skipped bindings-go "bindings/go/run_tests.sh not present"
  fi
}

# ---------------------------------------------------------------------------------------
# Nightly tier
# ---------------------------------------------------------------------------------------

step_nightly_setup() {
  set -e
  have() { rustup component list --toolchain nightly --installed 2>/dev/null | grep -q "^$1"; }
  if ! have miri || ! have rust-src; then
    rustup component add miri rust-src --toolchain nightly
  fi
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  rustc +nightly --version
}

step_tsan_build() {
  set -e
  RUSTFLAGS='-Zsanitizer=thread' CARGO_TARGET_DIR=target/tsan \
    cargo +nightly build -Zbuild-std --target "$triple" --release
  has "$tsan_lib/libpmap.so" '__tsan_func_entry' nm -D || { echo 'libpmap.so is not instrumented'; exit 1; }
  local rt
  rt="$(rustc +nightly --print sysroot)/lib/rustlib/$triple/lib/librustc-nightly_rt.tsan.a"
  for d in soak cancel; do
    # gcc compiles with -fsanitize=thread; rustc's own TSan runtime is linked (gcc's and
    # clang's runtimes lack symbols current rustc emits, see RELIABILITY.md).
    gcc $cflags -O1 -fsanitize=thread -c "reliability/$d.c" -o "$out/tsan/$d.o"
    gcc "$out/tsan/$d.o" -o "$out/tsan/$d" -L"$tsan_lib" -Wl,-rpath,"$tsan_lib" -lpmap \
      -Wl,--whole-archive "$rt" -Wl,--no-whole-archive -rdynamic -lpthread -ldl -lm -lrt
    has "$out/tsan/$d" ' T __tsan_init' nm || { echo "$d: no TSan runtime"; exit 1; }
  done
  echo 'tsan: libpmap.so built with -Zsanitizer=thread -Zbuild-std; drivers link rustc TSan runtime'
}

step_tsan() {
  export TSAN_OPTIONS='halt_on_error=1 exitcode=66 second_deadlock_stack=1'
  canary() {
    if expect_report 'ThreadSanitizer: data race' "$out/tsan/soak" --canary --seed "$seed"; then
      echo 'tsan: the deliberately racy canary callback is reported (true positive)'
    else
      echo 'tsan: the canary race was NOT reported'
      return 1
    fi
  }
  part canary canary
  part soak "$out/tsan/soak" --items "$tsan_items" --runs 200 --seed "$seed"
  part cancel "$out/tsan/cancel" --cancels 300 --seed "$seed"
}

step_miri() {
  set -e
  MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=$miri_seeds" CARGO_TARGET_DIR=target/miri \
    cargo +nightly miri test --test rel_miri
  echo "miri: tests/rel_miri.rs with -Zmiri-strict-provenance, seeds $miri_seeds: no UB, no leak"
}

step_fuzz() {
  set -e
  rm -rf "$out/fuzz-new"
  mkdir -p "$out/fuzz-new" "$out/fuzz-artifacts"
  cd fuzz
  cargo +nightly fuzz build api_sequence
  # New inputs go to a scratch directory; the committed corpus is only read.
  cargo +nightly fuzz run api_sequence "$out/fuzz-new" corpus/api_sequence -- \
    -max_total_time="$fuzz_secs" -max_len=256 -rss_limit_mb=2048 -timeout=30 \
    -artifact_prefix="$out/fuzz-artifacts/" -print_final_stats=1
  echo "fuzz: api_sequence ran $fuzz_secs s without a crash; corpus $(ls corpus/api_sequence | wc -l) committed + $(ls "$out/fuzz-new" | wc -l) new inputs"
}

nightly_tier() {
  if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "SKIPPED nightly tier: no nightly toolchain (rustup toolchain list)" | tee -a "$summary"
    return 0
  fi
  banner "nightly tier: toolchain components"
  # The components come from rustup's own server, which not every CI machine can reach.
  # A nightly that cannot be equipped is treated like a missing nightly: skipped, loudly.
  if ! timeout 900 bash -c "$(declare -f step_nightly_setup); step_nightly_setup" \
      > "$logs/nightly-setup.log" 2>&1; then
    echo "SKIPPED nightly tier: a nightly is installed but miri/rust-src/cargo-fuzz could not be installed (see $logs/nightly-setup.log)" | tee -a "$summary"
    return 0
  fi
  echo "nightly-setup      ok" | tee -a "$summary"
  banner "nightly tier: ThreadSanitizer (instrumented library + rustc's TSan runtime)"
  run_step tsan-build 1800 step_tsan_build
  if [[ " ${failures[*]-} " != *" tsan-build "* ]]; then
    run_step tsan 1800 step_tsan
  fi
  banner "nightly tier: Miri on tests/rel_miri.rs"
  run_step miri 2400 step_miri
  banner "nightly tier: cargo-fuzz (api_sequence, ${fuzz_secs} s)"
  run_step fuzz $((fuzz_secs + 900)) step_fuzz
}

if [ "$tier" != nightly ]; then
  required_tier
  echo "required tier wall time: $(( $(date +%s) - suite_t0 )) s" | tee -a "$summary"
fi
if [ "$tier" != required ]; then
  nightly_t0=$(date +%s)
  nightly_tier
  echo "nightly tier wall time: $(( $(date +%s) - nightly_t0 )) s" | tee -a "$summary"
fi

echo
echo "seed: $seed (replay: PMAP_REL_SEED=$seed scripts/reliability.sh)" | tee -a "$summary"
if [ ${#failures[@]} -gt 0 ]; then
  echo "reliability: FAILED steps: ${failures[*]} (logs in $logs)" | tee -a "$summary"
  exit 1
fi
echo "reliability: all steps passed (summary: $summary)" | tee -a "$summary"
