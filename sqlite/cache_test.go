package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// TestStreamCache_Stale appends through a Backend whose memory of a
// stream has gone stale: another Backend on the file appended to it,
// deleted it, purged it, or the append that moved it was rolled back. Each
// append still lands at the stream's true next version, in its true life.
func TestStreamCache_Stale(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	b1, err := Open(path, nil)
	is.NoErr(err)
	s1 := eventstore.New(b1, nil)
	defer s1.Close()
	b2, err := Open(path, nil)
	is.NoErr(err)
	s2 := eventstore.New(b2, nil)
	defer s2.Close()
	e := eventstore.Event{Type: "E"}
	version := func(want int64) {
		t.Helper()
		v, err := s1.StreamVersion(ctx, "x-1")
		is.NoErr(err)
		is.Equal(v, want)
	}

	_, err = s1.Append(ctx, "x-1", eventstore.NoStream, e) // s1 knows x-1 at 0
	is.NoErr(err)
	_, err = s2.Append(ctx, "x-1", eventstore.Exact(0), e, e) // now at 2
	is.NoErr(err)
	res, err := s1.Append(ctx, "x-1", eventstore.Any, e)
	is.NoErr(err)
	is.Equal(res.Version, int64(3))
	_, err = s1.Append(ctx, "x-1", eventstore.Exact(3), e) // s1 knows 4
	is.NoErr(err)
	_, err = s2.Append(ctx, "x-1", eventstore.Exact(4), e) // now at 5
	is.NoErr(err)
	_, err = s1.Append(ctx, "x-1", eventstore.Exact(4), e) // s1's memory says 4: the file says 5
	var conflict *eventstore.VersionConflictError
	is.True(errors.As(err, &conflict))
	is.Equal(conflict.Actual, int64(5))

	is.NoErr(s2.DeleteStream(ctx, "x-1", eventstore.Any))
	res, err = s1.Append(ctx, "x-1", eventstore.Any, e) // the next life
	is.NoErr(err)
	is.Equal(res.Version, int64(0))
	n := 0
	for ev, err := range s1.ReadStream(ctx, "x-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		is.Equal(ev.Version, int64(n))
		n++
	}
	is.Equal(n, 1)

	// An append rolled back with its transaction.
	rollback := errors.New("rolled back")
	err = s1.Transact(ctx, func(ctx context.Context) error {
		if _, err := s1.Append(ctx, "x-1", eventstore.Exact(0), e, e); err != nil {
			return err
		}
		return rollback
	})
	is.True(errors.Is(err, rollback))
	version(0)
	res, err = s1.Append(ctx, "x-1", eventstore.Any, e)
	is.NoErr(err)
	is.Equal(res.Version, int64(1))

	_, err = s2.PurgeStream(ctx, "x-1")
	is.NoErr(err)
	_, err = s1.Append(ctx, "x-1", eventstore.Any, e)
	is.True(errors.Is(err, eventstore.ErrStreamPurged))

	r, err := s1.Verify(ctx)
	is.NoErr(err)
	is.Equal(r.Problems, nil)
}

// TestTypeIndex_SameEvents reads by type, forward and backward, with and
// without Options.TypeIndex, from the same file: the same events either
// way, whichever index the read walks.
func TestTypeIndex_SameEvents(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	read := func(typeIndex bool, f eventstore.Filter, backward bool) []int64 {
		b, err := Open(path, &Options{TypeIndex: typeIndex})
		is.NoErr(err)
		defer b.Close()
		is.Equal(b.typeIndex, typeIndex)
		var got []int64
		for e, err := range b.ReadAll(ctx, eventstore.ReadOptions{Backward: backward, Limit: 20}, f) {
			is.NoErr(err)
			got = append(got, e.Position)
		}
		return got
	}
	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	for i := range 300 {
		_, err := s.Append(ctx, []string{"a-1", "b-2", "a-3"}[i%3], eventstore.Any,
			eventstore.Event{Type: []string{"X", "Y", "Z", "W"}[i%4]})
		is.NoErr(err)
	}
	is.NoErr(s.Close())
	for _, f := range []eventstore.Filter{
		{Types: []string{"Y"}},
		{Types: []string{"X", "Z"}},
		{Types: []string{"W"}, Categories: []string{"a"}},
		{Types: []string{"W"}, Streams: []string{"b-2"}},
	} {
		for _, backward := range []bool{false, true} {
			without := read(false, f, backward)
			is.Equal(len(without), 20)
			with := read(true, f, backward)
			is.Equal(with, without)
			// The index stays once created; a file without it again:
			b, err := Open(path, nil)
			is.NoErr(err)
			_, err = b.writer.Exec(`DROP INDEX events_type`)
			is.NoErr(err)
			is.NoErr(b.Close())
		}
	}
}
