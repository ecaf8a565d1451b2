package pmap

/*
#include <stdlib.h>
#include "shims.h"
*/
import "C"

import (
	"context"
	"sync/atomic"
	"time"
	"unsafe"
)

// engine owns one C pool and the Go machinery around it, shared by the Go-callback and
// the C-function paths:
//
//   - producers take an admission slot (tokens) before they submit, so Submit waits in
//     Go, where ctx can end the wait; the C call then never has to wait;
//   - one collector goroutine takes results out of the pool in batches
//     (pmap_next_many, one cgo call per batch) and hands them to the sink, which queues
//     them for Next; a slot is given back when Next takes its result, so at most
//     `slots` items are in flight, whether in C or in the Go queue;
//   - when the pool is done (input closed or cancelled, every result collected) or
//     abandoned, the collector frees it: it closes the gate, waits for the short calls
//     inside, calls pmap_free (on_drop then releases what never came back) and tells
//     the sink to release the rest.
type engine struct {
	pool      *C.pmap_pool
	chunks    bool // collect with pmapgo_next_chunks (C-function path)
	slots     int  // admission slots: the capacity of the pool
	gate      gate // every C call except the collector's passes through it
	tokens    sem
	input     inputEnd
	abandoned atomic.Bool // nobody will take results: drop them, free at once
	stopping  atomic.Bool // cancelled: a running chunk of Go items stops between items
	sink      sink

	finalReady chan struct{} // closed once final holds the last counters
	final      C.pmap_stats
	done       chan struct{} // closed when everything is released
}

// sink is what a path does with the results the collector takes.
type sink interface {
	// deliver receives each batch; when abandoned it only releases the items.
	deliver(rs []C.pmapgo_result, abandoned bool)
	// finish runs once, after pmap_free, with the collector's error (nil when done).
	finish(err error)
}

// cConfig converts cfg for the shims; free the name with C.free.
func cConfig(cfg *config) C.pmapgo_config {
	c := C.pmapgo_config{
		workers:   C.uint32_t(cfg.workers),
		capacity:  C.uint32_t(cfg.capacity),
		ordered:   C.bool(cfg.ordered),
		fail_fast: C.bool(cfg.failFast),
	}
	if cfg.name != "" {
		c.name = C.CString(cfg.name)
	}
	return c
}

// newError builds the error of a failed pmapgo_new_* call from its copied message.
func newError(st C.pmap_status, msg []C.char) error {
	return &Error{Op: "pmap_new", Status: Status(st), Message: C.GoString(&msg[0])}
}

// startEngine wraps a new pool and starts its collector. chunk is the number of items
// per pool item (1 unless the path packs items into chunks).
func startEngine(pool *C.pmap_pool, chunks bool, chunk int, cfg *config, s sink) *engine {
	e := &engine{
		pool:       pool,
		chunks:     chunks,
		gate:       newGate(),
		input:      newInputEnd(),
		sink:       s,
		finalReady: make(chan struct{}),
		done:       make(chan struct{}),
	}
	e.slots = cfg.capacity
	if e.slots == 0 {
		// Single items: the library's default, max(4096, 256 × workers) (pmap.h,
		// pmap_options.capacity). Chunks hold cheap items, which need a deeper window to
		// hide the hand-offs between threads: 16 × max(1024, 256 × workers) items
		// (measured: chunks of 64 trivial items run 3x faster with 256 chunks in flight
		// than with 16; the base is the library's old default, which set that scale), and
		// at least 8 chunks per worker, so that every worker stays busy even behind a
		// slow chunk at the head of an ordered map. The library itself was given
		// capacity 0: were its default ever smaller than this, submit would still work
		// (it retries; see submit).
		var st C.pmap_stats
		C.pmap_stats_get(pool, &st)
		workers := max(1, int(st.workers))
		if chunk <= 1 {
			e.slots = max(4096, 256*workers)
		} else {
			items := 16 * max(1024, 256*workers)
			e.slots = max(8*workers, (items+chunk-1)/chunk)
		}
	}
	e.tokens.avail = e.slots
	go e.collect(min(e.slots, 1024))
	return e
}

// collect is the pool's only consumer in C; see engine.
func (e *engine) collect(batch int) {
	buf := make([]C.pmapgo_result, batch)
	var err error
	for {
		var got C.size_t
		var st C.pmap_status
		// SAFETY of the Go memory: buf holds no Go pointers and is an argument of the
		// call, so it stays put until the call returns.
		if e.chunks {
			st = C.pmapgo_next_chunks(e.pool, &buf[0], C.size_t(len(buf)), &got, -1)
		} else {
			st = C.pmapgo_next_many(e.pool, &buf[0], C.size_t(len(buf)), &got, -1)
		}
		if got > 0 {
			e.sink.deliver(buf[:got], e.abandoned.Load())
		}
		if st == C.PMAP_DONE {
			break
		}
		if st != C.PMAP_OK {
			err = statusError("pmap_next_many", st)
			break
		}
		if e.abandoned.Load() && !e.chunks {
			// pmap_free hands what is left to on_drop. The C-function path has no
			// on_drop (its items are chunks that Go must get back), so it drains: after
			// the cancel, the rest comes back at once or when the running chunks stop.
			break
		}
		maybeGC()
	}
	e.release(err)
}

// release frees the pool; it runs on the collector goroutine.
func (e *engine) release(err error) {
	if err != nil {
		// The collector failed (PMAP_FORKED, PMAP_INTERNAL, ...): end the input so that
		// producers waiting for a slot give up. Otherwise the pool is done, which it
		// only is once the input was closed or cancelled.
		e.stopping.Store(true)
		e.input.end(ErrCancelled)
	}
	e.gate.close()
	C.pmap_stats_get(e.pool, &e.final)
	close(e.finalReady)
	// Cancels, waits for running items, calls on_drop for the rest, joins the threads.
	C.pmap_free(e.pool)
	e.sink.finish(err)
	close(e.done)
}

// ended is the error for a producer that finds the input ended or the pool freed.
func (e *engine) ended() error {
	if why := e.input.why(); why != nil {
		return why
	}
	return ErrCancelled // freed after an error of the collector
}

// acquire takes between 1 and n admission slots.
func (e *engine) acquire(ctx context.Context, n int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	select {
	case <-e.input.ch:
		return 0, e.ended()
	default:
	}
	got, err := e.tokens.acquire(ctx, e.input.ch, n)
	if err == errStopped {
		err = e.ended()
	}
	return got, err
}

// submitRetry is how long submit sleeps before it tries again when the library found no
// room despite the slot the caller holds (possible only if the library's default
// capacity were smaller than the one assumed in startEngine).
const submitRetry = 100 * time.Microsecond

// submit runs call (a pmap_submit* that does not wait) through the gate. The caller
// holds admission slots for what it submits, so the pool has room; should the library
// still time out, call is retried after short sleeps, outside the gate and any lock,
// until ctx ends. Returns nil when everything was accepted.
func (e *engine) submit(ctx context.Context, call func() C.pmap_status) error {
	for {
		if !e.gate.enter() {
			return e.ended()
		}
		st := call()
		e.gate.leave()
		switch st {
		case C.PMAP_OK:
			return nil
		case C.PMAP_CLOSED:
			return ErrClosed
		case C.PMAP_CANCELLED:
			return ErrCancelled
		case C.PMAP_TIMEOUT:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-e.input.ch:
				return e.ended()
			case <-time.After(submitRetry):
			}
		default:
			return statusError("pmap_submit", st)
		}
	}
}

// closeInput ends the input (pmap_close): the pool finishes what it has, then is done.
func (e *engine) closeInput() {
	e.input.end(ErrClosed)
	if e.gate.enter() {
		C.pmap_close(e.pool)
		e.gate.leave()
	}
}

// cancel stops the pool (pmap_cancel): items not started come back cancelled.
func (e *engine) cancel() {
	e.stopping.Store(true)
	e.input.end(ErrCancelled)
	if e.gate.enter() {
		C.pmap_cancel(e.pool)
		e.gate.leave()
	}
}

// abandon cancels and lets the collector drop every result and free the pool at once.
func (e *engine) abandon() {
	e.abandoned.Store(true)
	e.cancel()
}

// stats reads the library's counters (the last ones read, once the pool is freed).
func (e *engine) stats() Stats {
	if e.gate.enter() {
		var s C.pmap_stats
		C.pmap_stats_get(e.pool, &s)
		e.gate.leave()
		return statsFromC(&s)
	}
	<-e.finalReady
	return statsFromC(&e.final)
}

// freeCString frees a C string made by cConfig.
func freeCString(s *C.char) {
	if s != nil {
		C.free(unsafe.Pointer(s))
	}
}
