package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

// TestOpen_MigratesSnapshotsToTheirLife opens a file of schema version 4,
// whose snapshots record no life, with a snapshot of a stream in its second
// life: the snapshot must stay loadable, as part of that life.
func TestOpen_MigratesSnapshotsToTheirLife(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v4.db")
	old, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	for _, m := range migrations()[:4] {
		_, err = old.Exec(m)
		is.NoErr(err)
	}
	for _, q := range []string{
		`PRAGMA user_version = 4`,
		`INSERT INTO events (id, stream_id, life, version, category, type, recorded_at) VALUES
			(randomblob(16), 'acc-1', 0, 0, 'acc', 'Old', 0),
			(randomblob(16), 'acc-1', 1, 0, 'acc', 'New', 0),
			(randomblob(16), 'acc-1', 1, 1, 'acc', 'New', 0)`,
		`INSERT INTO streams VALUES ('acc-1', 'acc', 1, 1, 0, 0)`,
		`INSERT INTO snapshots (stream_id, version, data, created_at) VALUES ('acc-1', 1, '{"n":2}', 0)`,
	} {
		_, err = old.Exec(q)
		is.NoErr(err)
	}
	is.NoErr(old.Close())

	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	var life int64
	is.NoErr(b.writer.Get(&life, `SELECT life FROM snapshots WHERE stream_id = 'acc-1'`))
	is.Equal(life, int64(1)) // the stream's current life
	snap, err := s.LoadSnapshot(ctx, "acc-1")
	is.NoErr(err)
	is.Equal(snap.Version, int64(1))
	is.Equal(snap.Position, int64(3)) // acc-1@1 of life 1
	is.Equal(string(snap.Data), `{"n":2}`)
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.Equal(r.Problems, nil)
	is.True(r.OK())
}

// TestSnapshot_InTransact saves a snapshot of events appended in the same
// transaction: the save sees them, and commits or rolls back with them.
func TestSnapshot_InTransact(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, err := Open(filepath.Join(t.TempDir(), "events.db"), nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	e := eventstore.Event{Type: "E"}
	is.NoErr(s.Transact(ctx, func(ctx context.Context) error {
		if _, err := s.Append(ctx, "a-1", eventstore.NoStream, e, e, e); err != nil {
			return err
		}
		return s.SaveSnapshot(ctx, "a-1", 2, []byte(`{"n":3}`), nil)
	}))
	snap, err := s.LoadSnapshot(ctx, "a-1")
	is.NoErr(err)
	is.Equal(snap.Version, int64(2))

	rollback := errors.New("roll back")
	err = s.Transact(ctx, func(ctx context.Context) error {
		if _, err := s.Append(ctx, "b-1", eventstore.NoStream, e); err != nil {
			return err
		}
		if err := s.SaveSnapshot(ctx, "b-1", 0, nil, nil); err != nil {
			return err
		}
		return rollback
	})
	is.True(errors.Is(err, rollback))
	_, err = s.LoadSnapshot(ctx, "b-1")
	is.True(errors.Is(err, eventstore.ErrSnapshotNotFound)) // gone with its stream
}
