package eventstoretest

import (
	"errors"
	"strings"
	"testing"

	"github.com/edge-es/eventstore"
)

func testDeleteStream(t *testing.T, newBackend NewBackend) {
	t.Run("DisappearsAndStartsAgain", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("d-1", eventstore.NoStream, numbered("E", 3)...)
		b.appendOK("keep-1", eventstore.NoStream, ev("E"))
		b.is.NoErr(b.store.DeleteStream(b.ctx, "d-1", eventstore.Exact(2)))

		_, err := collect(b.store.ReadStream(b.ctx, "d-1", eventstore.ReadOptions{}))
		b.is.True(errors.Is(err, eventstore.ErrStreamNotFound))
		v, err := b.store.StreamVersion(b.ctx, "d-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(-1))
		ok, err := b.store.StreamExists(b.ctx, "d-1")
		b.is.NoErr(err)
		b.is.True(!ok)
		listed := all(b.is, b.store.ListStreams(b.ctx, eventstore.ListOptions{}))
		b.is.Equal(len(listed), 1)
		b.is.Equal(listed[0].ID, "keep-1")

		// Exact(2) no longer holds; NoStream does.
		_, err = b.store.Append(b.ctx, "d-1", eventstore.Exact(2), ev("E"))
		b.is.True(errors.Is(err, eventstore.ErrWrongExpectedVersion))
		before := b.logPositions()
		res := b.appendOK("d-1", eventstore.NoStream, ev("Reborn"), ev("Reborn"))
		b.is.Equal(res.Version, int64(1))
		got := all(b.is, b.store.ReadStream(b.ctx, "d-1", eventstore.ReadOptions{}))
		b.is.Equal(versions(got), []int64{0, 1})
		b.is.Equal(got[0].Type, "Reborn")
		b.is.Equal(got[1].Position, res.Position)
		b.is.Equal(b.logPositions(), append(before, positions(got)...)) // the new life continues the global log
		back := all(b.is, b.store.ReadStream(b.ctx, "d-1", eventstore.ReadOptions{Backward: true}))
		b.is.Equal(positions(back), []int64{got[1].Position, got[0].Position})

		// The global log still holds the first life.
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(streamsOf(log), []string{"d-1@0", "d-1@1", "d-1@2", "keep-1@0", "d-1@0", "d-1@1"})
		info := all(b.is, b.store.ListStreams(b.ctx, eventstore.ListOptions{Prefix: "d-"}))
		b.is.Equal(info[0].CreatedAt, got[0].RecordedAt) // a new life has a new creation time
	})

	t.Run("AnyAfterDelete", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("d-2", eventstore.Any, ev("E"))
		b.is.NoErr(b.store.DeleteStream(b.ctx, "d-2", eventstore.Any))
		res := b.appendOK("d-2", eventstore.Any, ev("E"))
		b.is.Equal(res.Version, int64(0))
	})

	t.Run("ExpectedVersion", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("d-3", eventstore.Any, numbered("E", 2)...)
		for _, expected := range []eventstore.ExpectedVersion{eventstore.Exact(0), eventstore.NoStream} {
			err := b.store.DeleteStream(b.ctx, "d-3", expected)
			var conflict *eventstore.VersionConflictError
			b.is.True(errors.As(err, &conflict))
			b.is.Equal(conflict.Actual, int64(1))
			b.is.Equal(conflict.Expected, expected)
		}
		ok, err := b.store.StreamExists(b.ctx, "d-3")
		b.is.NoErr(err)
		b.is.True(ok) // a failed delete deletes nothing
		b.is.NoErr(b.store.DeleteStream(b.ctx, "d-3", eventstore.StreamExists))
	})

	t.Run("Missing", func(t *testing.T) {
		b := setup(t, newBackend)
		for _, expected := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.NoStream} {
			err := b.store.DeleteStream(b.ctx, "nope-1", expected)
			b.is.True(errors.Is(err, eventstore.ErrStreamNotFound))
		}
		err := b.store.DeleteStream(b.ctx, "nope-1", eventstore.StreamExists)
		var conflict *eventstore.VersionConflictError
		b.is.True(errors.As(err, &conflict))
		b.is.Equal(conflict.Actual, int64(-1))
		// Deleting twice: the second time the stream is gone.
		b.appendOK("twice-1", eventstore.Any, ev("E"))
		b.is.NoErr(b.store.DeleteStream(b.ctx, "twice-1", eventstore.Any))
		b.is.True(errors.Is(b.store.DeleteStream(b.ctx, "twice-1", eventstore.Any), eventstore.ErrStreamNotFound))
	})

	t.Run("ReadInProgressKeepsItsLife", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("life-1", eventstore.Any, numbered("Old", 600)...)
		n := 0
		for e, err := range b.store.ReadStream(b.ctx, "life-1", eventstore.ReadOptions{}) {
			b.is.NoErr(err)
			if n == 0 {
				b.is.NoErr(b.store.DeleteStream(b.ctx, "life-1", eventstore.Any))
				b.appendOK("life-1", eventstore.NoStream, numbered("New", 5)...)
			}
			b.is.Equal(e.Type, "Old") // never switches to the new life
			b.is.Equal(e.Version, int64(n))
			n++
		}
		b.is.Equal(n, 600)
	})

	t.Run("NotFoundNamesTheStream", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("gone-1", eventstore.Any, ev("E"))
		b.is.NoErr(b.store.DeleteStream(b.ctx, "gone-1", eventstore.Any))
		for _, stream := range []string{"missing-1", "gone-1"} {
			for _, opts := range []eventstore.ReadOptions{{}, {Backward: true}} {
				_, err := collect(b.store.ReadStream(b.ctx, stream, opts))
				notFoundNaming(t, err, stream)
			}
			notFoundNaming(t, b.store.DeleteStream(b.ctx, stream, eventstore.Any), stream)
		}
	})
}

// notFoundNaming checks that err is [eventstore.ErrStreamNotFound] and
// that its message says which stream was not found.
func notFoundNaming(t *testing.T, err error, stream string) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("%s: %v, want ErrStreamNotFound", stream, err)
	} else if !strings.Contains(err.Error(), stream) {
		t.Errorf("%q does not name the stream %s", err, stream)
	}
}
