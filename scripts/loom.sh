#!/usr/bin/env bash
# Model-check the pipeline protocol with loom (tests/loom.rs) at preemption bound 2.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom -- --test-threads=1
