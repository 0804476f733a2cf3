package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/matryer/is"
)

// gatedSaves is a backend whose checkpoint saves at or past a position
// hold, once stored, until the test opens the gate: the checkpoint is in
// storage, and the saver has not heard back yet.
type gatedSaves struct {
	eventstore.Backend
	at     int64
	stored chan struct{} // closed once the save is in storage
	gate   chan struct{}
	once   sync.Once
}

func (g *gatedSaves) SaveCheckpoint(ctx context.Context, key string, position int64, at time.Time) error {
	if err := g.Backend.SaveCheckpoint(ctx, key, position, at); err != nil {
		return err
	}
	if position >= g.at {
		g.once.Do(func() { close(g.stored) })
		<-g.gate
	}
	return nil
}

type acceptAll struct{}

func (acceptAll) Send(_ context.Context, events []eventstore.RecordedEvent) (int, error) {
	return len(events), nil
}

// TestForwarderStatus_NotBehindWaitFor: once WaitFor has seen a
// forwarder's checkpoint in storage, the forwarder's Status is not behind
// it, even while the save that stored it has not returned: a filtered
// forwarder's Pending then reaches 0 for whoever waited.
func TestForwarderStatus_NotBehindWaitFor(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &gatedSaves{Backend: memory.New(), stored: make(chan struct{}), gate: make(chan struct{})}
	s := eventstore.New(g, nil)
	defer s.Close()
	_, err := s.Append(ctx, "a-1", eventstore.NoStream, eventstore.Event{Type: "Wanted"})
	is.NoErr(err)
	last, err := s.Append(ctx, "b-1", eventstore.NoStream, eventstore.Event{Type: "Other"}, eventstore.Event{Type: "Other"})
	is.NoErr(err)
	g.at = last.Position
	f, err := s.NewForwarder(eventstore.ForwarderOptions{Name: "picky", Sink: acceptAll{},
		Filter: eventstore.Filter{Types: []string{"Wanted"}}})
	is.NoErr(err)
	ran := make(chan error, 1)
	go func() { ran <- f.Run(ctx) }()
	select {
	case <-g.stored:
	case <-time.After(30 * time.Second):
		t.Fatal("the forwarder did not checkpoint past the events it skips")
	}
	is.NoErr(s.WaitFor(ctx, "outbox/picky", last.Position)) // it is in storage
	// Status waits for the save in progress; the gate opens meanwhile (a
	// Status that does not wait reads the old position at once).
	opened := time.AfterFunc(20*time.Millisecond, func() { close(g.gate) })
	defer opened.Stop()
	st := f.Status()
	is.True(st.Position >= last.Position)
	is.Equal(st.Pending, int64(0))
	cancel()
	is.True(errors.Is(<-ran, context.Canceled))
}
