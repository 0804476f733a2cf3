package eventstore

import (
	"context"
	"fmt"
	"iter"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Options configure a [Store]. The zero value, like a nil *Options, gives
// the defaults.
type Options struct {
	// NewEventID returns the ID of an appended event that has none.
	// Default: a UUIDv7, which sorts by creation time.
	NewEventID func() uuid.UUID
	// Clock returns the current time, used for RecordedAt. Default:
	// time.Now. Its result is stored in UTC with nanosecond precision.
	Clock func() time.Time
	// Hooks observe the store's operations and what happens in it.
	// Default: none.
	Hooks Hooks
	// MaxEventSize is the most bytes an event's Data and Metadata may hold
	// together; a larger event is [ErrEventTooLarge] and nothing of its
	// Append is written. Default: 1 MiB. Negative: no limit (SQLite's own
	// limit, 1 GB, still holds).
	MaxEventSize int
	// SnapshotRetention, when positive, keeps only that many snapshots of
	// each stream, the highest versions: saving one deletes the oldest
	// beyond it. Default: 0 (or negative), keep all.
	SnapshotRetention int
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.NewEventID == nil {
		out.NewEventID = newV7
	}
	if out.Clock == nil {
		out.Clock = time.Now
	}
	if out.MaxEventSize == 0 {
		out.MaxEventSize = 1 << 20
	}
	return out
}

func newV7() uuid.UUID {
	// NewV7 fails only when the system's random source does; there is no
	// sensible way to go on without one.
	return uuid.Must(uuid.NewV7())
}

// Store is an event store: streams of events with optimistic concurrency
// and a global ordered log, on top of a [Backend]. It is safe for
// concurrent use. Create it with [New] and Close it when done.
type Store struct {
	backend Backend
	caps    capabilities // found once, by New
	opts    Options
	closed  atomic.Bool
	hub     hub
	running progressBoard // consumers running on this Store, for WaitFor and Consumers

	counters  counters
	retention retentionState
	closing   chan struct{} // closed by Close
}

// New returns a Store on backend. A nil opts gives the defaults. The Store
// owns the backend from now on: [Store.Close] closes it. A nil backend is a
// programming error, which New reports at once by panicking with an error
// matching [ErrInvalidArgument].
func New(backend Backend, opts *Options) *Store {
	if isNil(backend) {
		panic(fmt.Errorf("eventstore: New: %w", invalidf("nil Backend")))
	}
	s := &Store{backend: backend, caps: capabilitiesOf(backend), opts: opts.withDefaults(), closing: make(chan struct{})}
	if s.caps.reporter != nil {
		s.caps.reporter.ReportTo(s.happened)
	}
	s.happened(context.Background(), Happening{Category: CategorySystem, Name: "store.opened"})
	return s
}

// Close ends every subscription (their Err is [ErrClosed]), then closes
// the backend. Calls after Close, including a second Close, fail with
// [ErrClosed].
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return ErrClosed
	}
	close(s.closing)
	s.hub.close()
	err := s.backend.Close()
	s.happened(context.Background(), Happening{Category: CategorySystem, Name: "store.closed", Err: err})
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

func (s *Store) newID() uuid.UUID { return s.opts.NewEventID() }

// now returns the clock's time in UTC, without a monotonic reading and at
// the nanosecond precision every backend stores.
func (s *Store) now() time.Time {
	return time.Unix(0, s.opts.Clock().UnixNano()).UTC()
}

// guard wraps a backend's sequence: it refuses to start once the store is
// closed, and ends the sequence with ctx.Err() as soon as ctx is done, so
// every backend cancels the same way.
func (s *Store) guard(ctx context.Context, name, stream string, seq iter.Seq2[RecordedEvent, error]) iter.Seq2[RecordedEvent, error] {
	guardedSeq := guarded(ctx, s, seq)
	return func(yield func(RecordedEvent, error) bool) {
		s.counters.reads.Add(1)
		end := s.begin(ctx, name, stream)
		var o Outcome
		defer func() {
			s.counters.eventsRead.Add(uint64(o.Events))
			end(o)
		}()
		for e, err := range guardedSeq {
			if err != nil {
				o.Err = err
			} else {
				o.Events++
				o.Position = e.Position
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

func (s *Store) guardList(ctx context.Context, seq iter.Seq2[StreamInfo, error]) iter.Seq2[StreamInfo, error] {
	return guarded(ctx, s, seq)
}

func guarded[T any](ctx context.Context, s *Store, seq iter.Seq2[T, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		if err := s.checkOpen(); err != nil {
			yield(zero, err)
			return
		}
		done := ctx.Done()
		if err := ctx.Err(); err != nil {
			yield(zero, err)
			return
		}
		for v, err := range seq {
			select {
			case <-done:
				yield(zero, ctx.Err())
				return
			default:
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// errSeq returns a sequence that yields err as its only element.
func errSeq[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}
