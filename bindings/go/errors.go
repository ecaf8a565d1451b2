package pmap

/*
#include "shims.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/debug"
)

var (
	// ErrDone is returned by Next once the input is closed (or the pool cancelled) and
	// every result has been taken. Every later call returns it again.
	ErrDone = errors.New("pmap: done: every result has been taken")

	// ErrClosed is returned by Submit after Close.
	ErrClosed = errors.New("pmap: input closed")

	// ErrCancelled is returned by Submit after Cancel (or after a fail-fast pool cancelled
	// itself), and is the Err of every item that never ran because of a cancel.
	ErrCancelled = errors.New("pmap: cancelled")
)

// Status is a pmap_status code of the C library.
type Status int32

// The pmap_status codes (include/pmap.h).
const (
	StatusOK        Status = C.PMAP_OK
	StatusDone      Status = C.PMAP_DONE
	StatusTimeout   Status = C.PMAP_TIMEOUT
	StatusClosed    Status = C.PMAP_CLOSED
	StatusCancelled Status = C.PMAP_CANCELLED
	StatusInvalid   Status = C.PMAP_INVALID
	StatusSystem    Status = C.PMAP_SYSTEM
	StatusInternal  Status = C.PMAP_INTERNAL
	StatusForked    Status = C.PMAP_FORKED
)

// String returns the library's name for the code, e.g. "PMAP_INVALID".
func (s Status) String() string {
	return C.GoString(C.pmap_status_str(C.pmap_status(s)))
}

// Error is a failure reported by the C library (for example PMAP_INVALID from pmap_new
// for bad options, or PMAP_FORKED in a forked child).
type Error struct {
	Op     string // the C call, e.g. "pmap_new"
	Status Status // what it returned
	// Message is pmap_last_error() of that call when there is one, e.g.
	// "pmap_new: PMAP_INVALID: workers = 5000 is above the limit of 4096".
	Message string
}

func (e *Error) Error() string {
	if e.Message != "" {
		return "pmap: " + e.Message
	}
	return fmt.Sprintf("pmap: %s: %s", e.Op, e.Status)
}

func statusError(op string, st C.pmap_status) error {
	return &Error{Op: op, Status: Status(st)}
}

// PanicError is the Err of an item whose Go function panicked. The panic was recovered
// on the pool's worker thread and never crossed into C.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack, from runtime/debug.Stack
}

func newPanicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("pmap: panic: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error, so errors.Is and errors.As see it.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// CError is the Err of an item whose C work function returned a non-zero code.
type CError struct {
	Code int32
}

func (e *CError) Error() string {
	return fmt.Sprintf("pmap: C work function failed with code %d", e.Code)
}

// Version returns the version of the pmap library in use, e.g. "0.1.0".
func Version() string {
	return C.GoString(C.pmap_version())
}
