package bench

import (
	"context"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

// BenchmarkAggregateExecute runs Execute, one event per command, on a
// 10,000-event aggregate on SQLite, loaded three ways: by replaying every
// event, from a snapshot taken every 100 events plus the events after it,
// and from the repository's cache (CacheSize), which reads only the
// cached event to check the stream.
func BenchmarkAggregateExecute(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		opts eventstore.RepositoryOptions[int]
	}{
		{"replay", eventstore.RepositoryOptions[int]{}},
		{"snapshot100", eventstore.RepositoryOptions[int]{SnapshotEvery: 100}},
		{"cached", eventstore.RepositoryOptions[int]{CacheSize: 16}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := store(b, sqlite.SyncNormal)
			repo := eventstore.NewRepository(s, benchDecider, benchCodec{}, &c.opts)
			for range 100 {
				if _, err := repo.Execute(ctx, "agg-1", 100); err != nil {
					b.Fatal(err)
				}
			}
			want := 10_000
			for b.Loop() {
				want++
				if res, err := repo.Execute(ctx, "agg-1", 1); err != nil || res.State != want {
					b.Fatal(res.State, err)
				}
			}
		})
	}
}
