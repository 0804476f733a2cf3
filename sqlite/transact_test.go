package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

// transactSetup opens a store and an application table in the same file.
func transactSetup(t *testing.T, opts *sqlite.Options) (*eventstore.Store, *sqlx.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := sqlite.Open(path, opts)
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
	store, app := transactSetup(t, nil)
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
		// Not committed yet: nobody outside sees the event, and a
		// subscription delivers only what storage shows.
		v, err := store.StreamVersion(ctx, "order-o1")
		if err != nil || v != -1 {
			t.Errorf("read inside the transaction saw version %d (%v)", v, err)
		}
		for e, err := range store.ReadAll(context.Background(), eventstore.ReadOptions{}, eventstore.Filter{}) {
			t.Errorf("read outside the transaction saw position %d (%v)", e.Position, err)
		}
		select {
		case e := <-sub.Events():
			t.Errorf("delivered before commit: %v", e.Position)
		default:
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
	store, app := transactSetup(t, nil)
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
	store, app := transactSetup(t, nil)
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

// hangAfter bounds the waits of these tests. It detects a hang; it is not
// a speed requirement.
const hangAfter = 30 * time.Second

// TestTransact_WriteWithAnotherContext: a write inside a Transact function
// made with a context other than fn's cannot join the transaction, and
// would wait for the writer the transaction holds forever. It fails
// instead: with its context's error when that has a deadline, and with
// ErrWriterTimeout after the busy timeout otherwise. Nothing of it is
// written, the transaction can go on, and the store works afterwards.
func TestTransact_WriteWithAnotherContext(t *testing.T) {
	t.Parallel()
	appendTo := func(stream string) func(*eventstore.Store, context.Context) error {
		return func(store *eventstore.Store, ctx context.Context) error {
			_, err := store.Append(ctx, stream, eventstore.NoStream, eventstore.Event{Type: "E"})
			return err
		}
	}
	deadline := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 20*time.Millisecond)
	}
	background := func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }
	for name, c := range map[string]struct {
		ctx   func() (context.Context, context.CancelFunc)
		write func(*eventstore.Store, context.Context) error
		want  error
	}{
		"AppendBackground": {background, appendTo("wrong-1"), sqlite.ErrWriterTimeout},
		"AppendDeadline":   {deadline, appendTo("wrong-1"), context.DeadlineExceeded},
		"TransactBackground": {background, func(store *eventstore.Store, ctx context.Context) error {
			return store.Transact(ctx, func(ctx context.Context) error { return appendTo("wrong-1")(store, ctx) })
		}, sqlite.ErrWriterTimeout},
		"DeleteDeadline": {deadline, func(store *eventstore.Store, ctx context.Context) error {
			return store.DeleteStream(ctx, "before-1", eventstore.Any)
		}, context.DeadlineExceeded},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			store, _ := transactSetup(t, &sqlite.Options{BusyTimeout: 20 * time.Millisecond})
			_, err := store.Append(ctx, "before-1", eventstore.NoStream, eventstore.Event{Type: "E"})
			is.NoErr(err)
			done := make(chan error, 1)
			go func() {
				done <- store.Transact(ctx, func(txCtx context.Context) error {
					other, cancel := c.ctx()
					defer cancel()
					if err := c.write(store, other); !errors.Is(err, c.want) {
						return fmt.Errorf("write with another context: %w", err)
					}
					return appendTo("right-1")(store, txCtx)
				})
			}()
			select {
			case err := <-done:
				is.NoErr(err)
			case <-time.After(hangAfter):
				t.Fatal("the transaction waits for itself")
			}
			for stream, want := range map[string]bool{"before-1": true, "wrong-1": false, "right-1": true} {
				ok, err := store.StreamExists(ctx, stream)
				is.NoErr(err)
				is.Equal(ok, want)
			}
			res, err := store.Append(ctx, "after-1", eventstore.NoStream, eventstore.Event{Type: "E"})
			is.NoErr(err)
			is.Equal(res.Position, int64(3))
		})
	}
}

// TestTransact_ContextEndsInside: a transaction whose context ends while
// fn runs is rolled back, even when fn returns nil.
func TestTransact_ContextEndsInside(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	store, _ := transactSetup(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	err := store.Transact(ctx, func(ctx context.Context) error {
		if _, err := store.Append(ctx, "order-o1", eventstore.NoStream, eventstore.Event{Type: "Placed"}); err != nil {
			return err
		}
		cancel()
		return nil
	})
	is.True(errors.Is(err, context.Canceled))
	ok, err := store.StreamExists(context.Background(), "order-o1")
	is.NoErr(err)
	is.True(!ok)
}

// TestTransact_NestedRollbackGivesPositionBack: on SQLite the position an
// append took in a nested Transact that failed is taken again by the next
// append (the conformance suite checks only that nobody skips it).
func TestTransact_NestedRollbackGivesPositionBack(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	store, _ := transactSetup(t, nil)
	_, err := store.Append(ctx, "a-1", eventstore.NoStream, eventstore.Event{Type: "E"})
	is.NoErr(err)
	boom := errors.New("inner failure")
	err = store.Transact(ctx, func(ctx context.Context) error {
		err := store.Transact(ctx, func(ctx context.Context) error {
			if _, err := store.Append(ctx, "a-2", eventstore.NoStream, eventstore.Event{Type: "E"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			return fmt.Errorf("inner transaction: %w", err)
		}
		return nil
	})
	is.NoErr(err)
	res, err := store.Append(ctx, "a-2", eventstore.NoStream, eventstore.Event{Type: "E"})
	is.NoErr(err)
	is.Equal(res.Position, int64(2)) // the position is taken again
}
