package pmap

// The //export trampolines C calls into. They live alone in this file: a cgo file with
// //export may only declare C functions in its preamble (shims.c defines the C side).
// Neither lets a Go panic reach C: the work function's own panics are recovered in
// goPool.work and become the item's error; anything else is caught here.

/*
#include "shims.h"
*/
import "C"

import "runtime/cgo"

// worker is the Go state of a Go-callback pool, which C reaches through the pool's ctx
// (a cgo.Handle).
type worker interface {
	// work runs one item (a handle) and returns 0 or a PMAPGO_ERR_* code.
	work(item uintptr) int32
	// drop releases an item pmap_free found never handed back.
	drop(item uintptr)
}

// pmapgoWork is the pool's work function; it runs on a pool worker thread.
//
//export pmapgoWork
func pmapgoWork(ctx, item C.uintptr_t) (code C.int32_t) {
	defer func() {
		if recover() != nil {
			code = C.PMAPGO_ERR_INTERNAL
		}
	}()
	return C.int32_t(cgo.Handle(ctx).Value().(worker).work(uintptr(item)))
}

// pmapgoDrop is the pool's on_drop; it runs inside pmap_free, on the collector's thread.
//
//export pmapgoDrop
func pmapgoDrop(ctx, item C.uintptr_t) {
	defer func() {
		// Only a bug can panic here (a handle that is not ours); C must not see it.
		_ = recover()
	}()
	cgo.Handle(ctx).Value().(worker).drop(uintptr(item))
}
