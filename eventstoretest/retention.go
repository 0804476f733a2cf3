package eventstoretest

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// setupRetention is setup with a store whose clock the test sets and whose
// hooks record the happenings named in watch.
func setupRetention(t *testing.T, newBackend NewBackend, watch ...string) (*bundle, *clock, *happenings) {
	t.Helper()
	t.Parallel()
	c := &clock{now: time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)}
	h := &happenings{ch: make(chan eventstore.Happening, 1000), watch: map[string]bool{}}
	for _, w := range watch {
		h.watch[w] = true
	}
	backend := newBackend(t)
	s := eventstore.New(backend, &eventstore.Options{Clock: c.Now, Hooks: eventstore.Hooks{
		Event: func(_ context.Context, e eventstore.Happening) {
			if !h.watch[e.Name] {
				return
			}
			h.mu.Lock()
			h.names = append(h.names, e.Name)
			h.mu.Unlock()
			h.ch <- e
		},
	}})
	t.Cleanup(func() { _ = s.Close() })
	return &bundle{is: is.New(t), ctx: t.Context(), store: s, backend: backend}, c, h
}

// read returns the versions ReadStream yields with opts.
func (b *bundle) read(stream string, opts eventstore.ReadOptions) []int64 {
	b.is.Helper()
	return versions(all(b.is, b.store.ReadStream(b.ctx, stream, opts)))
}

// setRetention sets a stream's policy and fails the test on error.
func (b *bundle) setRetention(stream string, r eventstore.Retention) {
	b.is.Helper()
	b.is.NoErr(b.store.SetRetention(b.ctx, stream, r))
}

// prune prunes and fails the test on error.
func (b *bundle) prune(opts eventstore.PruneOptions) eventstore.PruneResult {
	b.is.Helper()
	res, err := b.store.Prune(b.ctx, opts)
	b.is.NoErr(err) // prune
	return res
}

// span returns the versions from..to, inclusive, up or down.
func span(from, to int64) []int64 {
	var out []int64
	for v := from; ; {
		out = append(out, v)
		if v == to {
			return out
		}
		if from < to {
			v++
		} else {
			v--
		}
	}
}

func testRetention(t *testing.T, newBackend NewBackend) {
	t.Run("Policies", func(t *testing.T) { testRetentionPolicies(t, newBackend) })
	t.Run("Reads", func(t *testing.T) { testRetentionReads(t, newBackend) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, newBackend) })
	t.Run("PruneAfter", func(t *testing.T) { testPruneAfter(t, newBackend) })
	t.Run("Subscriptions", func(t *testing.T) { testPruneSubscriptions(t, newBackend) })
	t.Run("Background", func(t *testing.T) { testPruneEvery(t, newBackend) })
}

func testRetentionPolicies(t *testing.T, newBackend NewBackend) {
	t.Run("StreamOverridesCategory", func(t *testing.T) {
		b := setup(t, newBackend)
		cat := eventstore.Retention{MaxCount: 5}
		own := eventstore.Retention{MaxAge: time.Hour}
		b.is.NoErr(b.store.SetCategoryRetention(b.ctx, "order", cat))
		b.setRetention("order-1", own)
		for stream, want := range map[string]eventstore.Retention{
			"order-1": own, // as a whole: MaxCount is not merged in
			"order-2": cat,
			"order":   cat, // its own category
			"other-1": {},  // nothing keeps everything
		} {
			r, err := b.store.Retention(b.ctx, stream)
			b.is.NoErr(err)
			b.is.Equal(r, want) // effective retention
		}
		ps, err := b.store.Retentions(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(ps, []eventstore.RetentionPolicy{
			{Stream: "order-1", Retention: own},
			{Category: "order", Retention: cat},
		})

		b.setRetention("order-1", eventstore.Retention{}) // removes its own policy
		r, err := b.store.Retention(b.ctx, "order-1")
		b.is.NoErr(err)
		b.is.Equal(r, cat)
		b.is.NoErr(b.store.SetCategoryRetention(b.ctx, "order", eventstore.Retention{}))
		ps, err = b.store.Retentions(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(len(ps), 0)
	})

	t.Run("ZeroKeepsEverything", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		b.setRetention("a-1", eventstore.Retention{})
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), []int64{0, 1, 2})
		res := b.prune(eventstore.PruneOptions{})
		b.is.Equal(res.Events, int64(0))
		b.is.Equal(len(b.logPositions()), 3)
	})

	t.Run("Validation", func(t *testing.T) {
		b := setup(t, newBackend)
		keep := eventstore.Retention{MaxCount: 1}
		b.setRetention("a-1", keep)
		for name, call := range map[string]func() error{
			"NegativeMaxAge":   func() error { return b.store.SetRetention(b.ctx, "a-1", eventstore.Retention{MaxAge: -1}) },
			"NegativeMaxCount": func() error { return b.store.SetRetention(b.ctx, "a-1", eventstore.Retention{MaxCount: -1}) },
			"NegativeTruncate": func() error { return b.store.SetRetention(b.ctx, "a-1", eventstore.Retention{TruncateBefore: -1}) },
			"NegativeCategory": func() error {
				return b.store.SetCategoryRetention(b.ctx, "a", eventstore.Retention{MaxCount: 2, MaxAge: -time.Second})
			},
			"EmptyStream":     func() error { return b.store.SetRetention(b.ctx, "", keep) },
			"ControlStream":   func() error { return b.store.SetRetention(b.ctx, "a-\x00", keep) },
			"EmptyCategory":   func() error { return b.store.SetCategoryRetention(b.ctx, "", keep) },
			"DashedCategory":  func() error { return b.store.SetCategoryRetention(b.ctx, "a-1", keep) },
			"RetentionStream": func() error { _, err := b.store.Retention(b.ctx, ""); return err },
			"BatchSize":       func() error { _, err := b.store.Prune(b.ctx, eventstore.PruneOptions{BatchSize: -1}); return err },
			"HugeBatch": func() error {
				_, err := b.store.Prune(b.ctx, eventstore.PruneOptions{BatchSize: eventstore.MaxPruneBatch + 1})
				return err
			},
			"EmptyAfter": func() error { _, err := b.store.Prune(b.ctx, eventstore.PruneOptions{After: []string{""}}); return err },
			"Interval":   func() error { return b.store.PruneEvery(b.ctx, 0, eventstore.PruneOptions{}) },
		} {
			err := call()
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
			}
		}
		ps, err := b.store.Retentions(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(ps, []eventstore.RetentionPolicy{{Stream: "a-1", Retention: keep}}) // nothing written
	})
}

func testRetentionReads(t *testing.T, newBackend NewBackend) {
	t.Run("MaxCount", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 10)...)
		b.setRetention("a-1", eventstore.Retention{MaxCount: 3})
		for _, c := range []struct {
			opts eventstore.ReadOptions
			want []int64
		}{
			{eventstore.ReadOptions{}, span(7, 9)},
			{eventstore.ReadOptions{From: 2}, span(7, 9)},
			{eventstore.ReadOptions{From: 8}, span(8, 9)},
			{eventstore.ReadOptions{Limit: 2}, span(7, 8)},
			{eventstore.ReadOptions{From: 3, Limit: 1}, []int64{7}},
			{eventstore.ReadOptions{From: 10}, nil},
			{eventstore.ReadOptions{Backward: true}, span(9, 7)},
			{eventstore.ReadOptions{Backward: true, From: 8}, span(8, 7)},
			{eventstore.ReadOptions{Backward: true, From: 5}, nil},
			{eventstore.ReadOptions{Backward: true, Limit: 2}, span(9, 8)},
			{eventstore.ReadOptions{Backward: true, Limit: 5}, span(9, 7)},
			{eventstore.ReadOptions{Backward: true, From: math.MaxInt64}, span(9, 7)},
		} {
			if got := b.read("a-1", c.opts); !equal(got, c.want) {
				t.Errorf("read %+v: versions %v, want %v", c.opts, got, c.want)
			}
		}
		v, err := b.store.StreamVersion(b.ctx, "a-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(9))               // the real last version
		b.is.Equal(len(b.logPositions()), 10) // the global log keeps them until a prune
		res := b.appendOK("a-1", eventstore.Exact(9), ev("E"))
		b.is.Equal(res.Version, int64(10))
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), span(8, 10))
	})

	t.Run("TruncateBefore", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 10)...)
		b.setRetention("a-1", eventstore.Retention{TruncateBefore: 4})
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), span(4, 9))
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{Backward: true, Limit: 7}), span(9, 4))
		b.setRetention("a-1", eventstore.Retention{TruncateBefore: 20}) // past the end
		b.is.Equal(len(b.read("a-1", eventstore.ReadOptions{})), 0)     // empty, not missing
		b.is.Equal(len(b.read("a-1", eventstore.ReadOptions{Backward: true})), 0)
		b.is.True(b.exists("a-1"))
		b.is.Equal(b.appendOK("a-1", eventstore.Exact(9), ev("E")).Version, int64(10))
	})

	t.Run("MaxAge", func(t *testing.T) {
		b, c, _ := setupRetention(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("Old", 3)...)
		c.Add(time.Hour)
		b.appendOK("a-1", eventstore.Any, numbered("New", 2)...)
		b.setRetention("a-1", eventstore.Retention{MaxAge: 90 * time.Minute})
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), span(0, 4))
		c.Add(time.Hour) // the old ones are two hours old now
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), span(3, 4))
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{Backward: true}), span(4, 3))
		c.Add(time.Hour)
		b.is.Equal(len(b.read("a-1", eventstore.ReadOptions{})), 0)
	})

	t.Run("MaxAgeNeverMakesAHole", func(t *testing.T) {
		b, c, _ := setupRetention(t, newBackend)
		b.appendOK("a-1", eventstore.Any, ev("E"))
		c.Add(-time.Hour) // the clock went back
		b.appendOK("a-1", eventstore.Any, ev("E"))
		c.Add(2 * time.Hour)
		b.appendOK("a-1", eventstore.Any, ev("E"))
		b.setRetention("a-1", eventstore.Retention{MaxAge: 90 * time.Minute})
		// Version 0 is an hour old, so it and all after it are retained,
		// version 1 too, though it looks two hours old.
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), span(0, 2))
		b.is.Equal(b.prune(eventstore.PruneOptions{}).Events, int64(0))
	})

	t.Run("Category", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 4)...)
		b.appendOK("b-1", eventstore.Any, numbered("E", 4)...)
		b.is.NoErr(b.store.SetCategoryRetention(b.ctx, "a", eventstore.Retention{MaxCount: 1}))
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), []int64{3})
		b.is.Equal(b.read("b-1", eventstore.ReadOptions{}), span(0, 3))
	})

	t.Run("MissingStream", func(t *testing.T) {
		b := setup(t, newBackend)
		b.setRetention("a-1", eventstore.Retention{MaxCount: 1})
		_, err := collect(b.store.ReadStream(b.ctx, "a-1", eventstore.ReadOptions{}))
		notFoundNaming(t, err, "a-1")
	})
}

// equal reports whether two version lists are equal, nil and empty alike.
func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testPrune(t *testing.T, newBackend NewBackend) {
	t.Run("RemovesExpired", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 10)...)
		other := b.appendOK("b-1", eventstore.Any, numbered("E", 2)...)
		for _, v := range []int64{2, 6, 8} {
			b.is.NoErr(b.store.SaveSnapshot(b.ctx, "a-1", v, []byte(`{}`), nil))
		}
		b.setRetention("a-1", eventstore.Retention{MaxCount: 3})
		res := b.prune(eventstore.PruneOptions{})
		b.is.Equal(res.Events, int64(7))
		b.is.Equal(res.Streams, int64(1))
		b.is.Equal(res.KeptBack, int64(0))
		b.is.Equal(res.Snapshots, int64(1)) // below version 6, the last removed

		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(streamsOf(log), []string{"a-1@7", "a-1@8", "a-1@9", "b-1@0", "b-1@1"})
		b.is.Equal(log[4].Position, other.Position) // the others keep their positions
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), span(7, 9))
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{Backward: true}), span(9, 7))
		snaps, err := b.store.ListSnapshots(b.ctx, "a-1")
		b.is.NoErr(err)
		b.is.Equal(len(snaps), 2)
		b.is.Equal(snaps[0].Version, int64(6)) // the state the kept events go on from
		// The snapshot Prune keeps is at a version whose event is gone: not
		// a problem.
		if r, err := b.store.Verify(b.ctx); err != nil || !r.OK() {
			t.Fatalf("verify after the prune: %v %q", err, r.Problems)
		}
		b.is.Equal(b.appendOK("a-1", eventstore.Exact(9), ev("E")).Version, int64(10))

		b.is.Equal(b.prune(eventstore.PruneOptions{}).Events, int64(1)) // MaxCount moved on
		b.is.Equal(b.prune(eventstore.PruneOptions{}).Events, int64(0))
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		if !r.OK() {
			t.Fatalf("verify after prune: %q", r.Problems)
		}
	})

	t.Run("Batches", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 8)...)
		b.setRetention("a-1", eventstore.Retention{MaxCount: 1})
		var totals []int64
		res := b.prune(eventstore.PruneOptions{BatchSize: 2, Progress: func(r eventstore.PruneResult) { totals = append(totals, r.Events) }})
		b.is.Equal(res.Events, int64(7))
		b.is.Equal(totals, []int64{2, 4, 6, 7}) // running totals, batch by batch
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), []int64{7})
	})

	t.Run("WriterFreeBetweenBatches", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 5)...)
		b.setRetention("a-1", eventstore.Retention{MaxCount: 1})
		appended := 0
		res := b.prune(eventstore.PruneOptions{BatchSize: 1, Progress: func(eventstore.PruneResult) {
			// Between two batches the prune holds no transaction: an
			// Append goes through (a hang detector, not a speed limit).
			ctx, cancel := context.WithTimeout(b.ctx, patience)
			defer cancel()
			_, err := b.store.Append(ctx, "b-1", eventstore.Any, ev("E"))
			b.is.NoErr(err)
			appended++
		}})
		b.is.Equal(res.Events, int64(4))
		b.is.Equal(appended, 4)
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		b := setup(t, newBackend)
		b.setRetention("a-1", eventstore.Retention{MaxCount: 10})
		const n = 200
		done := make(chan error, 1)
		go func() {
			for range n {
				if _, err := b.store.Append(b.ctx, "a-1", eventstore.Any, ev("E")); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		var pruned int64
		for running := true; running; {
			select {
			case err := <-done:
				b.is.NoErr(err)
				running = false
			default:
			}
			pruned += b.prune(eventstore.PruneOptions{BatchSize: 3}).Events
		}
		b.is.Equal(pruned, int64(n-10)) // the last prune ran after the last append
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), span(n-10, n-1))
		b.is.Equal(len(b.logPositions()), 10)
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		if !r.OK() {
			t.Fatalf("verify: %q", r.Problems)
		}
	})

	t.Run("MaxAge", func(t *testing.T) {
		b, c, _ := setupRetention(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("Old", 3)...)
		c.Add(time.Hour)
		b.appendOK("a-1", eventstore.Any, numbered("New", 2)...)
		b.is.NoErr(b.store.SetCategoryRetention(b.ctx, "a", eventstore.Retention{MaxAge: 30 * time.Minute}))
		b.is.Equal(b.prune(eventstore.PruneOptions{}).Events, int64(3))
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), span(3, 4))
		b.is.Equal(len(b.logPositions()), 2)
	})

	t.Run("PrunedEmptyKeepsVersion", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("b-1", eventstore.Any, ev("E"))
		last := b.appendOK("a-1", eventstore.Any, numbered("E", 5)...) // the highest positions
		b.setRetention("a-1", eventstore.Retention{TruncateBefore: 100})
		b.is.Equal(b.prune(eventstore.PruneOptions{}).Events, int64(5))

		v, err := b.store.StreamVersion(b.ctx, "a-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(4))
		b.is.True(b.exists("a-1"))
		b.is.Equal(len(b.read("a-1", eventstore.ReadOptions{})), 0)
		streams := all(b.is, b.store.ListStreams(b.ctx, eventstore.ListOptions{Prefix: "a-"}))
		b.is.Equal(len(streams), 1)
		b.is.Equal(streams[0].Version, int64(4))

		b.setRetention("a-1", eventstore.Retention{})
		res := b.appendOK("a-1", eventstore.Exact(4), ev("E"))
		b.is.Equal(res.Version, int64(5))
		b.is.True(res.Position > last.Position) // positions are never reused
		b.is.True(b.appendOK("b-1", eventstore.Any, ev("E")).Position > res.Position)
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), []int64{5})
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		if !r.OK() {
			t.Fatalf("verify: %q", r.Problems)
		}
	})

	t.Run("EarlierLives", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		b.is.NoErr(b.store.DeleteStream(b.ctx, "a-1", eventstore.Any))
		b.appendOK("a-1", eventstore.Any, numbered("E", 2)...)
		b.appendOK("a-2", eventstore.Any, numbered("E", 2)...)
		b.is.NoErr(b.store.DeleteStream(b.ctx, "a-2", eventstore.Any)) // deleted, no life since
		b.appendOK("c-1", eventstore.Any, ev("E"))
		b.is.NoErr(b.store.DeleteStream(b.ctx, "c-1", eventstore.Any)) // no policy: stays in the log
		b.is.NoErr(b.store.SetCategoryRetention(b.ctx, "a", eventstore.Retention{MaxCount: 10}))

		res := b.prune(eventstore.PruneOptions{})
		b.is.Equal(res.Events, int64(5)) // the earlier lives of a-1 and a-2, as a whole
		b.is.Equal(res.Streams, int64(2))
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(streamsOf(log), []string{"a-1@0", "a-1@1", "c-1@0"})
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), span(0, 1))
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		b.is.True(r.OK())
	})
}

// shipped runs a forwarder named name until its checkpoint reaches
// position, then stops it.
func (b *bundle) shipped(t *testing.T, name string, position int64) {
	t.Helper()
	_, stop := b.forward(t, eventstore.ForwarderOptions{Name: name, Sink: newFakeSink()})
	deadline := time.Now().Add(patience)
	for {
		at, _, err := b.backend.LoadCheckpoint(b.ctx, "outbox/"+name)
		b.is.NoErr(err)
		if at >= position {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forwarder did not reach position %d", position)
		}
		time.Sleep(time.Millisecond)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("forwarder: %v", err)
	}
}

func testPruneAfter(t *testing.T, newBackend NewBackend) {
	t.Run("ForwarderBehind", func(t *testing.T) {
		b := setup(t, newBackend)
		first := b.appendOK("a-1", eventstore.Any, numbered("E", 5)...)
		b.shipped(t, "central", first.Position)
		b.appendOK("a-1", eventstore.Any, numbered("E", 5)...) // not shipped: the link is down
		b.setRetention("a-1", eventstore.Retention{MaxCount: 2})

		res := b.prune(eventstore.PruneOptions{After: []string{"central"}})
		b.is.Equal(res.Events, int64(5))   // only what has shipped
		b.is.Equal(res.KeptBack, int64(3)) // versions 5-7 expired but not shipped
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(versions(log), span(5, 9))

		b.shipped(t, "central", log[len(log)-1].Position) // the link is back
		res = b.prune(eventstore.PruneOptions{After: []string{"central"}})
		b.is.Equal(res.Events, int64(3))
		b.is.Equal(res.KeptBack, int64(0))
	})

	t.Run("UnknownName", func(t *testing.T) {
		b := setup(t, newBackend)
		first := b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		b.shipped(t, "central", first.Position)
		b.setRetention("a-1", eventstore.Retention{MaxCount: 1})
		_, err := b.store.Prune(b.ctx, eventstore.PruneOptions{After: []string{"central", "cnetral"}})
		b.is.True(errors.Is(err, eventstore.ErrUnknownConsumer))
		b.is.True(errors.Is(err, eventstore.ErrInvalidArgument))
		b.is.Equal(len(b.logPositions()), 3) // nothing removed
	})

	t.Run("ConsumerGroup", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 6)...)
		log := b.logPositions()
		b.setRetention("a-1", eventstore.Retention{MaxCount: 1})
		cp := b.backend
		member := func(i int) string { return eventstore.ConsumerKey("proj", eventstore.Group{Member: i, Size: 2}) }
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, member(0), log[4], time.Now()))
		res := b.prune(eventstore.PruneOptions{After: []string{"proj"}})
		b.is.Equal(res.Events, int64(0)) // member 1 has processed nothing yet
		b.is.Equal(res.KeptBack, int64(5))
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, member(1), log[1], time.Now()))
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, "solo", log[3], time.Now()))
		res = b.prune(eventstore.PruneOptions{After: []string{"proj", "solo"}})
		b.is.Equal(res.Events, int64(2)) // up to the slowest member
		b.is.Equal(res.KeptBack, int64(3))
		b.is.Equal(b.read("a-1", eventstore.ReadOptions{}), []int64{5})
		b.is.Equal(versions(all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))), span(2, 5))
	})
}

func testPruneSubscriptions(t *testing.T, newBackend NewBackend) {
	t.Run("GoesOnAndSays", func(t *testing.T) {
		b, _, h := setupRetention(t, newBackend, "subscription.events_pruned")
		b.appendOK("a-1", eventstore.Any, numbered("E", 5)...)
		kept := b.appendOK("b-1", eventstore.Any, ev("Kept"))
		log := b.logPositions()
		b.setRetention("a-1", eventstore.Retention{TruncateBefore: 5})
		b.prune(eventstore.PruneOptions{})

		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{From: log[1]})
		b.is.NoErr(err)
		defer sub.Close()
		e := receive(t, sub, 1)[0]
		b.is.Equal(e.Position, kept.Position) // the next event that exists
		got := h.next(t)
		b.is.Equal(got.From, log[1])
		b.is.Equal(got.Position, log[4])
		b.is.Equal(got.Consumer, "")
		b.quiet(t, "b-1", sub)
	})

	t.Run("Consumer", func(t *testing.T) {
		b, _, h := setupRetention(t, newBackend, "subscription.events_pruned")
		b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		kept := b.appendOK("b-1", eventstore.Any, ev("Kept"))
		log := b.logPositions()
		b.setRetention("a-1", eventstore.Retention{MaxCount: 1})
		b.prune(eventstore.PruneOptions{})

		rec := newRecorder()
		r := b.start(eventstore.ConsumerOptions{Name: "proj", Handler: rec.handle})
		got := rec.wait(t, 2)
		b.is.Equal(positions(got), []int64{log[2], kept.Position})
		hp := h.next(t)
		b.is.Equal(hp.Consumer, "proj")
		b.is.Equal([]int64{hp.From, hp.Position}, []int64{log[0], log[1]})
		b.is.True(errors.Is(r.stop(t), context.Canceled))
	})

	t.Run("OtherStreamsStayQuiet", func(t *testing.T) {
		b, _, h := setupRetention(t, newBackend, "subscription.events_pruned")
		b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		b.appendOK("b-1", eventstore.Any, ev("Kept"))
		b.setRetention("a-1", eventstore.Retention{TruncateBefore: 3})
		b.prune(eventstore.PruneOptions{})
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Filter: eventstore.Filter{Categories: []string{"b"}}})
		b.is.NoErr(err)
		defer sub.Close()
		receive(t, sub, 1)
		b.quiet(t, "b-1", sub) // the hook runs before the event it precedes is sent
		h.mu.Lock()
		defer h.mu.Unlock()
		b.is.Equal(len(h.names), 0) // the pruned events were never the subscription's
	})
}

func testPruneEvery(t *testing.T, newBackend NewBackend) {
	t.Run("ReportsEachRun", func(t *testing.T) {
		b, _, h := setupRetention(t, newBackend, "prune.done", "prune.kept_back", "prune.failed")
		first := b.appendOK("a-1", eventstore.Any, numbered("E", 4)...)
		b.shipped(t, "central", first.Position)
		b.appendOK("a-1", eventstore.Any, numbered("E", 2)...)
		b.setRetention("a-1", eventstore.Retention{MaxCount: 1})

		ctx, cancel := context.WithCancel(b.ctx)
		done := make(chan error, 1)
		go func() {
			done <- b.store.PruneEvery(ctx, time.Hour, eventstore.PruneOptions{After: []string{"central"}})
		}()
		got := h.next(t)
		b.is.Equal(got.Name, "prune.done")
		b.is.Equal(got.Events, 4)
		got = h.next(t)
		b.is.Equal(got.Name, "prune.kept_back")
		b.is.Equal(got.Events, 1)
		cancel()
		b.is.True(errors.Is(<-done, context.Canceled))
		st := b.store.Stats()
		b.is.Equal(st.Prunes, uint64(1))
		b.is.Equal(st.EventsPruned, uint64(4))
		b.is.Equal(st.KeptBack, int64(1))
		b.is.Equal(st.PruneFailures, uint64(0))
	})

	t.Run("FailedRunGoesOn", func(t *testing.T) {
		b, _, h := setupRetention(t, newBackend, "prune.failed")
		b.appendOK("a-1", eventstore.Any, numbered("E", 2)...)
		b.setRetention("a-1", eventstore.Retention{MaxCount: 1})
		done := make(chan error, 1)
		go func() {
			done <- b.store.PruneEvery(b.ctx, time.Hour, eventstore.PruneOptions{After: []string{"not-started"}})
		}()
		got := h.next(t)
		b.is.True(errors.Is(got.Err, eventstore.ErrUnknownConsumer))
		b.is.Equal(b.store.Stats().PruneFailures, uint64(1))
		b.is.Equal(len(b.logPositions()), 2) // nothing removed
		b.is.NoErr(b.store.Close())
		b.is.True(errors.Is(<-done, eventstore.ErrClosed)) // it ran until the store closed
	})
}
