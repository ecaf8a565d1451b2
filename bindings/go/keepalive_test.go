package pmap_test

import (
	"context"
	"testing"
	"time"

	pmap "github.com/pmap/pmap/bindings/go"
	"github.com/pmap/pmap/bindings/go/internal/ctestfn"
)

// In these tests the checked call is the wrapper's last use in straight-line code, so
// the wrapper is unreachable during the call unless the method ends with
// runtime.KeepAlive. In the forced-GC build (-tags pmap_debug) the binding collects
// garbage inside every call, so a missing KeepAlive lets the finalizer cancel the pool
// under the call, and the test sees ErrCancelled or ErrDone instead of its result. In
// other builds they are ordinary tests. The pools are then left to their finalizers.

func slowIdentity(x int) (int, error) {
	time.Sleep(20 * time.Millisecond) // the result arrives while Next waits
	return x, nil
}

func TestKeepAlivePoolNext(t *testing.T) {
	cleanAfterGC(t)
	ctx := context.Background()
	p := newPool(t, slowIdentity)
	if err := p.Submit(ctx, 42); err != nil {
		t.Fatal(err)
	}
	r, err := p.Next(ctx)
	if err != nil || r.Err != nil || r.Value != 42 {
		t.Fatalf("Next = %+v, %v: the pool was released during the call", r, err)
	}
}

func TestKeepAlivePoolSubmit(t *testing.T) {
	cleanAfterGC(t)
	p := newPool(t, square)
	if err := p.Submit(context.Background(), 1); err != nil {
		t.Fatalf("Submit = %v: the pool was released during the call", err)
	}
}

func TestKeepAliveCPoolNext(t *testing.T) {
	cleanAfterGC(t)
	ctx := context.Background()
	ctestfn.OpenGate(false)
	defer ctestfn.OpenGate(true)
	p, err := pmap.NewCPool(pmap.CFunc{Work: ctestfn.Gated})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.Submit(ctx, []uintptr{7}); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		ctestfn.OpenGate(true)
	}()
	out := make([]pmap.CResult, 1)
	n, err := p.Next(ctx, out)
	if n != 1 || err != nil || out[0].Err != nil || out[0].Value != 7 {
		t.Fatalf("Next = %d, %+v, %v: the pool was released during the call", n, out[0], err)
	}
}
