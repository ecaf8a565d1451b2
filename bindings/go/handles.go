package pmap

import (
	"runtime/cgo"
	"sync/atomic"
)

// liveHandles counts the cgo.Handles this package holds. Every handle is made by
// newHandle and deleted, exactly once, by takeHandle; the tests check the count is zero
// after each of them.
var liveHandles atomic.Int64

// newHandle wraps v in a cgo.Handle that C may carry as an integer.
func newHandle(v any) cgo.Handle {
	liveHandles.Add(1)
	return cgo.NewHandle(v)
}

// takeHandle returns the value behind h and deletes h.
func takeHandle(h cgo.Handle) any {
	v := h.Value()
	h.Delete()
	liveHandles.Add(-1)
	return v
}

// droppedItems counts the items pmap_free handed to on_drop (for the tests).
var droppedItems atomic.Int64
