package pmap

/*
#include "shims.h"
*/
import "C"

import (
	"context"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// CFunc is a C work function for MapC and NewCPool, with what it needs. The pointers
// are C function pointers and C memory, typically from the cgo preamble of the calling
// package:
//
//	/*
//	#include <stdint.h>
//	// Not static: Go takes its address.
//	int32_t square(void *ctx, void *ws, void *item, void **out) {
//	    uintptr_t x = (uintptr_t)item;
//	    *out = (void *)(x * x);
//	    return 0;
//	}
//	*/
//	import "C"
//
//	fn := pmap.CFunc{Work: unsafe.Pointer(C.square)}
//
// Ctx is stored by the pool and passed to every call until the pool is released, so it
// must be C memory (or Go memory pinned with runtime.Pinner for that long), never an
// ordinary Go pointer.
type CFunc struct {
	Work unsafe.Pointer // a pmap_work_fn; required
	Ctx  unsafe.Pointer // the ctx argument of Work, Init and Exit; may be nil
	Init unsafe.Pointer // a pmap_worker_init_fn, or nil
	Exit unsafe.Pointer // a pmap_worker_exit_fn, or nil
}

// CResult is one item's outcome on the C-function path.
type CResult struct {
	Index uint64  // position in the input: 0, 1, 2 … in submission order
	Item  uintptr // the item as submitted
	Value uintptr // what the work function stored in *result (0 unless it succeeded)
	// Err is nil on success, a *CError with the work function's code when it returned
	// non-zero, or ErrCancelled when the item never ran because the pool was cancelled.
	Err error
}

// CPool runs a C work function over items that Go supplies, crossing into C once per
// batch rather than once per item: items are packed into chunks (WithChunk, default
// 1024) in C memory, submitted with pmap_submit_many and collected with pmap_next_many;
// each chunk is one pool item, run by one worker that calls the C function on its items
// in turn. Items and values are machine words (uintptr): integers, or addresses of C
// memory that the caller owns; the pool never looks inside.
//
// Lifecycle, ordering, bounds and cancellation are those of Pool, with one difference:
// the capacity counts chunks. Every submitted item comes back from Next exactly once
// (cancelled ones with ErrCancelled), so items that own C memory can always be freed.
type CPool struct {
	s *cPool
}

// NewCPool starts a pool that runs fn.Work on its worker threads.
func NewCPool(fn CFunc, opts ...Option) (*CPool, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s, err := newCPool(fn, &cfg)
	if err != nil {
		return nil, err
	}
	p := &CPool{s: s}
	runtime.SetFinalizer(p, func(p *CPool) { p.s.abandon() })
	return p, nil
}

// Submit gives items to the pool, in order, waiting while the pool is full. It returns
// how many were accepted (a prefix of items) and nil once all were; ctx.Err() when ctx
// ends first (the pool carries on); ErrClosed after Close; ErrCancelled after Cancel.
func (p *CPool) Submit(ctx context.Context, items []uintptr) (int, error) {
	s := p.s
	maybeGC() // p is unreachable from here on but for the KeepAlive below
	n, err := s.submit(ctx, items)
	runtime.KeepAlive(p)
	return n, err
}

// Next fills out with the next results, waiting until at least one is ready, and
// returns how many it wrote (at least 1, unless len(out) is 0). It returns ErrDone once
// the input is closed (or the pool cancelled) and every result has been taken, and
// ctx.Err() when ctx ends first.
func (p *CPool) Next(ctx context.Context, out []CResult) (int, error) {
	s := p.s
	maybeGC() // p is unreachable from here on but for the KeepAlive below
	n, err := s.next(ctx, out)
	runtime.KeepAlive(p)
	return n, err
}

// Close ends the input; see Pool.Close.
func (p *CPool) Close() {
	p.s.e.closeInput()
	runtime.KeepAlive(p)
}

// Cancel stops the pool; see Pool.Cancel. A chunk that is running stops between two
// items; its remaining items come back with ErrCancelled.
func (p *CPool) Cancel() {
	p.s.e.cancel()
	runtime.KeepAlive(p)
}

// Stats returns the pool's counters, in items (not chunks).
func (p *CPool) Stats() Stats {
	st := p.s.stats()
	runtime.KeepAlive(p)
	return st
}

// Done returns a channel that is closed once the pool has stopped and released its
// threads; see Pool.Done.
func (p *CPool) Done() <-chan struct{} {
	ch := p.s.e.done
	runtime.KeepAlive(p)
	return ch
}

// MapC runs fn over every item of seq and yields each result with its error (nil, a
// *CError, or ctx.Err() as the last pair when ctx is done), in the order of seq unless
// WithOrdered(false). Items are packed into chunks (WithChunk) before they are
// submitted, so an item waits until its chunk is full or seq ends: for a slow seq
// where latency matters, use a small chunk or CPool. Items that never ran (after a
// fail-fast cancel) are skipped. Otherwise MapC behaves as Map: bounded, and when the loop
// breaks or ctx is done it cancels, waits for running chunks, and releases everything
// before it returns; items not yielded by then are not handed back, so use CPool when
// items own memory that must be freed.
func MapC(ctx context.Context, fn CFunc, seq iter.Seq[uintptr], opts ...Option) iter.Seq2[CResult, error] {
	return func(yield func(CResult, error) bool) {
		cfg, err := newConfig(opts)
		if err != nil {
			yield(CResult{}, err)
			return
		}
		s, err := newCPool(fn, &cfg)
		if err != nil {
			yield(CResult{}, err)
			return
		}
		feedCtx, stopFeed := context.WithCancel(ctx)
		var seqPanic atomic.Pointer[PanicError]
		var feeding sync.WaitGroup
		feeding.Add(1)
		go func() {
			defer feeding.Done()
			var cur *chunkRec // the chunk being filled
			send := func() error {
				one := [1]*chunkRec{cur}
				cur = nil
				_, err := s.submitChunks(feedCtx, one[:])
				return err
			}
			defer func() {
				if v := recover(); v != nil {
					seqPanic.Store(newPanicError(v))
				}
				if cur != nil {
					_ = send() // the items before the end (or the panic)
				}
				s.e.closeInput()
			}()
			for v := range seq {
				if cur == nil {
					recs, err := s.getChunks(feedCtx, 1)
					if err != nil {
						return
					}
					cur = recs[0]
				}
				cur.items[cur.n] = v
				cur.n++
				if cur.n == len(cur.items) && send() != nil {
					return
				}
			}
		}()
		defer func() {
			s.abandon()
			stopFeed()
			feeding.Wait()
			<-s.e.done
		}()
		buf := make([]CResult, s.chunk)
		done := ctx.Done()
		for {
			if err := ctx.Err(); err != nil {
				yield(CResult{}, err)
				return
			}
			n, err := s.next(ctx, buf)
			switch {
			case err == ErrDone:
				if p := seqPanic.Load(); p != nil {
					panic(p)
				}
				return
			case err != nil:
				yield(CResult{}, err)
				return
			}
			for _, r := range buf[:n] {
				select {
				case <-done:
					yield(CResult{}, ctx.Err())
					return
				default:
				}
				if r.Err == ErrCancelled {
					continue // never ran: the pool cancelled itself (WithFailFast)
				}
				if !yield(r, r.Err) {
					return
				}
			}
		}
	}
}
