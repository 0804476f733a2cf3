package eventstoretest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/edge-es/eventstore"
)

func testConcurrency(t *testing.T, newBackend NewBackend) {
	t.Run("OneWinnerPerVersion", func(t *testing.T) {
		b := setup(t, newBackend)
		const writers, rounds = 16, 20
		for round := range rounds {
			expected := eventstore.Exact(int64(round - 1)) // Exact(-1) is NoStream
			var (
				wg        sync.WaitGroup
				start     = make(chan struct{})
				mu        sync.Mutex
				winners   []int
				conflicts int
			)
			for w := range writers {
				wg.Go(func() {
					<-start
					res, err := b.store.Append(b.ctx, "race-1", expected, ev("Won", "writer", w, "round", round))
					mu.Lock()
					defer mu.Unlock()
					var conflict *eventstore.VersionConflictError
					switch {
					case err == nil:
						winners = append(winners, w)
						if res.Version != int64(round) {
							t.Errorf("round %d: winner got version %d", round, res.Version)
						}
					case errors.As(err, &conflict):
						conflicts++
						if conflict.Actual != int64(round) {
							t.Errorf("round %d: conflict reports actual %d", round, conflict.Actual)
						}
					default:
						t.Errorf("round %d: %v", round, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(winners) != 1 || conflicts != writers-1 {
				t.Fatalf("round %d: %d winners, %d conflicts", round, len(winners), conflicts)
			}
			got := all(b.is, b.store.ReadStream(b.ctx, "race-1", eventstore.ReadOptions{From: int64(round)}))
			b.is.Equal(len(got), 1)
			b.is.Equal(string(got[0].Data), fmt.Sprintf(`{"round":%d,"writer":%d}`, round, winners[0])) // the stored event is the winner's
		}
	})

	t.Run("RetryLoopLosesNoUpdate", func(t *testing.T) {
		b := setup(t, newBackend)
		const writers, each = 16, 8
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := 0; i < each; {
					v, err := b.store.StreamVersion(b.ctx, "counter-1")
					if err != nil {
						t.Error(err)
						return
					}
					_, err = b.store.Append(b.ctx, "counter-1", eventstore.Exact(v), ev("Inc", "w", w, "i", i))
					switch {
					case err == nil:
						i++
					case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got := all(b.is, b.store.ReadStream(b.ctx, "counter-1", eventstore.ReadOptions{}))
		b.is.Equal(len(got), writers*each) // every acknowledged increment is there
		seen := map[string]bool{}
		for i, e := range got {
			b.is.Equal(e.Version, int64(i))
			seen[string(e.Data)] = true
		}
		b.is.Equal(len(seen), writers*each) // and each exactly once
	})

	t.Run("ReaderNeverSkipsAPosition", func(t *testing.T) {
		b := setup(t, newBackend)
		const writers, each = 8, 40
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					stream := fmt.Sprintf("w%d-%d", w, i%3)
					if _, err := b.store.Append(b.ctx, stream, eventstore.Any, ev("E"), ev("E")); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()

		// Poll the log from the last position seen, as a catch-up reader
		// does. Every position must arrive, once, in order, even though
		// writers commit concurrently.
		var last int64
		var seen []int64
		finished := false
		for !finished {
			select {
			case <-done:
				finished = true // one more pass after the writers stopped
			default:
			}
			for e, err := range b.store.ReadAll(b.ctx, eventstore.ReadOptions{From: last + 1}, eventstore.Filter{}) {
				b.is.NoErr(err)
				if e.Position <= last {
					t.Fatalf("read position %d after %d", e.Position, last)
				}
				last = e.Position
				seen = append(seen, last)
			}
		}
		b.is.Equal(len(seen), writers*each*2)
		b.is.Equal(seen, b.logPositions()) // none skipped
		for w := range writers {
			for s := range 3 {
				got := all(b.is, b.store.ReadStream(b.ctx, fmt.Sprintf("w%d-%d", w, s), eventstore.ReadOptions{}))
				for i, e := range got {
					b.is.Equal(e.Version, int64(i)) // versions stay contiguous
				}
			}
		}
	})
}
