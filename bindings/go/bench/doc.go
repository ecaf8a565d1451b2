// Package bench compares the pmap Go binding with plain goroutine pipelines. It is a
// module of its own so that its dependencies (golang.org/x/sync, sourcegraph/conc) are
// never dependencies of the binding. Run from this directory:
//
//	go test -bench . -run '^$'
//
// See BENCHMARKS.md at the repository root for results and how to read them.
package bench
