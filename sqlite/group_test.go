package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
	"github.com/matryer/is"
)

// TestGroupCommit runs 64 appenders at once: they share transactions, and
// every acknowledged append is there.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	for _, mode := range []Synchronous{SyncNormal, SyncFull} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			b, err := Open(filepath.Join(t.TempDir(), "events.db"), &Options{Synchronous: mode})
			is.NoErr(err)
			s := eventstore.New(b, nil)
			defer s.Close()
			ctx := context.Background()
			const writers, each = 64, 5
			start := make(chan struct{})
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					<-start
					for i := range each {
						if _, err := s.Append(ctx, fmt.Sprintf("g-%d", w), eventstore.Exact(int64(i-1)), eventstore.Event{Type: "E"}); err != nil {
							t.Error(err)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			r, err := s.Verify(ctx)
			is.NoErr(err)
			is.True(r.OK())
			is.Equal(r.Events, int64(writers*each))
			groups := b.groups.Load()
			t.Logf("%s: %d appends in %d transactions", mode, writers*each, groups)
			is.True(groups < writers*each) // appends shared transactions
		})
	}
}

// TestGroupCommit_SpoiledGroup mixes into a group an append that fails
// after it has begun writing (its second event's ID is taken): it fails
// alone, and the others are written.
func TestGroupCommit_SpoiledGroup(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, err := Open(filepath.Join(t.TempDir(), "events.db"), nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	ctx := context.Background()
	taken := eventstore.Event{ID: uuid.New(), Type: "Taken"}
	_, err = s.Append(ctx, "taken-1", eventstore.NoStream, taken)
	is.NoErr(err)

	for round := range 5 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var badErr error
		for w := range 32 {
			wg.Go(func() {
				<-start
				if w == 7 {
					_, badErr = s.Append(ctx, fmt.Sprintf("bad-%d", round), eventstore.NoStream, eventstore.Event{Type: "Fine"}, taken)
					return
				}
				if _, err := s.Append(ctx, fmt.Sprintf("ok-%d-%d", round, w), eventstore.NoStream, eventstore.Event{Type: "E"}); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		is.True(errors.Is(badErr, eventstore.ErrDuplicateEvent))
		ok, err := s.StreamExists(ctx, fmt.Sprintf("bad-%d", round))
		is.NoErr(err)
		is.True(!ok) // nothing of it was written
	}
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())
	is.Equal(r.Events, int64(1+5*31))
}
