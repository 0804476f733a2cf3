package eventstoretest

import (
	"errors"
	"testing"

	"github.com/edge-es/eventstore"
)

func testPurge(t *testing.T, newBackend NewBackend) {
	t.Run("RemovesEverything", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("user-1", eventstore.Any, numbered("Personal", 3)...)
		kept := b.appendOK("other-1", eventstore.Any, ev("Kept"))
		b.is.NoErr(b.store.DeleteStream(b.ctx, "user-1", eventstore.Any)) // an earlier life...
		b.appendOK("user-1", eventstore.Any, numbered("Personal", 2)...)  // ...and the current one
		b.is.NoErr(b.store.SaveSnapshot(b.ctx, "user-1", 1, []byte(`{"name":"ann"}`), nil))
		n, err := b.store.PurgeStream(b.ctx, "user-1")
		b.is.NoErr(err)
		b.is.Equal(n, int64(5)) // both lives

		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(streamsOf(log), []string{"other-1@0"})
		b.is.Equal(log[0].Position, kept.Position) // the others keep their positions
		_, err = collect(b.store.ReadStream(b.ctx, "user-1", eventstore.ReadOptions{}))
		b.is.True(errors.Is(err, eventstore.ErrStreamNotFound))
		v, err := b.store.StreamVersion(b.ctx, "user-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(-1))
		byStream := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{Streams: []string{"user-1"}}))
		b.is.Equal(len(byStream), 0)
		_, err = b.store.LoadSnapshot(b.ctx, "user-1")
		b.is.True(errors.Is(err, eventstore.ErrSnapshotNotFound))
		b.is.Equal(len(all(b.is, b.store.ListStreams(b.ctx, eventstore.ListOptions{Prefix: "user"}))), 0)
	})

	t.Run("Tombstone", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("user-1", eventstore.Any, numbered("Personal", 2)...)
		kept := b.appendOK("other-1", eventstore.Any, ev("Kept"))
		_, err := b.store.PurgeStream(b.ctx, "user-1")
		b.is.NoErr(err)
		for _, expected := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.NoStream} {
			_, err = b.store.Append(b.ctx, "user-1", expected, ev("Late"))
			b.is.True(errors.Is(err, eventstore.ErrStreamPurged)) // a late writer cannot bring it back
		}
		_, err = b.store.PurgeStream(b.ctx, "user-1") // purging again is fine
		b.is.NoErr(err)
		b.is.NoErr(b.store.RemoveTombstone(b.ctx, "user-1"))
		res := b.appendOK("user-1", eventstore.NoStream, ev("Again"))
		b.is.Equal(res.Version, int64(0))
		b.is.True(res.Position > kept.Position) // positions are never reused
		b.is.True(errors.Is(b.store.RemoveTombstone(b.ctx, "user-1"), eventstore.ErrStreamNotFound))
	})

	t.Run("LastPositionIsNeverReused", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, ev("E"))
		last := b.appendOK("b-1", eventstore.Any, ev("E"), ev("E"))
		_, err := b.store.PurgeStream(b.ctx, "b-1") // the highest positions go
		b.is.NoErr(err)
		res := b.appendOK("c-1", eventstore.Any, ev("E"))
		b.is.True(res.Position > last.Position)
	})

	t.Run("SubscribersSeeAGap", func(t *testing.T) {
		b := setup(t, newBackend)
		first := b.appendOK("a-1", eventstore.Any, ev("E"))
		b.appendOK("user-1", eventstore.Any, ev("E"), ev("E"))
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{})
		b.is.NoErr(err)
		defer sub.Close()
		b.is.Equal(receive(t, sub, 1)[0].Position, first.Position)
		_, err = b.store.PurgeStream(b.ctx, "user-1")
		b.is.NoErr(err)
		next := b.appendOK("a-1", eventstore.Any, ev("E"))
		// The purged events may have been read ahead already; after them
		// the subscription goes on past the gap.
		for {
			e := receive(t, sub, 1)[0]
			if e.Position == next.Position {
				break
			}
			b.is.True(e.StreamID == "user-1")
		}
	})

	t.Run("Unknown", func(t *testing.T) {
		b := setup(t, newBackend)
		_, err := b.store.PurgeStream(b.ctx, "nobody-1")
		b.is.True(errors.Is(err, eventstore.ErrStreamNotFound))
		_, err = b.store.PurgeStream(b.ctx, "")
		b.is.True(errors.Is(err, eventstore.ErrInvalidArgument))
	})

	t.Run("NotFoundNamesTheStream", func(t *testing.T) {
		b := setup(t, newBackend)
		_, err := b.store.PurgeStream(b.ctx, "nobody-1")
		notFoundNaming(t, err, "nobody-1")
		notFoundNaming(t, b.store.RemoveTombstone(b.ctx, "nobody-1"), "nobody-1")
		b.appendOK("user-1", eventstore.Any, ev("E"))
		_, err = b.store.PurgeStream(b.ctx, "user-1")
		b.is.NoErr(err)
		_, err = collect(b.store.ReadStream(b.ctx, "user-1", eventstore.ReadOptions{}))
		notFoundNaming(t, err, "user-1")
	})
}
