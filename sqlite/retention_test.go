package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// Policies, and what a prune removed, outlive the process.
func TestRetention_Durable(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	open := func() *eventstore.Store {
		b, err := Open(path, nil)
		is.NoErr(err)
		return eventstore.New(b, nil)
	}
	s := open()
	_, err := s.Append(ctx, "a-1", eventstore.Any, make10()...)
	is.NoErr(err)
	is.NoErr(s.SetRetention(ctx, "a-1", eventstore.Retention{MaxCount: 3}))
	is.NoErr(s.SetCategoryRetention(ctx, "b", eventstore.Retention{TruncateBefore: 2}))
	is.NoErr(s.Close())

	s = open()
	ps, err := s.Retentions(ctx)
	is.NoErr(err)
	is.Equal(ps, []eventstore.RetentionPolicy{
		{Stream: "a-1", Retention: eventstore.Retention{MaxCount: 3}},
		{Category: "b", Retention: eventstore.Retention{TruncateBefore: 2}},
	})
	res, err := s.Prune(ctx, eventstore.PruneOptions{})
	is.NoErr(err)
	is.Equal(res.Events, int64(7))
	is.NoErr(s.Close())

	s = open()
	defer s.Close()
	n := 0
	for _, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		is.NoErr(err)
		n++
	}
	is.Equal(n, 3)
	r, err := s.Verify(ctx) // knows the stream was pruned
	is.NoErr(err)
	if !r.OK() {
		t.Fatalf("verify: %q", r.Problems)
	}
}

// A file of schema version 6, before retention, migrates and keeps its
// events, which can then be pruned.
func TestRetention_MigratesVersion6(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	_, err = s.Append(ctx, "a-1", eventstore.Any, make10()...)
	is.NoErr(err)
	for _, q := range []string{
		`DROP TABLE retention_policies`,
		`DROP TABLE pruned_streams`,
		`UPDATE eventstore_schema SET version = 6`,
	} {
		_, err = b.writer.Exec(q)
		is.NoErr(err)
	}
	is.NoErr(s.Close())

	b, err = Open(path, nil)
	is.NoErr(err)
	s = eventstore.New(b, nil)
	defer s.Close()
	v, err := readSchemaVersion(ctx, b.writer)
	is.NoErr(err)
	is.Equal(v, SchemaVersion())
	n := 0
	for _, err := range s.ReadStream(ctx, "a-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		n++
	}
	is.Equal(n, 10)
	is.NoErr(s.SetRetention(ctx, "a-1", eventstore.Retention{MaxCount: 4}))
	res, err := s.Prune(ctx, eventstore.PruneOptions{})
	is.NoErr(err)
	is.Equal(res.Events, int64(6))
}

func make10() []eventstore.Event {
	events := make([]eventstore.Event, 10)
	for i := range events {
		events[i] = eventstore.Event{Type: "E"}
	}
	return events
}
