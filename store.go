package eventstore

import (
	"context"
	"fmt"
	"iter"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Backend is the storage contract that every backend implements: the
// SQLite backend (package sqlite) and the in-memory reference backend
// (package memory). Users do not call a Backend directly: they pass it to
// [New] and use the [Store], which validates every argument before it
// reaches the backend. The conformance suite in package eventstoretest
// checks a Backend against this contract through a Store.
//
// Every method is safe for concurrent use. Errors match the sentinels of
// this package where one applies; a backend translates its driver's errors
// in one place.
type Backend interface {
	// Append writes req.Events to the end of req.Stream in one atomic step,
	// after checking req.Expected with [ExpectedVersion.Check] against the
	// stream's last version (-1 for a stream that does not exist or was
	// deleted). Every event has a non-zero, distinct ID and a valid Type.
	//
	// Versions continue from the stream's last version (0 for a new or
	// deleted stream). Positions continue the global log: every event gets a
	// position greater than that of any event committed before it, and an
	// event becomes visible to readers only with all the other events of its
	// Append, in position order.
	//
	// When every ID of req.Events is already stored, in the same order, as
	// consecutive events of the stream's current life, Append writes nothing
	// and returns the result those events had (last version and position),
	// without checking req.Expected. Otherwise any stored ID fails the whole
	// Append with [ErrDuplicateEvent]. A version conflict returns a
	// [*VersionConflictError].
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)

	// ReadStream yields the events of the current life of a stream, in
	// version order or, with opts.Backward, in reverse version order,
	// starting at version opts.From (the end, for a backward read with From
	// 0) and stopping after opts.Limit events when it is positive. A stream
	// that does not exist yields [ErrStreamNotFound] as its only element.
	// The sequence must not hold a lock or a database connection while the
	// consumer's loop body runs, must stop at the first error and yield it,
	// and must end with ctx.Err() once ctx is done. It yields at least the
	// events committed before it began; whether it also yields those
	// committed while it runs is up to the backend, but what it yields has
	// no gap.
	ReadStream(ctx context.Context, stream string, opts ReadOptions) iter.Seq2[RecordedEvent, error]

	// ReadAll yields the events of the global log that match filter, in
	// position order or, with opts.Backward, in reverse, starting at
	// position opts.From (the end, for a backward read with From 0) and
	// stopping after opts.Limit matching events when it is positive. Events
	// of deleted streams are included. The filter has been checked with
	// [Filter.Matcher], which the backend may use for whatever it does not
	// evaluate itself. The rules of ReadStream on locks and errors apply.
	ReadAll(ctx context.Context, opts ReadOptions, filter Filter) iter.Seq2[RecordedEvent, error]

	// StreamVersion returns the last version of a stream, or -1 when it does
	// not exist or was deleted.
	StreamVersion(ctx context.Context, stream string) (int64, error)

	// ListStreams yields the streams that exist, in ascending byte order of
	// ID, restricted by opts (prefix, category, strictly after opts.After,
	// at most opts.Limit when positive). The rules of ReadStream on locks and
	// errors apply.
	ListStreams(ctx context.Context, opts ListOptions) iter.Seq2[StreamInfo, error]

	// DeleteStream checks expected against the stream's last version as
	// Append does, then deletes the stream: it reads and lists as absent and
	// a later Append starts it again at version 0, while its events stay in
	// the global log. A backend that stores snapshots ([Snapshotter])
	// deletes the stream's snapshots with it. A stream that does not exist, once the check passed,
	// is [ErrStreamNotFound].
	DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error

	// Close releases the backend's resources. Calls after Close fail with
	// [ErrClosed].
	Close() error
}

// AppendRequest is one Append as the [Store] hands it to a [Backend].
type AppendRequest struct {
	Stream   string          // a valid stream ID
	Expected ExpectedVersion // a valid expected version
	Events   []Event         // at least one; IDs set and distinct, types valid
	Time     time.Time       // the RecordedAt of every event, in UTC

	// IdempotencyKey, when not empty, is checked first: if an earlier
	// append to the stream's current life carried the same key, Append
	// writes nothing and returns that append's result, without checking
	// Expected or the events. Otherwise the key is stored with the append.
	IdempotencyKey string
}

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
	opts    Options
	closed  atomic.Bool
	hub     hub

	counters counters
}

// New returns a Store on backend. A nil opts gives the defaults. The Store
// owns the backend from now on: [Store.Close] closes it. A nil backend is a
// programming error, which New reports at once by panicking with an error
// matching [ErrInvalidArgument].
func New(backend Backend, opts *Options) *Store {
	if isNil(backend) {
		panic(fmt.Errorf("eventstore: New: %w", invalidf("nil Backend")))
	}
	s := &Store{backend: backend, opts: opts.withDefaults()}
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
	s.hub.close()
	err := s.backend.Close()
	s.happened(context.Background(), Happening{Category: CategorySystem, Name: "store.closed", Err: err})
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// Backend returns the backend the store runs on, for its own methods and
// optional capabilities.
func (s *Store) Backend() Backend { return s.backend }

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
