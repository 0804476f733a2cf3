package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
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

// TestStreamCache_RolledBackStream: a stream created by an append whose
// transaction was rolled back leaves its key in this Backend's memory,
// and the next new stream gets that key. An append to the first stream
// then creates it again; it never lands in the stream that holds the key.
func TestStreamCache_RolledBackStream(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, err := Open(filepath.Join(t.TempDir(), "events.db"), nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	e := eventstore.Event{Type: "E"}
	rollback := errors.New("rolled back")
	err = s.Transact(ctx, func(ctx context.Context) error {
		if _, err := s.Append(ctx, "y-1", eventstore.NoStream, e); err != nil {
			return err
		}
		return rollback
	})
	is.True(errors.Is(err, rollback))
	_, err = s.Append(ctx, "z-1", eventstore.NoStream, e) // takes the key y-1 had
	is.NoErr(err)
	res, err := s.Append(ctx, "y-1", eventstore.Any, e)
	is.NoErr(err)
	is.Equal(res.Version, int64(0))
	for _, stream := range []string{"y-1", "z-1"} {
		n := 0
		for ev, err := range s.ReadStream(ctx, stream, eventstore.ReadOptions{}) {
			is.NoErr(err)
			is.Equal(ev.StreamID, stream)
			n++
		}
		is.Equal(n, 1) // one event each
	}
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.Equal(r.Problems, nil)
}

// inGroup appends one event to each of streams with expected version
// Any, as one group commit: a first append holds the writer while the
// others queue behind it. It returns their results by stream.
func inGroup(t *testing.T, b *Backend, s *eventstore.Store, streams ...string) map[string]eventstore.AppendResult {
	t.Helper()
	ctx := context.Background()
	entered, release := holdInsert(t, b)
	first := appendAsync(ctx, s, fmt.Sprintf("holder-%d", b.groups.Load()))
	<-entered
	type result struct {
		stream string
		res    eventstore.AppendResult
		err    error
	}
	results := make(chan result, len(streams))
	for _, stream := range streams {
		go func() {
			res, err := s.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: "InGroup"})
			results <- result{stream, res, err}
		}()
	}
	queued(t, b, len(streams))
	release()
	if o := outcome(t, first, "the holder"); o.err != nil {
		t.Fatal(o.err)
	}
	out := map[string]eventstore.AppendResult{}
	for range streams {
		r := <-results
		if r.err != nil {
			t.Fatalf("%s: %v", r.stream, r.err)
		}
		out[r.stream] = r.res
	}
	return out
}

// streamEvents reads a stream's events' versions and types.
func streamEvents(t *testing.T, s *eventstore.Store, stream string) []string {
	t.Helper()
	var out []string
	for e, err := range s.ReadStream(context.Background(), stream, eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d:%s", e.Version, e.Type))
	}
	return out
}

// TestStreamCache_TrustedAcrossProcesses: a group commit takes the
// records of streams it wrote before from memory, unread, only while no
// other connection has written the file. Another Backend on the file (as
// another process would) deletes one stream and appends to another: the
// next group appends to the stream's next life and after the other's
// events, not where this Backend last left them.
func TestStreamCache_TrustedAcrossProcesses(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	inGroup(t, b, s, "d-1", "m-1")
	inGroup(t, b, s, "d-1", "m-1") // both records now come from memory
	before := b.groups.Load()

	other, err := Open(path, nil)
	is.NoErr(err)
	os := eventstore.New(other, nil)
	is.NoErr(os.DeleteStream(ctx, "d-1", eventstore.Any))
	_, err = os.Append(ctx, "m-1", eventstore.Any, eventstore.Event{Type: "Other"})
	is.NoErr(err)
	is.NoErr(os.Close())

	got := inGroup(t, b, s, "d-1", "m-1")
	is.Equal(b.groups.Load()-before, int64(2)) // the holder, and one group: nothing was spoiled
	is.Equal(got["d-1"].Version, int64(0))     // the next life's first event
	is.Equal(got["m-1"].Version, int64(3))
	is.Equal(streamEvents(t, s, "d-1"), []string{"0:InGroup"})
	is.Equal(streamEvents(t, s, "m-1"), []string{"0:InGroup", "1:InGroup", "2:Other", "3:InGroup"})
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.Equal(r.Problems, nil)
}

// TestStreamCache_TrustedAfterOwnWrites: this Backend's own writes other
// than group commits (a Transact that appends and is rolled back, a
// DeleteStream) end the trust too.
func TestStreamCache_TrustedAfterOwnWrites(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, s := groupSetup(t, nil)
	inGroup(t, b, s, "r-1", "d-1")
	inGroup(t, b, s, "r-1", "d-1")
	rollback := errors.New("rolled back")
	err := s.Transact(ctx, func(ctx context.Context) error {
		for range 3 {
			if _, err := s.Append(ctx, "r-1", eventstore.Any, eventstore.Event{Type: "RolledBack"}); err != nil {
				return err
			}
		}
		return rollback
	})
	is.True(errors.Is(err, rollback))
	is.NoErr(s.DeleteStream(ctx, "d-1", eventstore.Any))
	got := inGroup(t, b, s, "r-1", "d-1")
	is.Equal(got["r-1"].Version, int64(2))
	is.Equal(got["d-1"].Version, int64(0))
	is.Equal(streamEvents(t, s, "r-1"), []string{"0:InGroup", "1:InGroup", "2:InGroup"})
	is.Equal(streamEvents(t, s, "d-1"), []string{"0:InGroup"})
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.Equal(r.Problems, nil)
}

// TestGroupCommit_AfterTopPurged: once a purge has removed the events at
// the top of the log, a group commit, whose later rows take SQLite's next
// rowid, still gives positions past the highest ever given. The group is
// run straight after the purge, with nothing between them.
func TestGroupCommit_AfterTopPurged(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, s := groupSetup(t, nil)
	_, err := s.Append(ctx, "low-1", eventstore.NoStream, eventstore.Event{Type: "E"})
	is.NoErr(err)
	top, err := s.Append(ctx, "top-1", eventstore.NoStream, make10()...)
	is.NoErr(err)
	_, err = s.PurgeStream(ctx, "top-1")
	is.NoErr(err)

	tx, err := b.begin(ctx, time.Time{})
	is.NoErr(err)
	batch := make([]*queuedAppend, 6)
	for i := range batch {
		batch[i] = &queuedAppend{ctx: ctx, wake: make(chan struct{}), req: eventstore.AppendRequest{
			Stream: fmt.Sprintf("g-%d", i), Expected: eventstore.Any, Time: time.Now().UTC(),
			Events: []eventstore.Event{{ID: uuid.Must(uuid.NewV7()), Type: "E"}},
		}}
	}
	b.commitGroup(tx, batch) // commits, and gives the writer back
	for _, q := range batch {
		is.NoErr(q.err)
		if q.res.Position <= top.Position {
			t.Errorf("%s at position %d, at or below the purged top %d", q.req.Stream, q.res.Position, top.Position)
		}
	}
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.Equal(r.Problems, nil)
}
