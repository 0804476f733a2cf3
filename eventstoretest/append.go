package eventstoretest

import (
	"errors"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

func testAppend(t *testing.T, newBackend NewBackend) {
	t.Run("NewStream", func(t *testing.T) {
		b := setup(t, newBackend)
		before := time.Now().UTC()
		events := numbered("Numbered", 5)
		events[2].Metadata = []byte(`{"user":"alice"}`)
		events[3].Data = nil
		res := b.appendOK("order-1", eventstore.NoStream, events...)
		b.is.Equal(res.Version, int64(4))

		got := all(b.is, b.store.ReadStream(b.ctx, "order-1", eventstore.ReadOptions{}))
		b.is.Equal(len(got), 5)
		seen := map[uuid.UUID]bool{}
		increasing(t, positions(got))
		b.is.Equal(got[4].Position, res.Position)
		for i, e := range got {
			b.is.Equal(e.StreamID, "order-1")
			b.is.Equal(e.Version, int64(i))
			b.is.Equal(e.Type, "Numbered")
			b.is.Equal(e.Data, events[i].Data)         // data round-trips byte for byte
			b.is.Equal(e.Metadata, events[i].Metadata) // metadata round-trips
			b.is.True(e.ID != uuid.Nil)                // the store assigns IDs
			b.is.True(!seen[e.ID])                     // assigned IDs are distinct
			seen[e.ID] = true
			b.is.Equal(e.RecordedAt, got[0].RecordedAt) // one timestamp per Append
			b.is.Equal(e.RecordedAt.Location(), time.UTC)
		}
		b.is.Equal(got[3].Data, nil) // empty data reads as nil
		b.is.True(!got[0].RecordedAt.Before(before.Truncate(time.Second)))
		b.is.True(got[0].RecordedAt.Before(time.Now().Add(time.Minute)))
	})

	t.Run("KeepsGivenIDs", func(t *testing.T) {
		b := setup(t, newBackend)
		id := uuid.New()
		e := ev("Given")
		e.ID = id
		b.appendOK("given-1", eventstore.Any, e)
		got := all(b.is, b.store.ReadStream(b.ctx, "given-1", eventstore.ReadOptions{}))
		b.is.Equal(got[0].ID, id)
	})

	t.Run("ContinuesVersionsAndPositions", func(t *testing.T) {
		b := setup(t, newBackend)
		r1 := b.appendOK("a-1", eventstore.Any, numbered("E", 2)...)
		r2 := b.appendOK("b-1", eventstore.Any, numbered("E", 3)...)
		r3 := b.appendOK("a-1", eventstore.Exact(1), numbered("E", 1)...)
		b.is.Equal([]int64{r1.Version, r2.Version, r3.Version}, []int64{1, 2, 2})
		got := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(streamsOf(got), []string{"a-1@0", "a-1@1", "b-1@0", "b-1@1", "b-1@2", "a-1@2"})
		increasing(t, positions(got))
		// Each append's result is the position of its last event.
		b.is.Equal([]int64{r1.Position, r2.Position, r3.Position}, []int64{got[1].Position, got[4].Position, got[5].Position})
	})

	t.Run("ExpectedVersion", testExpectedVersion(newBackend))

	t.Run("Atomic", func(t *testing.T) {
		b := setup(t, newBackend)
		taken := ev("Taken")
		taken.ID = uuid.New()
		b.appendOK("other-1", eventstore.NoStream, taken)
		b.appendOK("atomic-1", eventstore.NoStream, ev("First"))

		// The third event's ID is taken: none of the three may be written.
		batch := []eventstore.Event{ev("A"), ev("B"), taken}
		_, err := b.store.Append(b.ctx, "atomic-1", eventstore.Exact(0), batch...)
		b.is.True(errors.Is(err, eventstore.ErrDuplicateEvent))
		v, err := b.store.StreamVersion(b.ctx, "atomic-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(0)) // the failed append left the stream alone
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(len(log), 2) // and wrote nothing to the global log

		// The store goes on: the next append takes the next version, and
		// the next event of the log is its own.
		res := b.appendOK("atomic-1", eventstore.Exact(0), ev("Second"))
		b.is.Equal(res.Version, int64(1))
		b.is.Equal(b.logPositions(), append(positions(log), res.Position))
	})

	t.Run("IdempotentRetry", func(t *testing.T) {
		b := setup(t, newBackend)
		first := withIDs(numbered("E", 3))
		want := b.appendOK("retry-1", eventstore.NoStream, first...)
		b.appendOK("noise-1", eventstore.Any, ev("Noise"))
		b.appendOK("retry-1", eventstore.Exact(2), ev("Later"))

		// A retry returns the first result whatever it expects, and writes nothing.
		for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exact(2), eventstore.Any, eventstore.StreamExists} {
			res, err := b.store.Append(b.ctx, "retry-1", expected, first...)
			b.is.NoErr(err) // a retry is not an error
			b.is.Equal(res, want)
		}
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(len(log), 5)

		// A retry of a large append, more IDs than one query takes.
		large := withIDs(numbered("Bulk", 1200))
		want = b.appendOK("retry-big", eventstore.NoStream, large...)
		res, err := b.store.Append(b.ctx, "retry-big", eventstore.NoStream, large...)
		b.is.NoErr(err)
		b.is.Equal(res, want)
		large[1100].ID = uuid.New() // no longer the same append
		_, err = b.store.Append(b.ctx, "retry-big", eventstore.Any, large...)
		b.is.True(errors.Is(err, eventstore.ErrDuplicateEvent))

		// A single-event retry too.
		one := withIDs(numbered("E", 1))
		want = b.appendOK("retry-2", eventstore.Any, one...)
		res, err = b.store.Append(b.ctx, "retry-2", eventstore.Any, one...)
		b.is.NoErr(err)
		b.is.Equal(res, want)
	})

	t.Run("DuplicateEvent", func(t *testing.T) {
		b := setup(t, newBackend)
		stored := withIDs(numbered("E", 2))
		b.appendOK("dup-1", eventstore.NoStream, stored...)
		fresh := withIDs(numbered("E", 1))[0]
		cases := map[string]struct {
			stream string
			events []eventstore.Event
		}{
			"OtherStream":   {"dup-2", stored},
			"OneOfThem":     {"dup-2", stored[1:]},
			"PartlyNew":     {"dup-1", []eventstore.Event{stored[0], stored[1], fresh}},
			"Reordered":     {"dup-1", []eventstore.Event{stored[1], stored[0]}},
			"NewThenStored": {"dup-1", []eventstore.Event{fresh, stored[0]}},
		}
		for name, c := range cases {
			_, err := b.store.Append(b.ctx, c.stream, eventstore.Any, c.events...)
			if !errors.Is(err, eventstore.ErrDuplicateEvent) {
				t.Errorf("%s: got %v, want ErrDuplicateEvent", name, err)
			}
		}
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(len(log), 2) // no failed append wrote anything
	})

	t.Run("RetryAfterDeleteIsDuplicate", func(t *testing.T) {
		b := setup(t, newBackend)
		events := withIDs(numbered("E", 2))
		b.appendOK("gone-1", eventstore.NoStream, events...)
		b.is.NoErr(b.store.DeleteStream(b.ctx, "gone-1", eventstore.Any))
		// The IDs belong to the stream's earlier life, not its current one.
		_, err := b.store.Append(b.ctx, "gone-1", eventstore.Any, events...)
		b.is.True(errors.Is(err, eventstore.ErrDuplicateEvent))
	})
}

func testExpectedVersion(newBackend NewBackend) func(t *testing.T) {
	return func(t *testing.T) {
		// Each case runs against "s-1", which holds two events (version 1),
		// or against "missing-1", which does not exist.
		cases := []struct {
			name     string
			stream   string
			expected eventstore.ExpectedVersion
			actual   int64 // the conflict's Actual; -2: no conflict
		}{
			{"AnyNew", "missing-1", eventstore.Any, -2},
			{"AnyExisting", "s-1", eventstore.Any, -2},
			{"NoStreamNew", "missing-1", eventstore.NoStream, -2},
			{"NoStreamExisting", "s-1", eventstore.NoStream, 1},
			{"StreamExistsNew", "missing-1", eventstore.StreamExists, -1},
			{"StreamExistsExisting", "s-1", eventstore.StreamExists, -2},
			{"ExactMatch", "s-1", eventstore.Exact(1), -2},
			{"ExactBehind", "s-1", eventstore.Exact(0), 1},
			{"ExactAhead", "s-1", eventstore.Exact(5), 1},
			{"ExactNew", "missing-1", eventstore.Exact(0), -1},
			{"ExactMinusOneNew", "missing-1", eventstore.Exact(-1), -2},
			{"ExactMinusOneExisting", "s-1", eventstore.Exact(-1), 1},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := setup(t, newBackend)
				b.appendOK("s-1", eventstore.NoStream, numbered("E", 2)...)
				before, err := b.store.StreamVersion(b.ctx, c.stream)
				b.is.NoErr(err)

				res, err := b.store.Append(b.ctx, c.stream, c.expected, ev("Checked"))
				if c.actual == -2 {
					b.is.NoErr(err)
					b.is.Equal(res.Version, before+1)
					return
				}
				b.is.True(errors.Is(err, eventstore.ErrWrongExpectedVersion))
				var conflict *eventstore.VersionConflictError
				b.is.True(errors.As(err, &conflict))
				b.is.Equal(conflict.Stream, c.stream)
				b.is.Equal(conflict.Expected, c.expected)
				b.is.Equal(conflict.Actual, c.actual)
				after, err := b.store.StreamVersion(b.ctx, c.stream)
				b.is.NoErr(err)
				b.is.Equal(after, before) // a conflict writes nothing
				log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
				b.is.Equal(len(log), 2)
			})
		}
	}
}

// withIDs gives each event a fresh random ID.
func withIDs(events []eventstore.Event) []eventstore.Event {
	for i := range events {
		events[i].ID = uuid.New()
	}
	return events
}

func testIdempotencyKeys(t *testing.T, newBackend NewBackend) {
	t.Run("SameKeySameStream", func(t *testing.T) {
		b := setup(t, newBackend)
		opts := eventstore.AppendOptions{IdempotencyKey: "order-cmd-17"}
		first, err := b.store.AppendWith(b.ctx, "key-1", eventstore.NoStream, opts, ev("Placed"), ev("Paid"))
		b.is.NoErr(err)
		b.appendOK("key-1", eventstore.Any, ev("Later"))
		// Same key: the first result, whatever the expected version and events.
		again, err := b.store.AppendWith(b.ctx, "key-1", eventstore.NoStream, opts, ev("Different"))
		b.is.NoErr(err)
		b.is.Equal(again, first)
		v, err := b.store.StreamVersion(b.ctx, "key-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(2)) // nothing written

		// The key is scoped to its stream.
		other, err := b.store.AppendWith(b.ctx, "key-2", eventstore.NoStream, opts, ev("Placed"))
		b.is.NoErr(err)
		b.is.Equal(other.Version, int64(0))

		// A new key is a new append.
		res, err := b.store.AppendWith(b.ctx, "key-1", eventstore.Exact(2), eventstore.AppendOptions{IdempotencyKey: "order-cmd-18"}, ev("Shipped"))
		b.is.NoErr(err)
		b.is.Equal(res.Version, int64(3))
	})

	t.Run("FailedAppendKeepsNoKey", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("key-1", eventstore.Any, ev("E"))
		opts := eventstore.AppendOptions{IdempotencyKey: "k"}
		_, err := b.store.AppendWith(b.ctx, "key-1", eventstore.NoStream, opts, ev("E"))
		b.is.True(errors.Is(err, eventstore.ErrWrongExpectedVersion))
		res, err := b.store.AppendWith(b.ctx, "key-1", eventstore.Exact(0), opts, ev("E"))
		b.is.NoErr(err) // the conflict did not use up the key
		b.is.Equal(res.Version, int64(1))
	})

	t.Run("DeleteForgetsKeys", func(t *testing.T) {
		b := setup(t, newBackend)
		opts := eventstore.AppendOptions{IdempotencyKey: "k"}
		_, err := b.store.AppendWith(b.ctx, "key-1", eventstore.Any, opts, ev("E"), ev("E"))
		b.is.NoErr(err)
		b.is.NoErr(b.store.DeleteStream(b.ctx, "key-1", eventstore.Any))
		res, err := b.store.AppendWith(b.ctx, "key-1", eventstore.NoStream, opts, ev("E"))
		b.is.NoErr(err)
		b.is.Equal(res.Version, int64(0)) // written to the new life
	})

	t.Run("BadKey", func(t *testing.T) {
		b := setup(t, newBackend)
		_, err := b.store.AppendWith(b.ctx, "key-1", eventstore.Any, eventstore.AppendOptions{IdempotencyKey: "a\nb"}, ev("E"))
		b.is.True(errors.Is(err, eventstore.ErrInvalidArgument))
	})
}
