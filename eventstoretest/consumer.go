package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// running is a consumer started by start.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

// start runs store.Consume in a goroutine.
func (b *bundle) start(opts eventstore.ConsumerOptions) *running {
	ctx, cancel := context.WithCancel(b.ctx)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- b.store.Consume(ctx, opts) }()
	return r
}

// stop cancels the consumer and returns what Consume returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(patience):
		t.Fatal("consumer did not stop")
		return nil
	}
}

// recorder is a handler that records what it was given, and a channel
// that receives each event it handled.
type recorder struct {
	mu   sync.Mutex
	seen []eventstore.RecordedEvent
	ch   chan eventstore.RecordedEvent
}

func newRecorder() *recorder { return &recorder{ch: make(chan eventstore.RecordedEvent, 10_000)} }

func (r *recorder) handle(ctx context.Context, e eventstore.RecordedEvent) error {
	r.mu.Lock()
	r.seen = append(r.seen, e)
	r.mu.Unlock()
	r.ch <- e
	return nil
}

// wait takes n handled events from the recorder.
func (r *recorder) wait(t *testing.T, n int) []eventstore.RecordedEvent {
	t.Helper()
	out := make([]eventstore.RecordedEvent, 0, n)
	timeout := time.After(patience)
	for len(out) < n {
		select {
		case e := <-r.ch:
			out = append(out, e)
		case <-timeout:
			t.Fatalf("handled %d of %d events", len(out), n)
		}
	}
	return out
}

// idle proves that the consumer recording into r has nothing more to
// handle, with a barrier: it appends an event to stream, which the
// consumer must handle, and fails unless that is the next event handled.
// It returns the barrier's position.
func (r *recorder) idle(t *testing.T, b *bundle, stream string) int64 {
	t.Helper()
	barrier := b.appendOK(stream, eventstore.Any, ev("Barrier")).Position
	if e := r.wait(t, 1)[0]; e.Position != barrier {
		t.Fatalf("handled %s@%d (position %d) before the barrier at %d", e.StreamID, e.Version, e.Position, barrier)
	}
	return barrier
}

// clock is a settable [eventstore.Options.Clock].
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock forward by d and returns the new time.
func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// setupClock is setup with a store whose clock the test sets.
func setupClock(t *testing.T, newBackend NewBackend) (*bundle, *clock) {
	t.Helper()
	t.Parallel()
	c := &clock{now: time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)}
	backend := newBackend(t)
	s := eventstore.New(backend, &eventstore.Options{Clock: c.Now})
	t.Cleanup(func() { _ = s.Close() })
	return &bundle{is: is.New(t), ctx: t.Context(), store: s, backend: backend}, c
}

// checkpointer returns the store's backend, for its checkpoints.
func (b *bundle) checkpointer() eventstore.Backend {
	return b.backend
}

// refused runs Consume and asserts that it fails at once with
// ErrConsumerRunning instead of running.
func (b *bundle) refused(t *testing.T, opts eventstore.ConsumerOptions) {
	t.Helper()
	r := b.start(opts)
	select {
	case err := <-r.done:
		if !errors.Is(err, eventstore.ErrConsumerRunning) {
			t.Fatalf("second instance: %v, want ErrConsumerRunning", err)
		}
	case <-time.After(patience):
		r.stop(t)
		t.Fatal("a second instance of the consumer ran")
	}
}

// checkpoint returns the stored checkpoint of key.
func (b *bundle) checkpoint(key string) eventstore.Checkpoint {
	b.is.Helper()
	infos, err := b.store.Consumers(b.ctx)
	b.is.NoErr(err)
	for _, info := range infos {
		if info.Key == key {
			return info.Checkpoint
		}
	}
	b.is.Fail() // no checkpoint for the key
	return eventstore.Checkpoint{}
}

func testConsumer(t *testing.T, newBackend NewBackend) {
	t.Run("ResumesFromCheckpoint", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 5)...)
		rec := newRecorder()
		opts := eventstore.ConsumerOptions{Name: "projector", Handler: rec.handle}
		c := b.start(opts)
		b.is.Equal(positions(rec.wait(t, 5)), b.logPositions())
		live := b.appendOK("b-1", eventstore.Any, ev("Live"))
		b.is.Equal(rec.wait(t, 1)[0].Type, "Live") // then live
		b.is.True(errors.Is(c.stop(t), context.Canceled))

		infos, err := b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(len(infos), 1)
		b.is.Equal(infos[0].Key, "projector")
		b.is.Equal(infos[0].Position, live.Position)
		b.is.Equal(infos[0].Lag, int64(0))

		last := b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		infos, err = b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(infos[0].Lag, last.Position-live.Position) // positions, not events
		c = b.start(opts)
		b.is.Equal(positions(rec.wait(t, 3)), b.logPositions()[6:]) // nothing twice
		rec.idle(t, b, "a-1")
		c.stop(t)
	})

	t.Run("StartsFrom", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 5)...)
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{Name: "late", Handler: rec.handle, From: eventstore.FromNow})
		for deadline := time.Now().Add(patience); b.store.Stats().Subscribed == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the consumer did not subscribe") // "now" is when it does
			}
		}
		res := b.appendOK("a-1", eventstore.Any, ev("New"))
		b.is.Equal(rec.wait(t, 1)[0].Position, res.Position) // the first it handles
		c.stop(t)
		log := b.logPositions()
		rec2 := newRecorder()
		c = b.start(eventstore.ConsumerOptions{Name: "middle", Handler: rec2.handle, From: log[3]})
		b.is.Equal(positions(rec2.wait(t, 3)), log[3:])
		c.stop(t)
	})

	t.Run("RetriesWithBackoff", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		log := b.logPositions()
		var mu sync.Mutex
		calls := map[int64]int{}
		var attempts []int
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{
			Name:       "flaky",
			MinBackoff: time.Millisecond,
			Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				mu.Lock()
				calls[e.Position]++
				n := calls[e.Position]
				mu.Unlock()
				if e.Position == log[1] && n < 3 {
					return fmt.Errorf("try %d failed", n)
				}
				if e.Position == log[2] && n == 1 {
					panic("boom")
				}
				return rec.handle(ctx, e)
			},
			OnError: func(e eventstore.RecordedEvent, err error, attempt int, parked bool) {
				mu.Lock()
				defer mu.Unlock()
				attempts = append(attempts, attempt)
				if parked {
					t.Error("parked without ParkAfter")
				}
				if e.Position == log[2] && !errors.Is(err, eventstore.ErrHandlerPanic) {
					t.Errorf("panic reported as %v", err)
				}
			},
		})
		b.is.Equal(positions(rec.wait(t, 3)), log) // in order, each once
		c.stop(t)
		mu.Lock()
		defer mu.Unlock()
		b.is.Equal(calls, map[int64]int{log[0]: 1, log[1]: 3, log[2]: 2})
		b.is.Equal(attempts, []int{1, 2, 1})
	})

	t.Run("ParksPoisonEvents", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, ev("Good"), ev("Poison"), ev("Good"))
		log := b.logPositions()
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{
			Name:       "careful",
			MinBackoff: time.Millisecond,
			ParkAfter:  3,
			Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				if e.Type == "Poison" {
					return errors.New("cannot digest")
				}
				return rec.handle(ctx, e)
			},
		})
		b.is.Equal(positions(rec.wait(t, 2)), []int64{log[0], log[2]}) // it went on
		c.stop(t)
		parked, err := b.store.Parked(b.ctx, "careful")
		b.is.NoErr(err)
		b.is.Equal(len(parked), 1)
		b.is.Equal(parked[0].Position, log[1])
		b.is.Equal(parked[0].StreamID, "a-1")
		b.is.Equal(parked[0].Attempts, 3)
		b.is.Equal(parked[0].Error, "cannot digest")
		infos, err := b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(infos[0].Position, log[2])
	})

	t.Run("CheckpointEvery", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 7)...)
		log := b.logPositions()
		stored := make(chan int64, 1)
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{
			Name:            "batched",
			CheckpointEvery: 3,
			Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				if e.Position == log[6] {
					infos, err := b.store.Consumers(ctx)
					if err != nil || len(infos) != 1 {
						t.Errorf("consumers: %v %v", infos, err)
					} else {
						stored <- infos[0].Position
					}
				}
				return rec.handle(ctx, e)
			},
		})
		rec.wait(t, 7)
		select {
		case p := <-stored:
			b.is.Equal(p, log[5]) // saved after the 3rd and 6th, not after each
		case <-time.After(patience):
			t.Fatal("the 7th event of the log was not handled")
		}
		c.stop(t)
		infos, err := b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(infos[0].Position, log[6]) // a clean stop saves the rest
	})

	t.Run("DeduplicatesAfterCrash", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 5)...)
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		cp := b.backend
		rec := newRecorder()
		opts := eventstore.ConsumerOptions{
			Name: "dedup", CheckpointEvery: 100, Deduplicate: true,
			Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				if e.Position == log[4].Position {
					// Handled events are marked before any checkpoint.
					_, saved, err := cp.LoadCheckpoint(ctx, "dedup")
					marked, merr := cp.Processed(ctx, "dedup", log[3].ID)
					if err != nil || merr != nil || saved || !marked {
						t.Errorf("before the checkpoint: saved %v, marked %v (%v, %v)", saved, marked, err, merr)
					}
				}
				return rec.handle(ctx, e)
			},
		}
		c := b.start(opts)
		rec.wait(t, 5)
		c.stop(t)
		marked, err := cp.Processed(b.ctx, "dedup", log[3].ID)
		b.is.NoErr(err)
		b.is.True(!marked) // the checkpoint covers it now: the mark is gone

		// The state a crash between handlers and checkpoint leaves behind:
		// the checkpoint at the 2nd event, the 3rd to 5th handled and marked.
		b.is.NoErr(cp.ResetCheckpoint(b.ctx, "dedup", log[1].Position, time.Now()))
		for _, e := range log[2:] {
			b.is.NoErr(cp.MarkProcessed(b.ctx, "dedup", e.ID, e.Position))
		}
		res := b.appendOK("a-1", eventstore.Any, ev("New"))
		c = b.start(opts)
		b.is.Equal(positions(rec.wait(t, 1)), []int64{res.Position}) // the 3rd to 5th were skipped
		rec.idle(t, b, "a-1")
		c.stop(t)
	})

	t.Run("Reset", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 4)...)
		log := b.logPositions()
		rec := newRecorder()
		opts := eventstore.ConsumerOptions{Name: "rebuild", Handler: rec.handle, Deduplicate: true}
		c := b.start(opts)
		rec.wait(t, 4)
		c.stop(t)
		b.is.NoErr(b.store.ResetConsumer(b.ctx, "rebuild", 0))
		c = b.start(opts)
		b.is.Equal(positions(rec.wait(t, 4)), log) // all again
		c.stop(t)
		b.is.NoErr(b.store.ResetConsumer(b.ctx, "rebuild", log[2]))
		c = b.start(opts)
		b.is.Equal(positions(rec.wait(t, 2)), log[2:])
		c.stop(t)
		b.is.True(errors.Is(b.store.ResetConsumer(b.ctx, "rebuild", -1), eventstore.ErrInvalidArgument))
	})

	t.Run("Group", func(t *testing.T) {
		b := setup(t, newBackend)
		const size = 3
		for i := range 40 {
			b.appendOK(fmt.Sprintf("entity-%d+a", i%13), eventstore.Any, ev("E"))
			b.appendOK(fmt.Sprintf("entity-%d+b", i%13), eventstore.Any, ev("E"))
		}
		recs := make([]*recorder, size)
		runs := make([]*running, size)
		for m := range size {
			recs[m] = newRecorder()
			runs[m] = b.start(eventstore.ConsumerOptions{Name: "workers", Group: eventstore.Group{Member: m, Size: size}, Handler: recs[m].handle})
		}
		owner := map[string]int{} // cardinal ID -> member
		var handled []int64
		for handledCount := 0; handledCount < 80; {
			for m := range size {
				select {
				case e := <-recs[m].ch:
					handledCount++
					handled = append(handled, e.Position)
					b.is.Equal(eventstore.GroupMember(e.StreamID, size), m)
					id := eventstore.CardinalID(e.StreamID)
					if o, ok := owner[id]; ok && o != m {
						t.Fatalf("%s handled by members %d and %d", id, o, m)
					}
					owner[id] = m
				case <-time.After(time.Millisecond):
				}
			}
		}
		slices.Sort(handled)
		b.is.Equal(handled, b.logPositions()) // every event exactly once across the group
		barriers := make([]int64, size)
		for m := range size {
			stream := fmt.Sprintf("entity-%d+a", 100+m)
			for i := 0; eventstore.GroupMember(stream, size) != m; i++ {
				stream = fmt.Sprintf("entity-%d+a", 100+i) // one that m owns
			}
			barriers[m] = recs[m].idle(t, b, stream)
			runs[m].stop(t)
		}
		infos, err := b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(len(infos), size)
		for m, info := range infos {
			b.is.Equal(info.Key, fmt.Sprintf("workers[%d/%d]", m, size))
			b.is.True(info.Position >= barriers[m]) // every member passed every event
		}
		b.is.NoErr(b.store.ResetConsumer(b.ctx, "workers", 0)) // resets the members
		infos, err = b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		for _, info := range infos {
			b.is.Equal(info.Position, int64(0))
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		b := setup(t, newBackend)
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{Name: "busy", Handler: rec.handle, CheckpointEvery: 7})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 50 {
					if _, err := b.store.Append(b.ctx, fmt.Sprintf("w-%d", (w+i)%5), eventstore.Any, ev("E")); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		got := positions(rec.wait(t, 200))
		b.is.Equal(got, b.logPositions())
		rec.idle(t, b, "w-0")
		c.stop(t)
	})

	t.Run("BadOptions", func(t *testing.T) {
		b := setup(t, newBackend)
		h := func(context.Context, eventstore.RecordedEvent) error { return nil }
		for name, opts := range map[string]eventstore.ConsumerOptions{
			"NoName":        {Handler: h},
			"ControlInName": {Name: "a\x00", Handler: h},
			"Brackets":      {Name: "a[1/2]", Handler: h},
			"NoHandler":     {Name: "x"},
			"BothHandlers":  {Name: "x", Handler: h, TxHandler: h},
			"MemberTooHigh": {Name: "x", Handler: h, Group: eventstore.Group{Member: 3, Size: 3}},
			"MemberNoSize":  {Name: "x", Handler: h, Group: eventstore.Group{Member: 1}},
			"NegativeEvery": {Name: "x", Handler: h, CheckpointEvery: -1},
			"BadFilter":     {Name: "x", Handler: h, Filter: eventstore.Filter{Types: []string{""}}},
			"FromTooLow":    {Name: "x", Handler: h, From: -5},
			"NegativeLease": {Name: "x", Handler: h, Lease: -time.Second},
			"HugeLease":     {Name: "x", Handler: h, Lease: eventstore.MaxLease + 1},
		} {
			if err := b.store.Consume(b.ctx, opts); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("%s: %v", name, err)
			}
		}
		infos, err := b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(len(infos), 0) // nothing was started or stored
	})

	t.Run("OneInstanceAtATime", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, ev("E"))
		rec := newRecorder()
		opts := eventstore.ConsumerOptions{Name: "single", Handler: rec.handle}
		c := b.start(opts)
		rec.wait(t, 1) // running, so it holds its claim
		b.refused(t, opts)
		other := newRecorder()
		o := b.start(eventstore.ConsumerOptions{Name: "other", Handler: other.handle})
		other.wait(t, 1) // another name runs beside it
		b.is.True(errors.Is(c.stop(t), context.Canceled))
		o.stop(t)

		c = b.start(opts) // once stopped, it can start again
		next := b.appendOK("a-1", eventstore.Any, ev("Next"))
		b.is.Equal(positions(rec.wait(t, 1)), []int64{next.Position})
		c.stop(t)
	})

	t.Run("OneInstancePerGroupMember", func(t *testing.T) {
		b := setup(t, newBackend)
		for i := range 20 {
			b.appendOK(fmt.Sprintf("entity-%d", i), eventstore.Any, ev("E"))
		}
		recs := []*recorder{newRecorder(), newRecorder()}
		var runs []*running
		for m := range 2 {
			runs = append(runs, b.start(eventstore.ConsumerOptions{Name: "workers", Group: eventstore.Group{Member: m, Size: 2}, Handler: recs[m].handle}))
		}
		for m := range 2 {
			recs[m].wait(t, 1) // both members run at once
		}
		b.refused(t, eventstore.ConsumerOptions{Name: "workers", Group: eventstore.Group{Member: 1, Size: 2}, Handler: recs[1].handle})
		for _, r := range runs {
			r.stop(t)
		}
	})

	t.Run("ClaimRenewedWhileRunning", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, ev("E"))
		rec := newRecorder()
		opts := eventstore.ConsumerOptions{Name: "long", Handler: rec.handle, Lease: time.Second}
		c := b.start(opts)
		rec.wait(t, 1)
		// Three leases later the claim still holds: the consumer renews it.
		time.Sleep(3 * opts.Lease)
		b.refused(t, opts)
		c.stop(t)
	})

	t.Run("ExpiredClaimTakenOver", func(t *testing.T) {
		b, clock := setupClock(t, newBackend)
		b.appendOK("a-1", eventstore.Any, ev("E"))
		cp := b.checkpointer()
		// An instance that died holding its claim, with a minute to run.
		now := clock.Now()
		b.is.NoErr(cp.Claim(b.ctx, "crashed", "ghost", now, now.Add(time.Minute)))
		rec := newRecorder()
		opts := eventstore.ConsumerOptions{Name: "crashed", Handler: rec.handle}
		b.refused(t, opts)
		clock.Add(time.Minute) // the claim lapses
		c := b.start(opts)
		rec.wait(t, 1)
		now = clock.Now()
		err := cp.Claim(b.ctx, "crashed", "ghost", now, now.Add(time.Minute))
		b.is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // the new holder has it
		c.stop(t)
		b.is.NoErr(cp.Claim(b.ctx, "crashed", "ghost", now, now.Add(time.Minute))) // released on stop
		b.is.NoErr(cp.Release(b.ctx, "crashed", "ghost"))
	})

	t.Run("StopsWhenClaimLost", func(t *testing.T) {
		b, clock := setupClock(t, newBackend)
		b.appendOK("a-1", eventstore.Any, ev("E"))
		cp := b.checkpointer()
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{Name: "stalled", Handler: rec.handle, Lease: 30 * time.Millisecond})
		rec.wait(t, 1)
		// Time jumps past the lease before the consumer renews, as when its
		// process stalls: another instance takes the claim over.
		deadline := time.Now().Add(patience)
		for {
			now := clock.Add(time.Hour)
			if cp.Claim(b.ctx, "stalled", "successor", now, now.Add(24*time.Hour)) == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the claim was never taken over")
			}
		}
		select {
		case err := <-c.done:
			b.is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // it stopped
		case <-time.After(patience):
			t.Fatal("the consumer ran on without its claim")
		}
	})

	t.Run("SaveNeverLowers", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 9)...)
		log := b.logPositions()
		cp := b.checkpointer()
		at := time.Now()
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, "mono", log[4], at))
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, "mono", log[2], at)) // a stale instance
		pos, ok, err := cp.LoadCheckpoint(b.ctx, "mono")
		b.is.NoErr(err)
		b.is.True(ok)
		b.is.Equal(pos, log[4])
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, "mono", log[6], at))
		b.is.Equal(b.checkpoint("mono").Position, log[6])
		// Only a reset moves it back, to just before the position given.
		b.is.NoErr(b.store.ResetConsumer(b.ctx, "mono", log[2]))
		b.is.Equal(b.checkpoint("mono").Position, log[2]-1)
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{Name: "mono", Handler: rec.handle})
		b.is.Equal(positions(rec.wait(t, 7)), log[2:])
		c.stop(t)
	})

	t.Run("ResetWhileRunning", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		log := b.logPositions()
		rec := newRecorder()
		opts := eventstore.ConsumerOptions{Name: "busy", Handler: rec.handle}
		c := b.start(opts)
		rec.wait(t, 3)
		err := b.store.ResetConsumer(b.ctx, "busy", 0)
		b.is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // stop it first
		c.stop(t)
		b.is.Equal(b.checkpoint("busy").Position, log[2]) // untouched
		b.is.NoErr(b.store.ResetConsumer(b.ctx, "busy", 0))
		c = b.start(opts)
		b.is.Equal(positions(rec.wait(t, 3)), log)
		c.stop(t)
	})

	t.Run("RetryAndDropParked", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, ev("Good"), ev("Poison"), ev("Poison"), ev("Good"))
		log := b.logPositions()
		var mu sync.Mutex
		cured := false
		rec := newRecorder()
		opts := eventstore.ConsumerOptions{
			Name:       "careful",
			MinBackoff: time.Millisecond,
			ParkAfter:  2,
			Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				mu.Lock()
				ok := cured
				mu.Unlock()
				if e.Type == "Poison" && !ok {
					return errors.New("cannot digest")
				}
				return rec.handle(ctx, e)
			},
		}
		c := b.start(opts)
		b.is.Equal(positions(rec.wait(t, 2)), at(log, 1, 4))
		// Retried while it runs: refused, as the consumer looks only when
		// it starts.
		err := b.store.RetryParked(b.ctx, "careful", log[1])
		b.is.True(errors.Is(err, eventstore.ErrConsumerRunning))
		c.stop(t)

		err = b.store.RetryParked(b.ctx, "careful", log[0]) // handled, not parked
		b.is.True(errors.Is(err, eventstore.ErrNotParked))
		err = b.store.DropParked(b.ctx, "careful", log[3])
		b.is.True(errors.Is(err, eventstore.ErrNotParked))
		b.is.NoErr(b.store.DropParked(b.ctx, "careful", log[2]))
		b.is.NoErr(b.store.RetryParked(b.ctx, "careful", log[1]))
		parked, err := b.store.Parked(b.ctx, "careful")
		b.is.NoErr(err)
		b.is.Equal(len(parked), 1)
		b.is.Equal(parked[0].Position, log[1])
		b.is.Equal(parked[0].Attempts, 0) // waiting for its retry
		b.is.Equal(parked[0].Error, "cannot digest")

		// Started again, it handles the retried event first, then what
		// is new; the dropped one never comes back.
		mu.Lock()
		cured = true
		mu.Unlock()
		b.appendOK("a-1", eventstore.Any, ev("Good"))
		log = b.logPositions()
		c = b.start(opts)
		b.is.Equal(positions(rec.wait(t, 2)), at(log, 2, 5))
		c.stop(t)
		parked, err = b.store.Parked(b.ctx, "careful")
		b.is.NoErr(err)
		b.is.Equal(len(parked), 0)
		b.is.Equal(b.checkpoint("careful").Position, log[4])

		// A retry that fails again parks the event again, counted afresh.
		mu.Lock()
		cured = false
		mu.Unlock()
		b.appendOK("a-1", eventstore.Any, ev("Poison"), ev("Good"))
		log = b.logPositions()
		c = b.start(opts)
		b.is.Equal(positions(rec.wait(t, 1)), at(log, 7))
		c.stop(t)
		b.is.NoErr(b.store.RetryParked(b.ctx, "careful", log[5]))
		c = b.start(opts)
		barrier := b.appendOK("a-1", eventstore.Any, ev("Good")) // after the retry
		b.is.Equal(positions(rec.wait(t, 1)), []int64{barrier.Position})
		c.stop(t)
		parked, err = b.store.Parked(b.ctx, "careful")
		b.is.NoErr(err)
		b.is.Equal(len(parked), 1)
		b.is.Equal(parked[0].Position, log[5])
		b.is.Equal(parked[0].Attempts, 2)
	})

	t.Run("UpdatedAtFollowsClock", func(t *testing.T) {
		b, clock := setupClock(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 2)...)
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{Name: "timed", Handler: rec.handle})
		rec.wait(t, 2)
		c.stop(t)
		b.is.True(b.checkpoint("timed").UpdatedAt.Equal(clock.Now()))
		later := clock.Add(time.Hour)
		b.is.NoErr(b.store.ResetConsumer(b.ctx, "timed", 0))
		b.is.True(b.checkpoint("timed").UpdatedAt.Equal(later))
	})
}
