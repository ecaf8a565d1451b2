package pmap_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	pmap "github.com/pmap/pmap/bindings/go"
)

func ExampleMap() {
	words := []string{"1", "22", "x", "4444"}
	for n, err := range pmap.Map(context.Background(), slices.Values(words), strconv.Atoi) {
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(n)
	}
	// Output:
	// 1
	// 22
	// error: strconv.Atoi: parsing "x": invalid syntax
	// 4444
}

func ExamplePool() {
	ctx := context.Background()
	p, err := pmap.NewPool(func(x int) (int, error) { return x * x, nil }, pmap.WithWorkers(2))
	if err != nil {
		panic(err)
	}
	go func() {
		for i := range 4 {
			if err := p.Submit(ctx, i); err != nil {
				panic(err)
			}
		}
		p.Close()
	}()
	for {
		r, err := p.Next(ctx)
		if errors.Is(err, pmap.ErrDone) {
			break
		}
		fmt.Println(r.Index, r.Value, r.Err)
	}
	// Output:
	// 0 0 <nil>
	// 1 1 <nil>
	// 2 4 <nil>
	// 3 9 <nil>
}

func ExampleWithChunk() {
	// Cheap functions: 64 items per pool item, so the per-item cost of the pool and of
	// the call from C into Go is paid once per 64 items.
	sum := 0
	for v, err := range pmap.Map(context.Background(), count(10000), square, pmap.WithChunk(64)) {
		if err != nil {
			panic(err)
		}
		sum += v
	}
	fmt.Println(sum)
	// Output: 333283335000
}
