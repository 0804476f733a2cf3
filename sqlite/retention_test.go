package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
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
	top, err := s.Append(ctx, "z-1", eventstore.Any, make10()[:2]...) // the highest positions
	is.NoErr(err)
	is.NoErr(s.SetRetention(ctx, "a-1", eventstore.Retention{MaxCount: 3}))
	is.NoErr(s.SetRetention(ctx, "z-1", eventstore.Retention{TruncateBefore: 2}))
	is.NoErr(s.SetCategoryRetention(ctx, "b", eventstore.Retention{TruncateBefore: 2}))
	is.NoErr(s.Close())

	s = open()
	ps, err := s.Retentions(ctx)
	is.NoErr(err)
	is.Equal(ps, []eventstore.RetentionPolicy{
		{Stream: "a-1", Retention: eventstore.Retention{MaxCount: 3}},
		{Stream: "z-1", Retention: eventstore.Retention{TruncateBefore: 2}},
		{Category: "b", Retention: eventstore.Retention{TruncateBefore: 2}},
	})
	res, err := s.Prune(ctx, eventstore.PruneOptions{})
	is.NoErr(err)
	is.Equal(res.Events, int64(9))
	is.NoErr(s.Close())

	s = open()
	defer s.Close()
	again, err := s.Append(ctx, "z-1", eventstore.Exact(1), eventstore.Event{Type: "E"})
	is.NoErr(err)
	is.Equal(again.Version, int64(2))      // a stream pruned empty keeps its version
	is.True(again.Position > top.Position) // and positions are never reused
	is.NoErr(s.SetRetention(ctx, "z-1", eventstore.Retention{}))
	n := 0
	for _, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		is.NoErr(err)
		n++
	}
	is.Equal(n, 4)
	r, err := s.Verify(ctx) // knows the stream was pruned
	is.NoErr(err)
	if !r.OK() {
		t.Fatalf("verify: %q", r.Problems)
	}
}

// A file of schema version 7, before retention, migrates and keeps its
// events, which can then be pruned. (testdata's files of earlier releases
// migrate through it too: TestMigrate_Releases.)
func TestRetention_MigratesVersion7(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	_, err = db.Exec(schemaPreamble())
	is.NoErr(err)
	for _, m := range migrations()[:7] {
		_, err = db.Exec(m)
		is.NoErr(err)
	}
	for _, q := range []string{
		`INSERT INTO eventstore_schema (id, version) VALUES (1, 7)`,
		`INSERT INTO stream_categories (name) VALUES ('a')`,
		`INSERT INTO streams (id, category, life, state, version, created_at, updated_at) VALUES ('a-1', 1, 0, 0, -1, 1, 1)`,
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9)
		INSERT INTO events (id, stream, life, version, category, type, recorded_at, checksum)
		SELECT randomblob(16), 1, 0, i, 1, 'E', 1, eventstore_checksum('a-1', i, 'E', NULL, NULL) FROM n`,
	} {
		_, err = db.Exec(q)
		is.NoErr(err)
	}
	is.NoErr(db.Close())

	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
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
