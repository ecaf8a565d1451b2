package bench

import (
	"context"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sourcegraph/conc/stream"
	"golang.org/x/sync/errgroup"

	pmap "github.com/pmap/pmap/bindings/go"
	"github.com/pmap/pmap/bindings/go/internal/ctestfn"
)

// ---- Go callbacks: per-item overhead ------------------------------------------------

// burn does n rounds of arithmetic that the compiler cannot remove.
func burn(n int) uint64 {
	acc := uint64(n)
	for range n {
		acc = acc*6364136223846793005 + 1442695040888963407
	}
	return acc
}

// roundsPer10us is how many rounds of burn take 10 µs on this machine, measured once
// (the fastest of several tries, so that a busy machine does not inflate it). A fixed
// amount of CPU work, unlike a clock-based spin, costs the same whatever the scheduler
// does to the thread running it.
var roundsPer10us = func() int {
	const n = 1 << 20
	best := time.Duration(1 << 62)
	for range 20 {
		start := time.Now()
		sink += int(burn(n))
		if d := time.Since(start); d < best {
			best = d
		}
	}
	return int(float64(n) * float64(10*time.Microsecond) / float64(best))
}()

func ints(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

var sink int

// BenchmarkGoCallback maps b.N items through a Go function that costs `work`, ordered,
// with as many workers as cores, each way a Go program might do it.
func BenchmarkGoCallback(b *testing.B) {
	workers := runtime.GOMAXPROCS(0)
	for _, work := range []time.Duration{0, 10 * time.Microsecond} {
		rounds := int(work / (10 * time.Microsecond) * time.Duration(roundsPer10us))
		fn := func(x int) (int, error) {
			if rounds > 0 {
				x += int(burn(rounds) & 1)
			}
			return x * 2, nil
		}
		name := "trivial"
		if work > 0 {
			name = work.String()
		}
		b.Run(name+"/pmap.Map", func(b *testing.B) {
			sum := 0
			for v, err := range pmap.Map(context.Background(), ints(b.N), fn) {
				if err != nil {
					b.Fatal(err)
				}
				sum += v
			}
			sink = sum
		})
		b.Run(name+"/pmap.Map-chunk64", func(b *testing.B) {
			sum := 0
			for v, err := range pmap.Map(context.Background(), ints(b.N), fn, pmap.WithChunk(64)) {
				if err != nil {
					b.Fatal(err)
				}
				sum += v
			}
			sink = sum
		})
		b.Run(name+"/pmap.Pool", func(b *testing.B) {
			ctx := context.Background()
			p, err := pmap.NewPool(fn)
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for i := range b.N {
					if err := p.Submit(ctx, i); err != nil {
						panic(err)
					}
				}
				p.Close()
			}()
			sum := 0
			for {
				r, err := p.Next(ctx)
				if err != nil {
					break
				}
				sum += r.Value
			}
			sink = sum
		})
		// The usual hand-written version: bounded goroutines writing into a slice by
		// index (ordered, but not streaming: the output exists only at the end).
		b.Run(name+"/errgroup.SetLimit", func(b *testing.B) {
			out := make([]int, b.N)
			var g errgroup.Group
			g.SetLimit(workers)
			for i := range b.N {
				g.Go(func() error {
					v, err := fn(i)
					out[i] = v
					return err
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			sink = out[len(out)-1]
		})
		// conc's ordered streaming map.
		b.Run(name+"/conc.stream", func(b *testing.B) {
			s := stream.New().WithMaxGoroutines(workers)
			sum := 0
			for i := range b.N {
				s.Go(func() stream.Callback {
					v, _ := fn(i)
					return func() { sum += v }
				})
			}
			s.Wait()
			sink = sum
		})
	}
}

// ---- C work functions: batched path vs one cgo call per item ---------------------------

const cItems = 1_000_000

func words(n int) iter.Seq[uintptr] {
	return func(yield func(uintptr) bool) {
		for i := range n {
			if !yield(uintptr(i)) {
				return
			}
		}
	}
}

// BenchmarkCFunc runs a C function over 10^6 items per op; ns/item is the figure to read.
// The function burns `iters` rounds of arithmetic (0 = trivial); the plain-call case
// shows what one call costs.
func BenchmarkCFunc(b *testing.B) {
	workers := runtime.GOMAXPROCS(0)
	for _, iters := range []uint64{0, 100, 400} {
		it := ctestfn.NewIters(iters)
		fn := pmap.CFunc{Work: ctestfn.Spin, Ctx: it.Ptr()}
		prefix := fmt.Sprintf("iters=%d", iters)
		perItem := func(b *testing.B) {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*cItems), "ns/item")
		}
		// One goroutine, one cgo call per item: the cost of the function itself.
		b.Run(prefix+"/serial-cgo-per-item", func(b *testing.B) {
			for range b.N {
				s := uintptr(0)
				for i := range cItems {
					s += it.CallSpin(uintptr(i))
				}
				sink = int(s)
			}
			perItem(b)
		})
		b.Run(prefix+"/pmap.MapC", func(b *testing.B) {
			for range b.N {
				s := uintptr(0)
				for r, err := range pmap.MapC(context.Background(), fn, words(cItems)) {
					if err != nil {
						b.Fatal(err)
					}
					s += r.Value
				}
				sink = int(s)
			}
			perItem(b)
		})
		b.Run(prefix+"/pmap.CPool", func(b *testing.B) {
			items := make([]uintptr, cItems)
			for i := range items {
				items[i] = uintptr(i)
			}
			ctx := context.Background()
			out := make([]pmap.CResult, 4096)
			for range b.N {
				p, err := pmap.NewCPool(fn)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					if _, err := p.Submit(ctx, items); err != nil {
						panic(err)
					}
					p.Close()
				}()
				s := uintptr(0)
				for {
					n, err := p.Next(ctx, out)
					if err != nil {
						break
					}
					for _, r := range out[:n] {
						s += r.Value
					}
				}
				sink = int(s)
			}
			perItem(b)
		})
		// pmap with one pool item per C call: the library's own per-item cost, unamortized.
		b.Run(prefix+"/pmap.MapC-chunk1", func(b *testing.B) {
			for range b.N {
				s := uintptr(0)
				for r, err := range pmap.MapC(context.Background(), fn, words(cItems), pmap.WithChunk(1)) {
					if err != nil {
						b.Fatal(err)
					}
					s += r.Value
				}
				sink = int(s)
			}
			perItem(b)
		})
		// Go baselines: one cgo call per item, spread over goroutines.
		b.Run(prefix+"/cgo-per-item-errgroup", func(b *testing.B) {
			out := make([]uintptr, cItems)
			for range b.N {
				var g errgroup.Group
				g.SetLimit(workers)
				for i := range cItems {
					g.Go(func() error {
						out[i] = it.CallSpin(uintptr(i))
						return nil
					})
				}
				_ = g.Wait()
			}
			perItem(b)
		})
		b.Run(prefix+"/cgo-per-item-worker-goroutines", func(b *testing.B) {
			out := make([]uintptr, cItems)
			for range b.N {
				ch := make(chan int, 1024)
				var wg sync.WaitGroup
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range ch {
							out[i] = it.CallSpin(uintptr(i))
						}
					}()
				}
				for i := range cItems {
					ch <- i
				}
				close(ch)
				wg.Wait()
			}
			perItem(b)
		})
		// The best case for Go: the input cut into one contiguous range per core.
		b.Run(prefix+"/cgo-per-item-partitioned", func(b *testing.B) {
			out := make([]uintptr, cItems)
			for range b.N {
				var wg sync.WaitGroup
				per := (cItems + workers - 1) / workers
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := w * per; i < min(cItems, (w+1)*per); i++ {
							out[i] = it.CallSpin(uintptr(i))
						}
					}()
				}
				wg.Wait()
			}
			perItem(b)
		})
	}
}
