package sqlite_test

import (
	"context"
	"errors"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/eventstoretest"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

func TestConformance_Memory(t *testing.T) {
	eventstoretest.RunWith(t, func(t *testing.T) eventstore.Backend { return openMemory(t) }, &eventstoretest.Options{
		// Its file watched by a second Backend, as the suite checks of
		// every ChangeWatcher; no other process could find it.
		NewPair: func(t *testing.T) (eventstore.Backend, eventstore.Backend) {
			first := openMemory(t)
			second, err := sqlite.Open(sqlite.PathOf(first), nil)
			if err != nil {
				t.Fatal(err)
			}
			return first, second
		},
	})
}

// readSetups are the two ways to open a store whose file the application
// shares: a file of its own, and OpenMemory.
var readSetups = map[string]func(t *testing.T) *sqlite.Backend{
	"File":   func(t *testing.T) *sqlite.Backend { return open(t, nil) },
	"Memory": func(t *testing.T) *sqlite.Backend { return openMemory(t) },
}

func openMemory(t *testing.T) *sqlite.Backend {
	t.Helper()
	b, err := sqlite.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withTable returns a store on b with an application table, created
// through the store's own transaction: no second connection.
func withTable(t *testing.T, b *sqlite.Backend) *eventstore.Store {
	t.Helper()
	store := eventstore.New(b, nil)
	t.Cleanup(func() { store.Close() })
	err := store.Transact(t.Context(), func(ctx context.Context) error {
		_, err := sqlite.Tx(ctx).ExecContext(ctx, `CREATE TABLE counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
			INSERT INTO counts VALUES ('a', 1), ('b', 1)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func TestBackend_Read(t *testing.T) {
	for name, newBackend := range readSetups {
		t.Run(name+"/NeverWaitsForTheWriter", func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			b := newBackend(t)
			store := withTable(t, b)
			holding, release := make(chan struct{}), make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- store.Transact(t.Context(), func(ctx context.Context) error {
					if _, err := sqlite.Tx(ctx).ExecContext(ctx, `UPDATE counts SET n = 99`); err != nil {
						return err
					}
					close(holding)
					<-release // hold the writer until the read is done
					return nil
				})
			}()
			<-holding
			var sum int
			err := b.Read(t.Context(), func(tx *sqlx.Tx) error {
				return tx.GetContext(t.Context(), &sum, `SELECT sum(n) FROM counts`)
			})
			close(release)
			is.NoErr(err)
			is.Equal(sum, 2) // the committed state, read while the writer was held
			is.NoErr(<-done)
		})

		t.Run(name+"/ConsistentSnapshot", func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			b := newBackend(t)
			store := withTable(t, b)
			ctx := t.Context()
			var first, second, events int
			err := b.Read(ctx, func(tx *sqlx.Tx) error {
				if err := tx.GetContext(ctx, &first, `SELECT n FROM counts WHERE name = 'a'`); err != nil {
					return err
				}
				// A commit between two statements of the read: the
				// application's row and an event, together.
				err := store.Transact(ctx, func(ctx context.Context) error {
					if _, err := sqlite.Tx(ctx).ExecContext(ctx, `UPDATE counts SET n = n + 1`); err != nil {
						return err
					}
					_, err := store.Append(ctx, "count-a", eventstore.Any, eventstore.Event{Type: "Counted"})
					return err
				})
				if err != nil {
					return err
				}
				if err := tx.GetContext(ctx, &second, `SELECT n FROM counts WHERE name = 'b'`); err != nil {
					return err
				}
				return tx.GetContext(ctx, &events, `SELECT count(*) FROM events`)
			})
			is.NoErr(err)
			is.Equal(first, 1)
			is.Equal(second, 1) // not 2: the snapshot of the first statement
			is.Equal(events, 0)
			err = b.Read(ctx, func(tx *sqlx.Tx) error {
				return tx.GetContext(ctx, &second, `SELECT n FROM counts WHERE name = 'b'`)
			})
			is.NoErr(err)
			is.Equal(second, 2) // a new Read sees the commit
		})

		t.Run(name+"/RefusesWrites", func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			b := newBackend(t)
			withTable(t, b)
			err := b.Read(t.Context(), func(tx *sqlx.Tx) error {
				_, err := tx.ExecContext(t.Context(), `UPDATE counts SET n = 0`)
				return err
			})
			is.True(err != nil) // a read-only transaction
			var n int
			is.NoErr(b.Read(t.Context(), func(tx *sqlx.Tx) error {
				return tx.GetContext(t.Context(), &n, `SELECT sum(n) FROM counts`)
			}))
			is.Equal(n, 2) // nothing written
		})

		t.Run(name+"/ReturnsFnError", func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			b := newBackend(t)
			withTable(t, b)
			boom := errors.New("boom")
			is.Equal(b.Read(t.Context(), func(*sqlx.Tx) error { return boom }), boom)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			is.True(errors.Is(b.Read(ctx, func(*sqlx.Tx) error { return nil }), context.Canceled))
		})
	}
}

func TestOpenMemory(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	one, two := openMemory(t), openMemory(t)
	s1, s2 := eventstore.New(one, nil), eventstore.New(two, nil)
	_, err := s1.Append(t.Context(), "a-1", eventstore.NoStream, eventstore.Event{Type: "E"})
	is.NoErr(err)
	v, err := s2.StreamVersion(t.Context(), "a-1")
	is.NoErr(err)
	is.Equal(v, int64(-1)) // each OpenMemory is a store of its own
	is.NoErr(s2.Close())

	_, err = sqlite.OpenMemory(&sqlite.Options{ReadOnly: true})
	is.True(errors.Is(err, eventstore.ErrInvalidArgument))
	_, err = sqlite.OpenMemory(nil, nil)
	is.True(errors.Is(err, eventstore.ErrInvalidArgument))
	b, err := sqlite.OpenMemory(nil) // nil: the defaults
	is.NoErr(err)
	is.NoErr(b.Close())

	is.NoErr(s1.Close())
}
