package memory_test

import (
	"context"
	"iter"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/eventstoretest"
	"github.com/edge-es/eventstore/memory"
	"github.com/google/uuid"
)

// The contract promises positions that strictly increase, not consecutive
// ones: the suite must pass on a backend whose log has gaps, at its start
// and between any two appends.
func TestConformance_GappyPositions(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Backend {
		return &gappyBackend{Backend: memory.New()}
	})
}

// The wrapper has the gaps the suite is run for: none of its positions
// follow another, within an append or between two, and the first is past 1.
func TestGappyBackend_HasGaps(t *testing.T) {
	s := eventstore.New(&gappyBackend{Backend: memory.New()}, nil)
	defer s.Close()
	for _, n := range []int{2, 1, 3} {
		events := make([]eventstore.Event, n)
		for i := range events {
			events[i] = eventstore.Event{Type: "E"}
		}
		if _, err := s.Append(t.Context(), "a-1", eventstore.Any, events...); err != nil {
			t.Fatal(err)
		}
	}
	last := int64(1)
	for e, err := range s.ReadAll(t.Context(), eventstore.ReadOptions{}, eventstore.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position <= last+1 {
			t.Fatalf("position %d follows %d", e.Position, last)
		}
		last = e.Position
	}
}

// spread is the factor between the positions gappyBackend shows and those
// of the memory backend beneath it.
const spread = 3

// fillerStream is the stream of the events gappyBackend hides.
const fillerStream = "gapfiller-0"

// gappyBackend is the memory backend with gaps in its positions, between
// appends and within them. Every position it shows is spread times the
// memory backend's, so that no two events have consecutive positions and
// the first is past 1; and before each Append it appends one to three
// events of its own to a stream that it hides from every read, so that the
// gaps between appends vary. The fillers are appended with the Append's
// context, so inside a transaction they commit or roll back with it.
//
// Positions are mapped wherever they cross the contract: events and
// append results, ReadAll's From and its filter's Match, snapshots and
// LastPosition. Checkpoints, processed marks and parked events are stored
// as the Store gives them, in the positions it sees. Everything else is the
// memory backend's, and so is every capability it claims
// ([eventstore.Transactor], [eventstore.CommitReporter], whose reports it
// maps as it maps reads).
type gappyBackend struct {
	*memory.Backend
	appends atomic.Int64
}

var (
	_ eventstore.Backend        = (*gappyBackend)(nil)
	_ eventstore.Transactor     = (*gappyBackend)(nil)
	_ eventstore.CommitReporter = (*gappyBackend)(nil)
)

// ReportCommits maps the memory backend's reports as the reads map its
// events: positions spread, fillers hidden. A commit of fillers alone
// wrote nothing the Store can see, and is not reported.
func (b *gappyBackend) ReportCommits(report func(eventstore.Commit)) {
	if report == nil {
		b.Backend.ReportCommits(nil)
		return
	}
	b.Backend.ReportCommits(func(c eventstore.Commit) {
		var events []eventstore.RecordedEvent
		for _, e := range c.Events {
			if e.StreamID != fillerStream {
				e.Position *= spread
				events = append(events, e)
			}
		}
		if len(events) > 0 {
			report(eventstore.Commit{Events: events})
		}
	})
}

func (b *gappyBackend) Append(ctx context.Context, req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	fillers := make([]eventstore.Event, 1+b.appends.Add(1)%3)
	for i := range fillers {
		fillers[i] = eventstore.Event{ID: uuid.New(), Type: "Filler"}
	}
	if _, err := b.Backend.Append(ctx, eventstore.AppendRequest{
		Stream: fillerStream, Expected: eventstore.Any, Events: fillers, Time: time.Now().UTC(),
	}); err != nil {
		return eventstore.AppendResult{}, err
	}
	res, err := b.Backend.Append(ctx, req)
	res.Position *= spread
	return res, err
}

func (b *gappyBackend) ReadStream(ctx context.Context, stream string, opts eventstore.ReadOptions) iter.Seq2[eventstore.RecordedEvent, error] {
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		for e, err := range b.Backend.ReadStream(ctx, stream, opts) {
			e.Position *= spread
			if !yield(e, err) {
				return
			}
		}
	}
}

// ReadAll reads with no limit, since the fillers it drops would count
// towards one, and applies opts.Limit to the events it yields.
func (b *gappyBackend) ReadAll(ctx context.Context, opts eventstore.ReadOptions, filter eventstore.Filter) iter.Seq2[eventstore.RecordedEvent, error] {
	limit := opts.Limit
	opts.Limit = 0
	switch {
	case opts.From == 0:
	case !opts.Backward: // from the first position at or after From
		opts.From = opts.From/spread + min(opts.From%spread, 1)
	case opts.From < spread: // backward from before the first position
		return func(func(eventstore.RecordedEvent, error) bool) {}
	default: // backward from the last position at or before From
		opts.From /= spread
	}
	if match := filter.Match; match != nil {
		// A new Filter, not a copy: a copy would keep the matcher the
		// Store checked, with the Match that sees the Store's positions.
		filter = eventstore.Filter{
			Streams: filter.Streams, Categories: filter.Categories, StreamGlob: filter.StreamGlob,
			Types: filter.Types, Payload: filter.Payload,
			Match: func(e eventstore.RecordedEvent) bool {
				e.Position *= spread
				return match(e)
			},
		}
	}
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		n := 0
		for e, err := range b.Backend.ReadAll(ctx, opts, filter) {
			if err == nil && e.StreamID == fillerStream {
				continue
			}
			e.Position *= spread
			if !yield(e, err) || err != nil {
				return
			}
			if n++; n == limit {
				return
			}
		}
	}
}

func (b *gappyBackend) ListStreams(ctx context.Context, opts eventstore.ListOptions) iter.Seq2[eventstore.StreamInfo, error] {
	limit := opts.Limit
	opts.Limit = 0
	return func(yield func(eventstore.StreamInfo, error) bool) {
		n := 0
		for s, err := range b.Backend.ListStreams(ctx, opts) {
			if err == nil && s.ID == fillerStream {
				continue
			}
			if !yield(s, err) || err != nil {
				return
			}
			if n++; n == limit {
				return
			}
		}
	}
}

// SaveSnapshot maps a position the snapshot names to the memory backend's;
// one that is not a position of this backend is no event's, and fails the
// check as the memory backend's would.
func (b *gappyBackend) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot, keep int) error {
	if snap.Position%spread == 0 {
		snap.Position /= spread
	} else {
		snap.Position = math.MaxInt64
	}
	return b.Backend.SaveSnapshot(ctx, snap, keep)
}

func (b *gappyBackend) LoadSnapshot(ctx context.Context, stream string, version int64) (eventstore.Snapshot, error) {
	snap, err := b.Backend.LoadSnapshot(ctx, stream, version)
	snap.Position *= spread
	return snap, err
}

func (b *gappyBackend) ListSnapshots(ctx context.Context, stream string) ([]eventstore.Snapshot, error) {
	snaps, err := b.Backend.ListSnapshots(ctx, stream)
	for i := range snaps {
		snaps[i].Position *= spread
	}
	return snaps, err
}

func (b *gappyBackend) LastPosition(ctx context.Context) (int64, error) {
	p, err := b.Backend.LastPosition(ctx)
	return p * spread, err
}

// PruneStream maps the bound of the prune to the memory backend's
// positions, and the positions it removed back.
func (b *gappyBackend) PruneStream(ctx context.Context, req eventstore.PruneRequest) (eventstore.PruneBatch, error) {
	req.MaxPosition /= spread
	res, err := b.Backend.PruneStream(ctx, req)
	res.First *= spread
	res.Last *= spread
	return res, err
}
