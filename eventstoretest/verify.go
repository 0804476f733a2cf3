package eventstoretest

import (
	"testing"

	"github.com/edge-es/eventstore"
)

func testVerify(t *testing.T, newBackend NewBackend) {
	t.Run("HealthyStore", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 5)...)
		b.appendOK("b-1", eventstore.Any, numbered("E", 3)...)
		b.is.NoErr(b.store.DeleteStream(b.ctx, "b-1", eventstore.Any))
		b.appendOK("b-1", eventstore.Any, numbered("E", 2)...) // a second life
		b.appendOK("c-1", eventstore.Any, numbered("E", 1)...)
		b.is.NoErr(b.store.DeleteStream(b.ctx, "c-1", eventstore.Any)) // deleted for good
		snaps := 0
		if _, ok := b.store.Backend().(eventstore.Snapshotter); ok {
			b.is.NoErr(b.store.SaveSnapshot(b.ctx, "a-1", 3, []byte(`{}`), nil))
			snaps = 1
		}
		if _, ok := b.store.Backend().(eventstore.Purger); ok {
			b.appendOK("d-1", eventstore.Any, numbered("E", 2)...)
			_, err := b.store.PurgeStream(b.ctx, "d-1")
			b.is.NoErr(err)
		}
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(r.Problems, nil)
		b.is.True(r.OK())
		b.is.Equal(r.Events, int64(11))
		b.is.Equal(r.Streams, 2)
		b.is.Equal(r.Snapshots, snaps)
		if _, ok := b.store.Backend().(eventstore.IntegrityChecker); ok {
			b.is.Equal(r.Integrity, "ok")
		}
	})
}
