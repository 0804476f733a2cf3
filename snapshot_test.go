package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/google/uuid"
	"github.com/matryer/is"
)

// restartBeforeSnapshot is a memory backend on which, just before each
// snapshot is written, another writer deletes the stream and starts it
// again with more events than the snapshot's version.
type restartBeforeSnapshot struct{ *memory.Backend }

func (b restartBeforeSnapshot) SaveSnapshot(ctx context.Context, s eventstore.Snapshot, keep int) error {
	if err := b.DeleteStream(ctx, s.StreamID, eventstore.Any); err != nil {
		return err
	}
	events := make([]eventstore.Event, s.Version+2)
	for i := range events {
		events[i] = eventstore.Event{ID: uuid.New(), Type: "Added", Data: []byte(`{"n":1000}`)}
	}
	if _, err := b.Append(ctx, eventstore.AppendRequest{Stream: s.StreamID, Expected: eventstore.NoStream, Events: events, Time: time.Now()}); err != nil {
		return err
	}
	return b.Backend.SaveSnapshot(ctx, s, keep)
}

// TestRepository_SnapshotOfRestartedStream: the state a Repository
// snapshots after its append belongs to the life it appended to. When the
// stream was deleted and started again in between, the snapshot must not
// be written, or the next Load would start from the deleted state.
func TestRepository_SnapshotOfRestartedStream(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	store := eventstore.New(restartBeforeSnapshot{memory.New()}, nil)
	defer store.Close()
	repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{SnapshotEvery: 2})
	_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 2})
	is.NoErr(err) // the events are committed; the snapshot is refused
	is.Equal(repo.Stats().SnapshotErrors, uint64(1))
	_, err = store.LoadSnapshot(ctx, "tally-1")
	is.True(err != nil) // no snapshot of the deleted life
	state, version, err := repo.Load(ctx, "tally-1")
	is.NoErr(err)
	is.Equal(version, int64(2))
	is.Equal(state, tally{Total: 3000, Events: 3}) // the new life only
}

// restartAfterSnapshotLoad is a memory backend on which, just after a
// snapshot is loaded, another writer deletes its stream and, when restart
// is positive, starts it again with that many events of 1000 each.
type restartAfterSnapshotLoad struct {
	*memory.Backend
	restart int
}

func (b restartAfterSnapshotLoad) LoadSnapshot(ctx context.Context, stream string, version int64) (eventstore.Snapshot, error) {
	snap, err := b.Backend.LoadSnapshot(ctx, stream, version)
	if err != nil {
		return snap, err
	}
	if err := b.DeleteStream(ctx, stream, eventstore.Any); err != nil {
		return snap, err
	}
	if b.restart > 0 {
		events := make([]eventstore.Event, b.restart)
		for i := range events {
			events[i] = eventstore.Event{ID: uuid.New(), Type: "Added", Data: []byte(`{"n":1000}`)}
		}
		_, err = b.Append(ctx, eventstore.AppendRequest{Stream: stream, Expected: eventstore.NoStream, Events: events, Time: time.Now()})
	}
	return snap, err
}

// TestRepository_LoadRacesRestart: a snapshot loaded just before its
// stream is deleted (and perhaps started again) must not be the start of
// the state a Repository loads.
func TestRepository_LoadRacesRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		restart int
		want    tally
		version int64
	}{
		{"Deleted", 0, tally{}, -1},
		{"RestartedShorter", 2, tally{Total: 2000, Events: 2}, 1},
		{"RestartedLonger", 6, tally{Total: 6000, Events: 6}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			b := restartAfterSnapshotLoad{Backend: memory.New()}
			store := eventstore.New(b, nil)
			defer store.Close()
			repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{SnapshotEvery: 4})
			_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 4}) // snapshot at version 3
			is.NoErr(err)
			is.Equal(repo.Stats().Snapshots, uint64(1))

			races := eventstore.New(restartAfterSnapshotLoad{Backend: b.Backend, restart: tc.restart}, nil)
			state, version, err := eventstore.NewRepository(races, tallyDecider, addedCodec{}, nil).Load(ctx, "tally-1")
			is.NoErr(err)
			is.Equal(version, tc.version)
			is.Equal(state, tc.want) // the life read, nothing of the deleted one
		})
	}
}
