package eventstore_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
)

// TestSubscribe_NoGoroutineLeak ends subscriptions in each way they can
// end and checks that their goroutines are gone once Close (theirs or the
// store's) has returned. Not parallel: it counts the process's goroutines.
func TestSubscribe_NoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	s := eventstore.New(memory.New(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "E"}, eventstore.Event{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	closed, _ := s.Subscribe(ctx, eventstore.SubscribeOptions{Buffer: 1})
	cctx, ccancel := context.WithCancel(ctx)
	cancelled, _ := s.Subscribe(cctx, eventstore.SubscribeOptions{Buffer: 1})
	_, _ = s.Subscribe(ctx, eventstore.SubscribeOptions{Buffer: 1}) // ended by the store
	closed.Close()
	ccancel()
	for range cancelled.Events() {
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close returned after the goroutines ended; the runtime may take a
	// moment to count them out.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}
