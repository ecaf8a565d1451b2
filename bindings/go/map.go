package pmap

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"
)

// Map runs fn over every value of seq on pmap's worker threads and yields each result
// with its error: in the order of seq by default (WithOrdered(false): as they finish).
//
// At most the capacity of items are in flight (WithCapacity), so an endless seq runs in
// constant memory. A goroutine ranges over seq while the loop body runs; seq must be
// safe to run on another goroutine, and it must return once its yield returns false (as
// every iterator must). When the loop breaks, the loop body panics, or ctx is done, Map
// cancels the pool, waits for the items that are running to finish, releases every
// thread, handle and goroutine, and only then returns; items that never ran are dropped.
// When ctx is done, the last pair yielded is (zero, ctx.Err()).
//
// The error of a pair is the item's: what fn returned, or a *PanicError when fn
// panicked (the panic is recovered on the worker thread and never crosses into C). An
// error does not stop the map; break, or use WithFailFast. A panic in seq itself is
// re-raised, as a *PanicError with seq's stack, after the items before it.
//
// A failure to start (bad options) is yielded as the only pair.
func Map[T, R any](ctx context.Context, seq iter.Seq[T], fn func(T) (R, error), opts ...Option) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		var zero R
		cfg, err := newConfig(opts)
		if err != nil {
			yield(zero, err)
			return
		}
		s, err := newGoPool(fn, &cfg, max(1, cfg.chunk))
		if err != nil {
			yield(zero, err)
			return
		}
		feedCtx, stopFeed := context.WithCancel(ctx)
		var seqPanic atomic.Pointer[PanicError]
		var feeding sync.WaitGroup
		feeding.Add(1)
		go func() {
			defer feeding.Done()
			var cur *box[T, R] // the chunk being filled (WithChunk)
			defer func() {
				if v := recover(); v != nil {
					seqPanic.Store(newPanicError(v))
				}
				if cur != nil {
					_ = s.submitBox(feedCtx, cur) // the items before the end (or the panic)
				}
				s.e.closeInput()
			}()
			if cfg.chunk <= 1 {
				for v := range seq {
					if s.submit(feedCtx, v) != nil {
						return
					}
				}
				return
			}
			base := uint64(0)
			for v := range seq {
				if cur == nil {
					cur = newChunkBox[T, R](base, cfg.chunk)
				}
				cur.in = append(cur.in, v)
				if len(cur.in) == cfg.chunk {
					b := cur
					cur, base = nil, base+uint64(len(b.in))
					if s.submitBox(feedCtx, b) != nil {
						return
					}
				}
			}
		}()
		defer func() {
			s.e.abandon()
			stopFeed()
			feeding.Wait()
			<-s.e.done
		}()
		// Results are taken from the queue in batches (one lock for many); a slot is
		// given back just before its last result is yielded, as Pool.Next would.
		buf := make([]entry[R], min(max(64, cfg.chunk), 1024))
		done := ctx.Done()
		for {
			n, err := s.take(ctx, buf)
			switch {
			case err == ErrDone:
				if p := seqPanic.Load(); p != nil {
					panic(p)
				}
				return
			case err != nil:
				yield(zero, err)
				return
			}
			for i := range buf[:n] {
				e := buf[i]
				buf[i] = entry[R]{}
				if e.last {
					s.release()
				}
				select {
				case <-done:
					yield(zero, ctx.Err())
					return
				default:
				}
				if e.res.Err == ErrCancelled {
					continue // never ran: the pool cancelled itself (WithFailFast)
				}
				if !yield(e.res.Value, e.res.Err) {
					return
				}
			}
		}
	}
}
