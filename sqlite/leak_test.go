package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
)

// TestSubscribe_NoGoroutineLeak ends subscriptions in each way they can
// end and checks that every goroutine they started (theirs and the change
// watcher's) has exited. Not parallel: it counts the process's goroutines.
func TestSubscribe_NoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	b, err := Open(filepath.Join(t.TempDir(), "leak.db"), &Options{WatchInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, nil)
	ctx := context.Background()
	if _, err := s.Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	var subs []*eventstore.Subscription
	cancels := map[int]context.CancelFunc{}
	for i := range 9 {
		sctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		sub, err := s.Subscribe(sctx, eventstore.SubscribeOptions{Buffer: 1})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	// Three end with Close, three with their context; the last three stay
	// open with an unreceived event until the store closes.
	for i := range 3 {
		subs[i].Close()
		cancels[i+3]()
		<-subs[i+3].Events()
	}
	if _, err := s.Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, cancel := range cancels {
		cancel()
	}
	waitGoroutines(t, before)
}

// waitGoroutines fails t unless the number of goroutines falls back to n.
// database/sql closes connections in goroutines of its own, so it waits a
// little for them.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
