package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

// sendTo is a sink that hands each accepted event's position to a channel.
type sendTo chan int64

func (s sendTo) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	for _, e := range events {
		s <- e.Position
	}
	return len(events), nil
}

// TestOpen_MigratesForwarderCheckpoint: a file written by the release
// before claims (schema version 4), with a forwarder's checkpoint, opens;
// the forwarder resumes after its checkpoint, under a claim.
func TestOpen_MigratesForwarderCheckpoint(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "v4.db")
	old, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	for _, m := range migrations()[:4] {
		_, err = old.Exec(m)
		is.NoErr(err)
	}
	_, err = old.Exec(`PRAGMA user_version = 4`)
	is.NoErr(err)
	for v := range 8 {
		_, err = old.Exec(`INSERT INTO events (id, stream_id, life, version, category, type, data, recorded_at)
			VALUES (randomblob(16), 'dev-1', 0, ?, 'dev', 'Reading', '{}', 0)`, v)
		is.NoErr(err)
	}
	_, err = old.Exec(`INSERT INTO streams VALUES ('dev-1', 'dev', 0, 7, 0, 0)`)
	is.NoErr(err)
	_, err = old.Exec(`INSERT INTO checkpoints VALUES ('outbox/central', 5, 0)`)
	is.NoErr(err)
	is.NoErr(old.Close())

	b, err := Open(path, nil)
	is.NoErr(err)
	store := eventstore.New(b, nil)
	defer store.Close()
	sink := sendTo(make(chan int64, 10))
	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink})
	is.NoErr(err)
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	next := func() int64 {
		select {
		case p := <-sink:
			return p
		case err := <-done:
			t.Fatalf("the forwarder stopped: %v", err)
			return 0
		}
	}
	for _, want := range []int64{6, 7, 8} {
		is.Equal(next(), want) // from the checkpoint the old release stored
	}
	_, err = store.Append(ctx, "dev-1", eventstore.Any, eventstore.Event{Type: "Reading"})
	is.NoErr(err)
	is.Equal(next(), int64(9)) // the barrier: nothing came in between
	cancel()
	<-done
}
