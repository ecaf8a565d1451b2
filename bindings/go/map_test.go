package pmap_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pmap "github.com/pmap/pmap/bindings/go"
)

// count yields 0, 1, … n-1 (forever when n < 0).
func count(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; n < 0 || i < n; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

func square(x int) (int, error) { return x * x, nil }

func TestMapOrdered(t *testing.T) {
	for _, opts := range [][]pmap.Option{
		nil,
		{pmap.WithWorkers(1)},
		{pmap.WithWorkers(4), pmap.WithCapacity(1)},
		{pmap.WithWorkers(3), pmap.WithCapacity(5), pmap.WithName("ordered")},
		{pmap.WithChunk(7), pmap.WithCapacity(3)},
		{pmap.WithChunk(64), pmap.WithWorkers(4)},
	} {
		t.Run(fmt.Sprint(len(opts)), func(t *testing.T) {
			clean(t)
			n := scaled(10000)
			i := 0
			for v, err := range pmap.Map(context.Background(), count(n), func(x int) (int, error) {
				if x%97 == 0 {
					time.Sleep(50 * time.Microsecond) // skew, so later items finish first
				}
				return x * x, nil
			}, opts...) {
				if err != nil {
					t.Fatalf("item %d: %v", i, err)
				}
				if v != i*i {
					t.Fatalf("position %d: got %d, want %d", i, v, i*i)
				}
				i++
			}
			if i != n {
				t.Fatalf("got %d results, want %d", i, n)
			}
		})
	}
}

func TestMapUnordered(t *testing.T) {
	clean(t)
	n := scaled(5000)
	seen := make([]bool, n)
	outOfOrder := false
	last := -1
	for v, err := range pmap.Map(context.Background(), count(n), func(x int) (int, error) {
		if x%10 == 0 {
			time.Sleep(200 * time.Microsecond)
		}
		return x, nil
	}, pmap.WithOrdered(false), pmap.WithWorkers(4)) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[v] {
			t.Fatalf("item %d came back twice", v)
		}
		seen[v] = true
		if v < last {
			outOfOrder = true
		}
		last = v
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("item %d never came back", i)
		}
	}
	if !outOfOrder && !debugBuild {
		t.Log("note: every result happened to come back in order")
	}
}

var errThree = errors.New("divisible by three")

func TestMapErrors(t *testing.T) {
	for _, chunk := range []int{1, 10} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) { testMapErrors(t, chunk) })
	}
}

func testMapErrors(t *testing.T, chunk int) {
	clean(t)
	n := scaled(3000)
	i := 0
	for v, err := range pmap.Map(context.Background(), count(n), func(x int) (string, error) {
		if x%3 == 0 {
			return "", fmt.Errorf("item %d: %w", x, errThree)
		}
		return fmt.Sprint(x), nil
	}, pmap.WithChunk(chunk)) {
		if i%3 == 0 {
			if !errors.Is(err, errThree) || v != "" {
				t.Fatalf("position %d: got (%q, %v), want the item's error", i, v, err)
			}
		} else if err != nil || v != fmt.Sprint(i) {
			t.Fatalf("position %d: got (%q, %v)", i, v, err)
		}
		i++
	}
	if i != n {
		t.Fatalf("got %d results, want %d: an error must not stop the map", i, n)
	}
}

func TestMapPanic(t *testing.T) {
	for _, chunk := range []int{1, 4} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) { testMapPanic(t, chunk) })
	}
}

func testMapPanic(t *testing.T, chunk int) {
	clean(t)
	errBoom := errors.New("boom")
	i := 0
	for v, err := range pmap.Map(context.Background(), count(100), func(x int) (int, error) {
		switch x {
		case 5:
			panic("five")
		case 7:
			panic(errBoom)
		case 9:
			var m map[string]int
			m["nil map"] = 1 // a runtime error
		}
		return x, nil
	}, pmap.WithChunk(chunk)) {
		var pe *pmap.PanicError
		switch i {
		case 5:
			if !errors.As(err, &pe) || pe.Value != "five" {
				t.Fatalf("item 5: got %v, want a *PanicError with value \"five\"", err)
			}
			if !strings.Contains(string(pe.Stack), "testMapPanic") {
				t.Fatalf("the panic's stack does not show where it happened:\n%s", pe.Stack)
			}
			if !strings.Contains(err.Error(), "five") {
				t.Fatalf("Error() = %q", err.Error())
			}
		case 7:
			if !errors.As(err, &pe) || !errors.Is(err, errBoom) {
				t.Fatalf("item 7: got %v, want a *PanicError wrapping errBoom", err)
			}
		case 9:
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), "nil map") {
				t.Fatalf("item 9: got %v, want the runtime error of the panic", err)
			}
		default:
			if err != nil || v != i {
				t.Fatalf("item %d: got (%d, %v)", i, v, err)
			}
		}
		i++
	}
	if i != 100 {
		t.Fatalf("got %d results, want 100", i)
	}
}

func TestMapContextCancelledMidStream(t *testing.T) {
	for _, chunk := range []int{1, 16} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) { testMapContextCancelledMidStream(t, chunk) })
	}
}

func testMapContextCancelledMidStream(t *testing.T, chunk int) {
	clean(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	got := 0
	var last error
	for v, err := range pmap.Map(ctx, count(-1), func(x int) (int, error) {
		calls.Add(1)
		return x, nil
	}, pmap.WithCapacity(16), pmap.WithChunk(chunk)) {
		if err != nil {
			last = err
			continue
		}
		if v != got {
			t.Fatalf("position %d: got %d", got, v)
		}
		got++
		if got == 100 {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("last error = %v, want context.Canceled", last)
	}
	if got != 100 {
		t.Fatalf("got %d results after the cancel at 100", got)
	}
	// Map returned: nothing runs any more.
	before := calls.Load()
	time.Sleep(20 * time.Millisecond)
	if after := calls.Load(); after != before {
		t.Fatalf("the function ran %d more times after Map returned", after-before)
	}
}

func TestMapContextDeadlineWhileWaiting(t *testing.T) {
	clean(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// The input stalls after two items; Map must notice the deadline while it waits.
	seq := func(yield func(int) bool) {
		for i := range 2 {
			if !yield(i) {
				return
			}
		}
		<-ctx.Done()
	}
	var errs []error
	n := 0
	for _, err := range pmap.Map(ctx, seq, square) {
		if err != nil {
			errs = append(errs, err)
		} else {
			n++
		}
	}
	if n != 2 || len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Fatalf("got %d results and errors %v; want 2 results, then DeadlineExceeded", n, errs)
	}
}

func TestMapEarlyBreak(t *testing.T) {
	for _, chunk := range []int{1, 8} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) { testMapEarlyBreak(t, chunk) })
	}
}

func testMapEarlyBreak(t *testing.T, chunk int) {
	clean(t)
	dropped := pmap.Dropped()
	var calls atomic.Int64
	got := 0
	for v, err := range pmap.Map(context.Background(), count(-1), func(x int) (int, error) {
		calls.Add(1)
		time.Sleep(10 * time.Microsecond)
		return x, nil
	}, pmap.WithCapacity(4096), pmap.WithWorkers(2), pmap.WithChunk(chunk)) {
		if err != nil || v != got {
			t.Fatalf("position %d: got (%d, %v)", got, v, err)
		}
		got++
		if got == 10 {
			break
		}
	}
	before := calls.Load()
	time.Sleep(20 * time.Millisecond)
	if after := calls.Load(); after != before {
		t.Fatalf("the function ran %d more times after the loop broke", after-before)
	}
	_ = dropped
}

// After a break, the collector drops what the cancel makes ready at once and leaves the
// rest, here the items still running, to pmap_free, whose on_drop must delete their
// handles (clean checks that none is left).
func TestMapOnDrop(t *testing.T) {
	clean(t)
	dropped := pmap.Dropped()
	release := make(chan struct{})
	var submitted, running atomic.Int64
	seq := func(yield func(int) bool) {
		for i := range 500 {
			if !yield(i) {
				return
			}
			submitted.Add(1)
		}
	}
	for v, err := range pmap.Map(context.Background(), seq, func(x int) (int, error) {
		if x > 0 {
			running.Add(1)
			<-release // two items hold both workers
		}
		return x, nil
	}, pmap.WithWorkers(2), pmap.WithOrdered(false), pmap.WithCapacity(1000)) {
		if err != nil || v != 0 {
			t.Fatal(v, err)
		}
		for submitted.Load() < 500 || running.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		// Map's cleanup cancels and then waits in pmap_free for the two running items;
		// let them finish a little later.
		time.AfterFunc(20*time.Millisecond, func() { close(release) })
		break
	}
	// At least the two running items; more when a worker had already taken queued
	// items for its next round (the library publishes a worker's outcomes per round).
	if got := pmap.Dropped() - dropped; got < 2 {
		t.Fatalf("%d items went through on_drop, want at least the 2 that were running", got)
	}
}

func TestMapFailFast(t *testing.T) {
	for _, chunk := range []int{1, 32} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) { testMapFailFast(t, chunk) })
	}
}

func testMapFailFast(t *testing.T, chunk int) {
	clean(t)
	n := scaled(100000)
	errStop := errors.New("stop")
	var calls atomic.Int64
	var errs, oks int
	for _, err := range pmap.Map(context.Background(), count(n), func(x int) (int, error) {
		calls.Add(1)
		if x == 50 {
			return 0, errStop
		}
		time.Sleep(time.Microsecond)
		return x, nil
	}, pmap.WithFailFast(), pmap.WithCapacity(64), pmap.WithChunk(chunk)) {
		if err != nil {
			if !errors.Is(err, errStop) {
				t.Fatalf("unexpected error %v", err)
			}
			errs++
		} else {
			oks++
		}
	}
	if errs != 1 {
		t.Fatalf("got %d errors, want 1", errs)
	}
	if c := calls.Load(); c >= int64(n) || oks >= n-1 {
		t.Fatalf("fail-fast did not stop the map: %d calls, %d results", c, oks)
	}
	if int64(oks+errs) != calls.Load() {
		t.Fatalf("%d results yielded for %d items that ran: every item that ran is yielded", oks+errs, calls.Load())
	}
}

func TestMapSeqPanic(t *testing.T) {
	for _, chunk := range []int{1, 4} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) { testMapSeqPanic(t, chunk) })
	}
}

func testMapSeqPanic(t *testing.T, chunk int) {
	clean(t)
	seq := func(yield func(int) bool) {
		for i := range 5 {
			if !yield(i) {
				return
			}
		}
		panic("seq broke")
	}
	var got []int
	func() {
		defer func() {
			v := recover()
			pe, ok := v.(*pmap.PanicError)
			if !ok || pe.Value != "seq broke" || !strings.Contains(string(pe.Stack), "testMapSeqPanic") {
				t.Fatalf("recovered %v, want a *PanicError of seq's panic with its stack", v)
			}
		}()
		for v, err := range pmap.Map(context.Background(), seq, square, pmap.WithChunk(chunk)) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		t.Fatal("the loop ended without the panic")
	}()
	if !slices.Equal(got, []int{0, 1, 4, 9, 16}) {
		t.Fatalf("got %v before the panic, want the five items before it", got)
	}
}

func TestMapBodyPanic(t *testing.T) {
	clean(t)
	func() {
		defer func() {
			if v := recover(); v != "body" {
				t.Fatalf("recovered %v, want the loop body's panic", v)
			}
		}()
		for v := range pmap.Map(context.Background(), count(-1), square) {
			if v == 25 {
				panic("body")
			}
		}
	}()
	// clean checks that the deferred cleanup released everything.
}

func TestMapBounded(t *testing.T) {
	clean(t)
	const capacity = 8
	n := scaled(2000)
	var started, yielded, worst atomic.Int64
	for _, err := range pmap.Map(context.Background(), count(n), func(x int) (int, error) {
		s := started.Add(1)
		if d := s - yielded.Load(); d > worst.Load() {
			worst.Store(d)
		}
		return x, nil
	}, pmap.WithCapacity(capacity), pmap.WithWorkers(4)) {
		if err != nil {
			t.Fatal(err)
		}
		if yielded.Load()%100 == 0 {
			time.Sleep(time.Millisecond) // a slow consumer
		}
		yielded.Add(1)
	}
	// An item leaves the pool when Map takes it to yield it, so the one in the hands of
	// the loop body is not counted: capacity in the pool, plus one.
	if w := worst.Load(); w > capacity+1 {
		t.Fatalf("%d items were started and not yet yielded at once; capacity is %d", w, capacity)
	}
}

func TestMapOptionsErrors(t *testing.T) {
	clean(t)
	for _, tc := range []struct {
		opts []pmap.Option
		want string
	}{
		{[]pmap.Option{pmap.WithWorkers(-1)}, "WithWorkers(-1)"},
		{[]pmap.Option{pmap.WithChunk(0)}, "WithChunk(0)"},
		{[]pmap.Option{pmap.WithWorkers(5000)}, "PMAP_INVALID"},
	} {
		n := 0
		for _, err := range pmap.Map(context.Background(), count(10), square, tc.opts...) {
			n++
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		}
		if n != 1 {
			t.Fatalf("got %d pairs, want the error alone", n)
		}
	}
	var pe *pmap.Error
	for _, err := range pmap.Map(context.Background(), count(1), square, pmap.WithWorkers(5000)) {
		if !errors.As(err, &pe) || pe.Status != pmap.StatusInvalid || pe.Op != "pmap_new" || pe.Message == "" {
			t.Fatalf("got %#v, want a *pmap.Error from pmap_new with the library's message", err)
		}
	}
	for _, err := range pmap.Map[int, int](context.Background(), count(1), nil) {
		if err == nil {
			t.Fatal("a nil function must be refused")
		}
	}
}

func TestMapEmpty(t *testing.T) {
	clean(t)
	for range pmap.Map(context.Background(), count(0), square) {
		t.Fatal("an empty input yields nothing")
	}
}

func TestMapTwice(t *testing.T) {
	clean(t)
	seq := pmap.Map(context.Background(), count(10), square)
	for range 2 {
		sum := 0
		for v, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			sum += v
		}
		if sum != 285 {
			t.Fatalf("sum = %d, want 285", sum)
		}
	}
}

func TestVersion(t *testing.T) {
	if v := pmap.Version(); v == "" || !strings.Contains(v, ".") {
		t.Fatalf("Version() = %q", v)
	}
	if s := pmap.StatusInvalid.String(); !strings.HasPrefix(s, "PMAP_INVALID") {
		t.Fatalf("StatusInvalid.String() = %q", s)
	}
}
