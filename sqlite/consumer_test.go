package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

// TestConsume_ExactlyOnce runs a projection whose writes go through the
// consumer's transaction: a failed attempt leaves no trace, and the
// projection always agrees with the checkpoint.
func TestConsume_ExactlyOnce(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := sqlite.Open(path, nil)
	is.NoErr(err)
	store := eventstore.New(b, nil)
	defer store.Close()
	is.True(sqlite.Tx(ctx) == nil) // no transaction outside a handler

	// The application's own table, in the same file.
	app, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	defer app.Close()
	_, err = app.Exec(`CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)`)
	is.NoErr(err)

	for range 3 {
		_, err = store.Append(ctx, "meter-1", eventstore.Any, eventstore.Event{Type: "Ticked"})
		is.NoErr(err)
	}
	failed := false
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- store.Consume(cctx, eventstore.ConsumerOptions{
			Name:       "counter",
			MinBackoff: time.Millisecond,
			TxHandler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				tx := sqlite.Tx(ctx)
				if tx == nil {
					return errors.New("no transaction")
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO counts VALUES (?, 1)
					ON CONFLICT (stream) DO UPDATE SET n = n + 1`, e.StreamID); err != nil {
					return err
				}
				if e.Position == 2 && !failed {
					failed = true
					return errors.New("fails after writing") // the write must roll back
				}
				return nil
			},
		})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		infos, err := store.Consumers(ctx)
		is.NoErr(err)
		if len(infos) == 1 && infos[0].Position == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint never reached 3: %v", infos)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	is.True(errors.Is(<-done, context.Canceled))
	is.True(failed)
	var n int
	is.NoErr(app.Get(&n, `SELECT n FROM counts WHERE stream = 'meter-1'`))
	is.Equal(n, 3) // once per event, though event 2 was tried twice
}
