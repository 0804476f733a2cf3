package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
)

// testTransact checks [eventstore.Store.Transact] on a backend that is an
// [eventstore.Transactor].
func testTransact(t *testing.T, newBackend NewBackend) {
	t.Run("Commit", func(t *testing.T) {
		b := setup(t, newBackend)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{})
		b.is.NoErr(err)
		defer sub.Close()
		err = b.store.Transact(b.ctx, func(ctx context.Context) error {
			if _, err := b.store.Append(ctx, "order-1", eventstore.NoStream, ev("Placed")); err != nil {
				return err
			}
			// Reads see the store as it was before the transaction, inside
			// it or not, and nothing is delivered before the commit.
			v, err := b.store.StreamVersion(ctx, "order-1")
			if err != nil || v != -1 {
				t.Errorf("read inside the transaction saw version %d (%v)", v, err)
			}
			for e, err := range b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
				t.Errorf("read outside the transaction saw position %d (%v)", e.Position, err)
			}
			select {
			case e := <-sub.Events():
				t.Errorf("delivered before commit: %v", e.Position)
			default:
			}
			// Writes see the transaction's own writes.
			_, err = b.store.Append(ctx, "order-1", eventstore.Exact(0), ev("Paid"))
			return err
		})
		b.is.NoErr(err)
		got := receive(t, sub, 2)
		b.is.Equal(streamsOf(got), []string{"order-1@0", "order-1@1"})
		b.is.True(got[0].Position < got[1].Position)
	})

	t.Run("Rollback", func(t *testing.T) {
		b := setup(t, newBackend)
		boom := errors.New("payment declined")
		err := b.store.Transact(b.ctx, func(ctx context.Context) error {
			if _, err := b.store.Append(ctx, "order-1", eventstore.NoStream, ev("Placed")); err != nil {
				return err
			}
			if err := b.store.SaveSnapshot(ctx, "order-1", 0, []byte(`{}`), nil); err != nil {
				return err
			}
			return boom
		})
		b.is.Equal(err, boom)
		b.is.Equal(b.exists("order-1"), false)
		res := b.appendOK("order-2", eventstore.NoStream, ev("Placed"))
		b.is.True(res.Position >= 1)

		// A panic rolls back too, and goes on up.
		func() {
			defer func() { b.is.True(recover() != nil) }()
			_ = b.store.Transact(b.ctx, func(ctx context.Context) error {
				_, _ = b.store.Append(ctx, "order-3", eventstore.NoStream, ev("Placed"))
				panic("bug")
			})
		}()
		b.is.Equal(b.exists("order-3"), false)
		after := b.appendOK("order-4", eventstore.NoStream, ev("Placed")) // the writer is free again
		b.is.True(after.Position > res.Position)
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(streamsOf(log), []string{"order-2@0", "order-4@0"})
	})

	t.Run("FailedWriteInside", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("order-1", eventstore.NoStream, ev("Placed"))
		err := b.store.Transact(b.ctx, func(ctx context.Context) error {
			_, err := b.store.Append(ctx, "order-1", eventstore.NoStream, ev("Dup"), ev("Dup"))
			if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Errorf("conflict inside: %v", err)
			}
			_, err = b.store.Append(ctx, "order-2", eventstore.NoStream, ev("Placed"))
			return err
		})
		b.is.NoErr(err)
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(streamsOf(log), []string{"order-1@0", "order-2@0"})
	})

	t.Run("ContextEndsInside", func(t *testing.T) {
		b := setup(t, newBackend)
		ctx, cancel := context.WithCancel(b.ctx)
		err := b.store.Transact(ctx, func(ctx context.Context) error {
			if _, err := b.store.Append(ctx, "order-1", eventstore.NoStream, ev("Placed")); err != nil {
				return err
			}
			cancel()
			return nil
		})
		b.is.True(errors.Is(err, context.Canceled))
		b.is.Equal(b.exists("order-1"), false)
	})

	// A write made with another context cannot join the transaction: it
	// waits for the writer the transaction holds, and gives up when its
	// context ends, leaving nothing behind.
	t.Run("WriteWithAnotherContext", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("before-1", eventstore.NoStream, ev("E"))
		err := b.store.Transact(b.ctx, func(ctx context.Context) error {
			other, cancel := context.WithTimeout(b.ctx, 20*time.Millisecond)
			defer cancel()
			if _, err := b.store.Append(other, "wrong-1", eventstore.NoStream, ev("E")); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("append with another context: %v", err)
			}
			if err := b.store.DeleteStream(other, "before-1", eventstore.Any); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("delete with another context: %v", err)
			}
			_, err := b.store.Append(ctx, "right-1", eventstore.NoStream, ev("E"))
			return err
		})
		b.is.NoErr(err)
		for stream, want := range map[string]bool{"before-1": true, "wrong-1": false, "right-1": true} {
			b.is.Equal(b.exists(stream), want)
		}
	})

	// Another goroutine's write waits for the transaction and then sees
	// what it committed.
	t.Run("ConcurrentWriterWaits", func(t *testing.T) {
		b := setup(t, newBackend)
		inside, started := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		var res eventstore.AppendResult
		var werr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-inside
			close(started)
			res, werr = b.store.Append(b.ctx, "order-1", eventstore.Exact(0), ev("Paid"))
		}()
		err := b.store.Transact(b.ctx, func(ctx context.Context) error {
			_, err := b.store.Append(ctx, "order-1", eventstore.NoStream, ev("Placed"))
			close(inside)
			<-started
			return err
		})
		b.is.NoErr(err)
		wg.Wait()
		b.is.NoErr(werr) // it saw the transaction's event, version 0
		b.is.Equal(res.Version, int64(1))
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(streamsOf(log), []string{"order-1@0", "order-1@1"})
	})

	testNestedTransact(t, newBackend)
	testNestedRollbackSkipsNothing(t, newBackend)
}

// testNestedRollbackSkipsNothing: what a rolled-back level took is never
// skipped by those who read the log.
func testNestedRollbackSkipsNothing(t *testing.T, newBackend NewBackend) {
	// An Append rolled back by a nested Transact may give its position
	// back, for the next Append to take again (SQLite does). Nobody may
	// skip it then: subscriptions, consumers and forwarders, running during
	// the rollback or started after it, each see every committed position
	// once.
	t.Run("NestedTransactRollback", func(t *testing.T) {
		b := setup(t, newBackend)
		type watcher struct {
			name string
			upTo func(p int64) []int64 // the positions it sees up to p, inclusive
		}
		var (
			watchers   []watcher
			forwarders []*eventstore.Forwarder
		)
		watch := func(label string) {
			for _, filter := range []eventstore.Filter{{}, {Categories: []string{"a"}}} {
				sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Filter: filter})
				b.is.NoErr(err)
				t.Cleanup(func() { sub.Close() })
				watchers = append(watchers, watcher{fmt.Sprintf("subscription %s %v", label, filter.Categories), func(p int64) (got []int64) {
					for len(got) == 0 || got[len(got)-1] < p {
						got = append(got, receive(t, sub, 1)[0].Position)
					}
					return got
				}})
			}
			rec := newRecorder()
			c := b.start(eventstore.ConsumerOptions{Name: "projector-" + label, Handler: rec.handle})
			t.Cleanup(func() { c.stop(t) })
			watchers = append(watchers, watcher{"consumer " + label, func(p int64) (got []int64) {
				for len(got) == 0 || got[len(got)-1] < p {
					got = append(got, rec.wait(t, 1)[0].Position)
				}
				return got
			}})
			sink := newFakeSink()
			f, stop := b.forward(t, eventstore.ForwarderOptions{Name: "central-" + label, Sink: sink})
			t.Cleanup(func() { stop() })
			forwarders = append(forwarders, f)
			taken := 0
			watchers = append(watchers, watcher{"forwarder " + label, func(p int64) []int64 {
				for {
					sink.mu.Lock()
					got, have := positions(sink.got[taken:]), len(sink.seen)
					sink.mu.Unlock()
					if len(got) > 0 && got[len(got)-1] >= p {
						taken += len(got)
						return got
					}
					sink.waitFor(t, have+1)
				}
			}})
		}
		check := func(want ...int64) {
			t.Helper()
			for _, w := range watchers {
				if got := w.upTo(want[len(want)-1]); !slices.Equal(got, want) {
					t.Errorf("%s: got %v, want %v", w.name, got, want)
				}
			}
		}

		watch("during")
		first := b.appendOK("a-1", eventstore.NoStream, ev("E")).Position
		check(first)
		boom := errors.New("inner failure")
		err := b.store.Transact(b.ctx, func(ctx context.Context) error {
			err := b.store.Transact(ctx, func(ctx context.Context) error {
				if _, err := b.store.Append(ctx, "a-2", eventstore.NoStream, ev("E")); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				return fmt.Errorf("inner transaction: %w", err)
			}
			return nil
		})
		b.is.NoErr(err)
		// The rolled-back append was never committed: nothing is pending.
		for deadline := time.Now().Add(patience); forwarders[0].Status().Position != first; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("forwarder status: %+v", forwarders[0].Status())
			}
		}
		b.is.Equal(forwarders[0].Status().Pending, int64(0))
		during := len(watchers)
		watch("after")
		for _, w := range watchers[during:] {
			if got := w.upTo(first); !slices.Equal(got, []int64{first}) {
				t.Errorf("%s: got %v, want [%d]", w.name, got, first)
			}
		}
		p2 := b.appendOK("a-2", eventstore.NoStream, ev("E")).Position // perhaps the rolled-back position
		p3 := b.appendOK("a-3", eventstore.NoStream, ev("E")).Position
		p4 := b.appendOK("a-4", eventstore.NoStream, ev("E")).Position
		check(p2, p3, p4) // p4 is the barrier: nothing skipped before it, nothing twice
	})
}

// testNestedTransact checks that a Transact with a transaction's context
// is a savepoint: when it fails, its writes are undone and the outer
// transaction goes on.
func testNestedTransact(t *testing.T, newBackend NewBackend) {
	t.Run("NestedFailsOuterCommits", func(t *testing.T) {
		b := setup(t, newBackend)
		boom := errors.New("inner fails")
		err := b.store.Transact(b.ctx, func(ctx context.Context) error {
			if _, err := b.store.Append(ctx, "outer-1", eventstore.NoStream, ev("Before")); err != nil {
				return err
			}
			err := b.store.Transact(ctx, func(ctx context.Context) error {
				if _, err := b.store.Append(ctx, "inner-1", eventstore.NoStream, ev("Undone")); err != nil {
					return err
				}
				if _, err := b.store.Append(ctx, "outer-1", eventstore.Exact(0), ev("Undone")); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Errorf("nested Transact: %v", err)
			}
			// The outer level sees itself as before the inner one.
			_, err = b.store.Append(ctx, "outer-1", eventstore.Exact(0), ev("After"))
			return err
		})
		b.is.NoErr(err)
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(streamsOf(log), []string{"outer-1@0", "outer-1@1"})
		b.is.Equal(log[1].Type, "After")
		b.is.Equal(b.exists("inner-1"), false)
	})

	t.Run("NestedPanics", func(t *testing.T) {
		b := setup(t, newBackend)
		err := b.store.Transact(b.ctx, func(ctx context.Context) error {
			func() {
				defer func() { _ = recover() }()
				_ = b.store.Transact(ctx, func(ctx context.Context) error {
					_, _ = b.store.Append(ctx, "inner-1", eventstore.NoStream, ev("Undone"))
					panic("bug")
				})
			}()
			_, err := b.store.Append(ctx, "outer-1", eventstore.NoStream, ev("Kept"))
			return err
		})
		b.is.NoErr(err)
		b.is.Equal(b.exists("inner-1"), false)
		b.is.Equal(b.exists("outer-1"), true)
	})

	t.Run("NestedCommitsWithOuter", func(t *testing.T) {
		b := setup(t, newBackend)
		boom := errors.New("outer fails")
		err := b.store.Transact(b.ctx, func(ctx context.Context) error {
			err := b.store.Transact(ctx, func(ctx context.Context) error {
				_, err := b.store.Append(ctx, "inner-1", eventstore.NoStream, ev("E"))
				return err
			})
			if err != nil {
				return err
			}
			return boom // undoes the inner level too
		})
		b.is.Equal(err, boom)
		b.is.Equal(b.exists("inner-1"), false)

		err = b.store.Transact(b.ctx, func(ctx context.Context) error {
			return b.store.Transact(ctx, func(ctx context.Context) error {
				_, err := b.store.Append(ctx, "inner-1", eventstore.NoStream, ev("E"))
				return err
			})
		})
		b.is.NoErr(err)
		b.is.Equal(b.exists("inner-1"), true)
	})
}

// testTxHandler checks exactly-once consumers, whose handler runs in the
// transaction that saves the checkpoint, on a backend that is an
// [eventstore.Transactor].
func testTxHandler(t *testing.T, newBackend NewBackend) {
	// A handler that appends after a failed attempt: the failed
	// attempt's append is rolled back with it, so each event leads to
	// exactly one derived event, committed with the checkpoint.
	t.Run("RetriedAttemptLeavesNothing", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		log := b.logPositions()
		fails := 1
		rec := newRecorder()
		opts := eventstore.ConsumerOptions{
			Name:       "exact",
			MinBackoff: time.Millisecond,
			TxHandler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				if e.Position == log[1] && fails > 0 {
					fails--
					return errors.New("rolled back")
				}
				return rec.handle(ctx, e)
			},
		}
		c := b.start(opts)
		b.is.Equal(positions(rec.wait(t, 3)), log)
		// The handler returned; its transaction commits the checkpoint
		// right after.
		deadline := time.Now().Add(patience)
		for {
			infos, err := b.store.Consumers(b.ctx)
			b.is.NoErr(err)
			if len(infos) == 1 && infos[0].Position == log[2] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("checkpoint: %v", infos)
			}
			time.Sleep(time.Millisecond)
		}
		c.stop(t)
	})
	// A process manager appends what it decides from its TxHandler; the
	// events commit with its checkpoint, and subscribers see them once
	// committed.
	t.Run("AppendInsideHandler", func(t *testing.T) {
		b := setup(t, newBackend)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Filter: eventstore.Filter{Types: []string{"Derived"}}})
		b.is.NoErr(err)
		defer sub.Close()
		placed := b.appendOK("order-1", eventstore.Any, ev("Placed"))
		c := b.start(eventstore.ConsumerOptions{
			Name:   "manager",
			Filter: eventstore.Filter{Types: []string{"Placed"}},
			TxHandler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				_, err := b.store.Append(ctx, "shipment-1", eventstore.NoStream, ev("Derived"))
				return err
			},
		})
		b.is.Equal(streamsOf(receive(t, sub, 1)), []string{"shipment-1@0"})
		b.is.True(b.checkpoint("manager").Position >= placed.Position) // committed together with the event
		c.stop(t)
	})

	t.Run("WithCheckpointNeverLowers", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 9)...)
		log := b.logPositions()
		cp, txcp := b.backend, b.backend.(eventstore.Transactor)
		at := time.Now()
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, "mono", log[4], at))
		b.is.NoErr(txcp.WithCheckpoint(b.ctx, "mono", log[3], at, func(context.Context) error { return nil })) // a stale instance
		pos, ok, err := cp.LoadCheckpoint(b.ctx, "mono")
		b.is.NoErr(err)
		b.is.True(ok)
		b.is.Equal(pos, log[4])
	})

	t.Run("UpdatedAtFollowsClock", func(t *testing.T) {
		b, clock := setupClock(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 2)...)
		rec := newRecorder()
		later := clock.Add(time.Hour)
		c := b.start(eventstore.ConsumerOptions{Name: "timed-tx", TxHandler: rec.handle})
		rec.wait(t, 2)
		c.stop(t)
		b.is.True(b.checkpoint("timed-tx").UpdatedAt.Equal(later))
	})

	t.Run("AppendsCommitWithCheckpoint", func(t *testing.T) {
		b := setup(t, newBackend)
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Filter: eventstore.Filter{Types: []string{"Derived"}}})
		b.is.NoErr(err)
		defer sub.Close()
		b.appendOK("order-1", eventstore.Any, numbered("Placed", 3)...)
		log := b.logPositions()
		failed := false
		c := b.start(eventstore.ConsumerOptions{
			Name:       "manager",
			MinBackoff: time.Millisecond,
			Filter:     eventstore.Filter{Types: []string{"Placed"}},
			TxHandler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				if _, err := b.store.Append(ctx, "shipment-1", eventstore.Any, ev("Derived", "from", e.Position)); err != nil {
					return err
				}
				if e.Position == log[1] && !failed {
					failed = true
					return errors.New("fails after appending") // the append must roll back
				}
				return nil
			},
		})
		got := receive(t, sub, 3)
		b.is.Equal(versions(got), []int64{0, 1, 2})
		c.stop(t)
		b.is.True(failed)
		b.is.True(b.checkpoint("manager").Position >= log[2]) // and maybe past the Derived events it skips
		derived := all(b.is, b.store.ReadStream(b.ctx, "shipment-1", eventstore.ReadOptions{}))
		b.is.Equal(len(derived), 3) // once per event, though the second was tried twice
		// Each derived event committed with the checkpoint of its cause.
		for i, e := range derived {
			b.is.Equal(string(e.Data), fmt.Sprintf(`{"from":%d}`, log[i]))
		}
	})
}

// testWithoutCapabilities checks what a backend without the optional
// capabilities does: the backend under test, with them hidden.
func testWithoutCapabilities(t *testing.T, newBackend NewBackend) {
	bare := func(t *testing.T) eventstore.Backend { return bareBackend{newBackend(t)} }
	t.Run("Transact", func(t *testing.T) {
		b := setup(t, bare)
		called := false
		err := b.store.Transact(b.ctx, func(context.Context) error { called = true; return nil })
		b.is.True(errors.Is(err, errors.ErrUnsupported))
		b.is.True(!called)
	})
	t.Run("TxHandler", func(t *testing.T) {
		b := setup(t, bare)
		err := b.store.Consume(b.ctx, eventstore.ConsumerOptions{Name: "exact", TxHandler: func(context.Context, eventstore.RecordedEvent) error { return nil }})
		b.is.True(errors.Is(err, errors.ErrUnsupported))
	})
	t.Run("Verify", func(t *testing.T) {
		b := setup(t, bare)
		b.appendOK("a-1", eventstore.Any, ev("E"))
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		b.is.True(r.OK())
		b.is.True(!slices.Contains(r.Checked, eventstore.VerifyIntegrity))
		b.is.Equal(r.Skipped, []string{"integrity: the backend has no storage check"})
	})
	t.Run("Retention", func(t *testing.T) {
		b := setup(t, bare)
		b.appendOK("a-1", eventstore.Any, numbered("E", 3)...)
		err := b.store.SetRetention(b.ctx, "a-1", eventstore.Retention{MaxCount: 1})
		b.is.True(errors.Is(err, errors.ErrUnsupported))
		_, err = b.store.Prune(b.ctx, eventstore.PruneOptions{})
		b.is.True(errors.Is(err, errors.ErrUnsupported))
		_, err = b.store.Retentions(b.ctx)
		b.is.True(errors.Is(err, errors.ErrUnsupported))
		b.is.Equal(len(all(b.is, b.store.ReadStream(b.ctx, "a-1", eventstore.ReadOptions{}))), 3) // nothing truncated
	})
}

// bareBackend has the methods of [eventstore.Backend] and none of the
// optional capabilities of the backend it wraps.
type bareBackend struct{ eventstore.Backend }

// exists reports whether stream exists.
func (b *bundle) exists(stream string) bool {
	b.is.Helper()
	ok, err := b.store.StreamExists(b.ctx, stream)
	b.is.NoErr(err)
	return ok
}
