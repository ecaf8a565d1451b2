package pmap_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	pmap "github.com/pmap/pmap/bindings/go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Pools dropped without Close are released by their finalizers: give them a chance.
	deadline := time.Now().Add(10 * time.Second)
	for (pmap.LiveHandles() != 0 || pmap.LiveChunks() != 0) && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if h, c := pmap.LiveHandles(), pmap.LiveChunks(); h != 0 || c != 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d live cgo.Handles and %d live chunks after all tests\n", h, c)
		code = 1
	} else {
		fmt.Fprintf(os.Stderr, "handles: 0 live cgo.Handles, 0 live chunks after all tests\n")
	}
	os.Exit(code)
}

// clean registers a check, run after the test, that every handle and chunk buffer was
// released and no goroutine was left behind. Map and MapC release everything before
// they return and Pool tests wait for Done, so handles and chunks must be zero at once;
// goroutines get a short grace period to exit.
func clean(t *testing.T) { checkClean(t, false) }

// cleanAfterGC is clean for tests that leave pools to their finalizers: it collects
// garbage until they have released everything.
func cleanAfterGC(t *testing.T) { checkClean(t, true) }

func checkClean(t *testing.T, gc bool) {
	t.Helper()
	if h, c := pmap.LiveHandles(), pmap.LiveChunks(); h != 0 || c != 0 {
		t.Fatalf("before the test: %d live handles, %d live chunks", h, c)
	}
	goroutines := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for gc && (pmap.LiveHandles() != 0 || pmap.LiveChunks() != 0) && time.Now().Before(deadline) {
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
		if h, c := pmap.LiveHandles(), pmap.LiveChunks(); h != 0 || c != 0 {
			t.Errorf("after the test: %d live cgo.Handles, %d live chunks (want 0)", h, c)
		}
		for runtime.NumGoroutine() > goroutines {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines left (had %d):\n%s", runtime.NumGoroutine(), goroutines, buf)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// scaled returns n, reduced in the forced-GC build (-tags pmap_debug), where every call
// into the binding runs a full collection.
func scaled(n int) int {
	if debugBuild {
		return max(n/50, 20)
	}
	return n
}

// waitDone waits for a pool to release everything.
func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pool did not release its resources within 10 s")
	}
}
