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

// TestOpen_AppFileKeepsItsOwn opens the store in a file that belongs to an
// application, with tables and a PRAGMA user_version of its own: the
// application's tables and user_version stay as they were, through a
// reopen too.
func TestOpen_AppFileKeepsItsOwn(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	defer app.Close()
	_, err = app.Exec(`CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)`)
	is.NoErr(err)
	_, err = app.Exec(`INSERT INTO accounts VALUES ('acc-1', 100)`)
	is.NoErr(err)
	_, err = app.Exec(`PRAGMA user_version = 7`)
	is.NoErr(err)

	for range 2 { // the first Open migrates, the second finds it done
		b, err := Open(path, nil)
		is.NoErr(err)
		s := eventstore.New(b, nil)
		_, err = s.Append(ctx, "acc-1", eventstore.Any, eventstore.Event{Type: "Opened"})
		is.NoErr(err)
		is.NoErr(s.Close())
	}
	var uv, balance int
	is.NoErr(app.Get(&uv, `PRAGMA user_version`))
	is.Equal(uv, 7) // the application's, untouched
	is.NoErr(app.Get(&balance, `SELECT balance FROM accounts WHERE id = 'acc-1'`))
	is.Equal(balance, 100)

	b, err := Open(path, &Options{ReadOnly: true})
	is.NoErr(err)
	defer b.Close()
	st, err := b.FileStats(ctx)
	is.NoErr(err)
	is.Equal(st.SchemaVersion, SchemaVersion()) // the store's own, not the app's 7
	is.Equal(st.Events, int64(2))
}

// legacyFile writes a store file as the releases before the
// eventstore_schema table did: migrations 1 to version, the version in
// PRAGMA user_version, and one event.
func legacyFile(t *testing.T, version int) string {
	t.Helper()
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	defer old.Close()
	for _, m := range migrations()[:version] {
		_, err = old.Exec(m)
		is.NoErr(err)
	}
	_, err = old.Exec(`PRAGMA user_version = ` + string(rune('0'+version)))
	is.NoErr(err)
	_, err = old.Exec(`INSERT INTO events (id, stream_id, life, version, category, type, data, recorded_at)
		VALUES (randomblob(16), 'old-1', 0, 0, 'old', 'Kept', '{}', 0)`)
	is.NoErr(err)
	_, err = old.Exec(`INSERT INTO streams VALUES ('old-1', 'old', 0, 0, 0, 0)`)
	is.NoErr(err)
	return path
}

// TestOpen_MigratesLegacyVersion opens files of the releases that kept the
// schema version in PRAGMA user_version: the version is taken from there,
// the later migrations apply, every record stays, and user_version is left
// as it was.
func TestOpen_MigratesLegacyVersion(t *testing.T) {
	t.Parallel()
	for _, version := range []int{1, 2, 3, 4} {
		t.Run(string(rune('0'+version)), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			path := legacyFile(t, version)
			b, err := Open(path, nil)
			is.NoErr(err)
			s := eventstore.New(b, nil)
			defer s.Close()
			v, err := readSchemaVersion(ctx, b.writer)
			is.NoErr(err)
			is.Equal(v, SchemaVersion())
			var uv int
			is.NoErr(b.writer.Get(&uv, `PRAGMA user_version`))
			is.Equal(uv, version) // not the store's any more: left alone
			n := 0
			for e, err := range s.ReadStream(ctx, "old-1", eventstore.ReadOptions{}) {
				is.NoErr(err)
				is.Equal(e.Type, "Kept")
				n++
			}
			is.Equal(n, 1)
			_, err = s.Append(ctx, "old-1", eventstore.Exact(0), eventstore.Event{Type: "New"})
			is.NoErr(err)
			for _, table := range []string{"checkpoints", "snapshots", "idempotency_keys"} {
				var n int
				is.NoErr(b.writer.Get(&n, `SELECT count(*) FROM `+table)) // the later migrations applied
			}
		})
	}
}

// TestOpen_LegacyVersionOverwritten opens a file of an earlier release
// whose user_version the application later set to a value of its own:
// the store's version is found from its tables instead.
func TestOpen_LegacyVersionOverwritten(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := legacyFile(t, 3)
	app, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	defer app.Close()
	_, err = app.Exec(`PRAGMA user_version = 42`)
	is.NoErr(err)

	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	v, err := readSchemaVersion(ctx, b.writer)
	is.NoErr(err)
	is.Equal(v, SchemaVersion())
	var uv int
	is.NoErr(app.Get(&uv, `PRAGMA user_version`))
	is.Equal(uv, 42)
	_, err = s.Append(ctx, "old-1", eventstore.Exact(0), eventstore.Event{Type: "New"})
	is.NoErr(err)
}

// TestOpen_ForeignTableNamed refuses a file whose application has a table
// of a name the store needs, and says which.
func TestOpen_ForeignTableNamed(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "app.db")
	app, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	defer app.Close()
	_, err = app.Exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)`)
	is.NoErr(err)
	_, err = Open(path, nil)
	is.True(err != nil)
	is.True(!errors.Is(err, ErrSchemaTooNew))
	t.Log(err)
	var n int
	is.NoErr(app.Get(&n, `SELECT count(*) FROM sqlite_schema WHERE name = 'streams'`))
	is.Equal(n, 0) // the failed migration left nothing
}
