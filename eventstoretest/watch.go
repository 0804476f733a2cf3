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

	// A commit through this backend that comes right after one through
	// the other, before the watcher has seen that: a subscription that
	// is handed the commit ([eventstore.CommitReporter]) must not take it
	// past the other's events, which it was not handed.
	t.Run("HandedAfterOtherCommits", func(t *testing.T) {
		t.Parallel()
		is := is.New(t)
		first, second := newPair(t)
		one, other := eventstore.New(first, nil), eventstore.New(second, nil)
		t.Cleanup(func() { _ = one.Close(); _ = other.Close() })
		b := &bundle{is: is, ctx: t.Context(), store: one, backend: first}
		for _, filter := range []eventstore.Filter{{}, {Categories: []string{"a"}}} {
			sub, err := one.Subscribe(b.ctx, eventstore.SubscribeOptions{From: eventstore.FromNow, Filter: filter})
			is.NoErr(err)
			defer sub.Close()
			<-sub.CaughtUp()
			for range 5 {
				_, err = other.Append(b.ctx, "a-other", eventstore.Any, ev("E"))
				is.NoErr(err)
				b.appendOK("a-one", eventstore.Any, ev("E"))
			}
			got := receive(t, sub, 10)
			want := all(is, one.ReadAll(b.ctx, eventstore.ReadOptions{From: got[0].Position}, eventstore.Filter{}))
			is.Equal(positions(got), positions(want)) // the other's events, in their place
			is.Equal(len(want), 10)
		}
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
