#!/usr/bin/env bash
# Every test of the project, in one command. Fails on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

scripts/setup.sh

step "format and lint"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings

step "Rust unit tests, header checks, soak (10^6 items) and C tests, release build"
cargo test --release

step "debug build: the same tests with debug assertions (shorter soak)"
PMAP_SOAK_ITEMS=200000 cargo test

step "C tests under valgrind memcheck"
PMAP_C_TEST_WRAPPER="valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect" \
  cargo test --release --test c_programs

step "pgzip round trips through gunzip"
examples/test_pgzip.sh

step "C++ binding (GoogleTest, plain and ASan/UBSan)"
bindings/cpp/run_tests.sh

step "Go binding (vet, gofmt, go test -race)"
bindings/go/run_tests.sh

step "install into a temporary prefix: soname, exports, versions, four consumer builds"
scripts/install_test.sh

step "all tests passed"
