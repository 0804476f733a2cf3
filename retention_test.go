package eventstore_test

import (
	"context"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// A Repository loads a pruned aggregate from the snapshot Prune keeps, at
// the last version it removed, and carries on from there.
func TestRepository_LoadsPrunedFromSnapshot(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{SnapshotEvery: 5})
		for range 7 {
			_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
			is.NoErr(err)
		}
		// Snapshots at versions 4 (its own, every 5 events) and 5 (this one).
		is.NoErr(store.SaveSnapshot(ctx, "tally-1", 5, []byte(`{"total":6,"events":6}`), nil))
		is.NoErr(store.SetRetention(ctx, "tally-1", eventstore.Retention{TruncateBefore: 6}))
		res, err := store.Prune(ctx, eventstore.PruneOptions{})
		is.NoErr(err)
		is.Equal(res.Events, int64(6))
		is.Equal(res.Snapshots, int64(1)) // at 4; the one at 5 stays

		s, v, err := repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 7, Events: 7})
		is.Equal(v, int64(6))
		r, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
		is.NoErr(err)
		is.Equal(r.State, tally{Total: 8, Events: 8})
		is.Equal(repo.Stats().SnapshotsIgnored, uint64(0))
	})
}
