// Consumer 4: the Go binding built with -tags pmap_pkgconfig, so cgo takes the header and
// the library from `pkg-config pmap` (PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig).
package main

import (
	"context"
	"fmt"
	"os"
	"slices"

	pmap "github.com/pmap/pmap/bindings/go"
)

func main() {
	const n = 5000
	inputs := make([]int, n)
	for i := range inputs {
		inputs[i] = i
	}
	i := 0
	for sq, err := range pmap.Map(context.Background(), slices.Values(inputs),
		func(x int) (int, error) { return x * x, nil }, pmap.WithWorkers(2)) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "item %d: %v\n", i, err)
			os.Exit(1)
		}
		if sq != i*i {
			fmt.Fprintf(os.Stderr, "item %d: got %d, want %d\n", i, sq, i*i)
			os.Exit(1)
		}
		i++
	}
	if i != n {
		fmt.Fprintf(os.Stderr, "got %d of %d results\n", i, n)
		os.Exit(1)
	}
	fmt.Printf("pmap_version=%s\n", pmap.Version())
	fmt.Printf("ok: %d items squared in order through the Go binding\n", n)
}
