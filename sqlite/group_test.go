package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/edge-es/eventstore"
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
