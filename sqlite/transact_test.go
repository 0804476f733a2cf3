package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

// transactSetup opens a store and an application table in the same file.
func transactSetup(t *testing.T) (*eventstore.Store, *sqlx.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(b, nil)
	t.Cleanup(func() { store.Close() })
	app, err := sqlx.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	if _, err := app.Exec(`CREATE TABLE orders (id TEXT PRIMARY KEY, total INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return store, app
}

func TestTransact_Commit(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	store, app := transactSetup(t)
	sub, err := store.Subscribe(ctx, eventstore.SubscribeOptions{})
	is.NoErr(err)
	defer sub.Close()

	err = store.Transact(ctx, func(ctx context.Context) error {
		if _, err := sqlite.Tx(ctx).ExecContext(ctx, `INSERT INTO orders VALUES ('o-1', 30)`); err != nil {
			return err
		}
		if _, err := store.Append(ctx, "order-o1", eventstore.NoStream, eventstore.Event{Type: "Placed"}); err != nil {
			return err
		}
		// Not committed yet: nobody outside sees the event.
		select {
		case e := <-sub.Events():
			t.Errorf("delivered before commit: %v", e.Position)
		case <-time.After(30 * time.Millisecond):
		}
		v, err := store.StreamVersion(ctx, "order-o1")
		if err != nil || v != -1 {
			t.Errorf("read inside the transaction saw version %d (%v)", v, err)
		}
		_, err = store.Append(ctx, "order-o1", eventstore.Exact(0), eventstore.Event{Type: "Paid"})
		return err
	})
	is.NoErr(err)
	for want := int64(1); want <= 2; want++ {
		select {
		case e := <-sub.Events():
			is.Equal(e.Position, want)
		case <-time.After(30 * time.Second):
			t.Fatal("the committed events never arrived")
		}
	}
	var total int
	is.NoErr(app.Get(&total, `SELECT total FROM orders WHERE id = 'o-1'`))
	is.Equal(total, 30)
}

func TestTransact_Rollback(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	store, app := transactSetup(t)
	boom := errors.New("payment declined")
	err := store.Transact(ctx, func(ctx context.Context) error {
		if _, err := sqlite.Tx(ctx).ExecContext(ctx, `INSERT INTO orders VALUES ('o-1', 30)`); err != nil {
			return err
		}
		if _, err := store.Append(ctx, "order-o1", eventstore.NoStream, eventstore.Event{Type: "Placed"}); err != nil {
			return err
		}
		return boom
	})
	is.Equal(err, boom)
	ok, err := store.StreamExists(ctx, "order-o1")
	is.NoErr(err)
	is.True(!ok) // no event
	var n int
	is.NoErr(app.Get(&n, `SELECT count(*) FROM orders`))
	is.Equal(n, 0) // and no row
	res, err := store.Append(ctx, "order-o2", eventstore.NoStream, eventstore.Event{Type: "Placed"})
	is.NoErr(err)
	is.Equal(res.Position, int64(1)) // the rolled-back position was not used

	// A panic rolls back too, and goes on up.
	func() {
		defer func() { is.True(recover() != nil) }()
		store.Transact(ctx, func(ctx context.Context) error {
			store.Append(ctx, "order-o3", eventstore.NoStream, eventstore.Event{Type: "Placed"})
			panic("bug")
		})
	}()
	ok, err = store.StreamExists(ctx, "order-o3")
	is.NoErr(err)
	is.True(!ok)
	_, err = store.Append(ctx, "order-o4", eventstore.NoStream, eventstore.Event{Type: "Placed"})
	is.NoErr(err) // the writer is free again
}

// TestTransact_FailedAppendInside: an append that fails inside a
// transaction leaves nothing of itself, and the rest still commits.
func TestTransact_FailedAppendInside(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	store, app := transactSetup(t)
	_, err := store.Append(ctx, "order-o1", eventstore.NoStream, eventstore.Event{Type: "Placed"})
	is.NoErr(err)
	err = store.Transact(ctx, func(ctx context.Context) error {
		_, err := store.Append(ctx, "order-o1", eventstore.NoStream, eventstore.Event{Type: "Dup"}, eventstore.Event{Type: "Dup"})
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Errorf("conflict inside: %v", err)
		}
		if _, err := store.Append(ctx, "order-o2", eventstore.NoStream, eventstore.Event{Type: "Placed"}); err != nil {
			return err
		}
		_, err = sqlite.Tx(ctx).ExecContext(ctx, `INSERT INTO orders VALUES ('o-2', 12)`)
		return err
	})
	is.NoErr(err)
	v, err := store.StreamVersion(ctx, "order-o1")
	is.NoErr(err)
	is.Equal(v, int64(0))
	v, err = store.StreamVersion(ctx, "order-o2")
	is.NoErr(err)
	is.Equal(v, int64(0))
	var total sql.NullInt64
	is.NoErr(app.Get(&total, `SELECT total FROM orders WHERE id = 'o-2'`))
	is.Equal(total.Int64, int64(12))
}
