package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
)

// A tally: commands add to it, each unit an event.
type tally struct {
	Total  int `json:"total"`
	Events int `json:"events"`
}

type add struct{ N, Units int } // N per event, Units events

type added struct {
	N int `json:"n"`
}

var errNegative = errors.New("tally: cannot add a negative amount")

var tallyDecider = eventstore.Decider[tally, add, added]{
	Decide: func(s tally, c add) ([]added, error) {
		if c.N < 0 {
			return nil, errNegative
		}
		out := make([]added, c.Units)
		for i := range out {
			out[i] = added{N: c.N}
		}
		return out, nil
	},
	Evolve: func(s tally, e added) tally { return tally{Total: s.Total + e.N, Events: s.Events + 1} },
}

type addedCodec struct{}

func (addedCodec) Encode(e added) (eventstore.Event, error) {
	data, err := json.Marshal(e)
	return eventstore.Event{Type: "Added", Data: data}, err
}

func (addedCodec) Decode(e eventstore.RecordedEvent) (added, error) {
	var a added
	return a, json.Unmarshal(e.Data, &a)
}

// backends runs f against a store on each backend.
func backends(t *testing.T, f func(t *testing.T, store *eventstore.Store)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		s := eventstore.New(memory.New(), nil)
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		b, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		s := eventstore.New(b, nil)
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
}

func TestRepository_ExecuteAndLoad(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, nil)

		s, v, err := repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{})
		is.Equal(v, int64(-1)) // a new aggregate

		res, err := repo.Execute(ctx, "tally-1", add{N: 5, Units: 2})
		is.NoErr(err)
		is.Equal(res.State, tally{Total: 10, Events: 2})
		is.Equal(res.Version, int64(1))
		is.Equal(res.Events, []added{{5}, {5}})
		res, err = repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
		is.NoErr(err)
		is.Equal(res.Version, int64(2))

		s, v, err = repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 11, Events: 3})
		is.Equal(v, int64(2))
	})
}

func TestRepository_DomainErrorWritesNothing(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, nil)
		_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
		is.NoErr(err)
		_, err = repo.Execute(ctx, "tally-1", add{N: -1, Units: 3})
		is.True(errors.Is(err, errNegative))            // the domain's own error
		is.True(errors.Is(err, eventstore.ErrRejected)) // and a refusal, whatever the domain
		is.Equal(err.Error(), errNegative.Error())      // its message, to show to the user
		v, err := store.StreamVersion(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(v, int64(0))
		is.Equal(repo.Stats().DomainErrors, uint64(1))
	})
}

func TestRepository_NoEventsWritesNothing(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{SnapshotEvery: 1})
		res, err := repo.Execute(ctx, "tally-1", add{N: 3, Units: 0}) // on a new aggregate
		is.NoErr(err)
		is.Equal(res.Version, int64(-1))
		is.Equal(len(res.Events), 0)
		exists, err := store.StreamExists(ctx, "tally-1")
		is.NoErr(err)
		is.True(!exists)
		_, err = repo.Execute(ctx, "tally-1", add{N: 3, Units: 1})
		is.NoErr(err)
		res, err = repo.Execute(ctx, "tally-1", add{N: 3, Units: 0}) // and on an existing one
		is.NoErr(err)
		is.Equal(res.Version, int64(0))
		is.Equal(res.State, tally{Total: 3, Events: 1})
		is.Equal(repo.Stats().Commands, uint64(3))
	})
}

// TestRepository_ConflictRetry runs two commands on one aggregate at once,
// both deciding on the same loaded version: one append conflicts, and the
// repository reloads and decides again, so neither command is lost.
func TestRepository_ConflictRetry(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		var once sync.Once
		both := make(chan struct{})
		var arrived sync.WaitGroup
		arrived.Add(2)
		d := tallyDecider
		d.Decide = func(s tally, c add) ([]added, error) {
			// The first decision of each command waits for the other's, so
			// both decide on the same state.
			if s.Events == 0 {
				arrived.Done()
				once.Do(func() { go func() { arrived.Wait(); close(both) }() })
				<-both
			}
			return tallyDecider.Decide(s, c)
		}
		repo := eventstore.NewRepository(store, d, addedCodec{}, nil)
		var wg sync.WaitGroup
		for _, n := range []int{1, 10} {
			wg.Go(func() {
				if _, err := repo.Execute(ctx, "tally-1", add{N: n, Units: 1}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		s, v, err := repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 11, Events: 2}) // no lost update
		is.Equal(v, int64(1))
		is.Equal(repo.Stats().ConflictsRetried, uint64(1))
	})
}

func TestRepository_ConflictRetriesRunOut(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	d := tallyDecider
	d.Decide = func(s tally, c add) ([]added, error) {
		// Someone else always writes between this load and the append.
		if _, err := store.Append(ctx, "tally-1", eventstore.Any, eventstore.Event{Type: "Added", Data: []byte(`{"n":0}`)}); err != nil {
			return nil, err
		}
		return tallyDecider.Decide(s, c)
	}
	repo := eventstore.NewRepository(store, d, addedCodec{}, &eventstore.RepositoryOptions[tally]{MaxRetries: 2})
	_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
	is.True(errors.Is(err, eventstore.ErrWrongExpectedVersion))
	is.Equal(repo.Stats().ConflictsRetried, uint64(2))
}

// TestRepository_SnapshotPolicy checks that snapshots are taken when an
// Execute crosses a multiple of SnapshotEvery, not only when it lands on
// one, and hold the state at their version.
func TestRepository_SnapshotPolicy(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{SnapshotEvery: 3})
		for range 5 {
			_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 2}) // 2, 4, 6, 8, 10 events
			is.NoErr(err)
		}
		snaps, err := store.ListSnapshots(ctx, "tally-1")
		is.NoErr(err)
		var versions []int64
		for _, s := range snaps {
			versions = append(versions, s.Version)
			var st tally
			is.NoErr(json.Unmarshal(s.Data, &st))
			is.Equal(st.Events, int(s.Version+1)) // the state as of that version
		}
		// 2->4 crosses 3 (v3), 4->6 reaches 6 (v5), 8->10 crosses 9 (v9).
		is.Equal(versions, []int64{3, 5, 9})
		is.Equal(repo.Stats().Snapshots, uint64(3))
		info, err := repo.Info(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(info, eventstore.AggregateInfo{Version: 9, Events: 10, HasSnapshot: true, SnapshotVersion: 9})
	})
}

// TestRepository_SnapshotPlusTailEqualsReplay loads aggregates from a
// snapshot plus later events and from a full replay of every event, and
// compares.
func TestRepository_SnapshotPlusTailEqualsReplay(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{SnapshotEvery: 10})
		for i := range 37 {
			_, err := repo.Execute(ctx, fmt.Sprintf("tally-%d", i%3), add{N: i, Units: 1 + i%3})
			is.NoErr(err)
		}
		for a := range 3 {
			id := fmt.Sprintf("tally-%d", a)
			fromSnapshot, v, err := repo.Load(ctx, id)
			is.NoErr(err)
			info, err := repo.Info(ctx, id)
			is.NoErr(err)
			is.True(info.HasSnapshot && info.SnapshotVersion < v) // a snapshot and a tail
			replayed, err := eventstore.Fold(store.ReadStream(ctx, id, eventstore.ReadOptions{}), tally{},
				func(s tally, e eventstore.RecordedEvent) (tally, error) {
					ev, err := addedCodec{}.Decode(e)
					return tallyDecider.Evolve(s, ev), err
				})
			is.NoErr(err)
			is.Equal(fromSnapshot, replayed)
		}
	})
}

func TestRepository_Metadata(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, nil)
	_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1}, eventstore.Correlate("req-7"), eventstore.Metadata{"user": "ann"})
	is.NoErr(err)
	var first eventstore.RecordedEvent
	for e, err := range store.ReadStream(ctx, "tally-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		first = e
	}
	is.Equal(eventstore.MetadataString(first.Metadata, eventstore.CorrelationKey), "req-7")
	is.Equal(eventstore.MetadataString(first.Metadata, eventstore.CausationKey), "req-7")
	is.Equal(eventstore.MetadataString(first.Metadata, "user"), "ann")

	// An event caused by that one: same conversation, caused by its ID.
	_, err = repo.Execute(ctx, "tally-2", add{N: 1, Units: 1}, eventstore.CausedBy(first))
	is.NoErr(err)
	for e, err := range store.ReadStream(ctx, "tally-2", eventstore.ReadOptions{}) {
		is.NoErr(err)
		is.Equal(eventstore.MetadataString(e.Metadata, eventstore.CorrelationKey), "req-7")
		is.Equal(eventstore.MetadataString(e.Metadata, eventstore.CausationKey), first.ID.String())
	}
	// Without a correlation ID, the cause starts the conversation.
	md := eventstore.CausedBy(eventstore.RecordedEvent{ID: first.ID})
	is.Equal(md[eventstore.CorrelationKey], first.ID.String())
}
