package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

// fakeSink records what it accepts. fail, when set, decides per call
// whether the call fails and how many events it accepts first.
type fakeSink struct {
	mu       sync.Mutex
	got      []eventstore.RecordedEvent // everything accepted, duplicates too
	seen     map[uuid.UUID]bool         // IDs accepted, for deduplication
	calls    int
	maxBatch int
	fail     func(call int, n int) (accept int, err error)
	arrived  chan struct{}
}

func newFakeSink() *fakeSink {
	return &fakeSink{seen: map[uuid.UUID]bool{}, arrived: make(chan struct{}, 1)}
}

func (s *fakeSink) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.maxBatch = max(s.maxBatch, len(events))
	accept, err := len(events), error(nil)
	if s.fail != nil {
		accept, err = s.fail(s.calls, len(events))
	}
	for _, e := range events[:accept] {
		s.got = append(s.got, e)
		s.seen[e.ID] = true
	}
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	return accept, err
}

// unique returns the positions accepted, first time per event ID.
func (s *fakeSink) unique() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[uuid.UUID]bool{}
	var out []int64
	for _, e := range s.got {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e.Position)
		}
	}
	return out
}

// waitFor waits until the sink has accepted n distinct events.
func (s *fakeSink) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(patience)
	for {
		s.mu.Lock()
		have := len(s.seen)
		s.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-s.arrived:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the sink has %d of %d events", have, n)
		}
	}
}

// forward runs a forwarder in a goroutine; stop cancels it and returns
// Run's error.
func (b *bundle) forward(t *testing.T, opts eventstore.ForwarderOptions) (*eventstore.Forwarder, func() error) {
	t.Helper()
	f, err := b.store.NewForwarder(opts)
	b.is.NoErr(err)
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	return f, func() error { cancel(); return <-done }
}

// inOrder asserts that positions are those of the first n events of the
// log, in order.
func (b *bundle) inOrder(t *testing.T, positions []int64, n int) {
	t.Helper()
	if len(positions) != n {
		t.Fatalf("%d events, want %d", len(positions), n)
	}
	log := b.logPositions()
	for i, p := range positions {
		if i >= len(log) || p != log[i] {
			t.Fatalf("event %d has position %d, not that of the log's event %d", i, p, i)
		}
	}
}

func testOutbox(t *testing.T, newBackend NewBackend) {
	fast := func(name string, sink eventstore.Sink) eventstore.ForwarderOptions {
		return eventstore.ForwarderOptions{Name: name, Sink: sink, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	}

	t.Run("InOrderInBatches", func(t *testing.T) {
		b := setup(t, newBackend)
		for i := range 5 {
			b.appendOK(fmt.Sprintf("dev-%d", i), eventstore.Any, numbered("Reading", 50)...)
		}
		sink := newFakeSink()
		f, stop := b.forward(t, fast("central", sink))
		sink.waitFor(t, 250)
		live := b.appendOK("dev-9", eventstore.Any, ev("Live"))
		sink.waitFor(t, 251)
		b.is.True(errors.Is(stop(), context.Canceled))
		b.inOrder(t, sink.unique(), 251)
		b.is.Equal(len(sink.got), 251) // a healthy sink gets each event once
		b.is.True(sink.maxBatch <= 100)
		st := f.Status()
		b.is.Equal(st.Position, live.Position)
		b.is.Equal(st.Sent, uint64(251))
		b.is.Equal(st.ConsecutiveFailures, 0)
		b.is.NoErr(st.LastError)
		b.is.True(st.OldestPending.IsZero())
		infos, err := b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(infos[0].Key, "outbox/central")
		b.is.Equal(infos[0].Position, live.Position)
	})

	t.Run("SinkDownThenBack", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, numbered("Reading", 30)...)
		sink := newFakeSink()
		isDown := true // read and written under sink.mu
		sink.fail = func(call, n int) (int, error) {
			if isDown {
				return 0, errors.New("connection refused")
			}
			return n, nil
		}
		f, stop := b.forward(t, fast("central", sink))
		// While down: failures are counted and reported, nothing moves.
		deadline := time.Now().Add(patience)
		for f.Status().ConsecutiveFailures < 3 {
			if time.Now().After(deadline) {
				t.Fatal("no failures reported")
			}
			time.Sleep(time.Millisecond)
		}
		st := f.Status()
		b.is.True(st.LastError != nil)
		b.is.Equal(st.Position, int64(0))
		b.is.True(st.Lag(time.Now()) > 0)
		b.appendOK("dev-1", eventstore.Any, numbered("Reading", 20)...) // writes go on meanwhile
		sink.mu.Lock()
		isDown = false
		sink.mu.Unlock()
		sink.waitFor(t, 50)
		stop()
		b.inOrder(t, sink.unique(), 50)
		b.is.Equal(len(sink.got), 50)
		b.is.Equal(f.Status().ConsecutiveFailures, 0)
	})

	t.Run("PartialAcceptance", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, numbered("Reading", 40)...)
		sink := newFakeSink()
		sink.fail = func(call, n int) (int, error) {
			if n > 3 {
				return 3, errors.New("accepted 3, then timed out")
			}
			return n, nil
		}
		_, stop := b.forward(t, fast("central", sink))
		sink.waitFor(t, 40)
		stop()
		b.inOrder(t, sink.unique(), 40)
		b.is.Equal(len(sink.got), 40) // what was accepted is never sent again
	})

	t.Run("RandomFailuresDeduplicated", func(t *testing.T) {
		b := setup(t, newBackend)
		for i := range 10 {
			b.appendOK(fmt.Sprintf("dev-%d", i), eventstore.Any, numbered("Reading", 30)...)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		sink := newFakeSink()
		sink.fail = func(call, n int) (int, error) {
			switch rng.IntN(4) {
			case 0:
				return 0, errors.New("timeout")
			case 1:
				return rng.IntN(n + 1), errors.New("broken pipe")
			}
			return n, nil
		}
		_, stop := b.forward(t, eventstore.ForwarderOptions{Name: "central", Sink: sink, BatchSize: 17, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
		sink.waitFor(t, 300)
		stop()
		b.inOrder(t, sink.unique(), 300)
	})

	t.Run("RestartResumes", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, numbered("Reading", 100)...)
		sink := newFakeSink()
		opts := fast("central", sink)
		opts.BatchSize = 10
		_, stop := b.forward(t, opts)
		sink.waitFor(t, 30)
		stop() // may stop mid-batch
		last := b.appendOK("dev-1", eventstore.Any, numbered("Reading", 100)...)
		f, stop := b.forward(t, opts)
		sink.waitFor(t, 200)
		stop()
		b.inOrder(t, sink.unique(), 200)
		b.is.True(len(sink.got) <= 200+opts.BatchSize) // at most the batch in flight again
		b.is.Equal(f.Status().Position, last.Position)
	})

	t.Run("TenThousandEventsHundredStreams", func(t *testing.T) {
		b := setup(t, newBackend)
		for i := range 100 {
			b.appendOK(fmt.Sprintf("dev-%d", i), eventstore.Any, numbered("Reading", 100)...)
		}
		sink := newFakeSink()
		_, stop := b.forward(t, fast("central", sink))
		sink.waitFor(t, 10_000)
		stop()
		b.inOrder(t, sink.unique(), 10_000)
		b.is.Equal(len(sink.got), 10_000)
	})

	t.Run("Filter", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, ev("Reading"), ev("Debug"), ev("Reading"))
		b.appendOK("local-1", eventstore.Any, ev("Reading"))
		log := b.logPositions()
		sink := newFakeSink()
		opts := fast("central", sink)
		opts.Filter = eventstore.Filter{Categories: []string{"dev"}, Types: []string{"Reading"}}
		_, stop := b.forward(t, opts)
		sink.waitFor(t, 2)
		barrier := b.appendOK("dev-2", eventstore.Any, ev("Reading")) // nothing else came before it
		sink.waitFor(t, 3)
		stop()
		b.is.Equal(sink.unique(), []int64{log[0], log[2], barrier.Position})
	})

	t.Run("BadOptions", func(t *testing.T) {
		b := setup(t, newBackend)
		sink := newFakeSink()
		for name, opts := range map[string]eventstore.ForwarderOptions{
			"NoName":    {Sink: sink},
			"NoSink":    {Name: "x"},
			"BadFilter": {Name: "x", Sink: sink, Filter: eventstore.Filter{StreamGlob: "["}},
			"Negative":  {Name: "x", Sink: sink, BatchSize: -1},
			"Lease":     {Name: "x", Sink: sink, Lease: -time.Second},
			"HugeLease": {Name: "x", Sink: sink, Lease: eventstore.MaxLease + 1},
		} {
			if _, err := b.store.NewForwarder(opts); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("OneRunAtATime", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, ev("Reading"))
		sink := newFakeSink()
		opts := fast("central", sink)
		f, stop := b.forward(t, opts)
		sink.waitFor(t, 1) // running, so it holds its claim
		// Bounded, so that a second Run that does run ends and fails.
		ctx, cancel := context.WithTimeout(b.ctx, patience)
		defer cancel()
		err := f.Run(ctx)
		b.is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // the same forwarder again
		twin, err := b.store.NewForwarder(opts)
		b.is.NoErr(err)
		err = twin.Run(ctx)
		b.is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // another of the same name
		b.is.True(errors.Is(stop(), context.Canceled))

		_, stop = b.forward(t, opts) // once stopped, it can run again
		b.appendOK("dev-1", eventstore.Any, ev("Reading"))
		sink.waitFor(t, 2)
		stop()
		b.inOrder(t, sink.unique(), 2)
	})

	t.Run("ConsumerOfSameNameApart", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, numbered("Reading", 10)...)
		sink := newFakeSink()
		_, stop := b.forward(t, fast("central", sink))
		sink.waitFor(t, 10)
		stop()
		// A consumer cannot take the forwarder's checkpoint by its key...
		h := func(context.Context, eventstore.RecordedEvent) error { return nil }
		ctx, cancel := context.WithTimeout(b.ctx, patience)
		defer cancel()
		err := b.store.Consume(ctx, eventstore.ConsumerOptions{Name: "outbox/central", Handler: h})
		b.is.True(errors.Is(err, eventstore.ErrInvalidArgument))
		// ...and one of the forwarder's name has a checkpoint of its own,
		// and runs beside it.
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{Name: "central", Handler: rec.handle})
		_, stop = b.forward(t, fast("central", sink))
		b.inOrder(t, positions(rec.wait(t, 10)), 10)
		next := b.appendOK("dev-1", eventstore.Any, ev("Reading"))
		b.is.Equal(rec.wait(t, 1)[0].Position, next.Position)
		sink.waitFor(t, 11)
		stop()
		c.stop(t)
		b.inOrder(t, sink.unique(), 11)
		b.is.Equal(len(sink.got), 11) // the forwarder's checkpoint held
		b.is.Equal(b.checkpoint("central").Position, next.Position)
		b.is.Equal(b.checkpoint("outbox/central").Position, next.Position)
	})

	t.Run("ResumesFromStoredKey", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, numbered("Reading", 8)...)
		log := b.logPositions()
		// A checkpoint stored by an earlier release, under the key
		// forwarders have always used.
		b.is.NoErr(b.checkpointer().SaveCheckpoint(b.ctx, "outbox/central", log[4], time.Now()))
		sink := newFakeSink()
		_, stop := b.forward(t, fast("central", sink))
		sink.waitFor(t, 3)
		stop()
		b.is.Equal(sink.unique(), log[5:])
	})

	t.Run("UpdatedAtFollowsClock", func(t *testing.T) {
		b, clock := setupClock(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, numbered("Reading", 3)...)
		sink := newFakeSink()
		_, stop := b.forward(t, fast("central", sink))
		sink.waitFor(t, 3)
		stop()
		b.is.True(b.checkpoint("outbox/central").UpdatedAt.Equal(clock.Now()))
	})
	t.Run("StopsWhenClaimLost", func(t *testing.T) {
		b, clock := setupClock(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, ev("Reading"))
		sink := newFakeSink()
		opts := fast("central", sink)
		opts.Lease = 30 * time.Millisecond
		f, err := b.store.NewForwarder(opts)
		b.is.NoErr(err)
		done := make(chan error, 1)
		go func() { done <- f.Run(b.ctx) }()
		sink.waitFor(t, 1)
		cp := b.checkpointer()
		deadline := time.Now().Add(patience)
		for {
			now := clock.Add(time.Hour)
			if cp.Claim(b.ctx, "outbox/central", "successor", now, now.Add(24*time.Hour)) == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the claim was never taken over")
			}
		}
		select {
		case err := <-done:
			b.is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // it stopped
		case <-time.After(patience):
			t.Fatal("the forwarder ran on without its claim")
		}
	})
	t.Run("Reset", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("dev-1", eventstore.Any, numbered("Reading", 3)...)
		log := b.logPositions()
		sink := newFakeSink()
		_, stop := b.forward(t, fast("central", sink))
		sink.waitFor(t, 3)
		err := b.store.ResetConsumer(b.ctx, "outbox/central", log[1])
		b.is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // stop it first
		stop()
		b.is.NoErr(b.store.ResetConsumer(b.ctx, "outbox/central", log[1]))
		again := newFakeSink()
		_, stop = b.forward(t, fast("central", again))
		again.waitFor(t, 2)
		stop()
		b.is.Equal(again.unique(), log[1:]) // sent again from the second
	})
}
