package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/edge-es/eventstore"
)

// testCommitReporter checks a backend that reports its commits
// ([eventstore.CommitReporter]): what it reports is exactly what storage
// holds, and subscriptions that take reported commits never skip or
// repeat an event, whatever else commits beside them.
func testCommitReporter(t *testing.T, newBackend NewBackend) {
	t.Run("ReportsWhatStorageHolds", func(t *testing.T) {
		b := setup(t, newBackend)
		var (
			mu      sync.Mutex
			commits []eventstore.Commit
		)
		b.backend.(eventstore.CommitReporter).ReportCommits(func(c eventstore.Commit) {
			mu.Lock()
			defer mu.Unlock()
			commits = append(commits, c)
		})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 20 {
					data := []byte(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
					e := eventstore.Event{Type: "E", Data: data, Metadata: []byte(`{"m":1}`)}
					if _, err := b.store.Append(b.ctx, fmt.Sprintf("w-%d", w%3), eventstore.Any, e, ev("F")); err != nil {
						t.Error(err)
						return
					}
					copy(data, "XXXXXXXX") // the caller's buffer is its own again
				}
			})
		}
		wg.Wait()
		// Appends that write nothing are not reported as events.
		_, err := b.store.Append(b.ctx, "w-0", eventstore.NoStream, ev("Conflict"))
		b.is.True(errors.Is(err, eventstore.ErrWrongExpectedVersion))
		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		mu.Lock()
		defer mu.Unlock()
		var reported []eventstore.RecordedEvent
		for _, c := range commits {
			if len(c.Events) == 0 {
				continue // "something committed": allowed, says nothing
			}
			for _, e := range c.Events[1:] {
				b.is.True(e.Position > c.Events[0].Position) // in position order
			}
			reported = append(reported, c.Events...)
		}
		b.is.Equal(len(reported), len(log)) // every commit reported, each once
		for i := range log {
			if !equalEvents(reported[i], log[i]) {
				t.Fatalf("reported %+v, stored %+v", reported[i], log[i])
			}
		}
	})

	t.Run("HandedCommitsNeitherSkipNorRepeat", func(t *testing.T) {
		b := setup(t, newBackend)
		_, transacts := b.backend.(eventstore.Transactor)
		type probe struct {
			filter eventstore.Filter
			from   int64
			sub    *eventstore.Subscription
		}
		filters := []eventstore.Filter{
			{},
			{Categories: []string{"red"}},
			{Types: []string{"Odd"}, Streams: []string{"red-0", "blue-1", "red-end"}},
		}
		var probes []*probe
		subscribe := func(from int64) {
			for i, f := range filters {
				sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{From: from, Filter: f, Buffer: []int{1, 8, 512}[i]})
				b.is.NoErr(err)
				t.Cleanup(func() { sub.Close() })
				probes = append(probes, &probe{filter: f, from: from, sub: sub})
			}
		}
		subscribe(0)
		b.appendOK("red-0", eventstore.Any, ev("Odd"))
		subscribe(eventstore.FromNow)
		errRollback := errors.New("rolled back")
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Go(func() {
				for i := range 40 {
					stream := fmt.Sprintf("%s-%d", []string{"red", "blue"}[(w+i)%2], i%3)
					events := []eventstore.Event{ev([]string{"Even", "Odd"}[i%2], "w", w, "i", i)}
					if i%4 == 0 {
						events = append(events, ev("Odd"), ev("Even"))
					}
					if _, err := b.store.Append(b.ctx, stream, eventstore.Any, events...); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		if transacts {
			// Beside the handed commits: transactions, some rolled back
			// whole, some with a nested one rolled back, whose positions
			// later appends take again.
			wg.Go(func() {
				for i := range 30 {
					err := b.store.Transact(b.ctx, func(ctx context.Context) error {
						if _, err := b.store.Append(ctx, "red-1", eventstore.Any, ev("Odd", "tx", i)); err != nil {
							return err
						}
						nested := b.store.Transact(ctx, func(ctx context.Context) error {
							if _, err := b.store.Append(ctx, "blue-0", eventstore.Any, ev("Odd", "nested", i)); err != nil {
								return err
							}
							if i%2 == 0 {
								return errRollback
							}
							return nil
						})
						if nested != nil && !errors.Is(nested, errRollback) {
							return nested
						}
						if i%3 == 0 {
							return errRollback
						}
						return nil
					})
					if err != nil && !errors.Is(err, errRollback) {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		// A last event that every probe matches marks the end.
		end := b.appendOK("red-end", eventstore.Any, ev("Odd")).Position
		for i, p := range probes {
			match, err := p.filter.Matcher()
			b.is.NoErr(err)
			var want []int64
			for _, e := range all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{})) {
				if match(e) {
					want = append(want, e.Position)
				}
			}
			var got []int64
			for len(got) == 0 || got[len(got)-1] != end {
				got = append(got, receive(t, p.sub, 1)[0].Position)
			}
			if p.from == eventstore.FromNow {
				// It started after the first append: all of the log after it.
				want = want[len(want)-min(len(want), len(got)):]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("probe %d (from %d, %+v): got %v, want %v", i, p.from, p.filter, got, want)
			}
		}
		// Nothing after the end either: the next event each delivers is
		// one more that all of them match.
		barrier := b.appendOK("red-end", eventstore.Any, ev("Odd")).Position
		for i, p := range probes {
			if e := receive(t, p.sub, 1)[0]; e.Position != barrier {
				t.Fatalf("probe %d delivered position %d before the barrier at %d", i, e.Position, barrier)
			}
		}
	})
}

// equalEvents reports whether two recorded events are the same, field by
// field (an empty payload equals a nil one).
func equalEvents(a, b eventstore.RecordedEvent) bool {
	return a.ID == b.ID && a.StreamID == b.StreamID && a.Version == b.Version && a.Position == b.Position &&
		a.Type == b.Type && string(a.Data) == string(b.Data) && string(a.Metadata) == string(b.Metadata) &&
		a.RecordedAt.Equal(b.RecordedAt)
}
