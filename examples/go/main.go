// Command example shows the pmap Go binding on both of its paths:
//
//  1. a Go function over a stream with pmap.Map (ordered, bounded, cancellable);
//  2. a C function, as a legacy C library would provide it, over a million items with
//     pmap.MapC, crossing into C once per chunk of items rather than once per item;
//  3. the push/pull pmap.Pool with two producers, Cancel and Stats.
//
// Run it from this directory after `cargo build --release` at the repository root:
//
//	go run .
package main

/*
#include <stdint.h>

// A C work function (pmap_work_fn): the number of Collatz steps from item down to 1.
// Not static: Go takes its address. Returns 22 (EINVAL) for 0, which has no answer.
int32_t collatz_steps(void *ctx, void *worker_state, void *item, void **result) {
	(void)ctx; (void)worker_state;
	uint64_t n = (uintptr_t)item, steps = 0;
	if (n == 0) return 22;
	while (n != 1) {
		n = (n & 1) ? 3 * n + 1 : n / 2;
		steps++;
	}
	*result = (void *)(uintptr_t)steps;
	return 0;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log"
	"strings"
	"time"
	"unsafe"

	pmap "github.com/pmap/pmap/bindings/go"
)

func main() {
	fmt.Println("pmap", pmap.Version())
	goFunctions()
	cFunction()
	pushPull()
}

// lines stands for a stream that never ends (a socket, a log being written).
func lines() iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := 0; ; i++ {
			if !yield(fmt.Sprintf("line %d: %s", i, strings.Repeat("ab", i%7))) {
				return
			}
		}
	}
}

// 1. A Go function over an endless stream: results come back in order, at most the
// capacity are in flight, and the context stops it all.
func goFunctions() {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	n := 0
	for length, err := range pmap.Map(ctx, lines(), func(s string) (int, error) {
		if strings.HasSuffix(s, "abababababab") {
			return 0, fmt.Errorf("%q is too long", s) // an item's error, not the end
		}
		time.Sleep(100 * time.Microsecond) // stands for real work
		return len(s), nil
	}, pmap.WithCapacity(64)) {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Printf("Map: stopped by the context after %d lines\n", n)
		case err != nil:
			n++ // an item that failed: keep going
		default:
			if n < 3 {
				fmt.Printf("Map: line %d has length %d\n", n, length)
			}
			n++
		}
	}
}

// 2. A C function over a million items, batched.
func cFunction() {
	const n = 1_000_000
	items := func(yield func(uintptr) bool) {
		for i := range n {
			if !yield(uintptr(i)) { // item 0 makes the C function fail
				return
			}
		}
	}
	start := time.Now()
	best, bestSteps, failed := uintptr(0), uintptr(0), 0
	for r, err := range pmap.MapC(context.Background(), pmap.CFunc{Work: unsafe.Pointer(C.collatz_steps)}, items) {
		var cerr *pmap.CError
		switch {
		case errors.As(err, &cerr):
			failed++ // r.Item failed with cerr.Code
		case err != nil:
			log.Fatal(err)
		case r.Value > bestSteps:
			best, bestSteps = r.Item, r.Value
		}
	}
	fmt.Printf("MapC: below %d, %d takes the most Collatz steps (%d); %d item failed; %v\n",
		n, best, bestSteps, failed, time.Since(start).Round(time.Millisecond))
}

// 3. Push/pull: two producers, one consumer, a cancel half-way.
func pushPull() {
	ctx := context.Background()
	p, err := pmap.NewPool(func(x int) (int, error) {
		time.Sleep(time.Millisecond)
		return x * x, nil
	}, pmap.WithCapacity(8))
	if err != nil {
		log.Fatal(err)
	}
	for w := range 2 {
		go func() {
			for i := range 100 {
				if err := p.Submit(ctx, w*100+i); err != nil {
					return // ErrCancelled after the Cancel below
				}
			}
		}()
	}
	ok, cancelled := 0, 0
	for {
		r, err := p.Next(ctx)
		if errors.Is(err, pmap.ErrDone) {
			break
		}
		switch {
		case errors.Is(r.Err, pmap.ErrCancelled):
			cancelled++
		case r.Err != nil:
			log.Fatal(r.Err)
		default:
			ok++
		}
		if ok == 20 {
			p.Cancel() // the input ends here; what was not started comes back cancelled
		}
	}
	<-p.Done()
	st := p.Stats()
	fmt.Printf("Pool: %d results, %d cancelled; stats: %d submitted, %d succeeded, %d cancelled\n",
		ok, cancelled, st.Submitted, st.Succeeded, st.Cancelled)
}
