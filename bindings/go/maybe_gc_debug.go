//go:build pmap_debug

package pmap

import "runtime"

// maybeGC forces a collection (and lets finalizers run) at the points where the binding
// has just read a field out of a wrapper and is about to use it without the wrapper. A
// missing runtime.KeepAlive then lets the wrapper's finalizer cancel the pool under the
// caller's feet, which the tests see. Build with -tags pmap_debug (run_tests.sh does).
func maybeGC() {
	runtime.GC()
	runtime.Gosched()
}
