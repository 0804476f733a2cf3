package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// happenings records the names of the store's happenings, and sends each
// one it is told to watch on a channel.
type happenings struct {
	mu    sync.Mutex
	names []string
	ch    chan eventstore.Happening
	watch map[string]bool
}

// setupHooks is setup with a store whose hooks record the happenings
// named in watch.
func setupHooks(t *testing.T, newBackend NewBackend, watch ...string) (*bundle, *happenings) {
	t.Helper()
	t.Parallel()
	h := &happenings{ch: make(chan eventstore.Happening, 1000), watch: map[string]bool{}}
	for _, w := range watch {
		h.watch[w] = true
	}
	backend := newBackend(t)
	s := eventstore.New(backend, &eventstore.Options{Hooks: eventstore.Hooks{
		Event: func(_ context.Context, e eventstore.Happening) {
			if !h.watch[e.Name] {
				return
			}
			h.mu.Lock()
			h.names = append(h.names, e.Name)
			h.mu.Unlock()
			h.ch <- e
		},
	}})
	t.Cleanup(func() { _ = s.Close() })
	return &bundle{is: is.New(t), ctx: t.Context(), store: s, backend: backend}, h
}

// next returns the next watched happening.
func (h *happenings) next(t *testing.T) eventstore.Happening {
	t.Helper()
	select {
	case e := <-h.ch:
		return e
	case <-time.After(patience):
		t.Fatal("no happening")
		return eventstore.Happening{}
	}
}

// closed reports whether ch is closed now.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed fails the test unless ch is closed within patience.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(patience):
		t.Fatalf("%s: never", what)
	}
}

// waitFor fails the test unless the consumer passes position within
// patience.
func (b *bundle) waitFor(t *testing.T, consumer string, position int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, patience)
	defer cancel()
	if err := b.store.WaitFor(ctx, consumer, position); err != nil {
		t.Fatalf("waiting for %s to pass %d: %v", consumer, position, err)
	}
}

func testProgress(t *testing.T, newBackend NewBackend) {
	t.Run("SubscriptionCaughtUp", func(t *testing.T) {
		b, h := setupHooks(t, newBackend, "subscription.caught_up", "subscription.fell_behind")
		last := b.appendOK("a-1", eventstore.NoStream, numbered("E", 10)...)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Buffer: 4})
		b.is.NoErr(err)
		defer sub.Close()
		receive(t, sub, 5)
		// With 5 received and room for 4, at most 9 were put on the
		// channel: the subscription cannot have reached the end.
		b.is.True(!closed(sub.CaughtUp()))
		receive(t, sub, 5)
		waitClosed(t, sub.CaughtUp(), "caught up")
		b.is.True(sub.Position() >= last.Position)
		b.is.Equal(h.next(t).Name, "subscription.caught_up")

		// Live from here: a whole buffer behind, it falls behind.
		more := b.appendOK("a-1", eventstore.Any, numbered("E", 8)...)
		b.is.Equal(h.next(t).Name, "subscription.fell_behind")
		b.is.True(!closed(sub.CaughtUp())) // a new, open channel
		got := receive(t, sub, 8)
		b.is.Equal(got[7].Position, more.Position)
		waitClosed(t, sub.CaughtUp(), "caught up again")
		b.is.Equal(h.next(t).Name, "subscription.caught_up")
		barrier := b.appendOK("b-1", eventstore.Any, ev("Barrier"))
		b.is.Equal(receive(t, sub, 1)[0].Position, barrier.Position) // nothing else came
	})

	t.Run("FilteredSubscriptionPosition", func(t *testing.T) {
		b := setup(t, newBackend)
		wanted := b.appendOK("a-1", eventstore.NoStream, ev("Wanted"))
		last := b.appendOK("b-1", eventstore.NoStream, numbered("Other", 5)...)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Filter: eventstore.Filter{Types: []string{"Wanted"}}})
		b.is.NoErr(err)
		defer sub.Close()
		b.is.Equal(receive(t, sub, 1)[0].Position, wanted.Position)
		waitClosed(t, sub.CaughtUp(), "caught up")
		b.is.True(sub.Position() >= last.Position) // past the events it skipped
	})

	t.Run("FilteredConsumerLagReachesZero", func(t *testing.T) {
		b, h := setupHooks(t, newBackend, "consumer.caught_up")
		wanted := b.appendOK("a-1", eventstore.NoStream, ev("Wanted"))
		b.appendOK("b-1", eventstore.NoStream, numbered("Other", 5)...)
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{Name: "picky", Handler: rec.handle, Filter: eventstore.Filter{Types: []string{"Wanted"}}})
		b.is.Equal(rec.wait(t, 1)[0].Position, wanted.Position)
		caught := h.next(t)
		b.is.Equal(caught.Consumer, "picky")
		// Only events it skips follow: the checkpoint passes them too.
		last := b.appendOK("b-1", eventstore.Any, numbered("Other", 3)...)
		b.waitFor(t, "picky", last.Position)
		infos, err := b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(len(infos), 1)
		b.is.True(infos[0].Position >= last.Position)
		b.is.Equal(infos[0].Lag, int64(0))
		b.is.True(infos[0].CaughtUp)
		next := b.appendOK("a-1", eventstore.Any, ev("Wanted"))
		b.is.Equal(rec.wait(t, 1)[0].Position, next.Position) // nothing skipped past
		c.stop(t)
		infos, err = b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(infos[0].Lag, int64(0)) // stopped, and still seen caught up
		b.is.True(infos[0].CaughtUp)
		b.appendOK("b-1", eventstore.Any, ev("Other"))
		infos, err = b.store.Consumers(b.ctx)
		b.is.NoErr(err)
		b.is.True(!infos[0].CaughtUp) // not running: only its checkpoint tells
	})

	t.Run("FilteredForwarderPendingReachesZero", func(t *testing.T) {
		b := setup(t, newBackend)
		sink := newFakeSink()
		f, stop := b.forward(t, eventstore.ForwarderOptions{Name: "picky", Sink: sink, Filter: eventstore.Filter{Types: []string{"Wanted"}}})
		wanted := b.appendOK("a-1", eventstore.NoStream, ev("Wanted"))
		last := b.appendOK("b-1", eventstore.NoStream, numbered("Other", 4)...)
		b.waitFor(t, "outbox/picky", last.Position)
		st := f.Status()
		b.is.True(st.Position >= last.Position)
		b.is.Equal(st.Pending, int64(0))
		b.is.Equal(sink.unique(), []int64{wanted.Position}) // the others were not sent
		b.is.True(errors.Is(stop(), context.Canceled))
	})

	// A forwarder busy sending finds, when it comes back, both an event to
	// send and the news that its subscription read past the events it
	// skips. Whichever it takes first, it must end past the skipped events.
	// The race is Go's choice between two ready channels, so the scenario
	// runs several times.
	t.Run("FilteredForwarderPassesSkippedAfterABusySink", func(t *testing.T) {
		for trial := range 12 {
			t.Run(fmt.Sprint(trial), func(t *testing.T) {
				b, h := setupHooks(t, newBackend, "subscription.caught_up")
				b.appendOK("a-1", eventstore.NoStream, ev("Wanted"), ev("Wanted"))
				last := b.appendOK("b-1", eventstore.NoStream, numbered("Other", 4)...)
				sink := newFakeSink()
				entered, gate := make(chan struct{}, 1), make(chan struct{})
				sink.fail = func(call, n int) (int, error) {
					if call == 1 {
						entered <- struct{}{}
						<-gate
					}
					return n, nil
				}
				_, stop := b.forward(t, eventstore.ForwarderOptions{Name: "busy", Sink: sink, BatchSize: 1,
					Filter: eventstore.Filter{Types: []string{"Wanted"}}})
				defer stop()
				// The subscription has read the whole log (and said so)
				// while the sink holds the first event.
				h.next(t)
				select {
				case <-entered:
				case <-time.After(patience):
					t.Fatal("the sink was not called")
				}
				close(gate)
				b.waitFor(t, "outbox/busy", last.Position)
			})
		}
	})

	t.Run("WaitForReturnsOnceCheckpointed", func(t *testing.T) {
		b := setup(t, newBackend)
		gate := make(chan struct{})
		first := b.appendOK("a-1", eventstore.NoStream, ev("Slow"))
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{Name: "slow", Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
			if e.Position == first.Position {
				<-gate
			}
			return rec.handle(ctx, e)
		}})
		waited := make(chan error, 1)
		go func() { waited <- b.store.WaitFor(b.ctx, "slow", first.Position) }()
		// The handler holds the event: WaitFor cannot have returned.
		select {
		case err := <-waited:
			t.Fatalf("WaitFor returned %v before the handler did", err)
		default:
		}
		close(gate)
		select {
		case err := <-waited:
			b.is.NoErr(err)
		case <-time.After(patience):
			t.Fatal("WaitFor did not return after the checkpoint")
		}
		b.is.True(b.checkpoint("slow").Position >= first.Position)
		b.is.NoErr(b.store.WaitFor(b.ctx, "slow", 0)) // already passed
		c.stop(t)
	})

	t.Run("WaitForAConsumerThatStartsLater", func(t *testing.T) {
		b := setup(t, newBackend)
		res := b.appendOK("a-1", eventstore.NoStream, numbered("E", 3)...)
		waited := make(chan error, 1)
		go func() { waited <- b.store.WaitFor(b.ctx, "late", res.Position) }()
		rec := newRecorder()
		c := b.start(eventstore.ConsumerOptions{Name: "late", Handler: rec.handle})
		select {
		case err := <-waited:
			b.is.NoErr(err)
		case <-time.After(patience):
			t.Fatal("WaitFor did not return once the consumer had started")
		}
		b.is.True(len(rec.wait(t, 3)) == 3) // it had handled them all
		c.stop(t)
	})

	t.Run("WaitForGroup", func(t *testing.T) {
		b := setup(t, newBackend)
		var last eventstore.AppendResult
		for _, s := range []string{"e-1", "e-2", "e-3", "e-4", "e-5", "e-6"} {
			last = b.appendOK(s, eventstore.NoStream, ev("E"))
		}
		rec := newRecorder()
		first := b.start(eventstore.ConsumerOptions{Name: "pair", Group: eventstore.Group{Member: 0, Size: 2}, Handler: rec.handle})
		b.waitFor(t, "pair[0/2]", last.Position) // a member by its key
		ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
		defer cancel()
		// Member 1 never ran: the group has not passed.
		b.is.True(errors.Is(b.store.WaitFor(ctx, "pair", last.Position), context.DeadlineExceeded))
		second := b.start(eventstore.ConsumerOptions{Name: "pair", Group: eventstore.Group{Member: 1, Size: 2}, Handler: rec.handle})
		b.waitFor(t, "pair", last.Position)
		first.stop(t)
		second.stop(t)
	})

	t.Run("WaitForHonoursContext", func(t *testing.T) {
		b := setup(t, newBackend)
		ctx, cancel := context.WithCancel(b.ctx)
		waited := make(chan error, 1)
		go func() { waited <- b.store.WaitFor(ctx, "nobody", 1) }()
		cancel()
		select {
		case err := <-waited:
			b.is.True(errors.Is(err, context.Canceled))
		case <-time.After(patience):
			t.Fatal("WaitFor ignored its context")
		}
		b.is.True(errors.Is(b.store.WaitFor(b.ctx, "", 1), eventstore.ErrInvalidArgument))
		b.is.True(errors.Is(b.store.WaitFor(b.ctx, "x", -1), eventstore.ErrInvalidArgument))
		b.is.True(errors.Is(b.store.WaitFor(b.ctx, "a\x00", 1), eventstore.ErrInvalidArgument))
	})
}
