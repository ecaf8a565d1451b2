package pmap

/*
#include "shims.h"
*/
import "C"

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The state of the C-function path (CPool, MapC): chunk buffers in C memory, their
// submission in order, their collection, and their release.
//
// A chunk buffer (pmapgo_chunk) is allocated once per slot and reused. It belongs to
// exactly one place at a time: the free list, a producer filling it, the pool (C), the
// queue of results, or a consumer taking results out of it; the admission slot that
// goes with it is given back when its last result is taken. Buffers are freed when the
// pool is released (those in the free list) or, after that, when they are given back.

// liveChunks counts the C chunk buffers allocated and not yet freed (for the tests).
var liveChunks atomic.Int64

// chunkRec is Go's record of one chunk buffer (C memory) and the slot it is known by.
type chunkRec struct {
	c    *C.pmapgo_chunk
	slot int
	// Views of the chunk's C arrays.
	items  []uintptr
	values []uintptr
	codes  []int32
	status []uint8

	n    int    // items in use
	base uint64 // index of items[0], set when submitted
	pos  int    // next item Next hands out
	ran  bool   // the chunk ran (otherwise all its items were cancelled)
}

func newChunkRec(c *C.pmapgo_chunk, slot int) *chunkRec {
	n := int(c.cap)
	// SAFETY of the views: c is C memory that lives until pmapgo_chunk_free; the arrays
	// hold n elements each, and uintptr_t/int32_t/uint8_t match uintptr/int32/uint8.
	return &chunkRec{
		c:      c,
		slot:   slot,
		items:  unsafe.Slice((*uintptr)(unsafe.Pointer(c.items)), n),
		values: unsafe.Slice((*uintptr)(unsafe.Pointer(c.values)), n),
		codes:  unsafe.Slice((*int32)(unsafe.Pointer(c.codes)), n),
		status: unsafe.Slice((*uint8)(unsafe.Pointer(c.status)), n),
	}
}

// take copies up to len(out) results from the chunk, advancing pos.
func (r *chunkRec) take(out []CResult) int {
	k := min(len(out), r.n-r.pos)
	out = out[:k]
	base := r.base + uint64(r.pos)
	items := r.items[r.pos : r.pos+k]
	if !r.ran {
		for i := range out {
			out[i] = CResult{Index: base + uint64(i), Item: items[i], Err: ErrCancelled}
		}
		r.pos += k
		return k
	}
	values := r.values[r.pos : r.pos+k]
	codes := r.codes[r.pos : r.pos+k]
	status := r.status[r.pos : r.pos+k]
	for i := range out {
		o := &out[i]
		o.Index = base + uint64(i)
		o.Item = items[i]
		switch status[i] {
		case C.PMAP_ITEM_OK:
			o.Value, o.Err = values[i], nil
		case C.PMAP_ITEM_FAILED:
			o.Value, o.Err = 0, &CError{Code: codes[i]}
		default:
			o.Value, o.Err = 0, ErrCancelled
		}
	}
	r.pos += k
	return k
}

// cPool is the state of a C-function pool; CPool wraps it for the finalizer.
type cPool struct {
	e     *engine
	cf    *C.pmapgo_cfunc
	chunk int
	q     queue[*chunkRec]

	mu        sync.Mutex
	slots     []*chunkRec       // every chunk buffer, by slot
	free      []*chunkRec       // buffers not in use
	ptrs      []*C.pmapgo_chunk // submit's argument array
	nextBase  uint64            // index of the next item submitted
	released  bool              // the pool is freed: buffers are freed when given back
	abandoned bool              // nobody will take the queued results
	scratch   []*chunkRec       // the collector's batch

	submitted, succeeded, failed, cancelled, taken atomic.Uint64
}

func newCPool(fn CFunc, cfg *config) (*cPool, error) {
	ccfg := cConfig(cfg)
	defer freeCString(ccfg.name)
	var pool *C.pmap_pool
	var cf *C.pmapgo_cfunc
	var msg [256]C.char
	st := C.pmapgo_new_c(&ccfg, fn.Work, fn.Ctx, fn.Init, fn.Exit, &pool, &cf, &msg[0],
		C.size_t(len(msg)))
	if st != C.PMAP_OK {
		return nil, newError(st, msg[:])
	}
	chunk := cfg.chunk
	if chunk == 0 {
		chunk = defaultCChunk
	}
	s := &cPool{cf: cf, chunk: chunk}
	s.e = startEngine(pool, true, chunk, cfg, s)
	maybeGC()
	return s, nil
}

var errNoMemory = errors.New("pmap: out of C memory for a chunk")

// getChunks takes between 1 and k admission slots, each with an empty chunk buffer.
func (s *cPool) getChunks(ctx context.Context, k int) ([]*chunkRec, error) {
	n, err := s.e.acquire(ctx, k)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]*chunkRec, 0, n)
	for range n {
		var rec *chunkRec
		if last := len(s.free) - 1; last >= 0 {
			rec = s.free[last]
			s.free = s.free[:last]
		} else {
			c := C.pmapgo_chunk_new(C.uintptr_t(len(s.slots)), C.size_t(s.chunk))
			if c == nil {
				break
			}
			liveChunks.Add(1)
			rec = newChunkRec(c, len(s.slots))
			s.slots = append(s.slots, rec)
		}
		rec.n, rec.pos, rec.ran = 0, 0, false
		recs = append(recs, rec)
	}
	s.e.tokens.release(n - len(recs))
	if len(recs) == 0 {
		return nil, errNoMemory
	}
	return recs, nil
}

// putChunks gives buffers back with their admission slots (freeing them once the pool
// is released).
func (s *cPool) putChunks(recs []*chunkRec) {
	s.mu.Lock()
	if s.released {
		for _, rec := range recs {
			s.freeChunk(rec)
		}
	} else {
		s.free = append(s.free, recs...)
	}
	s.mu.Unlock()
	s.e.tokens.release(len(recs))
}

// freeChunk frees a buffer's C memory; s.mu is held.
func (s *cPool) freeChunk(rec *chunkRec) {
	s.slots[rec.slot] = nil
	C.pmapgo_chunk_free(rec.c)
	rec.c = nil
	liveChunks.Add(-1)
}

// submitChunks submits filled buffers in order and returns how many items were
// accepted. Buffers not accepted are given back.
func (s *cPool) submitChunks(ctx context.Context, recs []*chunkRec) (int, error) {
	done, items := 0, 0
	err := s.e.submit(ctx, func() C.pmap_status {
		// Under s.mu, so that indices follow the pool's order of acceptance and the
		// collector sees base set (it reads slots under s.mu too).
		s.mu.Lock()
		defer s.mu.Unlock()
		ptrs := s.ptrs[:0]
		base := s.nextBase
		for _, rec := range recs[done:] {
			rec.c.n = C.size_t(rec.n)
			rec.base = base
			base += uint64(rec.n)
			ptrs = append(ptrs, rec.c)
		}
		var accepted C.size_t
		st := C.pmapgo_submit_chunks(s.e.pool, &ptrs[0], C.size_t(len(ptrs)), &accepted, 0)
		clear(ptrs)
		s.ptrs = ptrs[:0]
		for _, rec := range recs[done : done+int(accepted)] {
			s.nextBase += uint64(rec.n)
			items += rec.n
		}
		done += int(accepted)
		return st
	})
	s.submitted.Add(uint64(items))
	if done < len(recs) {
		s.putChunks(recs[done:])
	}
	return items, err
}

func (s *cPool) submit(ctx context.Context, items []uintptr) (int, error) {
	accepted := 0
	for accepted < len(items) {
		need := (len(items) - accepted + s.chunk - 1) / s.chunk
		recs, err := s.getChunks(ctx, need)
		if err != nil {
			return accepted, err
		}
		rest := items[accepted:]
		for _, rec := range recs {
			rec.n = copy(rec.items, rest)
			rest = rest[rec.n:]
		}
		n, err := s.submitChunks(ctx, recs)
		accepted += n
		if err != nil {
			return accepted, err
		}
	}
	return accepted, nil
}

func (s *cPool) next(ctx context.Context, out []CResult) (int, error) {
	if len(out) == 0 {
		return 0, nil
	}
	n := 0
	var usedBuf [16]*chunkRec
	used := usedBuf[:0]
	err := s.q.consume(ctx, func(waiting []*chunkRec) int {
		k := 0
		for _, rec := range waiting {
			n += rec.take(out[n:])
			if rec.pos < rec.n {
				break // out is full
			}
			used = append(used, rec)
			k++
			if n == len(out) {
				break
			}
		}
		return k
	})
	if err != nil {
		return 0, err
	}
	s.taken.Add(uint64(n))
	if len(used) > 0 {
		s.putChunks(used)
	}
	return n, nil
}

func (s *cPool) stats() Stats {
	taken := s.taken.Load()
	st := s.e.stats() // workers and times; the counts are in chunks, so use Go's
	st.Submitted = s.submitted.Load()
	st.Succeeded = s.succeeded.Load()
	st.Failed = s.failed.Load()
	st.Cancelled = s.cancelled.Load()
	st.InFlight = st.Submitted - taken
	return st
}

// deliver runs on the collector goroutine.
func (s *cPool) deliver(rs []C.pmapgo_result, abandoned bool) {
	var ok, failed, cancelled uint64
	s.mu.Lock()
	batch := s.scratch[:0]
	for i := range rs {
		rec := s.slots[rs[i].item]
		rec.ran = rs[i].status != C.PMAP_ITEM_CANCELLED
		if rec.ran {
			ok += uint64(rec.c.ok)
			failed += uint64(rec.c.failed)
			cancelled += uint64(rec.n) - uint64(rec.c.ok) - uint64(rec.c.failed)
		} else {
			cancelled += uint64(rec.n)
		}
		batch = append(batch, rec)
	}
	abandoned = abandoned || s.abandoned
	s.mu.Unlock()
	s.succeeded.Add(ok)
	s.failed.Add(failed)
	s.cancelled.Add(cancelled)
	if abandoned {
		s.putChunks(batch)
	} else {
		s.q.push(batch...)
	}
	clear(batch)
	s.scratch = batch[:0]
}

// finish runs on the collector goroutine after pmap_free.
func (s *cPool) finish(err error) {
	C.pmapgo_cfunc_free(s.cf)
	s.cf = nil
	s.mu.Lock()
	s.released = true
	for _, rec := range s.free {
		s.freeChunk(rec)
	}
	s.free = nil
	if s.abandoned {
		s.dropQueuedLocked()
	}
	s.mu.Unlock()
	s.q.finish(err)
}

// abandon is for when nobody will take results any more (MapC is over, or the CPool
// was garbage): cancel, and free the queued buffers now or, if the pool still runs,
// when it is released.
func (s *cPool) abandon() {
	s.mu.Lock()
	s.abandoned = true
	if s.released {
		s.dropQueuedLocked()
	}
	s.mu.Unlock()
	s.e.abandon()
}

// dropQueuedLocked frees the buffers waiting in the queue; s.mu is held.
func (s *cPool) dropQueuedLocked() {
	s.q.mu.Lock()
	for _, rec := range s.q.items[s.q.head:] {
		s.freeChunk(rec)
	}
	clear(s.q.items)
	s.q.items = s.q.items[:0]
	s.q.head = 0
	s.q.mu.Unlock()
}
