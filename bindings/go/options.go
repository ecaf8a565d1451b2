package pmap

import (
	"fmt"
	"math"
)

// An Option configures Map, MapC, NewPool and NewCPool.
type Option func(*config)

type config struct {
	workers  int
	capacity int
	chunk    int
	ordered  bool
	failFast bool
	name     string
	err      error
}

// defaultCChunk is the number of items per chunk on the C-function path.
const defaultCChunk = 1024

func newConfig(opts []Option) (config, error) {
	c := config{ordered: true}
	for _, o := range opts {
		o(&c)
	}
	return c, c.err
}

func (c *config) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("pmap: "+format, args...)
	}
}

// WithWorkers sets the number of worker threads. The default, 0, is the number of
// CPUs the process may use (affinity and cgroup quota respected).
func WithWorkers(n int) Option {
	return func(c *config) {
		if n < 0 || n > math.MaxUint32 {
			c.fail("WithWorkers(%d): out of range", n)
		}
		c.workers = n
	}
}

// WithCapacity bounds the items in flight: submitted and not yet taken by Next (or
// yielded by Map). Submit waits while the pool is full. With chunks (MapC, CPool, Map
// with WithChunk) the bound counts chunks, not items. The default, 0, is the library's
// for single items, max(4096, 256 × workers); with chunks, enough chunks for
// 16 × max(1024, 256 × workers) items (cheap items need a deeper window), and at least 8
// per worker.
func WithCapacity(n int) Option {
	return func(c *config) {
		if n < 0 || n > math.MaxUint32 {
			c.fail("WithCapacity(%d): out of range", n)
		}
		c.capacity = n
	}
}

// WithOrdered chooses whether results come back in submission order (true, the default)
// or as they finish (false).
func WithOrdered(ordered bool) Option {
	return func(c *config) { c.ordered = ordered }
}

// WithFailFast makes the pool cancel itself after the first item that fails (returns an
// error, panics, or, on the C path, returns a non-zero code). Items that had not started
// then come back with ErrCancelled; Map and MapC skip them.
func WithFailFast() Option {
	return func(c *config) { c.failFast = true }
}

// WithName sets the prefix of the worker thread names (pmap-<name>-<id>).
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithChunk packs n items into each pool item (a chunk): one worker runs the function
// over the chunk's items in turn, so the pool's own cost per item (a submission, a
// hand-off to a worker thread, a result) and the crossing between C and Go are paid once
// per chunk. It pays off when the function is cheap (around a microsecond or less).
//
// Ordering, errors and indices stay per item. What becomes per chunk: the bound of
// WithCapacity (at most capacity chunks in flight), load balancing, and latency: an item
// waits until its chunk is full or the input ends, so with a slow input prefer small
// chunks. A cancel stops a running chunk between two items.
//
// Defaults: 1024 for MapC and CPool (C functions), 1 (no chunks) for Map. Pool, whose
// Submit takes one item at a time, ignores it.
func WithChunk(n int) Option {
	return func(c *config) {
		if n < 1 || n > 1<<20 {
			c.fail("WithChunk(%d): want 1 … %d", n, 1<<20)
		}
		c.chunk = n
	}
}
