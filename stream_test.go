package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/google/uuid"
	"github.com/matryer/is"
)

func TestCategoryAndCardinalID(t *testing.T) {
	t.Parallel()
	cases := []struct{ stream, category, cardinal string }{
		{"account-123", "account", "123"},
		{"account", "account", ""},
		{"accountLog-1", "accountLog", "1"},
		{"account-123+alice", "account", "123"},
		{"account-1-2", "account", "1-2"},
		{"account-+x", "account", ""},
		{"account+x-1", "account+x", "1"},
		{"-1", "", "1"},
		{"a-", "a", ""},
	}
	for _, c := range cases {
		if got := eventstore.Category(c.stream); got != c.category {
			t.Errorf("Category(%q) = %q, want %q", c.stream, got, c.category)
		}
		if got := eventstore.CardinalID(c.stream); got != c.cardinal {
			t.Errorf("CardinalID(%q) = %q, want %q", c.stream, got, c.cardinal)
		}
	}
}

func TestExpectedVersion(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	is.Equal(eventstore.Exact(-1), eventstore.NoStream)
	is.Equal(eventstore.Any.String(), "any")
	is.Equal(eventstore.NoStream.String(), "no stream")
	is.Equal(eventstore.StreamExists.String(), "stream exists")
	is.Equal(eventstore.Exact(7).String(), "7")
	is.Equal(eventstore.Exact(-9).String(), "invalid(-3)")

	err := eventstore.Exact(3).Check("s-1", 4)
	var conflict *eventstore.VersionConflictError
	is.True(errors.As(err, &conflict))
	is.True(errors.Is(err, eventstore.ErrWrongExpectedVersion))
	is.Equal(*conflict, eventstore.VersionConflictError{Stream: "s-1", Expected: 3, Actual: 4})
	is.Equal(err.Error(), `eventstore: wrong expected version for stream "s-1": expected 3, actual 4`)
	is.NoErr(eventstore.Exact(4).Check("s-1", 4))
	// An invalid expected version never passes a check.
	is.True(eventstore.ExpectedVersion(-3).Check("s-1", -1) != nil)
}

func TestOptions_ClockAndIDs(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	ids := []uuid.UUID{uuid.MustParse("00000000-0000-0000-0000-000000000001"), uuid.MustParse("00000000-0000-0000-0000-000000000002")}
	next := 0
	s := eventstore.New(memory.New(), &eventstore.Options{
		Clock:      func() time.Time { return at },
		NewEventID: func() uuid.UUID { next++; return ids[next-1] },
	})
	defer s.Close()
	given := uuid.New()
	_, err := s.Append(ctx, "c-1", eventstore.Any,
		eventstore.Event{Type: "A"}, eventstore.Event{ID: given, Type: "B"}, eventstore.Event{Type: "C"})
	is.NoErr(err)
	var got []eventstore.RecordedEvent
	for e, err := range s.ReadStream(ctx, "c-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		got = append(got, e)
	}
	is.Equal([]uuid.UUID{got[0].ID, got[1].ID, got[2].ID}, []uuid.UUID{ids[0], given, ids[1]})
	is.True(got[0].RecordedAt.Equal(at))
	is.Equal(got[0].RecordedAt.Location(), time.UTC)
}

func TestDefaultIDsAreV7(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	s := eventstore.New(memory.New(), nil)
	defer s.Close()
	_, err := s.Append(context.Background(), "v-1", eventstore.Any, eventstore.Event{Type: "A"})
	is.NoErr(err)
	for e, err := range s.ReadStream(context.Background(), "v-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		is.Equal(e.ID.Version(), uuid.Version(7))
	}
}

func TestOptions_ZeroIDFromGenerator(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	s := eventstore.New(memory.New(), &eventstore.Options{NewEventID: func() uuid.UUID { return uuid.Nil }})
	defer s.Close()
	_, err := s.Append(context.Background(), "z-1", eventstore.Any, eventstore.Event{Type: "A"})
	is.True(errors.Is(err, eventstore.ErrInvalidArgument))
	v, err := s.StreamVersion(context.Background(), "z-1")
	is.NoErr(err)
	is.Equal(v, int64(-1))
}
