package pmap

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// Waiting in Go, not in C: Submit and Next block on these Go structures, so a select on
// ctx.Done() can end the wait without cancelling the pool, and no OS thread sits in a
// cgo call for them. Only the collector goroutine of each pool blocks inside C.

// gateClosed is the flag bit of gate.state; the bits below it count callers inside.
const gateClosed = 1 << 62

// gate admits short C calls on a pool until the pool is freed. pmap_free may not run
// while another call on the pool is in progress; close waits for the callers inside
// and turns later ones away.
type gate struct {
	state atomic.Int64
	idle  chan struct{} // buffered(1): the last caller out after close signals here
}

func newGate() gate { return gate{idle: make(chan struct{}, 1)} }

// enter reports whether the pool may be called; if so the caller must call leave.
func (g *gate) enter() bool {
	if g.state.Add(1)&gateClosed != 0 {
		g.leave()
		return false
	}
	return true
}

func (g *gate) leave() {
	if g.state.Add(-1) == gateClosed {
		select {
		case g.idle <- struct{}{}:
		default:
		}
	}
}

// close turns away new callers and waits for the ones inside. Called once.
func (g *gate) close() {
	g.state.Add(gateClosed)
	for g.state.Load() != gateClosed {
		<-g.idle
	}
}

// sem counts free admission slots (pool items that may still be submitted).
type sem struct {
	mu    sync.Mutex
	avail int
	wake  chan struct{} // closed by release; nil while nobody waits
}

var errStopped = errors.New("pmap: input ended")

// acquire takes between 1 and most slots, waiting for the first one until ctx is done
// (ctx.Err()) or stop is closed (errStopped).
func (s *sem) acquire(ctx context.Context, stop <-chan struct{}, most int) (int, error) {
	for {
		s.mu.Lock()
		if s.avail > 0 {
			n := min(most, s.avail)
			s.avail -= n
			s.mu.Unlock()
			return n, nil
		}
		if s.wake == nil {
			s.wake = make(chan struct{})
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-stop:
			return 0, errStopped
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (s *sem) release(n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.avail += n
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
	s.mu.Unlock()
}

// queue holds results the collector took from the pool until a consumer takes them. It
// never holds more than the admission slots allow, because a slot is given back only
// when its result leaves the queue.
type queue[E any] struct {
	mu       sync.Mutex
	items    []E // items[head:] are waiting
	head     int
	wake     chan struct{} // closed by push and finish; nil while nobody waits
	finished bool          // no more pushes
	err      error         // reported after the last item, instead of ErrDone
}

func (q *queue[E]) wakeLocked() {
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
}

func (q *queue[E]) push(es ...E) {
	q.mu.Lock()
	if q.head > 0 && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, es...)
	q.wakeLocked()
	q.mu.Unlock()
}

// finish ends the queue: once it is empty, consume returns err, or ErrDone when nil.
func (q *queue[E]) finish(err error) {
	q.mu.Lock()
	q.finished = true
	q.err = err
	q.wakeLocked()
	q.mu.Unlock()
}

// consume waits until items are waiting, then calls take with them (under the queue's
// lock); take returns how many it took from the front (at least one). Returns ctx.Err()
// if ctx ends first, and ErrDone (or the pool's error) once the queue is finished and
// empty.
func (q *queue[E]) consume(ctx context.Context, take func(waiting []E) int) error {
	for {
		q.mu.Lock()
		if q.head < len(q.items) {
			k := take(q.items[q.head:])
			clear(q.items[q.head : q.head+k])
			q.head += k
			if q.head == len(q.items) {
				q.items = q.items[:0]
				q.head = 0
			}
			q.mu.Unlock()
			return nil
		}
		if q.finished {
			err := q.err
			q.mu.Unlock()
			if err == nil {
				err = ErrDone
			}
			return err
		}
		if q.wake == nil {
			q.wake = make(chan struct{})
		}
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// inputEnd records why the input ended (Close or Cancel) and wakes waiting producers.
type inputEnd struct {
	mu     sync.Mutex
	ch     chan struct{} // closed at the first end
	reason error         // ErrClosed or ErrCancelled; a cancel overrides a close
}

func newInputEnd() inputEnd { return inputEnd{ch: make(chan struct{})} }

func (in *inputEnd) end(reason error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.reason == nil {
		close(in.ch)
	}
	if in.reason == nil || reason == ErrCancelled {
		in.reason = reason
	}
}

func (in *inputEnd) why() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.reason
}
