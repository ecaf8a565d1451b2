// Package pmap is the Go binding of pmap, a streaming, ordered, bounded and cancellable
// parallel map whose engine is a Rust library with a C ABI (include/pmap.h). C, C++ and
// Go programs get the same semantics from it.
//
// # Two ways to use it
//
// Go functions. Map runs a func(T) (R, error) over an iter.Seq on pmap's worker threads
// and yields the results in input order (or as they finish, WithOrdered(false)); Pool is
// the push/pull form (Submit, Close, Next, Cancel, Stats) for several producers and
// consumers. Every item crosses into C and back as a cgo.Handle, and each item (or each
// chunk, WithChunk) costs a call from a C worker thread into Go: this path is for work
// that outweighs that (roughly a microsecond and up), or for chunks of cheap work.
//
//	for sq, err := range pmap.Map(ctx, slices.Values(inputs), func(x int) (int, error) {
//		return x * x, nil
//	}) {
//		...
//	}
//
// C functions. MapC and CPool run a C work function (a pmap_work_fn, for instance from a
// legacy C library, taken from a cgo preamble) over machine words that Go supplies. Items
// travel in chunks of C memory, submitted with pmap_submit_many and collected with
// pmap_next_many, and a C shim calls the function on each item of a chunk on the worker
// thread: Go and C are crossed once per batch, not once per item, and no Go code runs on
// the workers.
//
// # Semantics
//
//   - Ordered by default: results come back in submission order, each with its index.
//   - Bounded: at most the capacity (WithCapacity) of items, or chunks, are in flight:
//     submitted and not yet taken by Next. Submit waits while the pool is full, so an
//     endless input runs in constant memory.
//   - Errors are per item (Result.Err, CResult.Err, or the error of Map's pair); an
//     error does not stop the map unless WithFailFast. A panic in a Go function is
//     recovered on the worker thread and becomes that item's *PanicError, with the panic
//     value and stack; it never crosses into C.
//   - Cancellable: Cancel stops a pool (items not started come back with ErrCancelled).
//     Map and MapC stop, and release everything before they return, when the loop breaks
//     or their context is done. A context passed to Submit or Next bounds only that
//     wait and leaves the pool running.
//   - Every item comes back exactly once (Pool, CPool): as a result, or as a cancelled
//     result after Cancel.
//
// # Resources
//
// A pool releases its C resources (worker threads, memory, handles) by itself once it is
// done: input closed and every item back from C, or cancelled. Done reports when that
// has happened. Results not yet taken stay available in Go. A Pool or CPool that is
// dropped while still running is cancelled by a finalizer, a safety net only. Close and
// Cancel are idempotent and never wait.
//
// # Threads and blocking
//
// Only one goroutine per pool, its collector, waits inside C; Submit and Next wait in
// Go, where a context can end the wait. Go functions run on pmap's threads, which the
// Go runtime adopts for the duration of each call; they must not call runtime.Goexit
// (t.FailNow in tests). A goroutine that both submits and consumes must not Submit to
// a full pool, and neither must a function submitting to its own pool: bound the wait
// with a context, or use separate goroutines.
//
// # Building and linking
//
// The package uses cgo. In this repository it builds after `cargo build --release` at
// the root: it takes the header from include/ and links target/release/libpmap.so with
// an rpath, so nothing needs to be set. Elsewhere either
//
//   - build with -tags pmap_pkgconfig to use `pkg-config pmap` (an installed pmap: set
//     PKG_CONFIG_PATH to <prefix>/lib/pkgconfig if it is not in a default place), or
//   - add the paths by hand: CGO_CFLAGS=-I<dir of pmap.h> and
//     CGO_LDFLAGS="-L<dir of libpmap.so> -Wl,-rpath,<same dir>".
//
// # Tests
//
// run_tests.sh builds the library and runs go vet, gofmt, `go test -race -count=3` and
// the same tests built with -tags pmap_debug, which forces a garbage collection inside
// every call so that a missing runtime.KeepAlive shows up as a pool released under a
// running call. Every test checks that no cgo.Handle, C chunk buffer or goroutine is
// left when it ends.
package pmap
