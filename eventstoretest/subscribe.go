package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
)

// patience bounds every wait for a delivery. It is a hang detector, not a
// speed requirement: deliveries take microseconds.
const patience = 30 * time.Second

// receive takes n events from sub, failing the test if they do not come.
func receive(t *testing.T, sub *eventstore.Subscription, n int) []eventstore.RecordedEvent {
	t.Helper()
	out := make([]eventstore.RecordedEvent, 0, n)
	timeout := time.After(patience)
	for len(out) < n {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended after %d of %d events: %v", len(out), n, sub.Err())
			}
			out = append(out, e)
		case <-timeout:
			t.Fatalf("received %d of %d events", len(out), n)
		}
	}
	return out
}

// quiet proves that subs have nothing more to deliver, with a barrier: it
// appends an event to stream, which each of them must match, and fails
// unless that is the next event each one delivers.
func (b *bundle) quiet(t *testing.T, stream string, subs ...*eventstore.Subscription) {
	t.Helper()
	barrier := b.appendOK(stream, eventstore.Any, ev("Barrier")).Position
	for _, sub := range subs {
		if e := receive(t, sub, 1)[0]; e.Position != barrier {
			t.Fatalf("delivered %s@%d (position %d) before the barrier at %d", e.StreamID, e.Version, e.Position, barrier)
		}
	}
}

// ended waits for sub's channel to close and returns its Err.
func ended(t *testing.T, sub *eventstore.Subscription) error {
	t.Helper()
	timeout := time.After(patience)
	for {
		select {
		case _, ok := <-sub.Events():
			if !ok {
				return sub.Err()
			}
		case <-timeout:
			t.Fatal("subscription did not end")
		}
	}
}

func testSubscribe(t *testing.T, newBackend NewBackend) {
	t.Run("CatchUpThenLive", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("Old", 10)...)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{})
		b.is.NoErr(err)
		defer sub.Close()
		b.is.Equal(positions(receive(t, sub, 10)), b.logPositions())
		b.appendOK("b-1", eventstore.Any, numbered("New", 3)...)
		live := receive(t, sub, 3)
		b.is.Equal(positions(live), b.logPositions()[10:]) // nothing came between
		b.is.Equal(live[0].Type, "New")
		b.is.Equal(live[0].StreamID, "b-1")
		b.quiet(t, "b-1", sub)
	})

	t.Run("From", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 5)...)
		log := b.logPositions()
		// From the start, from an event, past the end, and from a position
		// that the log reaches only later.
		cases := []struct {
			from int64
			sub  *eventstore.Subscription
		}{{0, nil}, {1, nil}, {log[3], nil}, {log[4], nil}, {log[4] + 1, nil}, {log[4] + 50, nil}}
		for i, c := range cases {
			sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{From: c.from})
			b.is.NoErr(err)
			defer sub.Close()
			cases[i].sub = sub
		}
		b.appendOK("a-1", eventstore.Any, numbered("E", 95)...) // past log[4] + 50
		log = b.logPositions()
		for _, c := range cases {
			var want []int64 // the log from c.from on
			for _, p := range log {
				if p >= c.from {
					want = append(want, p)
				}
			}
			if got := positions(receive(t, c.sub, len(want))); !slices.Equal(got, want) {
				t.Errorf("from %d: got %v, want %v", c.from, got, want)
			}
		}
		subs := make([]*eventstore.Subscription, len(cases))
		for i, c := range cases {
			subs[i] = c.sub
		}
		b.quiet(t, "a-1", subs...) // and nothing twice
	})

	t.Run("FromNow", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("Old", 5)...)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{From: eventstore.FromNow})
		b.is.NoErr(err)
		defer sub.Close()
		res := b.appendOK("a-1", eventstore.Any, ev("New"))
		got := receive(t, sub, 1) // the first it delivers
		b.is.Equal(got[0].Position, res.Position)
		b.is.Equal(got[0].Type, "New")
	})

	t.Run("FromNowOnEmptyStore", func(t *testing.T) {
		b := setup(t, newBackend)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{From: eventstore.FromNow})
		b.is.NoErr(err)
		defer sub.Close()
		res := b.appendOK("x-1", eventstore.Any, ev("First"))
		b.is.Equal(receive(t, sub, 1)[0].Position, res.Position)
	})

	t.Run("Filters", func(t *testing.T) {
		b := setup(t, newBackend)
		write := func() {
			b.appendOK("order-1", eventstore.Any, ev("Placed"))
			b.appendOK("user-1", eventstore.Any, ev("Joined"))
			b.appendOK("order-2", eventstore.Any, ev("Placed", "vip", true))
			b.appendOK("order-1", eventstore.Any, ev("Shipped"))
			b.appendOK("user-2", eventstore.Any, ev("Joined", "vip", true))
		}
		filters := []struct {
			name      string
			filter    eventstore.Filter
			catchUp   []string // from the first write, stored before Subscribe
			live      []string // from the second write
			subscribe *eventstore.Subscription
		}{
			{"Stream", eventstore.Filter{Streams: []string{"order-1"}},
				[]string{"order-1@0", "order-1@1"}, []string{"order-1@2", "order-1@3"}, nil},
			{"Category", eventstore.Filter{Categories: []string{"order"}},
				[]string{"order-1@0", "order-2@0", "order-1@1"}, []string{"order-1@2", "order-2@1", "order-1@3"}, nil},
			{"Glob", eventstore.Filter{StreamGlob: "*-2"},
				[]string{"order-2@0", "user-2@0"}, []string{"order-2@1", "user-2@1"}, nil},
			{"Type", eventstore.Filter{Types: []string{"Shipped"}},
				[]string{"order-1@1"}, []string{"order-1@3"}, nil},
			{"Payload", eventstore.Filter{Payload: map[string]any{"vip": true}},
				[]string{"order-2@0", "user-2@0"}, []string{"order-2@1", "user-2@1"}, nil},
			{"Predicate", eventstore.Filter{Match: func(e eventstore.RecordedEvent) bool { return e.Version == 0 && e.StreamID != "order-1" }},
				[]string{"user-1@0", "order-2@0", "user-2@0"}, nil, nil},
		}
		write()
		for i := range filters {
			sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Filter: filters[i].filter})
			b.is.NoErr(err)
			defer sub.Close()
			filters[i].subscribe = sub
		}
		for _, f := range filters {
			if got := streamsOf(receive(t, f.subscribe, len(f.catchUp))); !slices.Equal(got, f.catchUp) {
				t.Errorf("%s catch-up: %v, want %v", f.name, got, f.catchUp)
			}
		}
		write()
		for _, f := range filters {
			if got := streamsOf(receive(t, f.subscribe, len(f.live))); !slices.Equal(got, f.live) {
				t.Errorf("%s live: %v, want %v", f.name, got, f.live)
			}
		}
		// Barriers: each filter matches one of these at least, and the
		// next events each delivers must be the ones it matches.
		first := b.appendOK("order-1", eventstore.Any, ev("Shipped", "vip", true)).Position // Stream, Category, Type, Payload
		b.appendOK("barrier-2", eventstore.Any, ev("Barrier"))                              // Glob, Predicate
		for _, f := range filters {
			want := positions(all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{From: first}, f.filter)))
			if len(want) == 0 {
				t.Fatalf("%s: no barrier matches", f.name)
			}
			if got := positions(receive(t, f.subscribe, len(want))); !slices.Equal(got, want) {
				t.Errorf("%s after the live events: %v, want the barriers %v", f.name, got, want)
			}
		}
	})

	t.Run("SlowReceiverDoesNotBlockWriters", func(t *testing.T) {
		b := setup(t, newBackend)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Buffer: 1})
		b.is.NoErr(err)
		defer sub.Close()
		// Nobody receives while 1,500 events are appended: the appends must
		// all return (a blocked writer would hang here).
		ctx, cancel := context.WithTimeout(b.ctx, patience)
		defer cancel()
		for i := range 300 {
			_, err := b.store.Append(ctx, fmt.Sprintf("s-%d", i%7), eventstore.Any, numbered("E", 5)...)
			b.is.NoErr(err)
		}
		got := receive(t, sub, 1500)
		b.is.Equal(positions(got), b.logPositions())
		b.quiet(t, "s-0", sub)
	})

	t.Run("Close", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 500)...)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Buffer: 1})
		b.is.NoErr(err)
		receive(t, sub, 3)
		b.is.NoErr(sub.Close()) // while it has more to send
		b.is.NoErr(ended(t, sub))
		b.is.NoErr(sub.Close()) // a second Close is harmless
		b.appendOK("a-1", eventstore.Any, ev("After"))
	})

	t.Run("ContextCancel", func(t *testing.T) {
		b := setup(t, newBackend)
		ctx, cancel := context.WithCancel(b.ctx)
		sub, err := b.store.Subscribe(ctx, eventstore.SubscribeOptions{})
		b.is.NoErr(err)
		b.appendOK("a-1", eventstore.Any, ev("E"))
		receive(t, sub, 1)
		cancel()
		b.is.True(errors.Is(ended(t, sub), context.Canceled))
		b.is.NoErr(sub.Close())
	})

	t.Run("StoreClose", func(t *testing.T) {
		b := setup(t, newBackend)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{})
		b.is.NoErr(err)
		b.is.NoErr(b.store.Close())
		b.is.True(errors.Is(ended(t, sub), eventstore.ErrClosed))
		_, err = b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{})
		b.is.True(errors.Is(err, eventstore.ErrClosed))
	})

	t.Run("BadOptions", func(t *testing.T) {
		b := setup(t, newBackend)
		for name, opts := range map[string]eventstore.SubscribeOptions{
			"Filter": {Filter: eventstore.Filter{StreamGlob: "["}},
			"From":   {From: -2},
			"Buffer": {Buffer: -1},
		} {
			sub, err := b.store.Subscribe(b.ctx, opts)
			if !errors.Is(err, eventstore.ErrInvalidArgument) || sub != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})

	// Several writers append concurrently while subscribers start at
	// random moments from random positions, some filtered. Each must see
	// every matching event from its start position exactly once, in
	// position order.
	t.Run("ConcurrentWritersAndSubscribers", func(t *testing.T) {
		b := setup(t, newBackend)
		const writers, appends = 4, 60
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		type probe struct {
			from   int64
			filter eventstore.Filter
			sub    *eventstore.Subscription
		}
		var (
			wg     sync.WaitGroup
			probes []*probe
		)
		for w := range writers {
			wg.Go(func() {
				for i := range appends {
					stream := fmt.Sprintf("%s-%d", []string{"red", "blue"}[(w+i)%2], i%5)
					if _, err := b.store.Append(b.ctx, stream, eventstore.Any, numbered("E", 1+i%3)...); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for i := range 12 {
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
			p := &probe{from: rng.Int64N(200)}
			if i%3 == 1 {
				p.filter = eventstore.Filter{Categories: []string{"red"}}
			}
			if i%3 == 2 {
				p.from = eventstore.FromNow
			}
			sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{From: p.from, Filter: p.filter, Buffer: 1 + rng.IntN(64)})
			b.is.NoErr(err)
			defer sub.Close()
			p.sub = sub
			probes = append(probes, p)
		}
		wg.Wait()
		// A last event that every probe matches marks the end.
		end := b.appendOK("red-end", eventstore.Any, ev("End")).Position
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		for i, p := range probes {
			var want []int64
			for _, e := range log {
				if (p.filter.Categories == nil || eventstore.Category(e.StreamID) == "red") && e.Position >= max(p.from, 1) {
					want = append(want, e.Position)
				}
			}
			var got []int64
			for len(got) == 0 || got[len(got)-1] != end {
				got = append(got, receive(t, p.sub, 1)[0].Position)
			}
			if p.from == eventstore.FromNow {
				// It started at some commit: what it got must be all of
				// the log after that.
				want = want[len(want)-min(len(want), len(got)):]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("probe %d (from %d, %v): got %v, want %v", i, p.from, p.filter.Categories, got, want)
			}
		}
		subs := make([]*eventstore.Subscription, len(probes))
		for i, p := range probes {
			subs[i] = p.sub
		}
		b.quiet(t, "red-after", subs...) // nothing after the end either
	})
}
