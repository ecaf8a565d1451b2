package pmap_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pmap "github.com/pmap/pmap/bindings/go"
	"github.com/pmap/pmap/bindings/go/internal/ctestfn"
)

// words yields 0, 1, … n-1 as uintptr (forever when n < 0).
func words(n int) iter.Seq[uintptr] {
	return func(yield func(uintptr) bool) {
		for i := 0; n < 0 || i < n; i++ {
			if !yield(uintptr(i)) {
				return
			}
		}
	}
}

func TestMapCOrdered(t *testing.T) {
	for _, chunk := range []int{1, 7, 256, 4096} {
		n := scaled(100000)
		if chunk == 1 {
			n = scaled(20000)
		}
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) {
			clean(t)
			i := 0
			for r, err := range pmap.MapC(context.Background(), pmap.CFunc{Work: ctestfn.Square},
				words(n), pmap.WithChunk(chunk)) {
				if err != nil {
					t.Fatal(err)
				}
				if r.Index != uint64(i) || r.Item != uintptr(i) || r.Value != uintptr(i*i) {
					t.Fatalf("position %d: %+v", i, r)
				}
				i++
			}
			if i != n {
				t.Fatalf("got %d results, want %d", i, n)
			}
		})
	}
}

func TestMapCUnordered(t *testing.T) {
	clean(t)
	n := scaled(50000)
	seen := make([]bool, n)
	for r, err := range pmap.MapC(context.Background(), pmap.CFunc{Work: ctestfn.Square},
		words(n), pmap.WithOrdered(false), pmap.WithChunk(16), pmap.WithWorkers(4)) {
		if err != nil || r.Value != r.Item*r.Item || r.Index != uint64(r.Item) || seen[r.Item] {
			t.Fatalf("%+v, %v", r, err)
		}
		seen[r.Item] = true
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("item %d never came back", i)
		}
	}
}

func TestMapCErrors(t *testing.T) {
	clean(t)
	n := scaled(10000)
	i := 0
	for r, err := range pmap.MapC(context.Background(), pmap.CFunc{Work: ctestfn.FailOdd},
		words(n), pmap.WithChunk(64)) {
		if i%2 == 1 {
			var ce *pmap.CError
			if !errors.As(err, &ce) || ce.Code != 7 || r.Value != 0 || r.Item != uintptr(i) ||
				!strings.Contains(err.Error(), "code 7") {
				t.Fatalf("item %d: (%+v, %v), want a *CError with code 7", i, r, err)
			}
		} else if err != nil || r.Value != uintptr(i+1) {
			t.Fatalf("item %d: (%+v, %v)", i, r, err)
		}
		i++
	}
	if i != n {
		t.Fatalf("got %d results, want %d", i, n)
	}
}

func TestMapCFailFast(t *testing.T) {
	clean(t)
	n := scaled(1000000)
	var errs, oks int
	for r, err := range pmap.MapC(context.Background(), pmap.CFunc{Work: ctestfn.FailOdd},
		words(n), pmap.WithFailFast(), pmap.WithChunk(1000), pmap.WithCapacity(8)) {
		if err != nil {
			errs++
		} else {
			oks++
			if r.Value != r.Item+1 {
				t.Fatalf("%+v", r)
			}
		}
	}
	// Item 1 fails; its chunk stops right there, and chunks already running stop at
	// their next item. Every item that ran is yielded.
	if errs < 1 || errs+oks >= n/2 {
		t.Fatalf("%d errors, %d results: fail-fast did not stop the map", errs, oks)
	}
}

func TestMapCEarlyBreakAndContext(t *testing.T) {
	clean(t)
	got := 0
	for r, err := range pmap.MapC(context.Background(), pmap.CFunc{Work: ctestfn.Square},
		words(-1), pmap.WithChunk(32)) {
		if err != nil || r.Index != uint64(got) {
			t.Fatal(r, err)
		}
		got++
		if got == 1000 {
			break
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var last error
	got = 0
	for _, err := range pmap.MapC(ctx, pmap.CFunc{Work: ctestfn.Square}, words(-1)) {
		if err != nil {
			last = err
			continue
		}
		got++
		if got == 5000 {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) || got != 5000 {
		t.Fatalf("got %d results, last error %v", got, last)
	}
}

func TestCPoolSubmitNext(t *testing.T) {
	clean(t)
	ctx := context.Background()
	p, err := pmap.NewCPool(pmap.CFunc{Work: ctestfn.Square}, pmap.WithChunk(10))
	if err != nil {
		t.Fatal(err)
	}
	items := make([]uintptr, 95)
	for i := range items {
		items[i] = uintptr(i)
	}
	if n, err := p.Submit(ctx, items[:3]); n != 3 || err != nil {
		t.Fatal(n, err)
	}
	if n, err := p.Submit(ctx, items[3:]); n != 92 || err != nil {
		t.Fatal(n, err)
	}
	if n, err := p.Submit(ctx, nil); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	p.Close()
	if n, err := p.Submit(ctx, items); n != 0 || !errors.Is(err, pmap.ErrClosed) {
		t.Fatalf("Submit after Close = %d, %v", n, err)
	}
	// Small output buffers take chunks apart.
	out := make([]pmap.CResult, 4)
	next := 0
	for {
		n, err := p.Next(ctx, out)
		if errors.Is(err, pmap.ErrDone) {
			break
		}
		if err != nil || n < 1 || n > 4 {
			t.Fatal(n, err)
		}
		for _, r := range out[:n] {
			if r.Index != uint64(next) || r.Item != uintptr(next) || r.Value != uintptr(next*next) || r.Err != nil {
				t.Fatalf("position %d: %+v", next, r)
			}
			next++
		}
	}
	if next != 95 {
		t.Fatalf("got %d results, want 95", next)
	}
	if n, err := p.Next(ctx, nil); n != 0 || err != nil {
		t.Fatalf("Next with no room = %d, %v", n, err)
	}
	waitDone(t, p.Done())
	if st := p.Stats(); st.Submitted != 95 || st.Succeeded != 95 || st.InFlight != 0 || st.Workers < 1 {
		t.Fatalf("Stats() = %+v", st)
	}
}

func TestCPoolMultipleProducersConsumers(t *testing.T) {
	clean(t)
	const producers, consumers = 3, 3
	per := scaled(30000)
	ctx := context.Background()
	p, err := pmap.NewCPool(pmap.CFunc{Work: ctestfn.Square},
		pmap.WithChunk(50), pmap.WithCapacity(8), pmap.WithWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	var prod sync.WaitGroup
	for w := range producers {
		prod.Add(1)
		go func() {
			defer prod.Done()
			batch := make([]uintptr, 0, 333)
			for i := range per {
				batch = append(batch, uintptr(w*per+i))
				if len(batch) == cap(batch) || i == per-1 {
					if n, err := p.Submit(ctx, batch); err != nil || n != len(batch) {
						t.Error(n, err)
						return
					}
					batch = batch[:0]
				}
			}
		}()
	}
	go func() { prod.Wait(); p.Close() }()
	seen := make([]atomic.Int32, producers*per)
	indices := make([]atomic.Int32, producers*per)
	var cons sync.WaitGroup
	for range consumers {
		cons.Add(1)
		go func() {
			defer cons.Done()
			out := make([]pmap.CResult, 37)
			last := int64(-1)
			for {
				n, err := p.Next(ctx, out)
				if errors.Is(err, pmap.ErrDone) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				for _, r := range out[:n] {
					if r.Err != nil || r.Value != r.Item*r.Item {
						t.Errorf("%+v", r)
					}
					seen[r.Item].Add(1)
					indices[r.Index].Add(1)
					if int64(r.Index) <= last {
						t.Errorf("index %d after %d on one consumer of an ordered pool", r.Index, last)
					}
					last = int64(r.Index)
				}
			}
		}()
	}
	cons.Wait()
	for i := range seen {
		if seen[i].Load() != 1 || indices[i].Load() != 1 {
			t.Fatalf("item %d came back %d times, index %d %d times", i, seen[i].Load(), i, indices[i].Load())
		}
	}
	waitDone(t, p.Done())
}

func TestCPoolCancel(t *testing.T) {
	clean(t)
	ctx := context.Background()
	ctestfn.OpenGate(false)
	defer ctestfn.OpenGate(true)
	ctestfn.ResetGatedCalls()
	p, err := pmap.NewCPool(pmap.CFunc{Work: ctestfn.Gated},
		pmap.WithChunk(10), pmap.WithWorkers(2), pmap.WithCapacity(100))
	if err != nil {
		t.Fatal(err)
	}
	items := make([]uintptr, 1000)
	for i := range items {
		items[i] = uintptr(1000 + i)
	}
	if n, err := p.Submit(ctx, items); n != 1000 || err != nil {
		t.Fatal(n, err)
	}
	for ctestfn.GatedCalls() < 2 {
		time.Sleep(time.Millisecond)
	}
	p.Cancel()
	if n, err := p.Submit(ctx, items); n != 0 || !errors.Is(err, pmap.ErrCancelled) {
		t.Fatalf("Submit after Cancel = %d, %v", n, err)
	}
	ctestfn.OpenGate(true)
	out := make([]pmap.CResult, 64)
	var all []pmap.CResult
	for {
		n, err := p.Next(ctx, out)
		if errors.Is(err, pmap.ErrDone) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out[:n]...)
	}
	// Every item comes back, with its word, so memory it owns could be freed.
	if len(all) != 1000 {
		t.Fatalf("got %d results, want 1000", len(all))
	}
	ran := 0
	for i, r := range all {
		if r.Index != uint64(i) || r.Item != uintptr(1000+i) {
			t.Fatalf("position %d: %+v", i, r)
		}
		if r.Err == nil {
			ran++
		} else if !errors.Is(r.Err, pmap.ErrCancelled) {
			t.Fatalf("position %d: %v", i, r.Err)
		}
	}
	// The running chunks stop between items once cancelled: one item each ran.
	if int64(ran) != ctestfn.GatedCalls() || ran > 4 {
		t.Fatalf("%d items ran, %d calls", ran, ctestfn.GatedCalls())
	}
	waitDone(t, p.Done())
	if st := p.Stats(); st.Submitted != 1000 || st.Succeeded != uint64(ran) || st.Cancelled != uint64(1000-ran) {
		t.Fatalf("Stats() = %+v", st)
	}
}

func TestCPoolContext(t *testing.T) {
	clean(t)
	ctx := context.Background()
	p, err := pmap.NewCPool(pmap.CFunc{Work: ctestfn.Square}, pmap.WithChunk(4), pmap.WithCapacity(2))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	out := make([]pmap.CResult, 8)
	if _, err := p.Next(short, out); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty pool = %v", err)
	}
	items := make([]uintptr, 20)
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	// Two chunks of 4 fit; then Submit waits for room until its context ends.
	if n, err := p.Submit(short2, items); n != 8 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full pool = %d, %v; want 8 accepted, then DeadlineExceeded", n, err)
	}
	p.Close()
	total := 0
	for {
		n, err := p.Next(ctx, out)
		if errors.Is(err, pmap.ErrDone) {
			break
		}
		total += n
	}
	if total != 8 {
		t.Fatalf("got %d results, want the 8 accepted", total)
	}
	waitDone(t, p.Done())
}

func TestCPoolWorkerState(t *testing.T) {
	clean(t)
	inits0, exits0, items0 := ctestfn.Counts()
	p, err := pmap.NewCPool(pmap.CFunc{
		Work: ctestfn.CountingWork, Init: ctestfn.CountingInit, Exit: ctestfn.CountingExit,
	}, pmap.WithWorkers(3), pmap.WithChunk(8), pmap.WithCapacity(1000))
	if err != nil {
		t.Fatal(err)
	}
	n := scaled(5000)
	items := make([]uintptr, n)
	if k, err := p.Submit(context.Background(), items); k != n || err != nil {
		t.Fatal(k, err)
	}
	p.Close()
	waitDone(t, p.Done())
	inits, exits, done := ctestfn.Counts()
	if inits-inits0 != 3 || exits-exits0 != 3 || done-items0 != int64(n) {
		t.Fatalf("inits %d, exits %d, items %d; want 3, 3, %d", inits-inits0, exits-exits0, done-items0, n)
	}
	for {
		if _, err := p.Next(context.Background(), make([]pmap.CResult, 100)); err != nil {
			break
		}
	}
}

func TestCPoolSpinCtx(t *testing.T) {
	clean(t)
	iters := ctestfn.NewIters(100)
	defer iters.Free()
	i := 0
	for r, err := range pmap.MapC(context.Background(), pmap.CFunc{Work: ctestfn.Spin, Ctx: iters.Ptr()}, words(scaled(20000))) {
		if err != nil || r.Value != uintptr(3*i) {
			t.Fatal(r, err)
		}
		i++
	}
}

func TestCPoolBad(t *testing.T) {
	clean(t)
	if _, err := pmap.NewCPool(pmap.CFunc{}); err == nil {
		t.Fatal("a nil work function accepted")
	}
	var pe *pmap.Error
	if _, err := pmap.NewCPool(pmap.CFunc{Work: ctestfn.Square}, pmap.WithWorkers(100000)); !errors.As(err, &pe) || pe.Status != pmap.StatusInvalid {
		t.Fatalf("got %v, want PMAP_INVALID", err)
	}
	for _, err := range pmap.MapC(context.Background(), pmap.CFunc{}, words(3)) {
		if err == nil {
			t.Fatal("MapC with a nil work function yielded a result")
		}
	}
}

func TestCPoolFinalizer(t *testing.T) {
	cleanAfterGC(t)
	func() {
		p, err := pmap.NewCPool(pmap.CFunc{Work: ctestfn.Square}, pmap.WithChunk(3), pmap.WithCapacity(200))
		if err != nil {
			t.Fatal(err)
		}
		items := make([]uintptr, 300)
		if _, err := p.Submit(context.Background(), items); err != nil {
			t.Fatal(err)
		}
		out := make([]pmap.CResult, 2)
		if _, err := p.Next(context.Background(), out); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for pmap.LiveChunks() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d chunk buffers still live: the finalizer did not release the pool", pmap.LiveChunks())
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMapCSeqPanic(t *testing.T) {
	clean(t)
	seq := func(yield func(uintptr) bool) {
		for i := range 5 {
			if !yield(uintptr(i)) {
				return
			}
		}
		panic("seq broke")
	}
	var got []uintptr
	func() {
		defer func() {
			if pe, ok := recover().(*pmap.PanicError); !ok || pe.Value != "seq broke" {
				t.Fatalf("recovered %v, want a *PanicError of seq's panic", pe)
			}
		}()
		for r, err := range pmap.MapC(context.Background(), pmap.CFunc{Work: ctestfn.Square}, seq, pmap.WithChunk(3)) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r.Value)
		}
		t.Fatal("the loop ended without the panic")
	}()
	if len(got) != 5 || got[4] != 16 {
		t.Fatalf("got %v before the panic, want the five items before it", got)
	}
}
