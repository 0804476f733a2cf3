package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
)

// limitError is a domain error with fields, as errors.As finds them.
type limitError struct{ Limit int }

func (e *limitError) Error() string { return fmt.Sprintf("tally: over the limit of %d", e.Limit) }

func TestRepository_RejectedKeepsDomainErrorType(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		d := tallyDecider
		d.Decide = func(s tally, c add) ([]added, error) {
			if s.Total+c.N*c.Units > 10 {
				return nil, fmt.Errorf("add %d: %w", c.N, &limitError{Limit: 10})
			}
			return tallyDecider.Decide(s, c)
		}
		repo := eventstore.NewRepository(store, d, addedCodec{}, nil)
		res, err := repo.Execute(context.Background(), "tally-1", add{N: 11, Units: 1})
		is.True(errors.Is(err, eventstore.ErrRejected))
		var le *limitError
		is.True(errors.As(err, &le))
		is.Equal(le.Limit, 10)
		is.Equal(err.Error(), "add 11: tally: over the limit of 10")
		is.Equal(res.Version, int64(-1)) // the state it was refused in

		// Failures that are not refusals do not match.
		_, err = repo.Execute(context.Background(), "", add{N: 1, Units: 1})
		is.True(err != nil)
		is.True(!errors.Is(err, eventstore.ErrRejected))
	})
}

// hooked returns hooks that record happenings by name, and the number of
// events read by read_stream operations.
type hooked struct {
	mu         sync.Mutex
	happenings []eventstore.Happening
	eventsRead atomic.Int64
}

func (h *hooked) hooks() eventstore.Hooks {
	return eventstore.Hooks{
		Start: func(_ context.Context, op eventstore.Op) func(eventstore.Outcome) {
			if op.Name != "read_stream" {
				return nil
			}
			return func(o eventstore.Outcome) { h.eventsRead.Add(int64(o.Events)) }
		},
		Event: func(_ context.Context, e eventstore.Happening) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.happenings = append(h.happenings, e)
		},
	}
}

func (h *hooked) named(name string) []eventstore.Happening {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []eventstore.Happening
	for _, e := range h.happenings {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// testBackends open a store on each backend: memory, and SQLite in a file.
var testBackends = []struct {
	name string
	open func(t *testing.T, opts *eventstore.Options) *eventstore.Store
}{
	{"memory", func(t *testing.T, opts *eventstore.Options) *eventstore.Store {
		s := eventstore.New(memory.New(), opts)
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"sqlite", func(t *testing.T, opts *eventstore.Options) *eventstore.Store {
		b, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		s := eventstore.New(b, opts)
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

// hookedBackends runs f against a store on each backend, with hooks.
func hookedBackends(t *testing.T, f func(t *testing.T, store *eventstore.Store, h *hooked)) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			h := &hooked{}
			f(t, b.open(t, &eventstore.Options{Hooks: h.hooks()}), h)
		})
	}
}

// TestRepository_SnapshotOfAnotherVersionIsIgnored saves snapshots with
// one state version and loads them with another, as after a deploy that
// changed the state's shape: the old snapshots would decode without error
// (JSON ignores the unknown field) but wrongly, so they must be passed over.
func TestRepository_SnapshotOfAnotherVersionIsIgnored(t *testing.T) {
	t.Parallel()
	hookedBackends(t, func(t *testing.T, store *eventstore.Store, h *hooked) {
		is := is.New(t)
		ctx := context.Background()
		v1 := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{SnapshotEvery: 2})
		for range 3 {
			_, err := v1.Execute(ctx, "tally-1", add{N: 2, Units: 1})
			is.NoErr(err)
		}
		info, err := v1.Info(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(info.SnapshotVersion, int64(1))

		// Version 2 of the state counts in a field of another name.
		type tallyV2 struct {
			Sum    int `json:"sum"`
			Events int `json:"events"`
		}
		d := eventstore.Decider[tallyV2, add, added]{
			Decide: func(s tallyV2, c add) ([]added, error) { return tallyDecider.Decide(tally{}, c) },
			Evolve: func(s tallyV2, e added) tallyV2 { return tallyV2{Sum: s.Sum + e.N, Events: s.Events + 1} },
		}
		v2 := eventstore.NewRepository(store, d, addedCodec{}, &eventstore.RepositoryOptions[tallyV2]{SnapshotEvery: 100, SnapshotVersion: 2})
		s, v, err := v2.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tallyV2{Sum: 6, Events: 3}) // replayed, not {Sum: 0, Events: 2} from the snapshot
		is.Equal(v, int64(2))
		is.Equal(v2.Stats().SnapshotsIgnored, uint64(1))
		ignored := h.named("snapshot.ignored")
		is.Equal(len(ignored), 1)
		is.Equal(ignored[0].Stream, "tally-1")
		is.True(ignored[0].Err != nil)

		// The next command replaces the snapshot with one of version 2,
		// which the next load uses.
		res, err := v2.Execute(ctx, "tally-1", add{N: 1, Units: 1})
		is.NoErr(err)
		is.Equal(res.State, tallyV2{Sum: 7, Events: 4})
		snap, err := store.LoadSnapshot(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(snap.Version, int64(3))
		is.Equal(string(snap.Metadata), `{"state_version":2}`)
		s, _, err = v2.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tallyV2{Sum: 7, Events: 4})
		is.Equal(v2.Stats().SnapshotsIgnored, uint64(2)) // the Execute's load, not this one

		// And the old repository, of version 0, now ignores that one.
		st, _, err := v1.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(st, tally{Total: 7, Events: 4})
		is.Equal(v1.Stats().SnapshotsIgnored, uint64(1))
	})
}

// TestRepository_UndecodableSnapshotNeverFailsACommand stores snapshots
// that do not decode, saved without a version (as before versions were
// stored: version 0), and checks that Load and Execute replay instead.
func TestRepository_UndecodableSnapshotNeverFailsACommand(t *testing.T) {
	t.Parallel()
	hookedBackends(t, func(t *testing.T, store *eventstore.Store, h *hooked) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{SnapshotEvery: 10})
		for range 3 {
			_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
			is.NoErr(err)
		}
		is.NoErr(store.SaveSnapshot(ctx, "tally-1", 2, []byte(`{"total":"not a number"`), nil))
		s, v, err := repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 3, Events: 3})
		is.Equal(v, int64(2))
		res, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
		is.NoErr(err)
		is.Equal(res.State, tally{Total: 4, Events: 4})
		is.Equal(repo.Stats().SnapshotsIgnored, uint64(2))
		is.Equal(len(h.named("snapshot.ignored")), 2)

		// A valid snapshot without a version is version 0: used.
		is.NoErr(store.SaveSnapshot(ctx, "tally-1", 3, []byte(`{"total":40,"events":4}`), nil))
		s, _, err = repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 40, Events: 4}) // the snapshot's state, as written
		is.Equal(repo.Stats().SnapshotsIgnored, uint64(2))
	})
}

// TestRepository_CacheSkipsSnapshotAndReplay checks that a cached
// aggregate is loaded without its snapshot: DecodeState is never called,
// and each load reads one event, its own, to check the stream.
func TestRepository_CacheSkipsSnapshotAndReplay(t *testing.T) {
	t.Parallel()
	hookedBackends(t, func(t *testing.T, store *eventstore.Store, h *hooked) {
		is := is.New(t)
		ctx := context.Background()
		var decodes atomic.Int64
		opts := &eventstore.RepositoryOptions[tally]{SnapshotEvery: 5, CacheSize: 10, DecodeState: func(b []byte) (tally, error) {
			decodes.Add(1)
			var s tally
			return s, json.Unmarshal(b, &s)
		}}
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, opts)
		for range 20 {
			_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
			is.NoErr(err)
		}
		is.Equal(decodes.Load(), int64(0)) // no snapshot was loaded
		st := repo.Stats()
		is.Equal(st.CacheMisses, uint64(1)) // the first load only
		is.Equal(st.CacheHits, uint64(19))
		is.Equal(st.Snapshots, uint64(4))
		is.Equal(h.eventsRead.Load(), int64(19)) // one per cached load
		s, v, err := repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 20, Events: 20})
		is.Equal(v, int64(19))

		// A repository without a cache loads the snapshot.
		plain := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{DecodeState: opts.DecodeState})
		s, _, err = plain.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 20, Events: 20})
		is.Equal(decodes.Load(), int64(1))
	})
}

// TestRepository_CacheConflictReloads writes to a cached aggregate's
// stream between its load and its append: the append conflicts, the entry
// is dropped, and the command is decided again on the reloaded state.
func TestRepository_CacheConflictReloads(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		var interfere atomic.Bool
		d := tallyDecider
		d.Decide = func(s tally, c add) ([]added, error) {
			if interfere.CompareAndSwap(true, false) {
				if _, err := store.Append(ctx, "tally-1", eventstore.Any, eventstore.Event{Type: "Added", Data: []byte(`{"n":100}`)}); err != nil {
					return nil, err
				}
			}
			return tallyDecider.Decide(s, c)
		}
		repo := eventstore.NewRepository(store, d, addedCodec{}, &eventstore.RepositoryOptions[tally]{CacheSize: 10})
		_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
		is.NoErr(err)
		interfere.Store(true)
		res, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
		is.NoErr(err)
		is.Equal(res.State, tally{Total: 102, Events: 3})
		is.Equal(res.Version, int64(2))
		st := repo.Stats()
		is.Equal(st.ConflictsRetried, uint64(1))
		is.Equal(st.CacheMisses, uint64(2)) // the first load, and the reload after the conflict
		s, _, err := repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 102, Events: 3})
	})
}

// TestRepository_CacheFollowsTheStream changes a cached aggregate's stream
// behind the repository's back: appends are folded in, and a stream
// deleted and started again at the cached version is not mistaken for the
// cached one.
func TestRepository_CacheFollowsTheStream(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{CacheSize: 10})
		other := eventstore.NewRepository(store, tallyDecider, addedCodec{}, nil)
		_, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 2}) // cached at version 1
		is.NoErr(err)
		_, err = other.Execute(ctx, "tally-1", add{N: 10, Units: 1})
		is.NoErr(err)
		s, v, err := repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 12, Events: 3})
		is.Equal(v, int64(2))

		is.NoErr(store.DeleteStream(ctx, "tally-1", eventstore.Any))
		_, err = other.Execute(ctx, "tally-1", add{N: 5, Units: 3}) // versions 0-2 again
		is.NoErr(err)
		res, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1})
		is.NoErr(err)
		is.Equal(res.State, tally{Total: 16, Events: 4}) // of the new life only
		is.Equal(res.Version, int64(3))
	})
}

// bag is a state that holds a map: the cache must not share it.
type bag struct {
	Counts map[int]int `json:"counts"`
}

func TestRepository_CacheNeverSharesState(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		d := eventstore.Decider[bag, add, added]{
			Decide: func(s bag, c add) ([]added, error) { return tallyDecider.Decide(tally{}, c) },
			Evolve: func(s bag, e added) bag {
				if s.Counts == nil {
					s.Counts = map[int]int{}
				}
				s.Counts[e.N]++ // in place, as Go code often does
				return s
			},
		}
		repo := eventstore.NewRepository(store, d, addedCodec{}, &eventstore.RepositoryOptions[bag]{CacheSize: 10})
		res, err := repo.Execute(ctx, "bag-1", add{N: 1, Units: 1})
		is.NoErr(err)
		res.State.Counts[1] = 99 // a caller's own copy
		s, _, err := repo.Load(ctx, "bag-1")
		is.NoErr(err)
		is.Equal(s.Counts, map[int]int{1: 1})
		s.Counts[7] = 7
		res, err = repo.Execute(ctx, "bag-1", add{N: 2, Units: 1})
		is.NoErr(err)
		is.Equal(res.State.Counts, map[int]int{1: 1, 2: 1})
		is.Equal(repo.Stats().CacheHits, uint64(2))
	})
}

func TestRepository_CacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{CacheSize: 2})
		for _, id := range []string{"tally-1", "tally-2", "tally-1", "tally-3", "tally-1", "tally-2"} {
			_, err := repo.Execute(ctx, id, add{N: 1, Units: 1})
			is.NoErr(err)
		}
		// Misses: 1, 2, 3 (evicts 2), 2 again; hits: 1 twice.
		st := repo.Stats()
		is.Equal(st.CacheMisses, uint64(4))
		is.Equal(st.CacheHits, uint64(2))
		s, _, err := repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 3, Events: 3})
	})
}

// TestRepository_CacheConcurrentCommands runs commands on one cached
// aggregate from several goroutines: conflicts drop the entry and reload,
// and no command is lost.
func TestRepository_CacheConcurrentCommands(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx := context.Background()
		repo := eventstore.NewRepository(store, tallyDecider, addedCodec{}, &eventstore.RepositoryOptions[tally]{CacheSize: 4, MaxRetries: 1000})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 10 {
					if _, err := repo.Execute(ctx, "tally-1", add{N: 1, Units: 1}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		s, v, err := repo.Load(ctx, "tally-1")
		is.NoErr(err)
		is.Equal(s, tally{Total: 40, Events: 40})
		is.Equal(v, int64(39))
	})
}
