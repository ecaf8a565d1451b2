package pmap

import (
	"context"
	"runtime"
)

// Result is one item's outcome, as Pool.Next returns it.
type Result[R any] struct {
	Index uint64 // position in the input: 0, 1, 2 … in submission order
	Value R      // the function's result (the zero value when Err is not nil)
	// Err is the item's error: what the function returned, a *PanicError when it
	// panicked, or ErrCancelled when the item never ran because the pool was cancelled.
	Err error
}

// Pool is a push/pull parallel map of a Go function: Submit items from any number of
// goroutines, take results with Next from any number of goroutines. Results come back in
// submission order unless WithOrdered(false); at most the capacity of items are in flight
// (submitted, not yet taken by Next), so Submit waits while the pool is full.
//
// Lifecycle: Close ends the input; once every result has been taken, Next returns
// ErrDone. Cancel stops the pool: items not started come back with ErrCancelled. In both
// cases the pool releases its threads and C memory by itself as soon as the last item
// has come back from C (Done is then closed); results not yet taken stay available to
// Next. A Pool that is dropped without Close or Cancel is cancelled by a finalizer, but
// do not rely on it: the worker threads live until then.
//
// A goroutine that both submits and takes results must not Submit while the pool is
// full (Submit would wait for a Next that this goroutine cannot make): bound the wait
// with ctx, or submit and consume from different goroutines. The same holds for a
// function that submits to its own pool.
type Pool[T, R any] struct {
	s *goPool[T, R]
}

// NewPool starts a pool that runs fn on its worker threads.
//
// fn runs on threads pmap created, concurrently with itself; it must be safe for that.
// A panic in fn is recovered and becomes that item's error (*PanicError); fn must not call
// runtime.Goexit (so no t.FailNow in tests).
func NewPool[T, R any](fn func(T) (R, error), opts ...Option) (*Pool[T, R], error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s, err := newGoPool(fn, &cfg, 1)
	if err != nil {
		return nil, err
	}
	p := &Pool[T, R]{s: s}
	runtime.SetFinalizer(p, func(p *Pool[T, R]) { p.s.e.abandon() })
	return p, nil
}

// Submit gives v to the pool, waiting while the pool is full. It returns nil once the
// item is accepted; ctx.Err() when ctx ends first (the item was not submitted and the
// pool carries on); ErrClosed after Close; ErrCancelled after Cancel.
func (p *Pool[T, R]) Submit(ctx context.Context, v T) error {
	s := p.s
	maybeGC() // p is unreachable from here on but for the KeepAlive below
	err := s.submit(ctx, v)
	runtime.KeepAlive(p)
	return err
}

// Close ends the input: later Submits return ErrClosed, and Next returns ErrDone once
// every submitted item's result has been taken. Idempotent; never waits.
func (p *Pool[T, R]) Close() {
	p.s.e.closeInput()
	runtime.KeepAlive(p)
}

// Next returns the next result, waiting until one is ready. It returns ErrDone once the
// input is closed (or the pool cancelled) and every result has been taken, and ctx.Err()
// when ctx ends first (the pool carries on). The item's own error is in Result.Err.
func (p *Pool[T, R]) Next(ctx context.Context) (Result[R], error) {
	s := p.s
	maybeGC() // p is unreachable from here on but for the KeepAlive below
	r, err := s.next(ctx)
	runtime.KeepAlive(p)
	return r, err
}

// Cancel stops the pool: no new item starts, items not started come back from Next with
// ErrCancelled, items already running finish and come back normally. Later Submits
// return ErrCancelled. Idempotent; never waits.
func (p *Pool[T, R]) Cancel() {
	p.s.e.cancel()
	runtime.KeepAlive(p)
}

// Stats returns the pool's counters.
func (p *Pool[T, R]) Stats() Stats {
	st := p.s.stats()
	runtime.KeepAlive(p)
	return st
}

// Done returns a channel that is closed once the pool has stopped (input closed and
// every item back from C, or cancelled) and released its threads, C memory and handles.
func (p *Pool[T, R]) Done() <-chan struct{} {
	ch := p.s.e.done
	runtime.KeepAlive(p)
	return ch
}
