package pmap_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pmap "github.com/pmap/pmap/bindings/go"
)

func newPool[T, R any](t *testing.T, fn func(T) (R, error), opts ...pmap.Option) *pmap.Pool[T, R] {
	t.Helper()
	p, err := pmap.NewPool(fn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// drain takes results until ErrDone.
func drain[R any](t *testing.T, p *pmap.Pool[int, R]) []pmap.Result[R] {
	t.Helper()
	var rs []pmap.Result[R]
	for {
		r, err := p.Next(context.Background())
		if errors.Is(err, pmap.ErrDone) {
			return rs
		}
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
}

func TestPoolSubmitNext(t *testing.T) {
	clean(t)
	ctx := context.Background()
	p := newPool(t, func(x int) (int, error) {
		if x == 3 {
			return 0, errThree
		}
		return x * 10, nil
	}, pmap.WithWorkers(2))
	for i := range 10 {
		if err := p.Submit(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	p.Close() // idempotent
	if err := p.Submit(ctx, 99); !errors.Is(err, pmap.ErrClosed) {
		t.Fatalf("Submit after Close = %v, want ErrClosed", err)
	}
	rs := drain(t, p)
	if len(rs) != 10 {
		t.Fatalf("got %d results, want 10", len(rs))
	}
	for i, r := range rs {
		if r.Index != uint64(i) {
			t.Fatalf("result %d has index %d", i, r.Index)
		}
		if i == 3 {
			if !errors.Is(r.Err, errThree) {
				t.Fatalf("item 3: Err = %v", r.Err)
			}
		} else if r.Err != nil || r.Value != i*10 {
			t.Fatalf("item %d: %+v", i, r)
		}
	}
	if _, err := p.Next(ctx); !errors.Is(err, pmap.ErrDone) {
		t.Fatalf("Next after the end = %v, want ErrDone again", err)
	}
	waitDone(t, p.Done())
	st := p.Stats()
	if st.Submitted != 10 || st.Succeeded != 9 || st.Failed != 1 || st.Cancelled != 0 ||
		st.InFlight != 0 || st.Workers != 2 || st.Elapsed <= 0 {
		t.Fatalf("Stats() = %+v", st)
	}
	p.Cancel() // after the end: harmless
}

func TestPoolMultipleProducersConsumers(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(map[bool]string{true: "ordered", false: "unordered"}[ordered], func(t *testing.T) {
			clean(t)
			const producers, consumers = 4, 3
			per := scaled(2500)
			ctx := context.Background()
			p := newPool(t, func(x int) (int, error) { return -x, nil },
				pmap.WithOrdered(ordered), pmap.WithCapacity(32), pmap.WithWorkers(3))
			var prod sync.WaitGroup
			for w := range producers {
				prod.Add(1)
				go func() {
					defer prod.Done()
					for i := range per {
						if err := p.Submit(ctx, w*per+i); err != nil {
							t.Error(err)
							return
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
					last := int64(-1)
					for {
						r, err := p.Next(ctx)
						if errors.Is(err, pmap.ErrDone) {
							return
						}
						if err != nil || r.Err != nil {
							t.Error(err, r.Err)
							return
						}
						seen[-r.Value].Add(1)
						indices[r.Index].Add(1)
						if ordered && int64(r.Index) <= last {
							t.Errorf("ordered pool: index %d after %d on one consumer", r.Index, last)
						}
						last = int64(r.Index)
					}
				}()
			}
			cons.Wait()
			for i := range seen {
				if seen[i].Load() != 1 || indices[i].Load() != 1 {
					t.Fatalf("item %d came back %d times (index %d: %d times)",
						i, seen[i].Load(), i, indices[i].Load())
				}
			}
			waitDone(t, p.Done())
		})
	}
}

func TestPoolSubmitContextWhileFull(t *testing.T) {
	clean(t)
	ctx := context.Background()
	p := newPool(t, square, pmap.WithCapacity(2))
	for i := range 2 {
		if err := p.Submit(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	// Full: the third Submit waits, and its context ends the wait without harm.
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Submit(short, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full pool = %v, want DeadlineExceeded", err)
	}
	if time.Since(start) < 25*time.Millisecond {
		t.Fatal("Submit returned before its deadline: it should have waited for room")
	}
	// A cancelled context is refused at once, even with room.
	done, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if err := p.Submit(done, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit with a cancelled context = %v", err)
	}
	// The pool carries on: take one, submit again, finish.
	if r, err := p.Next(ctx); err != nil || r.Index != 0 {
		t.Fatalf("Next = %+v, %v", r, err)
	}
	if err := p.Submit(ctx, 3); err != nil {
		t.Fatal(err)
	}
	p.Close()
	rs := drain(t, p)
	if len(rs) != 2 || rs[0].Index != 1 || rs[1].Index != 2 || rs[1].Value != 9 {
		t.Fatalf("got %+v: the refused submits must not have taken an index", rs)
	}
	waitDone(t, p.Done())
}

func TestPoolSubmitUnblockedByCancel(t *testing.T) {
	clean(t)
	ctx := context.Background()
	p := newPool(t, square, pmap.WithCapacity(1))
	if err := p.Submit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error)
	go func() { errc <- p.Submit(ctx, 2) }()
	time.Sleep(10 * time.Millisecond)
	p.Cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, pmap.ErrCancelled) {
			t.Fatalf("blocked Submit after Cancel = %v, want ErrCancelled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Cancel did not wake a Submit waiting for room")
	}
	rs := drain(t, p)
	if len(rs) != 1 {
		t.Fatalf("got %d results, want the one accepted item", len(rs))
	}
	waitDone(t, p.Done())
}

func TestPoolNextContext(t *testing.T) {
	clean(t)
	p := newPool(t, square)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty pool = %v, want DeadlineExceeded", err)
	}
	// The pool is intact.
	if err := p.Submit(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	if r, err := p.Next(context.Background()); err != nil || r.Value != 49 {
		t.Fatalf("Next = %+v, %v", r, err)
	}
	p.Close()
	if _, err := p.Next(context.Background()); !errors.Is(err, pmap.ErrDone) {
		t.Fatalf("Next = %v, want ErrDone", err)
	}
	waitDone(t, p.Done())
}

func TestPoolCancel(t *testing.T) {
	clean(t)
	ctx := context.Background()
	release := make(chan struct{})
	var ran atomic.Int64
	p := newPool(t, func(x int) (int, error) {
		ran.Add(1)
		<-release
		return x, nil
	}, pmap.WithWorkers(2), pmap.WithCapacity(100))
	for i := range 100 {
		if err := p.Submit(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for ran.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	p.Cancel()
	p.Cancel() // idempotent
	if err := p.Submit(ctx, 100); !errors.Is(err, pmap.ErrCancelled) {
		t.Fatalf("Submit after Cancel = %v, want ErrCancelled", err)
	}
	close(release)
	rs := drain(t, p)
	if len(rs) != 100 {
		t.Fatalf("got %d results, want all 100 back", len(rs))
	}
	var ok, cancelled int
	for i, r := range rs {
		if r.Index != uint64(i) {
			t.Fatalf("result %d has index %d", i, r.Index)
		}
		switch {
		case r.Err == nil:
			ok++
		case errors.Is(r.Err, pmap.ErrCancelled):
			cancelled++
		default:
			t.Fatalf("item %d: %v", i, r.Err)
		}
	}
	// Only items already taken by a worker ran: at most one per worker, plus one per
	// worker that took a task just before the cancel.
	if ok != int(ran.Load()) || ok > 4 || cancelled != 100-ok {
		t.Fatalf("%d ran, %d ok, %d cancelled", ran.Load(), ok, cancelled)
	}
	waitDone(t, p.Done())
	if st := p.Stats(); st.Cancelled != uint64(cancelled) || st.Succeeded != uint64(ok) {
		t.Fatalf("Stats() = %+v", st)
	}
}

func TestPoolResultsOutliveRelease(t *testing.T) {
	clean(t)
	ctx := context.Background()
	p := newPool(t, square, pmap.WithCapacity(64))
	for i := range 50 {
		if err := p.Submit(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	// The pool releases its threads as soon as every item is back from C, before anyone
	// took a result; the results wait in Go.
	waitDone(t, p.Done())
	rs := drain(t, p)
	if len(rs) != 50 || rs[49].Value != 49*49 {
		t.Fatalf("got %d results after the release", len(rs))
	}
	if st := p.Stats(); st.Submitted != 50 || st.InFlight != 0 {
		t.Fatalf("Stats() = %+v", st)
	}
}

func TestPoolPanic(t *testing.T) {
	clean(t)
	ctx := context.Background()
	p := newPool(t, func(x int) (int, error) {
		if x == 1 {
			panic(x)
		}
		return x, nil
	})
	for i := range 3 {
		if err := p.Submit(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	rs := drain(t, p)
	var pe *pmap.PanicError
	if !errors.As(rs[1].Err, &pe) || pe.Value != 1 || rs[0].Err != nil || rs[2].Err != nil {
		t.Fatalf("got %+v", rs)
	}
	waitDone(t, p.Done())
	if st := p.Stats(); st.Failed != 1 || st.Succeeded != 2 {
		t.Fatalf("Stats() = %+v", st)
	}
}

func TestPoolStatsInFlight(t *testing.T) {
	clean(t)
	ctx := context.Background()
	p := newPool(t, square, pmap.WithCapacity(16))
	for i := range 10 {
		if err := p.Submit(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		if _, err := p.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := p.Stats(); st.Submitted != 10 || st.InFlight != 6 {
		t.Fatalf("Stats() = %+v, want 10 submitted, 6 in flight", st)
	}
	p.Cancel()
	drain(t, p)
	waitDone(t, p.Done())
}

// A Pool dropped without Close or Cancel is cancelled by its finalizer, which releases
// every handle (those still in C through on_drop).
func TestPoolFinalizer(t *testing.T) {
	cleanAfterGC(t)
	ctx := context.Background()
	func() {
		p := newPool(t, func(x int) (int, error) {
			time.Sleep(100 * time.Microsecond)
			return x, nil
		}, pmap.WithCapacity(2000), pmap.WithWorkers(1))
		for i := range scaled(2000) {
			if err := p.Submit(ctx, i); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for pmap.LiveHandles() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handles still live: the finalizer did not release the pool", pmap.LiveHandles())
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPoolBadOptions(t *testing.T) {
	clean(t)
	if _, err := pmap.NewPool(square, pmap.WithCapacity(-1)); err == nil {
		t.Fatal("WithCapacity(-1) accepted")
	}
	if _, err := pmap.NewPool(square, pmap.WithCapacity(1<<31)); err == nil {
		t.Fatal("a capacity over the library's limit accepted")
	}
	if _, err := pmap.NewPool[int, int](nil); err == nil {
		t.Fatal("a nil function accepted")
	}
}
