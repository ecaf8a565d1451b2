//go:build !pmap_debug

package pmap

// maybeGC does nothing in normal builds; see maybe_gc_debug.go.
func maybeGC() {}
