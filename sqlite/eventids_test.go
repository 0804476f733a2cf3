package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
	"github.com/matryer/is"
)

// TestIDKey pins the key of an event ID (schema.sql, migration 9): a
// UUIDv7's first 8 bytes, any other ID's first 8 XOR its last 8; and the
// SQL function computes the same.
func TestIDKey(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	for _, c := range []struct {
		id   string
		want uint64
	}{
		{"0192e4a1-7b2c-7d3e-8f40-0123456789ab", 0x0192e4a17b2c7d3e},                      // version 7: its first half
		{"f192e4a1-7b2c-7d3e-8f40-0123456789ab", 0xf192e4a17b2c7d3e},                      // negative as int64
		{"00000000-0000-0000-0000-000000000001", 1},                                       // not version 7: the halves XOR
		{"00000000-0000-0000-0000-000000000002", 2},                                       // so these two differ
		{"6ba7b810-9dad-41d1-80b4-00c04fd430c8", 0x6ba7b8109dad41d1 ^ 0x80b400c04fd430c8}, // version 4
	} {
		id := uuid.MustParse(c.id)
		is.Equal(idKey(&id), int64(c.want))
	}
	b, _ := groupSetup(t, nil)
	for range 100 {
		for _, id := range []uuid.UUID{uuid.New(), uuid.Must(uuid.NewV7())} {
			var k int64
			is.NoErr(b.reader.Get(&k, `SELECT eventstore_id_key(?)`, id[:]))
			is.Equal(k, idKey(&id))
		}
	}
}

// sharedIDs returns n UUIDv7 IDs with the same first 8 bytes, so the same
// key.
func sharedIDs(n int) []uuid.UUID {
	base := uuid.Must(uuid.NewV7())
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = base
		ids[i][15] = byte(i)
	}
	return ids
}

// idRows counts the rows of event_ids and event_ids_shared.
func idRows(t *testing.T, b *Backend) (keys, shared int) {
	t.Helper()
	if err := b.reader.Get(&keys, `SELECT count(*) FROM event_ids`); err != nil {
		t.Fatal(err)
	}
	if err := b.reader.Get(&shared, `SELECT count(*) FROM event_ids_shared`); err != nil {
		t.Fatal(err)
	}
	return keys, shared
}

// verified checks that the store verifies, its event IDs included.
func verified(t *testing.T, s *eventstore.Store) {
	t.Helper()
	r, err := s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("verify: %q", r.Problems)
	}
}

// TestEventIDs_SharedKey appends events whose IDs share a key: every ID
// is stored, each is a duplicate when appended again (an append repeated
// whole is a retry), and deleting the event that holds the key in
// event_ids hands it to another, so that duplicates are still found.
func TestEventIDs_SharedKey(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, s := groupSetup(t, nil)
	ids := sharedIDs(4)
	ev := func(i int) eventstore.Event { return eventstore.Event{ID: ids[i], Type: "E", Data: []byte(`{}`)} }

	_, err := s.Append(ctx, "one-1", eventstore.NoStream, ev(0))
	is.NoErr(err)
	two, err := s.Append(ctx, "two-1", eventstore.NoStream, ev(1), ev(2))
	is.NoErr(err)
	keys, shared := idRows(t, b)
	is.Equal(keys, 1)
	is.Equal(shared, 2)
	verified(t, s)

	for i := range 3 {
		_, err = s.Append(ctx, "other-1", eventstore.Any, ev(i))
		is.True(errors.Is(err, eventstore.ErrDuplicateEvent)) // stored, whichever table holds it
	}
	_, err = s.Append(ctx, "other-1", eventstore.Any, ev(3), ev(1))
	is.True(errors.Is(err, eventstore.ErrDuplicateEvent)) // the second of an append
	again, err := s.Append(ctx, "two-1", eventstore.NoStream, ev(1), ev(2))
	is.NoErr(err) // a retry: the earlier result
	is.Equal(again, two)
	ok, err := s.StreamExists(ctx, "other-1")
	is.NoErr(err)
	is.True(!ok) // nothing of the failed appends was written

	// The event that holds the key goes: another of its key takes it.
	_, err = s.PurgeStream(ctx, "one-1")
	is.NoErr(err)
	keys, shared = idRows(t, b)
	is.Equal(keys, 1)
	is.Equal(shared, 1)
	verified(t, s)
	for _, i := range []int{1, 2} {
		_, err = s.Append(ctx, "other-1", eventstore.Any, ev(i))
		is.True(errors.Is(err, eventstore.ErrDuplicateEvent))
	}
	// The purged event's ID is free again, as it was with a unique index.
	_, err = s.Append(ctx, "three-1", eventstore.NoStream, ev(0), ev(3))
	is.NoErr(err)
	keys, shared = idRows(t, b)
	is.Equal(keys, 1)
	is.Equal(shared, 3)
	verified(t, s)

	// A prune of the stream whose event holds the key.
	is.NoErr(s.SetRetention(ctx, "two-1", eventstore.Retention{MaxCount: 1}))
	res, err := s.Prune(ctx, eventstore.PruneOptions{})
	is.NoErr(err)
	is.Equal(res.Events, int64(1))
	verified(t, s)
	_, err = s.Append(ctx, "other-1", eventstore.Any, ev(2))
	is.True(errors.Is(err, eventstore.ErrDuplicateEvent))
	_, err = s.Append(ctx, "other-1", eventstore.Any, ev(1))
	is.NoErr(err) // pruned: free again
	verified(t, s)
}

// TestEventIDs_Group queues appends whose IDs share a key, and one that
// repeats a stored ID, behind a held transaction, so that they are
// written as one group: the group stores every ID, and the duplicate fails
// alone.
func TestEventIDs_Group(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, s := groupSetup(t, nil)
	ids := sharedIDs(12)
	_, err := s.Append(ctx, "stored-1", eventstore.NoStream, eventstore.Event{ID: ids[0], Type: "E"})
	is.NoErr(err)

	entered, release := holdInsert(t, b)
	first := appendAsync(ctx, s, "first-1")
	<-entered
	type result struct {
		stream string
		err    error
	}
	results := make(chan result, 11)
	for i := 1; i < 12; i++ {
		stream := fmt.Sprintf("g-%d", i)
		id := ids[i]
		if i == 6 {
			id = ids[0] // stored before
		}
		go func() {
			_, err := s.Append(ctx, stream, eventstore.NoStream, eventstore.Event{ID: id, Type: "E"})
			results <- result{stream, err}
		}()
	}
	queued(t, b, 11)
	release()
	is.NoErr(outcome(t, first, "first").err)
	for range 11 {
		r := <-results
		if r.stream == "g-6" {
			is.True(errors.Is(r.err, eventstore.ErrDuplicateEvent))
		} else {
			is.NoErr(r.err)
		}
	}
	keys, shared := idRows(t, b)
	is.Equal(keys, 2)    // ids[0]'s key, and first-1's own ID
	is.Equal(shared, 10) // ids[1...11] but ids[6]
	verified(t, s)
}

// TestEventIDs_Verify: Verify finds an event whose ID is not stored, and
// a row of event_ids that names no such event.
func TestEventIDs_Verify(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, s := groupSetup(t, nil)
	_, err := s.Append(ctx, "a-1", eventstore.NoStream, eventstore.Event{Type: "E"}, eventstore.Event{Type: "E"})
	is.NoErr(err)
	verified(t, s)
	_, err = b.writer.Exec(`DELETE FROM event_ids WHERE position = 1`)
	is.NoErr(err)
	_, err = b.writer.Exec(`INSERT INTO event_ids (k, position) VALUES (42, 2)`)
	is.NoErr(err)
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.Equal(len(r.Problems), 2)
	is.True(!r.OK())
	t.Log(r.Problems)
}
