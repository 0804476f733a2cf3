package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

// damagedStore writes a small healthy store (which must verify), changes
// its file with the damage statements, and returns it opened again.
//
// The store holds a-1 (versions 0-2, a snapshot at 1), b-1 (deleted
// after 2 events, then 1 event in its second life), c-1 (1 event, then
// deleted) and a consumer checkpoint at position 4 of the 7.
func damagedStore(t *testing.T, damage ...string) *eventstore.Store {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	e := eventstore.Event{Type: "E"}
	for _, step := range []func() error{
		func() error { _, err := s.Append(ctx, "a-1", eventstore.NoStream, e, e, e); return err },
		func() error { _, err := s.Append(ctx, "b-1", eventstore.NoStream, e, e); return err },
		func() error { return s.DeleteStream(ctx, "b-1", eventstore.Any) },
		func() error { _, err := s.Append(ctx, "b-1", eventstore.NoStream, e); return err },
		func() error { _, err := s.Append(ctx, "c-1", eventstore.NoStream, e); return err },
		func() error { return s.DeleteStream(ctx, "c-1", eventstore.Any) },
		func() error { return s.SaveSnapshot(ctx, "a-1", 1, []byte(`{}`), nil) },
		func() error { return b.SaveCheckpoint(ctx, "c", 4, time.Now()) },
	} {
		is.NoErr(step())
	}
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.Equal(r.Problems, nil) // healthy before the damage
	is.True(r.OK())
	is.NoErr(s.Close())

	db, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	for _, q := range damage {
		_, err := db.Exec(q)
		is.NoErr(err) // damage
	}
	is.NoErr(db.Close())
	b, err = Open(path, nil)
	is.NoErr(err)
	s = eventstore.New(b, nil)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestVerify_Damage damages a store file the way a bug, a hand edit or a
// tool could, and checks that Verify reports it.
func TestVerify_Damage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage []string
		want   string // in a problem
	}{
		{"EventLifeAhead", []string{`UPDATE events SET life = 5 WHERE stream = (SELECT sk FROM streams WHERE id = 'a-1') AND version = 2`}, "a-1@2 at position 3: life 5"},
		{"EventInDeletedLife", []string{`UPDATE events SET life = 1 WHERE stream = (SELECT sk FROM streams WHERE id = 'c-1')`}, "c-1@0 at position 7: life 1"},
		{"EventCategory", []string{`INSERT INTO stream_categories (name) VALUES ('x')`, `UPDATE events SET category = (SELECT ck FROM stream_categories WHERE name = 'x') WHERE stream = (SELECT sk FROM streams WHERE id = 'a-1') AND version = 1`}, `a-1@1 at position 2: category "x"`},
		{"StreamCategory", []string{`INSERT INTO stream_categories (name) VALUES ('x')`, `UPDATE streams SET category = (SELECT ck FROM stream_categories WHERE name = 'x') WHERE id = 'a-1'`}, `a-1: stream record of category "x"`},
		{"MissingStreamRecord", []string{`DELETE FROM streams WHERE id = 'a-1'`}, "stream key 1: 3 events from position 1 on, but no stream record"},
		{"VersionGap", []string{`UPDATE events SET version = 5 WHERE stream = (SELECT sk FROM streams WHERE id = 'a-1') AND version = 2`}, "a-1: version 5 at position 3"},
		{"StreamVersion", []string{`UPDATE streams SET version = 7 WHERE id = 'a-1'`}, "a-1: at version 7"},
		{"SnapshotOfNoStream", []string{`INSERT INTO snapshots (stream_id, life, version, position, created_at) VALUES ('ghost-1', 0, 0, 1, 0)`}, "ghost-1: snapshot at version 0, but the stream does not exist"},
		{"SnapshotOfDeletedStream", []string{`INSERT INTO snapshots (stream_id, life, version, position, created_at) VALUES ('c-1', 1, 0, 7, 0)`}, "c-1: snapshot at version 0, but the stream is deleted"},
		{"SnapshotOfEarlierLife", []string{`INSERT INTO snapshots (stream_id, life, version, position, created_at) VALUES ('b-1', 0, 0, 4, 0)`}, "b-1: snapshot at version 0 of life 0, but the stream is in life 1"},
		{"SnapshotAhead", []string{`UPDATE snapshots SET version = 9 WHERE stream_id = 'a-1'`}, "a-1: snapshot at version 9, but the stream is at 2"},
		{"SnapshotPosition", []string{`UPDATE snapshots SET position = 3 WHERE stream_id = 'a-1'`}, "a-1: snapshot at version 1 records position 3, but a-1@1 is at position 2"},
		{"SnapshotOfMissingEvent", []string{`DELETE FROM events WHERE stream = (SELECT sk FROM streams WHERE id = 'a-1') AND version = 1`}, "a-1: snapshot at version 1, but the log has no event at that version"},
		{"Checksum", []string{`UPDATE events SET type = 'F' WHERE stream = (SELECT sk FROM streams WHERE id = 'b-1') AND version = 0 AND life = 1`}, "b-1@0 at position 6: checksum mismatch"},
		{"CheckpointPastEnd", []string{`UPDATE checkpoints SET position = 99 WHERE consumer = 'c'`}, "c: checkpoint at position 99, past the end of the log at 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			s := damagedStore(t, tc.damage...)
			r, err := s.Verify(context.Background())
			is.NoErr(err)
			is.True(!r.OK())
			found := false
			for _, p := range r.Problems {
				found = found || strings.Contains(p, tc.want)
			}
			if !found {
				t.Errorf("no problem says %q; problems:\n%s", tc.want, strings.Join(r.Problems, "\n"))
			}
		})
	}
}

// TestVerify_CorruptFile overwrites pages in the middle of a store file,
// as a failing SD card might: Verify must not say OK, whether SQLite's
// check finds the damage or fails on it.
func TestVerify_CorruptFile(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	for i := range 50 {
		events := make([]eventstore.Event, 100)
		for j := range events {
			events[j] = eventstore.Event{Type: "E", Data: []byte(`{"padding":"` + strings.Repeat("x", 100) + `"}`)}
		}
		_, err := s.Append(ctx, "s-"+string(rune('a'+i%26)), eventstore.Any, events...)
		is.NoErr(err)
	}
	is.NoErr(s.Close()) // checkpoints the WAL into the file
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	is.NoErr(err)
	info, err := f.Stat()
	is.NoErr(err)
	garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", 1024))
	for off := int64(8 * 4096); off+4096 < info.Size(); off += 16 * 4096 {
		_, err := f.WriteAt(garbage, off)
		is.NoErr(err)
	}
	is.NoErr(f.Close())

	b, err = Open(path, nil)
	is.NoErr(err)
	s = eventstore.New(b, nil)
	defer s.Close()
	r, err := s.Verify(ctx)
	t.Logf("err: %v; integrity: %.200s; problems: %d", err, r.Integrity, len(r.Problems))
	is.True(!r.OK())
	is.True(len(r.Problems) > 0)
}
