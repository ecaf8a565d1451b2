// Package ctestfn holds C work functions for the tests and benchmarks of the pmap Go
// binding. It is internal: only this module's tests import it, so no user binary links
// it.
package ctestfn

/*
#include "ctestfn.h"
*/
import "C"

import "unsafe"

// Square maps x to x*x.
var Square = unsafe.Pointer(C.ctest_square)

// FailOdd fails odd items with code 7 and maps even x to x+1.
var FailOdd = unsafe.Pointer(C.ctest_fail_odd)

// Spin burns the iteration count behind its ctx (see NewIters), then maps x to 3x.
var Spin = unsafe.Pointer(C.ctest_spin)

// Gated returns its item once OpenGate(true) is called (or after 5 s).
var Gated = unsafe.Pointer(C.ctest_gated)

// CountingInit, CountingExit and CountingWork count worker starts, stops and items.
var (
	CountingInit = unsafe.Pointer(C.ctest_counting_init)
	CountingExit = unsafe.Pointer(C.ctest_counting_exit)
	CountingWork = unsafe.Pointer(C.ctest_counting_work)
)

// OpenGate opens or closes the gate of Gated.
func OpenGate(open bool) {
	v := C.int(0)
	if open {
		v = 1
	}
	C.ctest_set_gate(v)
}

// GatedCalls returns how many times Gated ran since ResetGatedCalls.
func GatedCalls() int64 { return int64(C.ctest_gated_calls()) }

// ResetGatedCalls zeroes the count of GatedCalls.
func ResetGatedCalls() { C.ctest_reset_gated_calls() }

// Counts returns the totals of the counting functions.
func Counts() (inits, exits, items int64) {
	return int64(C.ctest_inits()), int64(C.ctest_exits()), int64(C.ctest_items_by_state())
}

// Iters is C memory holding an iteration count for Spin.
type Iters struct{ p *C.uint64_t }

// NewIters allocates the ctx of Spin.
func NewIters(n uint64) Iters { return Iters{C.ctest_new_iters(C.uint64_t(n))} }

// Ptr is the ctx to pass with Spin.
func (it Iters) Ptr() unsafe.Pointer { return unsafe.Pointer(it.p) }

// Free releases the count.
func (it Iters) Free() { C.ctest_free_iters(it.p) }

// CallSpin runs Spin on one item with one cgo call, as a Go program would without pmap.
func (it Iters) CallSpin(item uintptr) uintptr {
	return uintptr(C.ctest_call_spin(it.p, C.uintptr_t(item)))
}
