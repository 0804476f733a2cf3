package eventstoretest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

func testSnapshots(t *testing.T, newBackend NewBackend) {
	// snapshotVersions lists the versions of a stream's snapshots.
	snapshotVersions := func(b *bundle, stream string) []int64 {
		b.is.Helper()
		list, err := b.store.ListSnapshots(b.ctx, stream)
		b.is.NoErr(err)
		out := []int64{}
		for _, s := range list {
			out = append(out, s.Version)
		}
		return out
	}
	t.Run("SaveLoadList", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("acc-1", eventstore.Any, numbered("E", 10)...)
		for _, v := range []int64{3, 7, 5} {
			b.is.NoErr(b.store.SaveSnapshot(b.ctx, "acc-1", v, fmt.Appendf(nil, `{"at":%d}`, v), []byte(`{"schema":1}`)))
		}
		latest, err := b.store.LoadSnapshot(b.ctx, "acc-1")
		b.is.NoErr(err)
		b.is.Equal(latest.StreamID, "acc-1")
		b.is.Equal(latest.Version, int64(7)) // the highest version, not the last saved
		b.is.Equal(string(latest.Data), `{"at":7}`)
		b.is.Equal(string(latest.Metadata), `{"schema":1}`)
		b.is.True(!latest.CreatedAt.IsZero())
		at5, err := b.store.LoadSnapshotAt(b.ctx, "acc-1", 5)
		b.is.NoErr(err)
		b.is.Equal(string(at5.Data), `{"at":5}`)
		b.is.Equal(snapshotVersions(b, "acc-1"), []int64{3, 5, 7})
		ok, err := b.store.SnapshotExists(b.ctx, "acc-1")
		b.is.NoErr(err)
		b.is.True(ok)

		// Saving a version again replaces it.
		b.is.NoErr(b.store.SaveSnapshot(b.ctx, "acc-1", 5, []byte(`{"again":true}`), nil))
		at5, err = b.store.LoadSnapshotAt(b.ctx, "acc-1", 5)
		b.is.NoErr(err)
		b.is.Equal(string(at5.Data), `{"again":true}`)
		b.is.Equal(at5.Metadata, nil)
		b.is.Equal(snapshotVersions(b, "acc-1"), []int64{3, 5, 7})
	})

	t.Run("NotFound", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("acc-1", eventstore.Any, numbered("E", 3)...)
		_, err := b.store.LoadSnapshot(b.ctx, "acc-1")
		b.is.True(errors.Is(err, eventstore.ErrSnapshotNotFound))
		_, err = b.store.LoadSnapshot(b.ctx, "nobody-1")
		b.is.True(errors.Is(err, eventstore.ErrSnapshotNotFound))
		b.is.NoErr(b.store.SaveSnapshot(b.ctx, "acc-1", 1, []byte(`{}`), nil))
		_, err = b.store.LoadSnapshotAt(b.ctx, "acc-1", 2)
		b.is.True(errors.Is(err, eventstore.ErrSnapshotNotFound))
		ok, err := b.store.SnapshotExists(b.ctx, "nobody-1")
		b.is.NoErr(err)
		b.is.True(!ok)
		b.is.True(errors.Is(b.store.DeleteSnapshotAt(b.ctx, "acc-1", 2), eventstore.ErrSnapshotNotFound))
		b.is.Equal(len(snapshotVersions(b, "nobody-1")), 0)
	})

	t.Run("Delete", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("acc-1", eventstore.Any, numbered("E", 10)...)
		b.appendOK("acc-2", eventstore.Any, numbered("E", 10)...)
		for _, v := range []int64{3, 5, 7} {
			b.is.NoErr(b.store.SaveSnapshot(b.ctx, "acc-1", v, nil, nil))
			b.is.NoErr(b.store.SaveSnapshot(b.ctx, "acc-2", v, nil, nil))
		}
		b.is.NoErr(b.store.DeleteSnapshotAt(b.ctx, "acc-1", 5))
		b.is.Equal(snapshotVersions(b, "acc-1"), []int64{3, 7})
		b.is.NoErr(b.store.DeleteSnapshots(b.ctx, "acc-1"))
		b.is.Equal(snapshotVersions(b, "acc-1"), []int64{})
		b.is.NoErr(b.store.DeleteSnapshots(b.ctx, "acc-1"))        // none left: fine
		b.is.Equal(snapshotVersions(b, "acc-2"), []int64{3, 5, 7}) // other streams untouched
	})

	t.Run("DeleteStreamDeletesSnapshots", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("acc-1", eventstore.Any, numbered("E", 5)...)
		b.is.NoErr(b.store.SaveSnapshot(b.ctx, "acc-1", 4, []byte(`{"old":true}`), nil))
		b.is.NoErr(b.store.DeleteStream(b.ctx, "acc-1", eventstore.Any))
		b.appendOK("acc-1", eventstore.NoStream, numbered("E", 5)...)
		_, err := b.store.LoadSnapshot(b.ctx, "acc-1")
		b.is.True(errors.Is(err, eventstore.ErrSnapshotNotFound)) // the old life's state is gone
	})

	t.Run("PinnedToLife", func(t *testing.T) {
		b := setup(t, newBackend)
		sn := b.backend
		old := b.appendOK("acc-1", eventstore.NoStream, numbered("Old", 3)...)
		b.is.NoErr(b.store.SaveSnapshot(b.ctx, "acc-1", 2, nil, nil))
		snap, err := b.store.LoadSnapshot(b.ctx, "acc-1")
		b.is.NoErr(err)
		b.is.Equal(snap.Position, old.Position) // recorded by the backend

		// The stream is deleted and started again as far, and only then
		// does a snapshot of its old life arrive, pinned to its event.
		b.is.NoErr(b.store.DeleteStream(b.ctx, "acc-1", eventstore.Any))
		now := b.appendOK("acc-1", eventstore.NoStream, numbered("New", 3)...)
		stale := eventstore.Snapshot{StreamID: "acc-1", Version: 2, Position: old.Position, Data: []byte(`{"life":"old"}`), CreatedAt: time.Now()}
		err = sn.SaveSnapshot(b.ctx, stale, 0)
		b.is.True(errors.Is(err, eventstore.ErrStreamNotFound))
		_, err = b.store.LoadSnapshot(b.ctx, "acc-1")
		b.is.True(errors.Is(err, eventstore.ErrSnapshotNotFound)) // nothing written
		stale.Position = now.Position
		b.is.NoErr(sn.SaveSnapshot(b.ctx, stale, 0)) // pinned to the live life: fine
		snap, err = b.store.LoadSnapshot(b.ctx, "acc-1")
		b.is.NoErr(err)
		b.is.Equal(snap.Position, now.Position)
	})

	// SaveRacesDelete runs SaveSnapshot against DeleteStream many times:
	// whichever wins, the snapshot must not outlive the life it was taken
	// of, or a Repository would load the deleted state into the stream's
	// next life.
	t.Run("SaveRacesDelete", func(t *testing.T) {
		b := setup(t, newBackend)
		// Several rounds at once, each with a few savers, so that on two
		// cores a delete often lands inside a save.
		const rounds, workers, savers = 300, 4, 3
		var survived atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < rounds; i += workers {
					if err := saveRacesDelete(b, fmt.Sprintf("race-%d", i), savers); err != nil {
						if !errors.Is(err, errSurvived) {
							t.Errorf("round %d: %v", i, err)
							return
						}
						survived.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if n := survived.Load(); n > 0 {
			t.Errorf("a snapshot of the deleted life survived into the next one in %d of %d rounds", n, rounds)
		}
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(r.Problems, nil)
		b.is.True(r.OK())
	})

	t.Run("BadInput", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("acc-1", eventstore.Any, numbered("E", 3)...)
		for name, err := range map[string]error{
			"AheadOfStream": b.store.SaveSnapshot(b.ctx, "acc-1", 3, nil, nil),
			"NoStream":      b.store.SaveSnapshot(b.ctx, "nobody-1", 0, nil, nil),
			"Negative":      b.store.SaveSnapshot(b.ctx, "acc-1", -1, nil, nil),
			"BadStreamID":   b.store.SaveSnapshot(b.ctx, "", 0, nil, nil),
			"LoadAtNeg":     func() error { _, err := b.store.LoadSnapshotAt(b.ctx, "acc-1", -1); return err }(),
			"DeleteAtNeg":   b.store.DeleteSnapshotAt(b.ctx, "acc-1", -2),
			"ListBadID":     func() error { _, err := b.store.ListSnapshots(b.ctx, "a\nb"); return err }(),
		} {
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("%s: %v", name, err)
			}
		}
		b.is.Equal(snapshotVersions(b, "acc-1"), []int64{})

		// A stream that does not exist, or no longer does, is also
		// ErrStreamNotFound.
		b.appendOK("gone-1", eventstore.Any, numbered("E", 3)...)
		b.is.NoErr(b.store.DeleteStream(b.ctx, "gone-1", eventstore.Any))
		for _, stream := range []string{"nobody-1", "gone-1"} {
			err := b.store.SaveSnapshot(b.ctx, stream, 0, nil, nil)
			b.is.True(errors.Is(err, eventstore.ErrStreamNotFound))
			b.is.True(errors.Is(err, eventstore.ErrInvalidArgument))
		}
	})

	t.Run("Retention", func(t *testing.T) {
		t.Parallel()
		is := is.New(t)
		store := eventstore.New(newBackend(t), &eventstore.Options{SnapshotRetention: 2})
		defer store.Close()
		b := &bundle{is: is, ctx: t.Context(), store: store}
		b.appendOK("acc-1", eventstore.Any, numbered("E", 10)...)
		for _, v := range []int64{2, 8, 4, 6} {
			is.NoErr(store.SaveSnapshot(b.ctx, "acc-1", v, nil, nil))
		}
		is.Equal(snapshotVersions(b, "acc-1"), []int64{6, 8}) // the two highest
	})
}

var errSurvived = errors.New("the snapshot survived")

// saveRacesDelete starts savers SaveSnapshots and a DeleteStream of stream
// at once, then starts the stream's next life: none of the snapshots may
// be found in it. Losing the race to the delete (ErrStreamNotFound) is the
// only error a save may have.
func saveRacesDelete(b *bundle, stream string, savers int) error {
	if _, err := b.store.Append(b.ctx, stream, eventstore.NoStream, numbered("Old", savers)...); err != nil {
		return err
	}
	start := make(chan struct{})
	errs := make(chan error, savers+1)
	var wg sync.WaitGroup
	for v := range savers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := b.store.SaveSnapshot(b.ctx, stream, int64(v), []byte(`{"life":"old"}`), nil)
			if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
				errs <- fmt.Errorf("save: %w", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		if err := b.store.DeleteStream(b.ctx, stream, eventstore.Any); err != nil {
			errs <- fmt.Errorf("delete: %w", err)
		}
	}()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	if _, err := b.store.Append(b.ctx, stream, eventstore.NoStream, numbered("New", savers)...); err != nil {
		return err
	}
	list, err := b.store.ListSnapshots(b.ctx, stream)
	if err != nil {
		return err
	}
	_, loadErr := b.store.LoadSnapshot(b.ctx, stream)
	switch {
	case len(list) > 0 || loadErr == nil:
		return errSurvived
	case !errors.Is(loadErr, eventstore.ErrSnapshotNotFound):
		return fmt.Errorf("load: %w", loadErr)
	}
	return nil
}
