package eventstoretest

import (
	"slices"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// testChangeWatcher checks, with two backends on one storage, that a
// subscription on one of them delivers what is appended through the other,
// as it would for another process: an [eventstore.ChangeWatcher].
func testChangeWatcher(t *testing.T, newPair func(t *testing.T) (first, second eventstore.Backend)) {
	t.Run("AcrossBackends", func(t *testing.T) {
		t.Parallel()
		is := is.New(t)
		first, second := newPair(t)
		one, other := eventstore.New(first, nil), eventstore.New(second, nil)
		t.Cleanup(func() { _ = one.Close(); _ = other.Close() })
		b := &bundle{is: is, ctx: t.Context(), store: one, backend: first}
		sub, err := one.Subscribe(b.ctx, eventstore.SubscribeOptions{})
		is.NoErr(err)
		defer sub.Close()
		res, err := other.Append(b.ctx, "a-1", eventstore.NoStream, numbered("E", 2)...)
		is.NoErr(err)
		is.Equal(streamsOf(receive(t, sub, 2)), []string{"a-1@0", "a-1@1"})

		// And the other way round, live, for a subscription that has
		// caught up already.
		back, err := other.Subscribe(b.ctx, eventstore.SubscribeOptions{From: res.Position + 1})
		is.NoErr(err)
		defer back.Close()
		b.appendOK("b-1", eventstore.NoStream, ev("E"))
		is.Equal(streamsOf(receive(t, back, 1)), []string{"b-1@0"})
		is.Equal(streamsOf(receive(t, sub, 1)), []string{"b-1@0"})
	})
}

// testIntegrityChecker checks [eventstore.Store.Verify] on a backend that
// can check its storage ([eventstore.IntegrityChecker]).
func testIntegrityChecker(t *testing.T, newBackend NewBackend) {
	t.Run("Verify", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		b.is.True(r.OK())
		b.is.Equal(r.Integrity, "ok")
		b.is.True(slices.Contains(r.Checked, eventstore.VerifyIntegrity))
		b.is.Equal(r.Skipped, nil)
	})
}
