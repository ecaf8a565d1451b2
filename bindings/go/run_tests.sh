#!/usr/bin/env bash
# Tests of the Go binding: builds the Rust library, then in bindings/go runs go vet,
# gofmt, `go test -race -count=3`, the forced-GC build (-tags pmap_debug), the strict
# cgo pointer checks (GOEXPERIMENT=cgocheck2), the pkg-config build (-tags
# pmap_pkgconfig, against a pmap.pc for the build tree), and checks that the benchmark
# module and examples/go build and that the example runs.
# Exits non-zero on the first failure. Needs cargo, a C compiler, and Go 1.23 or later
# (on PATH or in /usr/local/go); modules come from the Go proxy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || { echo "run_tests.sh: go not found" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

step "cargo build --release"
(cd "$root" && cargo build --release)

cd "$here"
step "go version: $(go version)"
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "$go_minor" -lt 23 ]; then
	echo "run_tests.sh: Go 1.23 or later is needed (range-over-func iterators)" >&2
	exit 1
fi

step "gofmt -l (must list nothing)"
unformatted=$(gofmt -l . "$root/examples/go")
if [ -n "$unformatted" ]; then
	echo "not gofmt-ed:" >&2
	echo "$unformatted" >&2
	exit 1
fi

step "go vet ./..."
go vet ./...

step "go test -race -count=3 ./..."
go test -race -count=3 ./...

step "go test -race -tags pmap_debug ./... (a garbage collection inside every call)"
go test -race -tags pmap_debug -count=1 ./...

step "GOEXPERIMENT=cgocheck2 go test ./... (no Go pointer is ever stored in C memory)"
GOEXPERIMENT=cgocheck2 go test -count=1 ./...

if command -v pkg-config >/dev/null 2>&1; then
	step "go test -tags pmap_pkgconfig (pmap.pc for the build tree)"
	pc=$(mktemp -d)
	trap 'rm -rf "$pc"' EXIT
	cat >"$pc/pmap.pc" <<PC
Name: pmap
Description: pmap from the build tree ($root)
Version: 0
Libs: -L$root/target/release -lpmap -Wl,-rpath,$root/target/release
Cflags: -I$root/include
PC
	PKG_CONFIG_PATH="$pc" go vet -tags pmap_pkgconfig ./...
	PKG_CONFIG_PATH="$pc" go test -tags pmap_pkgconfig -count=1 -run 'TestMapOrdered|TestMapCOrdered|Example' ./...
else
	step "skipped: the pmap_pkgconfig build (no pkg-config)"
fi

step "bench module: go vet (the benchmarks compile)"
(cd bench && go vet ./...)

step "examples/go: go vet and go run"
(cd "$root/examples/go" && go vet ./... && go run -buildvcs=false .)

step "Go binding: all checks passed"
