package pmap

/*
#include "shims.h"
*/
import "C"

import (
	"context"
	"errors"
	"runtime/cgo"
	"sync/atomic"
)

// goPool is the state of a Go-callback pool (Pool and Map). C reaches it through
// ctxHandle, the pool's ctx; each pool item is the cgo.Handle of a box. Handles are
// deleted exactly once: by deliver (the result path), by drop (pmap_free's on_drop),
// or by submitBox when the pool refused the item. The public Pool wraps goPool so that
// a finalizer can notice when the user lets go.
type goPool[T, R any] struct {
	e         *engine
	fn        func(T) (R, error)
	failFast  bool
	ctxHandle cgo.Handle
	q         queue[entry[R]]
	taken     atomic.Uint64 // results handed out by next
	scratch   []entry[R]    // the collector's batch
}

// entry is a queued result; last marks the final item of its box, whose admission slot
// is given back when that item is taken.
type entry[R any] struct {
	res  Result[R]
	last bool
}

// box is one pool item: a single item (Pool.Submit, Map) or a chunk of items (Map with
// WithChunk). Its cgo.Handle is what C carries.
type box[T, R any] struct {
	in      []T
	out     []R
	errs    []error // per item; allocated at the first failure
	base    uint64  // index of in[0] for a chunk; a single item takes the pool's index
	chunked bool
	// ran is set by the worker after it wrote out and errs, and read by the collector
	// before it reads them: the C pool orders the two, but neither Go's memory model nor
	// the race detector sees through C.
	ran atomic.Bool
	// Storage of a single item, so that it costs one allocation.
	oneIn  [1]T
	oneOut [1]R
}

func newSingleBox[T, R any](v T) *box[T, R] {
	b := &box[T, R]{}
	b.oneIn[0] = v
	b.in = b.oneIn[:]
	b.out = b.oneOut[:]
	return b
}

func newChunkBox[T, R any](base uint64, size int) *box[T, R] {
	return &box[T, R]{in: make([]T, 0, size), base: base, chunked: true}
}

func (b *box[T, R]) setErr(i int, err error) {
	if b.errs == nil {
		b.errs = make([]error, len(b.in))
	}
	b.errs[i] = err
}

// newGoPool starts a pool; chunk is the number of items per box (1 for Pool).
func newGoPool[T, R any](fn func(T) (R, error), cfg *config, chunk int) (*goPool[T, R], error) {
	if fn == nil {
		return nil, errors.New("pmap: the function is nil")
	}
	s := &goPool[T, R]{fn: fn, failFast: cfg.failFast}
	s.ctxHandle = newHandle(s)
	ccfg := cConfig(cfg)
	defer freeCString(ccfg.name)
	var pool *C.pmap_pool
	var msg [256]C.char
	st := C.pmapgo_new_go(&ccfg, C.uintptr_t(s.ctxHandle), &pool, &msg[0], C.size_t(len(msg)))
	if st != C.PMAP_OK {
		takeHandle(s.ctxHandle)
		return nil, newError(st, msg[:])
	}
	s.e = startEngine(pool, false, chunk, cfg, s)
	maybeGC()
	return s, nil
}

func (s *goPool[T, R]) submit(ctx context.Context, v T) error {
	return s.submitBox(ctx, newSingleBox[T, R](v))
}

// submitBox takes an admission slot and submits b.
func (s *goPool[T, R]) submitBox(ctx context.Context, b *box[T, R]) error {
	if _, err := s.e.acquire(ctx, 1); err != nil {
		return err
	}
	if b.chunked {
		b.out = make([]R, len(b.in))
	}
	h := newHandle(b)
	err := s.e.submit(ctx, func() C.pmap_status {
		return C.pmapgo_submit(s.e.pool, C.uintptr_t(h), 0)
	})
	if err != nil {
		takeHandle(h) // refused: the item is still ours
		s.e.tokens.release(1)
	}
	return err
}

func (s *goPool[T, R]) next(ctx context.Context) (Result[R], error) {
	var e entry[R]
	err := s.q.consume(ctx, func(waiting []entry[R]) int {
		e = waiting[0]
		return 1
	})
	if err != nil {
		return Result[R]{}, err
	}
	if e.last {
		s.release()
	}
	return e.res, nil
}

// take moves up to len(buf) waiting results into buf without giving back their slots:
// the caller calls release for each entry with last set when it hands that result out.
func (s *goPool[T, R]) take(ctx context.Context, buf []entry[R]) (int, error) {
	n := 0
	err := s.q.consume(ctx, func(waiting []entry[R]) int {
		n = copy(buf, waiting)
		return n
	})
	return n, err
}

// release gives back the admission slot of a box whose last result was handed out.
func (s *goPool[T, R]) release() {
	s.taken.Add(1)
	s.e.tokens.release(1)
}

func (s *goPool[T, R]) stats() Stats {
	taken := s.taken.Load() // before the library's counters, so InFlight cannot go negative
	st := s.e.stats()
	st.InFlight = st.Submitted - taken
	return st
}

// work runs a box on a pool worker thread (called by pmapgoWork). Returns 0, or the
// code of its first failed item so that the pool counts it failed (and fail_fast acts).
func (s *goPool[T, R]) work(item uintptr) (code int32) {
	b := cgo.Handle(item).Value().(*box[T, R])
	defer b.ran.Store(true) // after out and errs are final
	for i := range b.in {
		if i > 0 && s.e.stopping.Load() {
			// Cancelled: the rest of the chunk never runs, as queued items would not.
			for j := i; j < len(b.in); j++ {
				b.setErr(j, ErrCancelled)
			}
			break
		}
		if c := s.call(b, i); c != 0 && code == 0 {
			code = c
			if s.failFast && b.chunked {
				s.e.cancel() // stop the rest of this chunk and the queued ones now
			}
		}
	}
	return code
}

// call runs the function on one item of b, turning a panic into the item's error.
func (s *goPool[T, R]) call(b *box[T, R], i int) (code int32) {
	defer func() {
		if v := recover(); v != nil {
			b.setErr(i, newPanicError(v))
			code = C.PMAPGO_ERR_PANIC
		}
	}()
	out, err := s.fn(b.in[i])
	if err != nil {
		b.setErr(i, err)
		return C.PMAPGO_ERR_FN
	}
	b.out[i] = out
	return 0
}

// drop runs inside pmap_free, called by pmapgoDrop.
func (s *goPool[T, R]) drop(item uintptr) {
	takeHandle(cgo.Handle(item))
	droppedItems.Add(1)
}

// errNotRun is the error of an item the binding failed to run (a bug).
var errNotRun = &Error{Op: "work", Status: StatusInternal, Message: "the Go binding could not run the item"}

// deliver runs on the collector goroutine: it turns each result's handle back into its
// box (deleting the handle) and queues the box's results for next.
func (s *goPool[T, R]) deliver(rs []C.pmapgo_result, abandoned bool) {
	out := s.scratch[:0]
	for i := range rs {
		r := &rs[i]
		b := takeHandle(cgo.Handle(r.item)).(*box[T, R])
		if abandoned {
			continue
		}
		base := uint64(r.index)
		if b.chunked {
			base = b.base
		}
		ran := b.ran.Load()
		for j := range b.in {
			res := Result[R]{Index: base + uint64(j)}
			switch {
			case r.status == C.PMAP_ITEM_CANCELLED:
				res.Err = ErrCancelled
			case !ran || (r.status != C.PMAP_ITEM_OK && r.status != C.PMAP_ITEM_FAILED):
				res.Err = errNotRun
			case b.errs != nil && b.errs[j] != nil:
				res.Err = b.errs[j]
			default:
				res.Value = b.out[j]
			}
			out = append(out, entry[R]{res: res, last: j == len(b.in)-1})
		}
	}
	if len(out) > 0 {
		s.q.push(out...)
	}
	clear(out)
	s.scratch = out[:0]
}

func (s *goPool[T, R]) finish(err error) {
	takeHandle(s.ctxHandle)
	s.q.finish(err)
}
